// natlens collect --netns and the collector script on a small VPC-CNI-like node built in a namespace of this test's
// own (nl-col<pid>-node, removed at the end): strace proves that both only run read-only commands and write only
// inside their output; both bundles read identically and explain the node's SNAT; a capture ends on Ctrl-C or
// SIGTERM and still leaves a complete bundle; --max-packets and --max-size bound it; without tcpdump the state is
// collected with the install hint. Needs root, strace, tcpdump, iptables-legacy and nft; skips with the reason.
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readOnlyViolation } from '../../src/collect/allowlist.js'
import type { Manifest } from '../../src/collect/manifest.js'
import { loadNodeState } from '../../src/sources/load.js'
import { parseFlow } from '../../src/model/flow.js'
import { explain } from '../../src/engine/explain.js'
import { toVerdictJson } from '../../src/render/verdict-json.js'
import { imdsFor } from './fake-endpoints.mjs'
import { BIN, FAKE_ENDPOINTS, TestNamespaces, buildSmallNode, builtCli, haveTool, isRoot, natlens, schema, tmp, udpTraffic } from './support.js'
import { canonicalState } from './state-compare.js'

const missing = !isRoot ? 'needs root (network namespaces)' : !builtCli() ? 'needs `npm run build` (the CLI runs from dist/)'
  : ['strace', 'tcpdump', 'iptables-legacy-restore', 'nft', 'conntrack', 'dash'].find((t) => !haveTool(t))
const skipReason = typeof missing === 'string' && missing.startsWith('needs') ? missing : missing ? `${missing} is not installed` : undefined
if (skipReason) console.warn(`collect netns tests skipped: ${skipReason}`)

const ns = new TestNamespaces()
let node: string
let port: number
let endpointFlags: string[]
let endpointEnv: Record<string, string>

/** The stand-in endpoints inside the namespace: ipamd, kube-proxy and IMDS on its own 127.0.0.1. */
function startEndpointsIn(namespace: string): number {
  const dir = tmp()
  const cfg = join(dir, 'cfg.json')
  const ready = join(dir, 'port')
  writeFileSync(cfg, JSON.stringify({
    imds: imdsFor({ mac: '02:00:0a:00:03:2d', localIpv4: '10.0.3.45', vpcCidrs: ['10.0.0.0/16'] }),
    ipamd: { 'networkutils-env-settings': { AWS_VPC_K8S_CNI_CONNMARK: 128, AWS_VPC_K8S_CNI_EXTERNALSNAT: false, AWS_VPC_K8S_CNI_RANDOMIZESNAT: 2, AWS_VPC_K8S_CNI_VETHPREFIX: 'eni', AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS: null } },
    proxyMode: 'iptables',
  }))
  spawn('ip', ['netns', 'exec', namespace, process.execPath, FAKE_ENDPOINTS, cfg, ready, '300000'], { stdio: 'ignore', detached: false }).unref()
  const deadline = Date.now() + 10_000
  while (!existsSync(ready) || readFileSync(ready, 'utf8') === '') {
    if (Date.now() > deadline) throw new Error('fake endpoints did not start')
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50)
  }
  return Number(readFileSync(ready, 'utf8'))
}

beforeAll(() => {
  if (skipReason) return
  node = ns.create('node')
  buildSmallNode(ns, node)
  port = startEndpointsIn(node)
  const url = `http://127.0.0.1:${port}`
  endpointFlags = ['--imds-url', url, '--ipamd-url', url, '--kube-proxy-url', url]
  endpointEnv = { NATLENS_IMDS_URL: url, NATLENS_IPAMD_URL: url, NATLENS_KUBE_PROXY_URL: url }
}, 60_000)
afterAll(() => ns.cleanup())

interface Traced { execs: string[][]; writes: string[]; mountsOutsideOwnNamespace: string[] }

/** Runs a command under strace -f and lists every execve argv and every path opened or changed for writing. */
function traced(argv: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Traced {
  const log = join(tmp(), 'strace.log')
  execFileSync('strace', ['-f', '-qq', '-s', '4096', '-o', log, '-e', 'trace=execve,openat,open,creat,mkdir,mkdirat,rename,renameat,renameat2,unlink,unlinkat,rmdir,link,linkat,symlink,symlinkat,truncate,chmod,fchmodat,chown,fchownat,lchown,mount,umount2,unshare,fcntl,dup,dup2,dup3', ...argv], { cwd, env, stdio: 'ignore', timeout: 120_000 })
  const execs: string[][] = []
  const writes: string[] = []
  const privateMounts = new Set<string>()
  const mountsOutsideOwnNamespace: string[] = []
  // Directories opened by descriptor (rm -r, mkdir -p work relative to one): pid:fd -> path.
  const dirs = new Map<string, string>()
  const where = (pid: string, dirfd: string | undefined, path: string) =>
    path.startsWith('/') || dirfd === undefined || dirfd === 'AT_FDCWD' ? resolve(cwd, path) : join(dirs.get(`${pid}:${dirfd}`) ?? `<fd ${dirfd} of ${pid}>`, path)
  for (const line of readFileSync(log, 'utf8').split('\n')) {
    const pid = line.split(/\s+/)[0]!
    // A call that failed changed nothing (mkdir of an existing folder, a PATH search).
    if (/ = -1 E[A-Z]+ /.test(line)) continue
    const ex = /execve\("[^"]*", (\[.*?\]), /.exec(line)
    if (ex) { execs.push(JSON.parse(ex[1]!) as string[]); continue }
    if (/unshare\(CLONE_NEWNS/.test(line)) { privateMounts.add(pid); continue }
    const dup = /\b(?:fcntl\((\d+), F_DUPFD(?:_CLOEXEC)?, \d+\)|dup[23]?\((\d+)(?:, \d+)*(?:, [A-Z_]+)?\)) += (\d+)/.exec(line)
    if (dup) { const from = dirs.get(`${pid}:${dup[1] ?? dup[2]}`); if (from) dirs.set(`${pid}:${dup[3]}`, from); continue }
    if (/\b(mount|umount2)\(/.test(line) && !/resumed/.test(line)) { if (!privateMounts.has(pid)) mountsOutsideOwnNamespace.push(line); continue }
    const open = /\b(?:openat|open|creat)\((?:(AT_FDCWD|\d+), )?"([^"]*)"(?:, ([A-Z_|]+))?.*?(?:= (\d+))?$/.exec(line)
    if (open) {
      const path = where(pid, open[1], open[2]!)
      if (/O_DIRECTORY/.test(open[3] ?? '') && open[4]) dirs.set(`${pid}:${open[4]}`, path)
      if (/creat\(/.test(line) || /O_WRONLY|O_RDWR|O_CREAT|O_TRUNC/.test(open[3] ?? '')) writes.push(path)
      continue
    }
    const change = /\b(?:mkdir|mkdirat|rename|renameat2?|unlink|unlinkat|rmdir|link|linkat|symlink|symlinkat|truncate|chmod|fchmodat|chown|fchownat|lchown)\((?:(AT_FDCWD|\d+), )?"([^"]*)"/.exec(line)
    if (change) writes.push(where(pid, change[1], change[2]!))
  }
  return { execs, writes, mountsOutsideOwnNamespace }
}

const DEVICES = new Set(['/dev/null', '/dev/tty'])
/** Tools the sh script uses beside the plan's commands: reading, text, hashing, packing; none changes the system. */
const SCRIPT_HELPERS = new Set(['sh', 'dash', 'date', 'cat', 'id', 'hostname', 'uname', 'mkdir', 'mv', 'rm', 'dirname', 'basename', 'tr', 'sed', 'awk', 'mawk', 'gawk', 'grep', 'head', 'wc', 'cut', 'dd', 'sha256sum', 'du', 'curl', 'wget', 'tar', 'gzip', 'sleep', 'kill'])

describe.skipIf(skipReason !== undefined)('collect --netns and the collector script on a node in a namespace', () => {
  let nodeOut: string
  let scriptOut: string
  let nodeTrace: Traced
  let scriptTrace: Traced

  beforeAll(async () => {
    const dir = tmp()
    nodeOut = join(dir, 'node-bundle')
    nodeTrace = traced([process.execPath, BIN, 'collect', '--netns', node, '-o', nodeOut, '--quiet', ...endpointFlags], dir)
    const script = (await natlens(['collector-script'])).stdout
    writeFileSync(join(dir, 'natlens-collect.sh'), script)
    scriptOut = join(dir, 'script-bundle')
    scriptTrace = traced(['ip', 'netns', 'exec', node, 'dash', join(dir, 'natlens-collect.sh'), '-o', scriptOut, '--quiet'], dir, { ...process.env, ...endpointEnv })
  }, 180_000)

  it('natlens collect ran only read-only commands (every execve, strace -f)', () => {
    const [self, ...all] = nodeTrace.execs
    expect(self!.slice(-2)).toEqual(['--quiet', ...endpointFlags].slice(-2))
    // natlens's own start (bin/run.js) asks git for the checkout's commit, for --version: not the collector.
    const children = all.filter((a) => !(a[0] === 'git' && a[1] === '-C' && a.slice(3).join(' ') === 'rev-parse --short HEAD'))
    expect(children.length).toBeGreaterThanOrEqual(30)
    for (const a of children) expect(readOnlyViolation(a), a.join(' ')).toBeUndefined()
    // ip netns exec runs the command itself after entering the namespace: both argvs are seen and both allowed.
    expect(children.some((a) => a.join(' ') === `ip netns exec ${node} iptables-legacy-save -c`)).toBe(true)
    expect(children.some((a) => a.join(' ') === 'iptables-legacy-save -c')).toBe(true)
  })

  it('natlens collect wrote nothing outside its output (every open for writing, mkdir, rename, unlink, chmod …)', () => {
    const outside = nodeTrace.writes.filter((p) => !p.startsWith(`${nodeOut}/`) && p !== nodeOut && !DEVICES.has(p))
    expect(outside).toEqual([])
    expect(nodeTrace.writes.filter((p) => p.startsWith(nodeOut)).length).toBeGreaterThan(10)
    // The only mounts are ip netns exec's /sys remount in its own private mount namespace.
    expect(nodeTrace.mountsOutsideOwnNamespace).toEqual([])
  })

  it('the collector script ran only the plan\'s read-only commands and plain text tools, and wrote only inside its output', () => {
    for (const a of scriptTrace.execs.slice(1)) {
      const name = a[0]!.split('/').pop()!
      // rm only ever removes the script's own work files inside its output.
      if (SCRIPT_HELPERS.has(name) && !(name === 'rm' && a.slice(1).some((x) => !x.startsWith(scriptOut) && !x.startsWith('-')))) continue
      if (a.join(' ') === 'ip netns identify') continue
      if (name === 'timeout') { expect(readOnlyViolation(['timeout', ...a.slice(1)]), a.join(' ')).toBeUndefined(); continue }
      expect(readOnlyViolation(a), a.join(' ')).toBeUndefined()
    }
    const outside = scriptTrace.writes.filter((p) => !p.startsWith(`${scriptOut}/`) && p !== scriptOut && !DEVICES.has(p))
    expect(outside).toEqual([])
    expect(scriptTrace.mountsOutsideOwnNamespace).toEqual([])
  })

  it('both manifests have the documented shape; the script records the same items as natlens', async () => {
    const validate = await schema('manifest')
    const a = JSON.parse(readFileSync(join(nodeOut, 'manifest.json'), 'utf8')) as Manifest
    const b = JSON.parse(readFileSync(join(scriptOut, 'manifest.json'), 'utf8')) as Manifest
    expect(validate(a), JSON.stringify(validate.errors)).toBe(true)
    expect(validate(b), JSON.stringify(validate.errors)).toBe(true)
    expect(a).toMatchObject({ collector: 'natlens', netns: node, root: true })
    expect(b).toMatchObject({ collector: 'natlens-collector-script', netns: node, root: true })
    const ids = (m: Manifest) => [...m.commands.map((r) => `${r.id} ${r.written}`), ...m.skipped.map((s) => `${s.id} skipped`)].sort()
    expect(ids(b)).toEqual(ids(a))
    for (const r of b.commands.filter((x) => x.kind === 'command')) expect(r.argv).toEqual(a.commands.find((x) => x.id === r.id)!.argv!.slice(4))
    const files = (d: string) => readdirSync(d, { recursive: true }).map(String).filter((f) => statSync(join(d, f)).isFile()).sort()
    expect(files(scriptOut)).toEqual(files(nodeOut))
  })

  it('both bundles read identically, and explain the node as the kernel is set up', async () => {
    const [a, b] = await Promise.all([loadNodeState([nodeOut]), loadNodeState([scriptOut])])
    expect(canonicalState(b)).toEqual(canonicalState(a))
    for (const state of [a, b]) {
      const off = toVerdictJson(explain(state, parseFlow({ src: '10.0.7.201', dst: '203.0.113.10', proto: 'tcp', dport: 443 }) as never), state)
      expect(off).toMatchObject({ snat: true, sourceAfter: '10.0.3.45', egressInterface: 'eth0' })
      const vpc = toVerdictJson(explain(state, parseFlow({ src: '10.0.7.201', dst: '10.0.20.15', proto: 'tcp', dport: 5432 }) as never), state)
      expect(vpc).toMatchObject({ snat: false, sourceAfter: '10.0.7.201' })
      expect(state.settings.get('AWS_VPC_K8S_CNI_EXTERNALSNAT')?.value).toBe('false')
      expect(state.tables.some((t) => t.name === 'natlens_test')).toBe(true)
      expect(state.conntrack.length).toBeGreaterThan(0)
    }
  })
})

describe.skipIf(skipReason !== undefined)('a capture beside the state', () => {
  /** Traffic on the namespace's loopback for the capture to see, bounded by its own count. */
  function traffic(seconds: number, target = '127.0.0.1') {
    return spawn('ip', ['netns', 'exec', node, ...udpTraffic(seconds, target)], { stdio: 'ignore' })
  }

  async function collectAndSignal(args: string[], signal: NodeJS.Signals | null, afterMs: number): Promise<{ code: number | null; ms: number; stderr: string }> {
    const t0 = Date.now()
    const child = spawn(process.execPath, [BIN, 'collect', '--netns', node, ...endpointFlags, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    let timer: NodeJS.Timeout | undefined
    // The clock starts when the capture has started (the CLI's start-up time varies with the machine's load).
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
      if (signal && !timer && /capture: /.test(stderr)) timer = setTimeout(() => child.kill(signal), afterMs)
    })
    child.stdout.resume()
    const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)))
    if (timer) clearTimeout(timer)
    return { code, ms: Date.now() - t0, stderr }
  }

  it('Ctrl-C after 2 s of a 30 s capture: exit 0 within seconds, a complete bundle (manifest, state before and after, a pcap tcpdump -r reads)', async () => {
    const out = join(tmp(), 'bundle')
    const ping = traffic(8)
    const r = await collectAndSignal(['--capture', '30s', '--iface', 'lo', '-o', out], 'SIGINT', 2000)
    ping.kill()
    expect(r.code, r.stderr).toBe(0)
    expect(r.ms).toBeLessThan(15_000)
    const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as Manifest
    expect(m.capture).toMatchObject({ endedBy: 'SIGINT', file: 'capture.pcap', iface: 'lo' })
    expect(m.capture!.packets).toBeGreaterThan(0)
    expect(m.capture!.durationMs).toBeLessThan(10_000)
    expect(m.after).toMatchObject({ dir: 'after/' })
    for (const f of ['ip-rule.txt', 'iptables-legacy-save.txt', 'conntrack.txt', 'after/ip-rule.txt', 'after/iptables-legacy-save.txt', 'after/manifest.json']) expect(existsSync(join(out, f)), f).toBe(true)
    const read = execFileSync('tcpdump', ['-n', '-r', join(out, 'capture.pcap')], { stdio: ['ignore', 'pipe', 'pipe'] }).toString()
    expect(read.split('\n').filter(Boolean).length).toBe(m.capture!.packets)
    expect(statSync(join(out, 'capture.pcap')).size).toBe(m.capture!.bytes)
    const validate = await schema('manifest')
    expect(validate(m), JSON.stringify(validate.errors)).toBe(true)
    const state = await loadNodeState([out])
    expect(state.captures.map((c) => c.artifact)).toEqual(['capture.pcap'])
    expect(state.artifacts.filter((a) => a.artifact.startsWith('after/')).every((a) => !a.used)).toBe(true)
    expect(state.tables.filter((t) => t.name === 'nat').length).toBe(1)
  }, 60_000)

  it('SIGTERM into a .tar.gz: the same, packed', async () => {
    const d = tmp()
    const out = join(d, 'b.tar.gz')
    const ping = traffic(6)
    const r = await collectAndSignal(['--capture', '30s', '--iface', 'lo', '-o', out], 'SIGTERM', 1500)
    ping.kill()
    expect(r.code, r.stderr).toBe(0)
    expect(readdirSync(d)).toEqual(['b.tar.gz'])
    const state = await loadNodeState([out])
    expect(state.captures).toHaveLength(1)
    expect((state.manifest as unknown as Manifest).capture?.endedBy).toBe('SIGTERM')
  }, 60_000)

  it('--max-packets and --max-size end it early, at a packet boundary', async () => {
    const ping = traffic(10)
    const a = join(tmp(), 'a')
    expect((await collectAndSignal(['--capture', '20s', '--iface', 'lo', '--max-packets', '6', '-o', a, '--quiet'], null, 0)).code).toBe(0)
    const ma = JSON.parse(readFileSync(join(a, 'manifest.json'), 'utf8')) as Manifest
    expect(ma.capture).toMatchObject({ endedBy: 'max-packets', packets: 6 })
    const b = join(tmp(), 'b')
    expect((await collectAndSignal(['--capture', '20s', '--iface', 'lo', '--max-size', '1k', '-o', b, '--quiet'], null, 0)).code).toBe(0)
    ping.kill()
    const mb = JSON.parse(readFileSync(join(b, 'manifest.json'), 'utf8')) as Manifest
    expect(mb.capture).toMatchObject({ endedBy: 'max-size' })
    expect(mb.capture!.bytes).toBeLessThanOrEqual(1024)
    expect(statSync(join(b, 'capture.pcap')).size).toBe(mb.capture!.bytes)
    execFileSync('tcpdump', ['-n', '-r', join(b, 'capture.pcap')], { stdio: 'ignore' })
  }, 90_000)

  it('a filter tcpdump cannot compile: the capture record says why, and the state is still collected', async () => {
    const out = join(tmp(), 'b')
    const r = await natlens(['collect', '--netns', node, ...endpointFlags, '--capture', '10s', '--iface', 'lo', '--filter', 'host and port', '-o', out, '--quiet'])
    expect(r.code, r.stderr).toBe(0)
    const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as Manifest
    expect(m.capture).toMatchObject({ endedBy: 'error', packets: 0 })
    expect(m.capture!.stderr).toMatch(/syntax error/)
    expect(m.commands.find((c) => c.id === 'ip-rule')?.written).toBe(true)
  }, 60_000)

  it('the collector script captures too: by duration, and Ctrl-C ends it early with a complete bundle', async () => {
    const dir = tmp()
    writeFileSync(join(dir, 's.sh'), (await natlens(['collector-script'])).stdout)
    const run = (out: string, seconds: number, signalAfterMs?: number) => new Promise<number | null>((res) => {
      const child = spawn('ip', ['netns', 'exec', node, 'dash', join(dir, 's.sh'), '-o', out, '--capture', String(seconds), '--iface', 'lo'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...endpointEnv } })
      let err = ''
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString()
        if (signalAfterMs !== undefined && /capture started/.test(err)) { setTimeout(() => child.kill('SIGINT'), signalAfterMs); signalAfterMs = undefined }
      })
      child.on('exit', (c) => res(c))
    })
    const ping = traffic(6)
    const a = join(dir, 'a')
    expect(await run(a, 2)).toBe(0)
    const b = join(dir, 'b')
    const t0 = Date.now()
    expect(await run(b, 30, 1500)).toBe(0)
    ping.kill()
    expect(Date.now() - t0).toBeLessThan(20_000)
    const validate = await schema('manifest')
    for (const [out, endedBy] of [[a, 'duration'], [b, 'SIGINT']] as const) {
      const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as Manifest
      expect(validate(m), JSON.stringify(validate.errors)).toBe(true)
      expect(m.capture).toMatchObject({ endedBy, file: 'capture.pcap' })
      expect(m.after).toMatchObject({ dir: 'after/' })
      expect(existsSync(join(out, 'after', 'ip-rule.txt'))).toBe(true)
      const packets = execFileSync('tcpdump', ['-n', '-r', join(out, 'capture.pcap')], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().split('\n').filter(Boolean).length
      expect(packets).toBe(m.capture!.packets)
      const state = await loadNodeState([out])
      expect(state.captures).toHaveLength(1)
      expect(state.artifacts.filter((x) => x.artifact.startsWith('after/')).every((x) => !x.used)).toBe(true)
    }
  }, 90_000)

  it('without tcpdump on the node: says so and how to install it, and collects the state', async () => {
    const out = join(tmp(), 'b')
    const r = await natlens(['collect', '--netns', node, ...endpointFlags, '--capture', '10s', '-o', out], { env: { PATH: '/usr/sbin:/sbin' } })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/tcpdump is not installed on this node .*dnf install -y tcpdump/)
    const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as Manifest
    expect(m.capture).toBeUndefined()
    expect(m.skipped.find((s) => s.id === 'capture')?.reason).toMatch(/Amazon Linux 2023 images ship without it/)
    expect(m.commands.find((c) => c.id === 'ip-rule')?.written).toBe(true)
  }, 60_000)

  it('--redact-ips: the capture\'s addresses are mapped the way the text files are', async () => {
    const out = join(tmp(), 'b')
    const ping = traffic(4, '10.0.3.45')
    const r = await collectAndSignal(['--capture', '2s', '--iface', 'lo', '--redact-ips', '-o', out, '--quiet'], null, 0)
    ping.kill()
    expect(r.code, r.stderr).toBe(0)
    const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as Manifest
    expect(m.capture?.redaction).toMatch(/IP addresses mapped/)
    const addr = (JSON.parse(readFileSync(join(out, 'ip-d-j-addr.json'), 'utf8')) as { ifname: string; addr_info: { local: string }[] }[]).find((i) => i.ifname === 'eth0')!.addr_info[0]!.local
    expect(addr).not.toBe('10.0.3.45')
    const seen = execFileSync('tcpdump', ['-n', '-r', join(out, 'capture.pcap')], { stdio: ['ignore', 'pipe', 'ignore'] }).toString()
    expect(seen).not.toContain('10.0.3.45')
    expect(seen).toContain(addr)
  }, 60_000)
})
