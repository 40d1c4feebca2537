// The capture beside the state: tcpdump writes pcap to a pipe; the collector writes whole records into the bundle
// until the duration is over, a bound is reached (--max-packets through tcpdump's -c, --max-size here, exactly, at
// a record boundary), or the user ends it (Ctrl-C / SIGTERM). tcpdump ends on SIGTERM after flushing, so the file
// is always a complete pcap that `tcpdump -r` reads to its end.
import { createWriteStream } from 'node:fs'
import { createHash } from 'node:crypto'
import { execa } from 'execa'
import { readOnlyViolation } from './allowlist.js'
import type { CaptureOptions } from './plan.js'
import type { CaptureRecord } from './manifest.js'

export interface RunningCapture {
  /** Ends the capture (idempotent); `why` goes into the manifest. */
  stop(why: CaptureRecord['endedBy']): void
  /** Resolves when tcpdump has ended and the file is complete. */
  readonly done: Promise<CaptureRecord>
}

const PCAP_HEADER = 24
const RECORD_HEADER = 16

export function startCapture(argv: readonly string[], file: string, relFile: string, options: CaptureOptions, env: Readonly<Record<string, string>>): RunningCapture {
  const why = readOnlyViolation(argv)
  if (why) throw new Error(`natlens collect refused to run ${JSON.stringify(argv)}: ${why}`)
  const started = new Date()
  const t0 = performance.now()
  const out = createWriteStream(file, { flags: 'wx', mode: 0o600 })
  const hash = createHash('sha256')
  const child = execa(argv[0]!, argv.slice(1), { reject: false, buffer: false, detached: true, stdin: 'ignore', env, extendEnv: false, timeout: options.durationMs + 60_000, killSignal: 'SIGKILL' })
  let endedBy: CaptureRecord['endedBy'] | undefined
  let pending: Buffer = Buffer.alloc(0)
  let headerDone = false
  let littleEndian = true
  let packets = 0
  let bytes = 0
  let full = false
  let stderr = ''

  const write = (b: Buffer) => { out.write(b); hash.update(b); bytes += b.length }
  const stop = (reason: CaptureRecord['endedBy']) => {
    if (endedBy === undefined) endedBy = reason
    if (child.exitCode === null || child.exitCode === undefined) child.kill('SIGTERM')
  }
  child.stdout?.on('data', (c: Buffer) => {
    if (full) return
    pending = pending.length ? Buffer.concat([pending, c]) : c
    if (!headerDone) {
      if (pending.length < PCAP_HEADER) return
      const magic = pending.readUInt32LE(0)
      littleEndian = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d
      write(pending.subarray(0, PCAP_HEADER))
      pending = pending.subarray(PCAP_HEADER)
      headerDone = true
    }
    // Whole records only, so the file never ends in a cut packet.
    while (pending.length >= RECORD_HEADER) {
      const incl = littleEndian ? pending.readUInt32LE(8) : pending.readUInt32BE(8)
      const len = RECORD_HEADER + incl
      if (pending.length < len) break
      if (bytes + len > options.maxBytes) { full = true; stop('max-size'); break }
      write(pending.subarray(0, len))
      packets++
      pending = pending.subarray(len)
    }
  })
  child.stderr?.on('data', (c: Buffer) => { if (stderr.length < 16_384) stderr += c.toString('utf8') })
  const timer = setTimeout(() => stop('duration'), options.durationMs)

  const done = (async (): Promise<CaptureRecord> => {
    const r = await child
    clearTimeout(timer)
    await new Promise<void>((res) => out.end(res))
    if (endedBy === undefined) {
      endedBy = packets >= options.maxPackets ? 'max-packets' : r.exitCode === 0 ? 'tcpdump-exit' : 'error'
    }
    const drops = /(\d+) packets? dropped by kernel/.exec(stderr)
    return {
      file: relFile, argv, iface: options.iface, filter: options.filter ?? null, snaplen: options.snaplen, maxPackets: options.maxPackets, maxBytes: options.maxBytes,
      requestedMs: options.durationMs, durationMs: Math.round(performance.now() - t0), startedAt: started.toISOString(), endedAt: new Date().toISOString(),
      endedBy, packets, bytes, sha256: bytes > 0 ? hash.digest('hex') : null, kernelDrops: drops ? Number(drops[1]) : null,
      exitCode: r.exitCode ?? null, stderr: stderr.trim().slice(0, 4000),
    }
  })()
  return { stop, done }
}
