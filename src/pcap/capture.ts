// What a read of one capture file learns and reports: the header facts, the interfaces, counts, warnings,
// and the problem that stopped it (with the byte offset), if one did.
import { ExitCode, NatlensError } from '../errors.js'
import type { Diagnostic } from '../model/evidence.js'
import { PacketDecoder } from './decode.js'
import { LAYER_NAMES, Layer, type LayerName, type CaptureInterface, type Packet, type CaptureFileRef } from './packet.js'

/**
 * A fatal problem in a capture file: reading stops there; what was read before is kept. `offset` is the
 * byte offset in the (decompressed) capture of the header or block that is wrong.
 */
export class CaptureError extends NatlensError {
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly what: string,
    code: string,
    /** True when the file just ends early (a cut-off download or capture), rather than holding wrong bytes. */
    readonly truncation = false,
  ) {
    super(`${file}: byte ${offset}: ${what}`, code, ExitCode.badInput,
      truncation ? 'the capture was cut short; flows up to this point are shown' : undefined)
    this.name = 'CaptureError'
  }
}

export type CaptureFormat = 'pcap' | 'pcapng'

export interface CaptureSummary {
  readonly path: string
  format: CaptureFormat | undefined
  compression: 'gzip' | undefined
  /** pcap: the file's byte order; pcapng: the first section's. */
  byteOrder: 'little' | 'big' | undefined
  /** pcap: "microsecond" or "nanosecond"; pcapng: per interface (see interfaces). */
  tsResolution: string | undefined
  version: string | undefined
  /** Every interface of the file, in file order (pcapng: across all sections), with its packet count. */
  interfaces: CaptureInterface[]
  /** Packet records read (pcap records, pcapng EPB/SPB/OPB). */
  packets: number
  /** Records whose captured length is smaller than the original length (snaplen cut them). */
  packetsCut: number
  /** pcapng blocks that carry no packet and were skipped, by name (ISB, NRB, DSB, custom, …). */
  skippedBlocks: Record<string, number>
  /** Packets on interfaces whose link type natlens does not decode: counted, but in no flow. */
  undecodedPackets: number
  /** Packets containing each layer (tshark's packets-containing count). */
  protocols: Partial<Record<LayerName, number>>
  /** Packets on which decoding stopped early, by reason (a header cut short or inconsistent). */
  decodeProblems: Record<string, number>
  /** SLL2 interface indexes and their packet counts. */
  ifindexPackets: Record<string, number>
  warnings: Diagnostic[]
  /** The problem that stopped the read; undefined when the whole file was read. */
  problem: Diagnostic | undefined
  /** True when reading stopped before the end of the file. */
  truncated: boolean
}

export function emptySummary(path: string): CaptureSummary {
  return {
    path, format: undefined, compression: undefined, byteOrder: undefined, tsResolution: undefined, version: undefined,
    interfaces: [], packets: 0, packetsCut: 0, undecodedPackets: 0, skippedBlocks: {}, protocols: {}, decodeProblems: {}, ifindexPackets: {},
    warnings: [], problem: undefined, truncated: false,
  }
}

export type PacketCallback = (p: Packet) => void

/** A repeated warning is reported once with its first offset, then counted. */
const MAX_WARNINGS_PER_CODE = 1

/**
 * Decodes records handed over by a format reader and passes them on; keeps the per-file counts. One per file;
 * the decoder (and with it the fragment table) is shared by the files of one read.
 */
export class RecordSink {
  readonly packet: Packet
  private readonly layerCombos = new Map<number, number>()
  private readonly ifindexCounts = new Map<number, number>()
  private readonly problems = new Map<string, number>()
  private readonly warningCounts = new Map<string, number>()
  /** Set after the read: counts merged into the summary. */
  private closed = false

  constructor(
    readonly summary: CaptureSummary,
    readonly fileRef: CaptureFileRef,
    private readonly decoder: PacketDecoder,
    packet: Packet,
    private readonly onPacket: PacketCallback,
  ) {
    this.packet = packet
    packet.file = fileRef
  }

  /** p.bytes/start/caplen/length/timestamps/interface/linktype are set; decode and deliver. */
  deliver(p: Packet): void {
    this.summary.packets++
    p.recordNumber = this.summary.packets
    if (p.caplen < p.length) this.summary.packetsCut++
    p.interface.packets++
    if (!p.interface.decoded) this.undecoded(p)
    this.decoder.decode(p)
    const layers = p.layers
    this.layerCombos.set(layers, (this.layerCombos.get(layers) ?? 0) + 1)
    if (p.ifindex >= 0) this.ifindexCounts.set(p.ifindex, (this.ifindexCounts.get(p.ifindex) ?? 0) + 1)
    if (p.problem !== undefined) this.problems.set(p.problem, (this.problems.get(p.problem) ?? 0) + 1)
    this.onPacket(p)
  }

  private undecoded(p: Packet): void {
    if (this.summary.undecodedPackets++ === 0) {
      const i = p.interface
      this.warn(p.offset, 'capture.unknown-linktype',
        `packet ${p.recordNumber} is on interface ${i.id}${i.name ? ` (${i.name})` : ''} with link type ${i.linktype}, which natlens does not decode: such packets are counted but in no flow`)
    }
  }

  warn(offset: number, code: string, message: string): void {
    const n = (this.warningCounts.get(code) ?? 0) + 1
    this.warningCounts.set(code, n)
    if (n <= MAX_WARNINGS_PER_CODE) {
      this.summary.warnings.push({ severity: 'warning', artifact: this.summary.path, offset, code, message })
    }
  }

  fail(e: CaptureError): void {
    this.summary.problem = { severity: 'error', artifact: this.summary.path, offset: e.offset, code: e.code, message: e.what }
    this.summary.truncated = true
  }

  /** Folds the hot-loop counters into the summary. */
  close(): CaptureSummary {
    if (this.closed) return this.summary
    this.closed = true
    const protocols: Partial<Record<LayerName, number>> = {}
    for (const name of LAYER_NAMES) {
      let n = 0
      for (const [combo, count] of this.layerCombos) if (combo & Layer[name]) n += count
      if (n > 0) protocols[name] = n
    }
    this.summary.protocols = protocols
    this.summary.ifindexPackets = Object.fromEntries([...this.ifindexCounts].sort((a, b) => a[0] - b[0]).map(([k, v]) => [String(k), v]))
    this.summary.decodeProblems = Object.fromEntries([...this.problems].sort())
    for (const [code, n] of this.warningCounts) {
      if (n > MAX_WARNINGS_PER_CODE) {
        const w = this.summary.warnings.find((x) => x.code === code)
        if (w) Object.assign(w, { message: `${w.message} (and ${n - MAX_WARNINGS_PER_CODE} more like it)` })
      }
    }
    return this.summary
  }
}
