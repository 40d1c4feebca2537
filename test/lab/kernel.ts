// Everything the lab does to the kernel goes through here: commands run with argument arrays and a timeout, inside
// network namespaces the lab created (names start with `nl-`), and those namespaces (with the processes started in
// them) are removed on exit, on SIGINT/SIGTERM, and at the next start if an earlier run crashed.
import { execa, execaSync, type ResultPromise } from 'execa'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

export interface CommandRecord {
  readonly command: string
  readonly exitCode: number | undefined
  readonly durationMs: number
  readonly stderr: string
}

export interface CommandResult extends CommandRecord {
  readonly stdout: string
  readonly failed: boolean
}

export interface RunOptions {
  readonly input?: string
  readonly timeoutMs?: number
  /** Throw with the command, exit code and stderr when it fails (default true). */
  readonly check?: boolean
}

/** Runs one command (never through a shell) with a timeout. */
export async function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
  const started = Date.now()
  const result = await execa(file, [...args], {
    reject: false,
    timeout: options.timeoutMs ?? 10_000,
    killSignal: 'SIGKILL',
    stripFinalNewline: false,
    ...(options.input !== undefined ? { input: options.input } : { stdin: 'ignore' as const }),
  })
  const record: CommandResult = {
    command: [file, ...args].join(' '),
    exitCode: result.exitCode,
    durationMs: Date.now() - started,
    stdout: String(result.stdout ?? ''),
    stderr: String(result.stderr ?? ''),
    failed: result.failed,
  }
  if (record.failed && options.check !== false) {
    const why = result.timedOut ? `timed out after ${options.timeoutMs ?? 10_000} ms` : `exit ${record.exitCode}`
    throw new Error(`lab: \`${record.command}\` failed (${why}): ${record.stderr.trim() || record.stdout.trim()}`)
  }
  return record
}

/** Runs a command inside a namespace. */
export function inNs(ns: string, file: string, args: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
  assertLabNamespace(ns)
  return run('ip', ['netns', 'exec', ns, file, ...args], options)
}

/** Runs `ip -batch` inside a namespace: one process for many link/addr/route/rule/neigh commands, stopping at the first error. */
export async function ipBatch(ns: string, lines: readonly string[], options: readonly string[] = []): Promise<void> {
  if (lines.length === 0) return
  assertLabNamespace(ns)
  await run('ip', [...options, '-n', ns, '-batch', '-'], { input: lines.join('\n') + '\n', timeoutMs: 15_000 })
}

export function assertLabNamespace(ns: string): void {
  if (!/^nl-[a-z0-9-]+$/.test(ns)) throw new Error(`lab: refusing to touch namespace ${JSON.stringify(ns)}: lab namespaces start with nl-`)
}

export interface Background {
  readonly ns: string
  readonly name: string
  readonly process: ResultPromise
  readonly stderr: () => string
  readonly stdout: () => string
}

/**
 * Owns the namespaces and background processes of one lab run. Only names matching `ownedPattern` are ever deleted,
 * so namespaces of other tools (even other `nl-` ones) are never touched.
 */
export class LabRun {
  private readonly namespaces = new Set<string>()
  private readonly processes = new Set<Background>()
  private released = false

  constructor(readonly ownedPattern: RegExp) {
    ACTIVE.add(this)
  }

  async createNamespace(ns: string): Promise<void> {
    assertLabNamespace(ns)
    if (!this.ownedPattern.test(ns)) throw new Error(`lab: namespace ${ns} is outside the lab's own naming scheme`)
    await run('ip', ['netns', 'add', ns], { timeoutMs: 5_000 })
    this.namespaces.add(ns)
    await ipBatch(ns, ['link set lo up'])
  }

  /** Starts a long-running process in a namespace; it is killed (by its pid) when the run is cleaned up. */
  spawn(ns: string, name: string, file: string, args: readonly string[], timeoutMs: number): Background {
    assertLabNamespace(ns)
    let out = ''
    let err = ''
    const child = execa('ip', ['netns', 'exec', ns, file, ...args], { reject: false, timeout: timeoutMs, killSignal: 'SIGKILL', stdin: 'ignore', buffer: false })
    child.stdout?.on('data', (d: Buffer) => { if (out.length < 65_536) out += d.toString() })
    child.stderr?.on('data', (d: Buffer) => { if (err.length < 65_536) err += d.toString() })
    const bg: Background = { ns, name, process: child, stderr: () => err, stdout: () => out }
    this.processes.add(bg)
    void child.finally(() => this.processes.delete(bg))
    return bg
  }

  /** Stops one background process gently (SIGTERM lets tcpdump flush its file), then for sure. */
  async stop(bg: Background, graceMs = 3_000): Promise<void> {
    if (bg.process.exitCode !== null && bg.process.exitCode !== undefined) return
    bg.process.kill('SIGTERM')
    const timer = setTimeout(() => bg.process.kill('SIGKILL'), graceMs)
    await bg.process.catch(() => undefined)
    clearTimeout(timer)
    this.processes.delete(bg)
  }

  /** Kills what this run started and deletes its namespaces. Safe to call twice. */
  async cleanup(): Promise<void> {
    for (const bg of [...this.processes]) await this.stop(bg, 1_000)
    for (const ns of [...this.namespaces]) {
      await killNamespacePids(ns)
      await run('ip', ['netns', 'del', ns], { check: false, timeoutMs: 5_000 })
      this.namespaces.delete(ns)
    }
    this.release()
  }

  /** The same, synchronously, for `exit` and signal handlers. */
  cleanupSync(): void {
    for (const bg of this.processes) { try { bg.process.kill('SIGKILL') } catch { /* already gone */ } }
    this.processes.clear()
    for (const ns of this.namespaces) {
      killNamespacePidsSync(ns)
      try { execaSync('ip', ['netns', 'del', ns], { reject: false, timeout: 5_000 }) } catch { /* best effort on the way out */ }
    }
    this.namespaces.clear()
    this.release()
  }

  ownedNamespaces(): string[] { return [...this.namespaces] }

  private release(): void {
    if (this.released) return
    this.released = true
    ACTIVE.delete(this)
  }
}

const ACTIVE = new Set<LabRun>()
let handlersInstalled = false

/** On exit or SIGINT/SIGTERM every active run removes its namespaces before the process goes. */
export function installCleanupHandlers(): void {
  if (handlersInstalled) return
  handlersInstalled = true
  const cleanAll = () => { for (const runInProgress of [...ACTIVE]) runInProgress.cleanupSync() }
  process.on('exit', cleanAll)
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => { cleanAll(); releaseLock(); process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1)) })
  }
}

async function namespacePids(ns: string): Promise<number[]> {
  const r = await run('ip', ['netns', 'pids', ns], { check: false, timeoutMs: 5_000 })
  return r.stdout.split(/\s+/).filter(Boolean).map(Number).filter((n) => Number.isInteger(n) && n > 1 && n !== process.pid)
}

async function killNamespacePids(ns: string): Promise<void> {
  for (const pid of await namespacePids(ns)) { try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } }
}

function killNamespacePidsSync(ns: string): void {
  try {
    const r = execaSync('ip', ['netns', 'pids', ns], { reject: false, timeout: 5_000 })
    for (const pid of String(r.stdout ?? '').split(/\s+/).filter(Boolean).map(Number)) {
      if (Number.isInteger(pid) && pid > 1 && pid !== process.pid) { try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } }
    }
  } catch { /* best effort */ }
}

/** Namespaces currently present whose names match the lab's own scheme (stale ones from a crashed run). */
export async function listOwnedNamespaces(pattern: RegExp): Promise<string[]> {
  const r = await run('ip', ['netns', 'list'], { check: false, timeoutMs: 5_000 })
  return r.stdout.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter((n) => n && pattern.test(n))
}

/** Removes namespaces of an earlier crashed lab run: only names matching the lab's own scheme, processes inside first. */
export async function removeStaleNamespaces(pattern: RegExp): Promise<string[]> {
  const stale = await listOwnedNamespaces(pattern)
  for (const ns of stale) {
    assertLabNamespace(ns)
    await killNamespacePids(ns)
    await run('ip', ['netns', 'del', ns], { check: false, timeoutMs: 5_000 })
  }
  return stale
}

// One lab run at a time on a machine: a second run would otherwise take the first one's namespaces for stale ones.
const LOCK = path.join(os.tmpdir(), 'natlens-lab.lock')
let lockHeld = false

export function acquireLock(): string | null {
  try {
    const pid = Number(fs.readFileSync(LOCK, 'utf8').trim())
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) {
      try { process.kill(pid, 0); return `another lab run (pid ${pid}) holds ${LOCK}` } catch { /* dead: the lock is stale */ }
    }
  } catch { /* no lock */ }
  fs.writeFileSync(LOCK, String(process.pid))
  lockHeld = true
  return null
}

export function releaseLock(): void {
  if (!lockHeld) return
  try { if (fs.readFileSync(LOCK, 'utf8').trim() === String(process.pid)) fs.unlinkSync(LOCK) } catch { /* gone */ }
  lockHeld = false
}

/** Why the lab cannot run here, or null when it can. */
export async function preflight(): Promise<string | null> {
  if (process.platform !== 'linux') return `the kernel lab needs Linux network namespaces (platform is ${process.platform})`
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'the kernel lab needs root (network namespaces, iptables, tcpdump); run the tests as root'
  const tools: [string, string[], string][] = [
    ['ip', ['-V'], 'iproute2'], ['iptables-legacy', ['--version'], 'iptables (legacy)'], ['iptables-legacy-restore', ['--version'], 'iptables (legacy restore)'],
    ['iptables-nft-restore', ['--version'], 'iptables (nft)'], ['ip6tables-legacy-restore', ['--version'], 'ip6tables (legacy)'],
    ['nft', ['--version'], 'nftables'], ['tcpdump', ['--version'], 'tcpdump'], ['conntrack', ['--version'], 'conntrack'],
    ['perl', ['-MSocket=inet_pton', '-e', '1'], 'perl-base (ICMP sender)'],
  ]
  for (const [file, args, what] of tools) {
    const r = await run(file, args, { check: false, timeoutMs: 5_000 }).catch((e: unknown) => ({ failed: true, stderr: String(e) }))
    if (r.failed) return `${what} is not available (\`${file}\` did not run); .ci/run installs it with apt-get`
  }
  // Creating a namespace proves we may; the name is in the lab's scheme and it is deleted at once.
  const probe = `nl-probe-${process.pid}`
  const add = await run('ip', ['netns', 'add', probe], { check: false, timeoutMs: 5_000 })
  if (add.failed) return `cannot create network namespaces: ${add.stderr.trim()}`
  try {
    const ipt = await run('ip', ['netns', 'exec', probe, 'iptables-legacy', '-t', 'nat', '-S'], { check: false, timeoutMs: 5_000 })
    if (ipt.failed) return `iptables-legacy cannot use the nat table in a namespace: ${ipt.stderr.trim()}`
    const ct = await run('ip', ['netns', 'exec', probe, 'conntrack', '-L'], { check: false, timeoutMs: 5_000 })
    if (ct.failed) return `conntrack cannot read the connection table in a namespace: ${ct.stderr.trim()}`
  } finally {
    await run('ip', ['netns', 'del', probe], { check: false, timeoutMs: 5_000 })
  }
  return null
}
