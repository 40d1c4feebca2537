// Runs one command of the plan: argument array (never a shell string), a timeout, output kept in memory (bounded),
// and every argv checked against the read-only allowlist first. Children get their own process group, so a Ctrl-C
// at the terminal reaches only the collector (which ends the capture and finishes the bundle), not a half-written
// iptables-save.
import { execa } from 'execa'
import { readOnlyViolation } from './allowlist.js'

export interface ExecOptions {
  readonly timeoutMs: number
  /** Stop reading (and end the command) after this many lines of standard output. */
  readonly maxLines?: number
  /** Standard input (the namespace HTTP child reads its jobs there). */
  readonly input?: string
  readonly env: Readonly<Record<string, string>>
  /** Ends the command early (the collector's second Ctrl-C). */
  readonly signal?: AbortSignal
}

export interface ExecOutcome {
  readonly argv: readonly string[]
  readonly stdout: Buffer
  readonly stderr: string
  readonly exitCode: number | null
  readonly signal?: string
  readonly timedOut: boolean
  /** Standard output was cut at `maxLines` (or at the size bound). */
  readonly truncated: boolean
  readonly durationMs: number
  /** The command could not be started (not found, permission). */
  readonly error?: string
}

export type Exec = (argv: readonly string[], options: ExecOptions) => Promise<ExecOutcome>

/** Bounds on what is kept in memory per command: 160k iptables rules are ~20 MB; nft -j of them ~55 MB. */
export const MAX_STDOUT = 1024 * 1024 * 1024
export const MAX_STDERR = 64 * 1024

export const execCommand: Exec = async (argv, options) => {
  const why = readOnlyViolation(argv)
  // A plan mistake must never reach a shell or a kernel: refuse it loudly.
  if (why) throw new Error(`natlens collect refused to run ${JSON.stringify(argv)}: ${why}`)
  const started = performance.now()
  const [file, ...args] = argv
  const child = execa(file!, args, {
    reject: false, timeout: options.timeoutMs, killSignal: 'SIGKILL', buffer: false, detached: true, cleanup: true,
    env: options.env, extendEnv: false,
    ...(options.input !== undefined ? { input: options.input } : { stdin: 'ignore' as const }),
    ...(options.signal ? { cancelSignal: options.signal } : {}),
  })
  const out: Buffer[] = []
  let outBytes = 0
  let lines = 0
  let truncated = false
  let err = ''
  child.stdout?.on('data', (c: Buffer) => {
    if (truncated) return
    let chunk = c
    if (options.maxLines !== undefined) {
      let at = -1
      for (let i = 0; i < chunk.length; i++) {
        if (chunk[i] === 10 && ++lines >= options.maxLines) { at = i; break }
      }
      if (at >= 0) { chunk = chunk.subarray(0, at + 1); truncated = true }
    }
    if (outBytes + chunk.length > MAX_STDOUT) { chunk = chunk.subarray(0, MAX_STDOUT - outBytes); truncated = true }
    out.push(chunk)
    outBytes += chunk.length
    // Enough read: end the command (conntrack -L of a million entries would take long and be kept for nothing).
    if (truncated) child.kill('SIGTERM')
  })
  child.stderr?.on('data', (c: Buffer) => { if (err.length < MAX_STDERR) err += c.toString('utf8') })
  const r = await child
  const failedToStart = r.exitCode === undefined && !r.signal && !r.timedOut && !r.isCanceled
  return {
    argv, stdout: Buffer.concat(out, outBytes), stderr: err.slice(0, MAX_STDERR), exitCode: r.exitCode ?? null,
    ...(r.signal && !(truncated && r.signal === 'SIGTERM') ? { signal: r.signal } : {}),
    timedOut: r.timedOut === true, truncated, durationMs: Math.round(performance.now() - started),
    ...(failedToStart ? { error: r.shortMessage ?? 'could not be started' } : {}),
  }
}
