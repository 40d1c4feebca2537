// PacketSource: the captures of one read (a file, a rotated set, standard input) as one stream of decoded
// packets. The format of each input is told by its first bytes (gzip, pcap in either byte order and unit,
// pcapng); a problem in one file stops that file, is reported with its byte offset, and the read goes on.
import type { Diagnostic } from '../model/evidence.js'
import { CaptureError, RecordSink, emptySummary, type CaptureSummary, type PacketCallback } from './capture.js'
import { PacketDecoder } from './decode.js'
import { ByteWindow, openInput, readAheadBuffers, type OpenedInput, type ReadAheadBuffers } from './input.js'
import { Packet } from './packet.js'
import { pcapMagic, readPcap } from './pcap.js'
import { PCAPNG_SHB, readPcapng } from './pcapng.js'
import { readWithPcapParser } from './pcap-parser-reader.js'

export type ReaderName = 'builtin' | 'pcap-parser'

export interface Progress {
  /** Bytes taken from the inputs so far (compressed bytes for gzip) and their total, when known. */
  readonly bytesDone: number
  readonly bytesTotal: number | undefined
  readonly packets: number
  readonly file: string
}

export interface PacketSourceOptions {
  /** `pcap-parser` reads classic pcap through the npm package instead of the built-in reader. */
  readonly reader?: ReaderName
  /** Called about every 64k packets and at the end of each file. */
  readonly onProgress?: (p: Progress) => void
  /**
   * Read files in the order of their first packet's timestamp (a rotated set named capture.pcap,
   * capture.pcap1, … capture.pcap10 sorts wrongly by name). Default true; standard input stays where it is.
   */
  readonly sortByTime?: boolean
  /** Size of the reader's window and of each read-ahead buffer; default 4 MiB. */
  readonly bufferSize?: number
  /** Awaited (when it returns a promise) before the reader reads more input: backpressure for consumers. */
  readonly beforeRefill?: () => Promise<void> | undefined
}

export interface ReadResult {
  readonly files: CaptureSummary[]
  /** Packet records read, over all files. */
  readonly packets: number
  /** True when some file could not be read to its end. */
  readonly truncated: boolean
  /** Fatal problems, one per file at most. */
  readonly problems: Diagnostic[]
  readonly warnings: Diagnostic[]
  /** True when no input could be read at all (every file failed before its first record). */
  readonly unreadable: boolean
}

/** Thrown inside a read to stop it early (peeking at a file's first timestamp). */
class StopRead extends Error {}

const PROGRESS_EVERY = 65536

export class PacketSource {
  private readonly decoder = new PacketDecoder()
  private readonly packet = new Packet()
  /** Reused from file to file: the reader's window and the read-ahead pair (see ReadAheadBuffers). */
  private windowBuffer: Buffer | undefined
  private aheadBuffers: ReadAheadBuffers | undefined

  constructor(readonly inputs: readonly string[], private readonly options: PacketSourceOptions = {}) {}

  /** Reads every input, calling onPacket with a Packet that is overwritten by the next record. */
  async forEach(onPacket: PacketCallback): Promise<ReadResult> {
    const order = await this.readingOrder()
    const files: CaptureSummary[] = []
    let total: number | undefined = 0
    let done = 0
    let packets = 0
    const sizes: (number | undefined)[] = []
    for (const path of order) {
      const size = await fileSize(path)
      sizes.push(size)
      total = total === undefined || size === undefined ? undefined : total + size
    }
    for (let i = 0; i < order.length; i++) {
      const path = order[i]
      const progress = this.options.onProgress
      let opened: OpenedInput | undefined
      let sinceReport = 0
      const callback: PacketCallback = progress
        ? (p) => {
          onPacket(p)
          if (++sinceReport === PROGRESS_EVERY) {
            sinceReport = 0
            progress({ bytesDone: done + (opened?.input.consumed ?? 0), bytesTotal: total, packets: packets + sink.summary.packets, file: path })
          }
        }
        : onPacket
      const sink = new RecordSink(emptySummary(path), { path, index: i }, this.decoder, this.packet, callback)
      opened = await this.readOne(path, sink)
      files.push(sink.close())
      packets += sink.summary.packets
      done += opened?.input.consumed ?? sizes[i] ?? 0
      progress?.({ bytesDone: done, bytesTotal: total, packets, file: path })
    }
    const problems = files.flatMap((f) => (f.problem ? [f.problem] : []))
    return {
      files,
      packets,
      truncated: files.some((f) => f.truncated),
      problems,
      warnings: files.flatMap((f) => f.warnings),
      unreadable: files.length > 0 && files.every((f) => f.problem !== undefined && f.packets === 0 && f.interfaces.length === 0),
    }
  }

  /** Reads one input into sink; returns the opened input (for its byte count) unless it could not be opened. */
  private async readOne(path: string, sink: RecordSink): Promise<OpenedInput | undefined> {
    let opened: OpenedInput
    try {
      opened = await openInput(path, (this.aheadBuffers ??= readAheadBuffers(this.options.bufferSize)))
    } catch (e) {
      sink.fail(new CaptureError(path, 0, (e as Error).message.replace(`${path}: `, ''), 'capture.unreadable'))
      return undefined
    }
    sink.summary.compression = opened.compression
    let windowOf: ByteWindow | undefined
    try {
      if (this.options.reader === 'pcap-parser') {
        await readWithPcapParser(path, opened, sink)
      } else {
        const w = new ByteWindow(opened.input, this.windowBuffer ?? this.options.bufferSize)
        w.beforeRefill = this.options.beforeRefill
        // Keep whichever buffer the window ends with (it may have grown for a large block) for the next file.
        windowOf = w
        if (!(await w.fill(4))) {
          throw new CaptureError(path, 0, w.available === 0 ? 'the file is empty' : `the file is ${w.available} bytes long, too short for any capture format`, 'capture.empty', true)
        }
        const b = w.buf
        const first = (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0
        if (pcapMagic(b, 0)) await readPcap(w, sink)
        else if (first === PCAPNG_SHB) await readPcapng(w, sink, opened.captureSize)
        else throw new CaptureError(path, 0, `not a pcap or pcapng file (the first bytes are ${b.subarray(0, 4).toString('hex')})`, 'capture.bad-magic')
      }
    } catch (e) {
      if (e instanceof StopRead) return opened
      if (e instanceof CaptureError) sink.fail(e)
      else if (isZlibError(e)) sink.fail(new CaptureError(path, opened.input.consumed, `gzip data is corrupt: ${(e as Error).message}`, 'capture.bad-gzip', true))
      else throw e
    } finally {
      await opened.input.close()
      if (windowOf) this.windowBuffer = windowOf.buf
    }

    return opened
  }

  /** Files sorted by their first packet's timestamp; stdin, unreadable and empty files keep their place at the end. */
  private async readingOrder(): Promise<string[]> {
    const inputs = [...this.inputs]
    if (inputs.length < 2 || this.options.sortByTime === false || inputs.includes('-')) return inputs
    const firsts = new Map<string, number>()
    for (const path of inputs) {
      const ts = await this.firstTimestamp(path)
      if (ts !== undefined) firsts.set(path, ts)
    }
    return inputs
      .map((path, i) => ({ path, i, ts: firsts.get(path) }))
      .sort((a, b) => (a.ts ?? Infinity) - (b.ts ?? Infinity) || a.i - b.i)
      .map((x) => x.path)
  }

  private async firstTimestamp(path: string): Promise<number | undefined> {
    let ts: number | undefined
    const sink = new RecordSink(emptySummary(path), { path, index: -1 }, new PacketDecoder(), new Packet(), (p) => {
      ts = p.tsSec + p.tsNsec / 1e9
      throw new StopRead()
    })
    // A peek needs the first record only: small buffers.
    await new PacketSource([], { reader: 'builtin', bufferSize: 64 * 1024 }).readOne(path, sink)
    return ts
  }
}

async function fileSize(path: string): Promise<number | undefined> {
  if (path === '-') return undefined
  try {
    const { stat } = await import('node:fs/promises')
    return (await stat(path)).size
  } catch {
    return undefined
  }
}

function isZlibError(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code
  return typeof code === 'string' && code.startsWith('Z_')
}
