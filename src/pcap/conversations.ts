// The library call behind `natlens flows`: read captures into a FlowTable and shape the result. The JSON
// shape `{packets, truncated, flows: [{proto, src, sport, dst, dport, packets, bytes, …}]}` is fixed once
// shipped; fields may be added, never renamed.
import type { CaptureSummary } from './capture.js'
import { linktypeName } from './decode.js'
import { flowMatches, type FlowFilter } from './filter.js'
import { FlowTable, tcpFlagNames, type Flow, type InterfaceRef } from './flows.js'
import { LAYER_TOKEN, type LayerName } from './packet.js'
import { PacketSource, type Progress, type ReaderName, type ReadResult } from './source.js'

export interface FlowJson {
  proto: string
  src: string
  sport: number | null
  dst: string
  dport: number | null
  packets: number
  bytes: number
  srcPackets: number
  srcBytes: number
  dstPackets: number
  dstBytes: number
  /** ISO 8601 UTC with nanoseconds. */
  first: string
  last: string
  /** Seconds between first and last, to the nanosecond. */
  duration: number
  /** TCP flags seen from either side (SYN, FIN, RST, …); null for other protocols. */
  tcpFlags: string[] | null
  srcTcpFlags: string[] | null
  dstTcpFlags: string[] | null
  icmpErrors: number
  interfaces: InterfaceRef[]
  inner: boolean
}

/** Latest second a JavaScript Date (and so ISO 8601 here) can show: year 275760. */
const MAX_DATE_SEC = 8_640_000_000_000n

/**
 * ISO 8601 UTC with nanoseconds. A time a Date cannot hold (a fuzzed pcapng can claim 2^64 seconds) is
 * written as decimal seconds since the epoch instead, so no timestamp makes the output fail.
 */
let cachedSec = 0n
let cachedIso = '1970-01-01T00:00:00'

export function formatTimestampNs(ns: bigint): string {
  let sec = ns / 1_000_000_000n
  let frac = ns % 1_000_000_000n
  if (frac < 0n) {
    frac += 1_000_000_000n
    sec -= 1n
  }
  const digits = frac.toString().padStart(9, '0')
  if (sec > MAX_DATE_SEC || sec < -MAX_DATE_SEC) return `${sec}.${digits}`
  // Flows of one capture share a few seconds: one Date per distinct second, not two per flow.
  if (sec !== cachedSec) {
    cachedSec = sec
    cachedIso = new Date(Number(sec) * 1000).toISOString().replace(/\.\d{3}Z$/, '')
  }
  return `${cachedIso}.${digits}Z`
}

export function flowJson(f: Flow): FlowJson {
  const both = f.srcTcpFlags === null ? null : tcpFlagNames((f.srcTcpFlags ?? 0) | (f.dstTcpFlags ?? 0))
  return {
    proto: f.proto,
    src: f.src,
    sport: f.sport,
    dst: f.dst,
    dport: f.dport,
    packets: f.packets,
    bytes: f.bytes,
    srcPackets: f.srcPackets,
    srcBytes: f.srcBytes,
    dstPackets: f.dstPackets,
    dstBytes: f.dstBytes,
    first: formatTimestampNs(f.firstNs),
    last: formatTimestampNs(f.lastNs),
    duration: Number(f.lastNs - f.firstNs) / 1e9,
    tcpFlags: both,
    srcTcpFlags: f.srcTcpFlags === null ? null : tcpFlagNames(f.srcTcpFlags),
    dstTcpFlags: f.dstTcpFlags === null ? null : tcpFlagNames(f.dstTcpFlags),
    icmpErrors: f.icmpErrors,
    interfaces: f.interfaces,
    inner: f.inner,
  }
}

export const SORT_KEYS = ['bytes', 'packets', 'first', 'last', 'duration', 'src', 'dst'] as const
export type SortKey = (typeof SORT_KEYS)[number]

function compareAddress(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true })
}

/** Largest first for sizes and durations, earliest first for times, address order for src/dst. */
export function sortFlows(flows: Flow[], key: SortKey): Flow[] {
  const byFirst = (a: Flow, b: Flow): number => (a.firstNs < b.firstNs ? -1 : a.firstNs > b.firstNs ? 1 : 0)
  const cmp: Record<SortKey, (a: Flow, b: Flow) => number> = {
    bytes: (a, b) => b.bytes - a.bytes || b.packets - a.packets || byFirst(a, b),
    packets: (a, b) => b.packets - a.packets || b.bytes - a.bytes || byFirst(a, b),
    first: byFirst,
    last: (a, b) => (a.lastNs < b.lastNs ? -1 : a.lastNs > b.lastNs ? 1 : 0),
    duration: (a, b) => Number((b.lastNs - b.firstNs) - (a.lastNs - a.firstNs)) || b.bytes - a.bytes,
    src: (a, b) => compareAddress(a.src, b.src) || (a.sport ?? -1) - (b.sport ?? -1) || byFirst(a, b),
    dst: (a, b) => compareAddress(a.dst, b.dst) || (a.dport ?? -1) - (b.dport ?? -1) || byFirst(a, b),
  }
  return [...flows].sort(cmp[key])
}

export interface FileReport {
  path: string
  format: string | null
  compression: string | null
  byteOrder: string | null
  tsResolution: string | null
  packets: number
  packetsCut: number
  linktypes: number[]
  interfaces: { id: string; linktype: number; linktypeName: string; name?: string; packets: number }[]
  protocols: Record<string, number>
  skippedBlocks: Record<string, number>
  ifindexPackets: Record<string, number>
  decodeProblems: Record<string, number>
  truncated: boolean
  problem: { offset: number; message: string; code: string } | null
}

export function fileReport(s: CaptureSummary): FileReport {
  return {
    path: s.path,
    format: s.format ?? null,
    compression: s.compression ?? null,
    byteOrder: s.byteOrder ?? null,
    tsResolution: s.tsResolution ?? null,
    packets: s.packets,
    packetsCut: s.packetsCut,
    linktypes: s.interfaces.map((i) => i.linktype),
    interfaces: s.interfaces.map((i) => ({
      id: i.id, linktype: i.linktype, linktypeName: linktypeName(i.linktype), ...(i.name !== undefined ? { name: i.name } : {}), packets: i.packets,
    })),
    protocols: Object.fromEntries(Object.entries(s.protocols).map(([k, v]) => [LAYER_TOKEN[k as LayerName], v as number])),
    skippedBlocks: s.skippedBlocks,
    ifindexPackets: s.ifindexPackets,
    decodeProblems: s.decodeProblems,
    truncated: s.truncated,
    problem: s.problem ? { offset: s.problem.offset ?? 0, message: s.problem.message, code: s.problem.code } : null,
  }
}

export interface FlowsOptions {
  readonly decap?: boolean
  readonly reader?: ReaderName
  readonly filter?: FlowFilter
  readonly onProgress?: (p: Progress) => void
  /**
   * Streaming: flows that are over are handed to onFlow during the read and dropped from the table (see
   * FlowTable.evict); the rest at the end. Without it, every flow is kept and returned.
   */
  readonly onFlow?: (f: Flow) => void
  /**
   * Only the first `top` flows in `sort` order are needed (the table view): without a filter they are
   * picked from the table without building every Flow. FlowsResult.flows then holds just those.
   */
  readonly select?: { readonly sort: SortKey; readonly top: number }
  /** Streaming: awaited before more input is read, e.g. until stdout drains. */
  readonly beforeRefill?: () => Promise<void> | undefined
  /** Streaming: a flow quiet this long (capture time) is over; default 120 s, and 5 s after FIN/RST. */
  readonly idleTimeoutSec?: number
}

export interface FlowsResult {
  /** Every packet record read. */
  readonly packets: number
  readonly truncated: boolean
  /** Flows that passed the filter (empty when streaming: they went to onFlow). */
  readonly flows: Flow[]
  /** Flows before the filter, streamed ones included. */
  readonly flowCount: number
  readonly read: ReadResult
}

const EVICT_EVERY = 1 << 18

export async function readFlows(inputs: readonly string[], options: FlowsOptions = {}): Promise<FlowsResult> {
  const table = new FlowTable({ decap: options.decap ?? false })
  const source = new PacketSource(inputs, { reader: options.reader ?? 'builtin', onProgress: options.onProgress, beforeRefill: options.beforeRefill })
  const filter = options.filter
  const onFlow = options.onFlow
  let streamed = 0
  const emit = (f: Flow): void => {
    streamed++
    if (!filter || flowMatches(filter, f)) onFlow?.(f)
  }
  let sinceEvict = 0
  const idle = options.idleTimeoutSec ?? 120
  const read = await source.forEach((p) => {
    table.add(p)
    if (onFlow && ++sinceEvict === EVICT_EVERY) {
      sinceEvict = 0
      for (const f of table.evict(p.tsSec, Math.min(5, idle), idle)) emit(f)
    }
  })
  if (onFlow) {
    const flowCount = streamed + table.size
    let n = 0
    for (const f of table.each()) {
      emit(f)
      // the same backpressure point as during the read, every thousand flows
      if (++n % 1024 === 0) {
        const wait = options.beforeRefill?.()
        if (wait) await wait
      }
    }
    return { packets: read.packets, truncated: read.truncated, flows: [], flowCount, read }
  }
  const select = options.select
  const pick = !filter && select && select.sort !== 'src' && select.sort !== 'dst' ? select : undefined
  let flows = pick ? table.top(pick.sort as Exclude<SortKey, 'src' | 'dst'>, pick.top) : table.flows()
  const flowCount = pick ? table.size : flows.length
  if (filter) {
    flows = flows.filter((f) => flowMatches(filter, f))
  }
  return { packets: read.packets, truncated: read.truncated, flows, flowCount, read }
}


/** The `--json` document of `natlens flows` (see the shape note at the top of this file). */
export interface FlowsReport {
  /** Every packet record read, over all files. */
  packets: number
  /** True when some file could not be read to its end: the flows are those read up to that point. */
  truncated: boolean
  flows: FlowJson[]
  /** Flows before --filter and --top. */
  flowCount: number
  sort: SortKey
  files: FileReport[]
  problems: { file: string; offset: number; message: string; code: string }[]
  warnings: { file: string; offset: number | null; message: string; code: string }[]
}

/** The flows to show: sorted, then the first `top` (all when top is undefined). */
export function topFlows(flows: Flow[], sort: SortKey, top: number | undefined): Flow[] {
  const sorted = sortFlows(flows, sort)
  return top === undefined ? sorted : sorted.slice(0, top)
}

/**
 * The report of a read. Its `flows` are converted to FlowJson when first read (a getter), so that a caller
 * streaming the JSON with writeReportJson never holds a million of them at once.
 */
export function flowsReport(result: FlowsResult, shown: Flow[], sort: SortKey): FlowsReport {
  let converted: FlowJson[] | undefined
  const report = {
    packets: result.packets,
    truncated: result.truncated,
    flows: [] as FlowJson[],
    flowCount: result.flowCount,
    sort,
    files: result.read.files.map(fileReport),
    problems: result.read.problems.map((d) => ({ file: d.artifact, offset: d.offset ?? 0, message: d.message, code: d.code })),
    warnings: result.read.warnings.map((d) => ({ file: d.artifact, offset: d.offset ?? null, message: d.message, code: d.code })),
  }
  Object.defineProperty(report, 'flows', { enumerable: true, configurable: true, get: () => (converted ??= shown.map(flowJson)) })
  SHOWN.set(report, shown)
  return report
}

/** The Flow objects behind a report, for writing its JSON without converting them all first. */
const SHOWN = new WeakMap<FlowsReport, Flow[]>()

/**
 * Writes the report as JSON, one flow per line, in pieces (a report can hold millions of flows). `write`
 * may return a promise (wait for a pipe to drain); the result is then a promise too.
 */
export function writeReportJson(report: FlowsReport, write: (chunk: string) => void): void
export function writeReportJson(report: FlowsReport, write: (chunk: string) => Promise<void> | undefined): Promise<void>
export function writeReportJson(report: FlowsReport, write: (chunk: string) => Promise<void> | void | undefined): Promise<void> | void {
  const chunks = reportJsonChunks(report)
  const step = (): Promise<void> | void => {
    for (let next = chunks.next(); !next.done; next = chunks.next()) {
      const wait = write(next.value)
      if (wait) return wait.then(step)
    }
  }
  return step()
}

function* reportJsonChunks(report: FlowsReport): Generator<string> {
  const shown = SHOWN.get(report)
  const { packets, truncated, flowCount, sort, files, problems, warnings } = report
  const rest = { flowCount, sort, files, problems, warnings }
  yield `{\n  "packets": ${packets},\n  "truncated": ${truncated},\n  "flows": [`
  const BATCH = 1024
  const count = shown ? shown.length : report.flows.length
  for (let i = 0; i < count; i += BATCH) {
    const batch: FlowJson[] = shown ? shown.slice(i, i + BATCH).map(flowJson) : report.flows.slice(i, i + BATCH)
    const part = batch.map((f) => `\n    ${JSON.stringify(f)}`).join(',')
    yield i === 0 ? part : `,${part}`
  }
  yield count ? '\n  ],' : '],'
  const tail = Object.entries(rest).map(([k, v]) => `\n  ${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(',')
  yield `${tail}\n}\n`
}
