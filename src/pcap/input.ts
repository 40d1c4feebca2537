// Where capture bytes come from: a file, standard input, or either of them through gunzip. The readers see
// one ByteWindow: a single reused buffer that holds at least the record being parsed. Refilling moves the
// unread tail to the front and reads behind it, so bytes are copied once (stream chunks) or never (files).
import { createReadStream } from 'node:fs'
import { open, stat, type FileHandle } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { createGunzip } from 'node:zlib'
import { ExitCode, NatlensError } from '../errors.js'

export interface ByteInput {
  /** Reads up to `length` bytes into buf at `offset`; 0 means the input has ended. */
  read(buf: Buffer, offset: number, length: number): Promise<number>
  close(): Promise<void>
  /** Bytes taken from the underlying file or pipe so far (compressed bytes for gzip): for progress. */
  readonly consumed: number
}

const READ_AHEAD = 4 << 20

/**
 * The two read-ahead buffers of a FileInput. A read of several files passes the same pair to each, so a
 * rotated set of a hundred files costs two buffers, not two hundred waiting for the garbage collector.
 */
export interface ReadAheadBuffers {
  a: Buffer
  b: Buffer
}
export function readAheadBuffers(size = READ_AHEAD): ReadAheadBuffers {
  return { a: Buffer.allocUnsafe(size), b: Buffer.allocUnsafe(size) }
}

/**
 * A file read one chunk ahead: while the reader parses a chunk, the next is already being read by libuv's
 * thread pool, so parsing and the kernel's copy overlap instead of taking turns.
 */
class FileInput implements ByteInput {
  consumed = 0
  private ahead: Promise<number> | undefined
  /** The buffer the read ahead goes into, and the one whose bytes are being handed out. */
  private spare: Buffer
  private current: Buffer
  private pending: Buffer = Buffer.alloc(0)
  private done = false
  constructor(private readonly handle: FileHandle, buffers: ReadAheadBuffers = readAheadBuffers()) {
    this.spare = buffers.a
    this.current = buffers.b
  }

  private startRead(): void {
    if (this.done || this.ahead) return
    this.ahead = this.handle.read(this.spare, 0, this.spare.length, null).then(({ bytesRead }) => bytesRead)
  }

  async read(buf: Buffer, offset: number, length: number): Promise<number> {
    if (this.pending.length === 0) {
      if (this.done) return 0
      this.startRead()
      const n = await (this.ahead as Promise<number>)
      this.ahead = undefined
      if (n === 0) {
        this.done = true
        return 0
      }
      // Swap: the filled buffer is handed out; the next read goes into the one fully handed out before.
      const filled = this.spare
      this.spare = this.current
      this.current = filled
      this.pending = filled.subarray(0, n)
      this.startRead()
    }
    const n = Math.min(length, this.pending.length)
    this.pending.copy(buf, offset, 0, n)
    this.pending = this.pending.subarray(n)
    this.consumed += n
    return n
  }

  async close(): Promise<void> {
    this.done = true
    if (this.ahead) await this.ahead.catch(() => 0)
    await this.handle.close()
  }
}

/** Adapts a Readable (stdin, gunzip) to ByteInput, copying each chunk once into the reader's buffer. */
class StreamInput implements ByteInput {
  private readonly chunks: AsyncIterator<Buffer>
  private chunk: Buffer | undefined
  private chunkPos = 0
  private done = false
  constructor(private readonly stream: Readable, private readonly consumedOf: () => number) {
    this.chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>
  }
  get consumed(): number {
    return this.consumedOf()
  }
  async read(buf: Buffer, offset: number, length: number): Promise<number> {
    while (!this.chunk || this.chunkPos >= this.chunk.length) {
      if (this.done) return 0
      const next = await this.chunks.next()
      if (next.done) {
        this.done = true
        return 0
      }
      this.chunk = typeof next.value === 'string' ? Buffer.from(next.value) : next.value
      this.chunkPos = 0
    }
    const n = Math.min(length, this.chunk.length - this.chunkPos)
    this.chunk.copy(buf, offset, this.chunkPos, this.chunkPos + n)
    this.chunkPos += n
    return n
  }
  async close(): Promise<void> {
    this.done = true
    if (this.stream !== process.stdin) this.stream.destroy()
  }
}

/** Reads the first bytes of a stream and gives back a stream that still starts with them. */
async function peekStream(stream: Readable, want: number): Promise<{ head: Buffer; rest: Readable; consumed: () => number }> {
  const it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>
  const parts: Buffer[] = []
  let have = 0
  let ended = false
  while (have < want) {
    const next = await it.next()
    if (next.done) {
      ended = true
      break
    }
    parts.push(next.value)
    have += next.value.length
  }
  const head = Buffer.concat(parts)
  let consumed = head.length
  async function* replay(): AsyncGenerator<Buffer> {
    if (head.length) yield head
    if (ended) return
    for (;;) {
      const next = await it.next()
      if (next.done) return
      consumed += next.value.length
      yield next.value
    }
  }
  return { head, rest: Readable.from(replay(), { objectMode: false }), consumed: () => consumed }
}

export interface OpenedInput {
  input: ByteInput
  /** gzip when the bytes were gzip-compressed (as the EKS node monitoring agent writes captures). */
  compression: 'gzip' | undefined
  /** Size of the file on disk (compressed size for gzip); undefined for standard input. */
  size: number | undefined
  /** Size of the capture the readers parse, when known without reading it (uncompressed files only). */
  captureSize: number | undefined
}

function isGzip(head: Buffer): boolean {
  return head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b
}

/** Opens a capture path, or `-` for standard input, transparently gunzipping gzip data. */
export async function openInput(path: string, buffers?: ReadAheadBuffers): Promise<OpenedInput> {
  if (path === '-') {
    const { head, rest, consumed } = await peekStream(process.stdin, 2)
    if (isGzip(head)) {
      const gunzip = rest.pipe(createGunzip())
      rest.on('error', (err) => gunzip.destroy(err))
      return { input: new StreamInput(gunzip, consumed), compression: 'gzip', size: undefined, captureSize: undefined }
    }
    return { input: new StreamInput(rest, consumed), compression: undefined, size: undefined, captureSize: undefined }
  }
  let handle: FileHandle
  try {
    const st = await stat(path)
    if (st.isDirectory()) throw new NatlensError(`${path}: is a directory, not a capture file`, 'capture.not-a-file', ExitCode.badInput)
    handle = await open(path, 'r')
  } catch (e) {
    if (e instanceof NatlensError) throw e
    const code = (e as NodeJS.ErrnoException).code
    const what = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (e as Error).message
    throw new NatlensError(`${path}: ${what}`, 'capture.unreadable', ExitCode.badInput)
  }
  const size = (await handle.stat()).size
  const head = Buffer.alloc(2)
  const { bytesRead } = await handle.read(head, 0, 2, 0)
  if (isGzip(head.subarray(0, bytesRead))) {
    await handle.close()
    const raw = createReadStream(path, { highWaterMark: 1 << 20 })
    const gunzip = raw.pipe(createGunzip({ chunkSize: 1 << 20 }))
    raw.on('error', (err) => gunzip.destroy(err))
    return { input: new StreamInput(gunzip, () => raw.bytesRead), compression: 'gzip', size, captureSize: undefined }
  }
  return { input: new FileInput(handle, buffers), compression: undefined, size, captureSize: size }
}

const INITIAL_WINDOW = 4 << 20

/**
 * The readers' view of the input: buf[pos, end) are unread bytes, and buf[0] is byte `base` of the capture.
 * fill(n) is the only await in a read loop, and only runs when fewer than n bytes are buffered.
 */
export class ByteWindow {
  buf: Buffer
  pos = 0
  end = 0
  base = 0
  eof = false
  /**
   * Called before each refill; a promise it returns is awaited. This is where a consumer that writes while
   * reading (NDJSON to a slow pipe) applies backpressure, since the packet loop itself never awaits.
   */
  beforeRefill: (() => Promise<void> | undefined) | undefined = undefined

  /** `buffer` (or a new one of `buffer` bytes) holds the window; pass the previous file's to reuse it. */
  constructor(private readonly input: ByteInput, buffer: Buffer | number = INITIAL_WINDOW) {
    this.buf = typeof buffer === 'number' ? Buffer.allocUnsafe(buffer) : buffer
  }

  /** Capture offset of buf[pos]. */
  get offset(): number {
    return this.base + this.pos
  }
  get available(): number {
    return this.end - this.pos
  }

  /**
   * Makes at least n bytes available at pos, growing the buffer if a record is larger than it. The caller
   * has bounded n (a length field is checked against its limit before it reaches here). Returns false when
   * the input ends first; `available` then tells how many bytes there were.
   */
  async fill(n: number): Promise<boolean> {
    if (this.end - this.pos >= n) return true
    const wait = this.beforeRefill?.()
    if (wait) await wait
    if (this.pos > 0) {
      this.buf.copy(this.buf, 0, this.pos, this.end)
      this.base += this.pos
      this.end -= this.pos
      this.pos = 0
    }
    if (n > this.buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(n, this.buf.length * 2))
      this.buf.copy(bigger, 0, 0, this.end)
      this.buf = bigger
    }
    while (this.end < n && !this.eof) {
      const got = await this.input.read(this.buf, this.end, this.buf.length - this.end)
      if (got === 0) this.eof = true
      this.end += got
    }
    return this.end >= n
  }
}
