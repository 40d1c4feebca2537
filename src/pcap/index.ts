// The capture library, for commands (`flows`, later `analyze`) to build on:
//   new PacketSource(paths).forEach((p: Packet) => …)   decoded packets, one reused object (copy what you keep)
//   new FlowTable({ decap }).add(p) / .flows()            bidirectional conversations
//   readFlows(paths, options)                             both, with filters and streaming (what `flows` runs)
export { CaptureError, type CaptureSummary, type PacketCallback } from './capture.js'
export { LINKTYPE, PacketDecoder, isDecodedLinktype, linktypeName } from './decode.js'
export { flowMatches, parseFlowFilter, type FlowFilter } from './filter.js'
export { FlowTable, tcpFlagNames, type Flow, type FlowTableOptions, type InterfaceRef } from './flows.js'
export {
  Direction, IPPROTO, LAYER_TOKEN, Layer, Packet, Tuple, formatAddress, formatIpv4, formatIpv6, protoName,
  type CaptureInterface, type DirectionValue, type LayerName,
} from './packet.js'
export { PacketSource, type PacketSourceOptions, type Progress, type ReadResult, type ReaderName } from './source.js'
export {
  flowJson, flowsReport, formatTimestampNs, readFlows, sortFlows, topFlows, writeReportJson,
  type FlowJson, type FlowsOptions, type FlowsReport, type FlowsResult, type SortKey,
} from './conversations.js'
