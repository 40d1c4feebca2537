// `natlens collect`: runs the plan (src/collect/plan.ts) on this node, or inside a named network namespace, and
// writes one bundle that inspect, explain, analyze and report read. Read-only: every command is checked against
// the allowlist before it starts, HTTP goes only to loopback and IMDS, files are only read. A command that fails
// or is missing never stops the collection: its record says what happened, and the rest goes on.
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readdir, readFile, stat } from 'node:fs/promises'
import os from 'node:os'
import { delimiter, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { NatlensError, ExitCode } from '../errors.js'
import { abandonTarget, bundlePath, createTarget, defaultBundleName, finishTarget, resolveTarget, writeBundleFile, type BundleTarget } from './bundle.js'
import { startCapture } from './capture.js'
import { execCommand, type Exec, type ExecOutcome } from './exec.js'
import { ec2Evidence, endpointProblem, runHttpJobs, type HttpJob, type HttpJobResult, type Requester } from './http.js'
import { AFTER_DIR, MANIFEST_VERSION, type CaptureRecord, type ItemRecord, type Manifest, type RecordPhase, type SkippedItem } from './manifest.js'
import { redactPcap } from './pcap-redact.js'
import { collectionPlan, DEFAULT_CONNTRACK_LIMIT, DEFAULT_ENDPOINTS, fallbackReason, hostItemReason, missingCommandReason, needsRootReason, type CaptureOptions, type CommandItem, type Endpoints, type FileItem, type PlanItem, type ProcessEnvItem } from './plan.js'
import { Redactor } from './redact.js'

export interface CollectOptions {
  readonly natlensVersion: string
  /** `-o`: a directory, a .tar.gz, or an existing directory to put the default-named .tar.gz in. */
  readonly output?: string
  readonly cwd?: string
  readonly netns?: string
  readonly conntrackLimit?: number
  readonly capture?: CaptureOptions
  readonly redact?: { readonly ips: boolean }
  readonly isRoot?: boolean
  readonly endpoints?: Partial<Endpoints>
  /** PATH (and only PATH) is passed to the commands; LC_ALL=C keeps their output stable. */
  readonly path?: string
  readonly concurrency?: number
  /** Item ids or bundle file names to leave out (`--skip imds,conntrack`). */
  readonly skip?: readonly string[]
  /** Where the node's filesystem is (`kubectl debug node` mounts it at /host); the CNI files are read below it. */
  readonly hostRoot?: string
  readonly onProgress?: (e: CollectEvent) => void
  /** The first Ctrl-C / SIGTERM: ends the capture; the state after it is still taken. */
  readonly endCapture?: AbortSignal
  /** The second: ends every running command; the bundle is written with what there is. */
  readonly abort?: AbortSignal
  // Seams for tests.
  readonly exec?: Exec
  readonly request?: Requester
  readonly ec2?: () => { ec2: boolean | undefined; why: string }
  readonly hostname?: string
  readonly now?: () => Date
}

export type CollectEvent =
  | { readonly type: 'start'; readonly output: string; readonly items: number; readonly netns: string | null; readonly root: boolean }
  | { readonly type: 'item'; readonly record: ItemRecord; readonly elapsedMs: number }
  | { readonly type: 'skip'; readonly item: SkippedItem; readonly elapsedMs: number }
  | { readonly type: 'capture-start'; readonly argv: readonly string[]; readonly durationMs: number; readonly elapsedMs: number }
  | { readonly type: 'capture-wait'; readonly remainingMs: number; readonly elapsedMs: number }
  | { readonly type: 'capture-end'; readonly capture: CaptureRecord; readonly elapsedMs: number }
  | { readonly type: 'phase'; readonly phase: 'after'; readonly elapsedMs: number }
  | { readonly type: 'note'; readonly message: string; readonly elapsedMs: number }
  | { readonly type: 'packing'; readonly elapsedMs: number }

export interface CollectSummary {
  readonly output: string
  readonly format: 'directory' | 'tar.gz'
  readonly bytes: number
  readonly files: number
  readonly durationMs: number
  /** The state collection alone (the first pass), without capture or packing. */
  readonly stateDurationMs: number
  readonly netns: string | null
  readonly root: boolean
  readonly collected: number
  readonly failed: readonly { readonly file: string; readonly why: string }[]
  readonly skipped: readonly SkippedItem[]
  readonly capture?: Pick<CaptureRecord, 'file' | 'packets' | 'bytes' | 'endedBy' | 'durationMs' | 'kernelDrops'>
  readonly redaction?: { readonly ips: 'kept' | 'prefix-preserving'; readonly counts: Readonly<Record<string, number>> }
  readonly interrupted?: string
  /** What to run on the bundle next. */
  readonly next: readonly string[]
}

/**
 * How to run the collector's HTTP reads inside a namespace: dist/collect/http-child.js beside this module (a checkout
 * or an npm install), or natlens itself with `collect --http-child` (the single executable, where import.meta.url
 * is empty and there are no files beside the code).
 */
export function httpChildArgv(): string[] {
  const url = (import.meta as { url?: string }).url
  if (typeof url === 'string' && url.startsWith('file:')) {
    const child = fileURLToPath(new URL('./http-child.js', url))
    if (existsSync(child)) return [process.execPath, child]
  }
  const script = process.argv[1]
  return [process.execPath, ...(script && script !== process.execPath && /\.[cm]?js$/.test(script) ? [script] : []), 'collect', '--http-child']
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex')
}

/** PATH lookup as execvp does it, so a condition says what running the command would find. */
export function onPath(command: string, path: string): boolean {
  return path.split(delimiter).some((d) => d !== '' && existsSync(join(d, command)))
}

async function poolRun<T>(items: readonly T[], limit: number, run: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async () => { while (next < items.length) await run(items[next++]!) }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}

function describeFailure(o: ExecOutcome): string {
  if (o.error) return o.error
  if (o.timedOut) return 'timed out'
  if (o.signal) return `ended by ${o.signal}`
  return `exit ${o.exitCode}${o.stderr.trim() ? `: ${o.stderr.trim().split('\n')[0]}` : ''}`
}

export interface EvaluationContext {
  readonly netns: string | null
  readonly isRoot: boolean
  readonly path: string
  readonly endpoints: Endpoints
  readonly ec2?: () => { ec2: boolean | undefined; why: string }
  /** `--skip`: item ids or bundle file names to leave out. */
  readonly skip?: readonly string[]
  readonly hostRoot?: string
}

/** A path on the node's filesystem, below --host-root. */
export function onNode(path: string, hostRoot = '/'): string {
  return hostRoot === '/' ? path : join(hostRoot, path)
}

/** `--skip` names an item by its id or its file in the bundle; anything else is a usage error. */
export function checkSkipNames(names: readonly string[], plan: readonly PlanItem[]): void {
  const unknown = names.filter((n) => !plan.some((i) => i.id === n || i.file === n))
  if (unknown.length) throw new NatlensError(`--skip ${unknown.join(',')}: no such item`, 'usage.skip', ExitCode.badInput, `items: ${plan.map((i) => i.id).join(', ')}`)
}

/** Which items run here, and why the others do not (root, missing tools, host items under --netns, not on EC2). */
export function evaluatePlan(plan: readonly PlanItem[], ctx: EvaluationContext): { runnable: PlanItem[]; skipped: SkippedItem[] } {
  const runnable: PlanItem[] = []
  const skipped: SkippedItem[] = []
  for (const item of plan) {
    let why: string | undefined
    if (ctx.skip?.some((n) => n === item.id || n === item.file)) why = 'left out with --skip'
    else if (item.scope === 'host' && ctx.netns !== null) why = hostItemReason(ctx.netns)
    else if (item.needsRoot && !ctx.isRoot) why = needsRootReason(item)
    for (const c of item.conditions) {
      if (why) break
      if (c.kind === 'command' && !onPath(c.command, ctx.path)) why = missingCommandReason(item, c.command)
      else if (c.kind === 'no-command' && c.commands.some((x) => onPath(x, ctx.path))) why = fallbackReason(c.commands)
      else if (c.kind === 'path' && !existsSync(c.node ? onNode(c.path, ctx.hostRoot) : c.path)) why = c.missing
    }
    if (!why && item.kind === 'imds' && ctx.endpoints.imds === DEFAULT_ENDPOINTS.imds) {
      const ev = (ctx.ec2 ?? ec2Evidence)()
      if (ev.ec2 === false) why = `not an EC2 instance (${ev.why}); IMDS was not asked`
    }
    if (why) skipped.push({ id: item.id, file: item.file, reason: why })
    else runnable.push(item)
  }
  return { runnable, skipped }
}

export interface PlanRow {
  readonly file: string
  readonly what: string
  /** The argv, URL or path. */
  readonly source: string
  readonly needsRoot: boolean
  readonly timeoutMs: number
  readonly phase: 'state' | 'once'
  readonly runs: boolean
  readonly reason?: string
}

/** `natlens collect --plan`: what would run here and what would be skipped, without running anything. */
export function previewCollection(options: Pick<CollectOptions, 'netns' | 'conntrackLimit' | 'capture' | 'isRoot' | 'endpoints' | 'path' | 'ec2' | 'skip' | 'hostRoot'>): PlanRow[] {
  const netns = options.netns ?? null
  const endpoints: Endpoints = { ...DEFAULT_ENDPOINTS, ...options.endpoints }
  const plan = collectionPlan({ conntrackLimit: options.conntrackLimit ?? DEFAULT_CONNTRACK_LIMIT, ...(options.capture ? { capture: options.capture } : {}) })
  const isRoot = options.isRoot ?? (typeof process.getuid === 'function' ? process.getuid() === 0 : false)
  if (options.skip) checkSkipNames(options.skip, plan)
  const e = evaluatePlan(plan, { netns, isRoot, path: options.path ?? process.env['PATH'] ?? '', endpoints, ...(options.ec2 ? { ec2: options.ec2 } : {}), ...(options.skip ? { skip: options.skip } : {}), ...(options.hostRoot ? { hostRoot: options.hostRoot } : {}) })
  const wrap = (argv: readonly string[]) => (netns !== null ? ['ip', 'netns', 'exec', netns, ...argv] : argv)
  return plan.map((item) => {
    const source = item.kind === 'command' || item.kind === 'capture' ? wrap(item.argv).join(' ')
      : item.kind === 'http' ? `GET ${endpoints[item.endpoint]}${item.path}` : item.kind === 'imds' ? `IMDSv2 ${endpoints.imds}/latest/meta-data/…`
        : item.kind === 'files' ? `${onNode(item.path, options.hostRoot)}${item.glob ? '/*' : ''}` : `/proc/<${item.comm}>/environ (CNI setting names only)`
    const skip = e.skipped.find((x) => x.id === item.id)
    return { file: item.file, what: item.what, source, needsRoot: item.needsRoot, timeoutMs: item.timeoutMs, phase: item.phase, runs: !skip, ...(skip ? { reason: skip.reason } : {}) }
  })
}

export async function collect(options: CollectOptions): Promise<CollectSummary> {
  const now = options.now ?? (() => new Date())
  const startedAt = now()
  const t0 = performance.now()
  const elapsed = () => Math.round(performance.now() - t0)
  const emit = (e: CollectEvent) => options.onProgress?.(e)
  const isRoot = options.isRoot ?? (typeof process.getuid === 'function' ? process.getuid() === 0 : false)
  const path = options.path ?? process.env['PATH'] ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  const env = { PATH: path, LC_ALL: 'C' }
  const exec = options.exec ?? execCommand
  const netns = options.netns ?? null
  const endpoints: Endpoints = { ...DEFAULT_ENDPOINTS, ...options.endpoints }
  for (const [name, url] of Object.entries(endpoints)) {
    const problem = endpointProblem(url)
    if (problem) throw new NatlensError(`${name} endpoint ${problem}`, 'collect.endpoint', ExitCode.badInput)
  }
  if (netns !== null) {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(netns) || netns === '.' || netns === '..') throw new NatlensError(`--netns ${JSON.stringify(netns)} is not a namespace name`, 'collect.netns', ExitCode.badInput)
    if (!isRoot) throw new NatlensError('--netns needs root (ip netns exec enters the namespace)', 'collect.netns-root', ExitCode.badInput, 'run it with sudo')
    if (!existsSync(`/run/netns/${netns}`) && !existsSync(`/var/run/netns/${netns}`)) throw new NatlensError(`there is no network namespace named ${netns}`, 'collect.netns-missing', ExitCode.badInput, 'list them with `ip netns list`')
  }
  if (options.capture && !/^[A-Za-z0-9_.:@-]{1,32}$/.test(options.capture.iface)) throw new NatlensError(`--iface ${JSON.stringify(options.capture.iface)} is not an interface name`, 'collect.iface', ExitCode.badInput, 'list them with `ip link`, or use --iface any')
  const wrap = (argv: readonly string[]): string[] => (netns !== null ? ['ip', 'netns', 'exec', netns, ...argv] : [...argv])
  const hostname = options.hostname ?? os.hostname()
  const redactor = options.redact ? new Redactor({ ips: options.redact.ips, hostnames: [hostname] }) : undefined
  const shownHost = redactor ? redactor.redactText(hostname) : hostname
  const conntrackLimit = options.conntrackLimit ?? DEFAULT_CONNTRACK_LIMIT
  const plan = collectionPlan({ conntrackLimit, ...(options.capture ? { capture: options.capture } : {}) })
  if (options.skip) checkSkipNames(options.skip, plan)

  const resolved = await resolveTarget(options.output, options.cwd ?? process.cwd(), defaultBundleName(shownHost, startedAt))
  const target = await createTarget(resolved)
  try {
    const records: ItemRecord[] = []
    const skipped: SkippedItem[] = []
    const skip = (item: PlanItem, reason: string) => {
      const s = { id: item.id, file: item.file, reason }
      skipped.push(s)
      emit({ type: 'skip', item: s, elapsedMs: elapsed() })
    }
    const record = (r: ItemRecord) => { records.push(r); emit({ type: 'item', record: r, elapsedMs: elapsed() }) }

    /** Writes a file of the bundle (redacted when asked) and returns its size and hash. */
    const put = async (rel: string, data: Buffer, text: boolean): Promise<{ bytes: number; sha256: string }> => {
      const bytes = redactor && text ? Buffer.from(redactor.redactText(data.toString('utf8'), rel)) : data
      await writeBundleFile(target, rel, bytes)
      return { bytes: bytes.length, sha256: sha256(bytes) }
    }

    const evaluation = evaluatePlan(plan, { netns, isRoot, path, endpoints, ...(options.ec2 ? { ec2: options.ec2 } : {}), ...(options.skip ? { skip: options.skip } : {}), ...(options.hostRoot ? { hostRoot: options.hostRoot } : {}) })
    const runnable = evaluation.runnable
    emit({ type: 'start', output: target.output, items: runnable.length, netns, root: isRoot })
    for (const x of evaluation.skipped) { skipped.push(x); emit({ type: 'skip', item: x, elapsedMs: elapsed() }) }

    // The capture starts first, so it covers the whole state collection too.
    const captureItem = runnable.find((i) => i.kind === 'capture')
    let capture: ReturnType<typeof startCapture> | undefined
    if (captureItem && options.capture && !options.endCapture?.aborted) {
      capture = startCapture(wrap(captureItem.argv), bundlePath(target, captureItem.file), captureItem.file, options.capture, env)
      emit({ type: 'capture-start', argv: wrap(captureItem.argv), durationMs: options.capture.durationMs, elapsedMs: elapsed() })
    }
    const onEnd = () => capture?.stop(options.endCapture?.reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT')
    options.endCapture?.addEventListener('abort', onEnd, { once: true })
    const onAbort = () => capture?.stop('SIGINT')
    options.abort?.addEventListener('abort', onAbort, { once: true })

    const runCommandItem = async (item: CommandItem, phase: RecordPhase): Promise<void> => {
      const rel = phase === 'after' ? `${AFTER_DIR}${item.file}` : item.file
      const argv = wrap(item.argv)
      if (options.abort?.aborted) { const x = { id: item.id, file: rel, reason: 'not started: the collection was interrupted' }; skipped.push(x); emit({ type: 'skip', item: x, elapsedMs: elapsed() }); return }
      const o = await exec(argv, { timeoutMs: item.timeoutMs, env, ...(item.maxLines !== undefined ? { maxLines: item.maxLines } : {}), ...(options.abort ? { signal: options.abort } : {}) })
      let out = o.stdout
      let note: string | undefined
      if (item.keepLines) {
        const keep = new RegExp(item.keepLines)
        const text = out.toString('utf8')
        out = Buffer.from(text.split('\n').filter((l) => keep.test(l)).join('\n') + '\n')
        if (out.length === 1) out = Buffer.alloc(0)
      }
      const ok = o.exitCode === 0 && !o.error
      if (item.content && ok && !new RegExp(item.content.pattern, 'm').test(out.toString('utf8'))) note = item.content.empty
      else if (out.length === 0) note = ok ? 'empty output' : describeFailure(o)
      const written = note === undefined ? await put(rel, out, true) : undefined
      if (o.truncated && item.maxLines !== undefined) note = `cut at ${item.maxLines} lines (--conntrack-limit)`
      record({
        id: item.id, file: rel, kind: 'command', phase, argv, exitCode: o.exitCode,
        ...(o.signal ? { signal: o.signal } : {}), ...(o.timedOut ? { timedOut: true } : {}),
        stderr: o.stderr.slice(0, 4000), durationMs: o.durationMs,
        written: written !== undefined, bytes: written?.bytes ?? 0, sha256: written?.sha256 ?? null,
        ...(o.truncated ? { truncated: true } : {}), ...(note ? { note } : {}),
      })
    }

    const runHttpItems = async (items: readonly PlanItem[]): Promise<void> => {
      const jobs: HttpJob[] = items.flatMap((i): HttpJob[] => i.kind === 'http' ? [{ id: i.id, kind: 'http', url: `${endpoints[i.endpoint]}${i.path}`, timeoutMs: i.timeoutMs }]
        : i.kind === 'imds' ? [{ id: i.id, kind: 'imds', base: endpoints.imds, paths: i.paths, perInterface: i.perInterface, timeoutMs: i.timeoutMs }] : [])
      if (jobs.length === 0) return
      let results: HttpJobResult[]
      let childFailure: string | undefined
      if (netns === null) results = await runHttpJobs(jobs, options.request)
      else {
        // Loopback endpoints belong to the namespace: the reads run in a child inside it.
        const o = await exec(wrap(httpChildArgv()), { timeoutMs: 15_000, env, input: JSON.stringify(jobs) })
        try { results = JSON.parse(o.stdout.toString('utf8')) as HttpJobResult[] } catch { results = []; childFailure = `the HTTP reader in namespace ${netns} failed: ${describeFailure(o)}` }
      }
      for (const item of items) {
        if (item.kind !== 'http' && item.kind !== 'imds') continue
        const r = results.find((x) => x.id === item.id)
        const url = item.kind === 'http' ? `${endpoints[item.endpoint]}${item.path}` : endpoints.imds
        const body = r?.body !== undefined ? Buffer.from(r.body, 'base64') : undefined
        const written = body && body.length > 0 ? await put(item.file, body, true) : undefined
        const error = r?.error ?? childFailure ?? (body?.length === 0 ? 'empty answer' : undefined)
        record({
          id: item.id, file: item.file, kind: item.kind, phase: 'once', url, exitCode: written ? 0 : 1,
          ...(r?.status !== undefined ? { status: r.status } : {}), ...(item.kind === 'imds' && r ? { requests: r.requests } : {}),
          stderr: error ?? '', durationMs: r?.durationMs ?? 0, written: written !== undefined, bytes: written?.bytes ?? 0, sha256: written?.sha256 ?? null,
          ...(written ? {} : { note: error ?? 'no answer' }),
        })
      }
    }

    const runFileItem = async (item: FileItem): Promise<void> => {
      const started = performance.now()
      const sources: { path: string; rel: string }[] = []
      const base = onNode(item.path, options.hostRoot)
      if (item.glob) {
        const names = (await readdir(base).catch(() => [] as string[])).sort()
        for (const n of names.slice(0, 64)) sources.push({ path: join(base, n), rel: item.file.replace(/\*$/, n.replace(/[^A-Za-z0-9_.@+-]/g, '_')) })
      } else sources.push({ path: base, rel: item.file })
      for (const s of sources) {
        let note: string | undefined
        let data: Buffer | undefined
        try {
          const st = await stat(s.path)
          if (!st.isFile()) note = 'not a regular file'
          else if (st.size > item.maxBytes) note = `larger than ${item.maxBytes} bytes; not copied`
          else data = await readFile(s.path)
        } catch (e) { note = (e as Error).message }
        const written = data ? await put(s.rel, data, true) : undefined
        record({
          id: item.id, file: s.rel, kind: 'file', phase: 'once', path: s.path, exitCode: written ? 0 : 1, stderr: written ? '' : note ?? '',
          durationMs: Math.round(performance.now() - started), written: written !== undefined, bytes: written?.bytes ?? 0, sha256: written?.sha256 ?? null, ...(note ? { note } : {}),
        })
      }
    }

    const runProcessEnv = async (item: ProcessEnvItem): Promise<void> => {
      const started = performance.now()
      let pid: string | undefined
      for (const d of await readdir('/proc').catch(() => [] as string[])) {
        if (!/^\d+$/.test(d)) continue
        const comm = await readFile(`/proc/${d}/comm`, 'utf8').catch(() => '')
        if (comm.trim() === item.comm) { pid = d; break }
      }
      if (!pid) { skip(item, `no ${item.comm} (ipamd) process on this host: aws-node does not run here`); return }
      const keep = new RegExp(item.keep)
      const drop = new RegExp(item.drop, 'i')
      let note: string | undefined
      let lines: string[] = []
      try {
        lines = (await readFile(`/proc/${pid}/environ`)).toString('utf8').split('\0').filter((l) => keep.test(l) && !drop.test(l))
      } catch (e) { note = (e as Error).message }
      const written = lines.length > 0 ? await put(item.file, Buffer.from(lines.join('\n') + '\n'), true) : undefined
      record({
        id: item.id, file: item.file, kind: 'process-env', phase: 'once', path: `/proc/${pid}/environ`, exitCode: note ? 1 : 0, stderr: note ?? '',
        durationMs: Math.round(performance.now() - started), written: written !== undefined, bytes: written?.bytes ?? 0, sha256: written?.sha256 ?? null,
        ...(written ? {} : { note: note ?? 'no CNI settings in its environment' }),
      })
    }

    const concurrency = options.concurrency ?? 4
    const commandItems = runnable.filter((i): i is CommandItem => i.kind === 'command')
    const stateItems = commandItems.filter((i) => i.phase === 'state')
    const statePass = async (phase: RecordPhase) => poolRun(phase === 'after' ? stateItems : commandItems, concurrency, (i) => runCommandItem(i, phase))

    // First pass: everything, the heavy dumps first.
    const stateStart = performance.now()
    await Promise.all([
      statePass('before'),
      runHttpItems(runnable.filter((i) => i.kind === 'http' || i.kind === 'imds')),
      (async () => { for (const i of runnable) if (i.kind === 'files') await runFileItem(i); else if (i.kind === 'process-env') await runProcessEnv(i) })(),
    ])
    const stateDurationMs = Math.round(performance.now() - stateStart)

    let captureRecord: CaptureRecord | undefined
    if (capture && options.capture) {
      const end = Date.now() + Math.max(0, options.capture.durationMs - (performance.now() - stateStart))
      emit({ type: 'capture-wait', remainingMs: Math.max(0, end - Date.now()), elapsedMs: elapsed() })
      captureRecord = await capture.done
      if (redactor) {
        const file = bundlePath(target, captureRecord.file)
        const pcap = await readFile(file)
        const r = redactPcap(pcap, redactor)
        const { rm, writeFile } = await import('node:fs/promises')
        await rm(file)
        if (r.bytes) {
          await writeFile(file, r.bytes, { mode: 0o600, flag: 'wx' })
          redactor.noteFile(captureRecord.file)
          captureRecord = { ...captureRecord, bytes: r.bytes.length, sha256: sha256(r.bytes), redaction: r.note }
        } else captureRecord = { ...captureRecord, bytes: 0, sha256: null, packets: 0, redaction: r.note }
      }
      emit({ type: 'capture-end', capture: captureRecord, elapsedMs: elapsed() })
      // The same state again, so what changed while the capture ran shows (set aside by the loader: after/).
      if (!options.abort?.aborted) {
        emit({ type: 'phase', phase: 'after', elapsedMs: elapsed() })
        await statePass('after')
      }
    }
    options.endCapture?.removeEventListener('abort', onEnd)
    options.abort?.removeEventListener('abort', onAbort)

    const finishedAt = now()
    const manifest: Manifest = {
      natlensVersion: options.natlensVersion, manifestVersion: MANIFEST_VERSION, collector: 'natlens', hostname: shownHost, kernel: os.release(),
      startedAt: startedAt.toISOString(), finishedAt: finishedAt.toISOString(), durationMs: elapsed(), stateDurationMs, root: isRoot, netns,
      options: {
        conntrackLimit,
        capture: options.capture ? { durationMs: options.capture.durationMs, iface: options.capture.iface, filter: options.capture.filter ?? null, snaplen: options.capture.snaplen, maxPackets: options.capture.maxPackets, maxBytes: options.capture.maxBytes } : null,
        redact: redactor !== undefined, redactIps: options.redact?.ips === true,
      },
      commands: records, skipped,
      ...(captureRecord ? { after: { dir: AFTER_DIR, note: 'the same state taken again after the capture, to show drift; natlens reads the state before it (explain this folder on its own to see the later state)' } } : {}),
      ...(captureRecord ? { capture: captureRecord } : {}),
      ...(redactor ? { redaction: redactor.record() } : {}),
      ...(options.abort?.aborted ? { interrupted: 'a second interrupt ended the collection early; some items may be missing' } : {}),
    }
    const manifestText = (m: Manifest) => { const t = JSON.stringify(m, null, 2) + '\n'; return redactor ? redactor.redactText(t) : t }
    if (captureRecord) {
      const after: Manifest = { ...manifest, commands: records.filter((r) => r.phase === 'after').map((r) => ({ ...r, file: r.file.slice(AFTER_DIR.length) })), stateOf: 'after-capture' }
      delete (after as { after?: unknown }).after
      await writeBundleFile(target, `${AFTER_DIR}manifest.json`, manifestText(after))
    }
    await writeBundleFile(target, 'manifest.json', manifestText(manifest))
    emit({ type: 'packing', elapsedMs: elapsed() })
    const { bytes, files } = await finishTarget(target)
    const failed = records.filter((r) => r.exitCode !== 0 && !r.truncated).map((r) => ({ file: r.file, why: r.note ?? r.stderr.split('\n')[0] ?? `exit ${r.exitCode}` }))
    const quoted = /^[A-Za-z0-9_./:@%+=-]+$/.test(target.output) ? target.output : `'${target.output.replace(/'/g, `'\\''`)}'`
    return {
      output: target.output, format: target.format, bytes, files, durationMs: elapsed(), stateDurationMs, netns, root: isRoot,
      collected: records.filter((r) => r.written).length, failed, skipped,
      ...(captureRecord ? { capture: { file: captureRecord.file, packets: captureRecord.packets, bytes: captureRecord.bytes, endedBy: captureRecord.endedBy, durationMs: captureRecord.durationMs, kernelDrops: captureRecord.kernelDrops } } : {}),
      ...(redactor ? { redaction: { ips: redactor.mapsIps ? 'prefix-preserving' : 'kept', counts: { ...redactor.counts } } } : {}),
      ...(manifest.interrupted ? { interrupted: manifest.interrupted } : {}),
      next: [`natlens inspect ${quoted}`, `natlens explain ${quoted} --all-pods`, ...(captureRecord && captureRecord.bytes > 0 && target.format === 'directory' ? [`natlens flows ${quoted}/${captureRecord.file}`] : [])],
    }
  } catch (e) {
    await abandonTarget(target)
    throw e
  }
}
