// Shared pieces of the collector tests: temp dirs, the JSON Schemas, the built CLI, namespaces of the tests' own
// (nl-col<pid>-*, removed at the end), and reading a bundle back.
import { execFile, execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { promisify } from 'node:util'
import AjvModule from 'ajv'
import { afterAll } from 'vitest'
import { REPO } from '../helpers.js'

export const BIN = join(REPO, 'bin', 'run.js')
export const DIST = join(REPO, 'dist')
export const FAKE_ENDPOINTS = join(REPO, 'test', 'collect', 'fake-endpoints.mjs')
const run = promisify(execFile)

const made: string[] = []
// The bundles a test file made go when the file is done (this module is imported while the file is collected, so
// the hook belongs to the file).
afterAll(() => { for (const d of made.splice(0)) try { rmSync(d, { recursive: true, force: true }) } catch { /* best effort */ } })

export function tmp(prefix = 'natlens-collect-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix))
  made.push(d)
  return d
}

export async function schema(name: 'manifest' | 'collect'): Promise<((d: unknown) => boolean) & { errors?: unknown }> {
  const Ajv = (AjvModule as unknown as { default: typeof AjvModule }).default ?? AjvModule
  const ajv = new (Ajv as unknown as new (o: object) => { compile: (s: object) => ((d: unknown) => boolean) & { errors?: unknown } })({ allErrors: true, strict: false })
  return ajv.compile(JSON.parse(readFileSync(join(REPO, 'src', 'collect', `${name}.schema.json`), 'utf8')))
}

/** Runs the built CLI (`npm run build` first); never throws on a non-zero exit. */
export async function natlens(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { cwd: options.cwd ?? REPO, maxBuffer: 64 << 20, timeout: options.timeoutMs ?? 120_000, env: { ...process.env, NO_COLOR: '1', ...options.env } })
    return { code: 0, stdout, stderr }
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string }
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout, stderr: err.stderr }
  }
}

/** Every file of a directory bundle, relative path → bytes. */
export function bundleFiles(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>()
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (e.isDirectory()) walk(p)
      else out.set(relative(dir, p), readFileSync(p))
    }
  }
  walk(dir)
  return out
}

export function modesOf(dir: string): { path: string; mode: number; dir: boolean }[] {
  const out: { path: string; mode: number; dir: boolean }[] = [{ path: '.', mode: statSync(dir).mode & 0o777, dir: true }]
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      out.push({ path: relative(dir, p), mode: statSync(p).mode & 0o777, dir: e.isDirectory() })
      if (e.isDirectory()) walk(p)
    }
  }
  walk(dir)
  return out
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex')
}

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0

export function haveTool(cmd: string): boolean {
  try { execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }); return true } catch { return false }
}

export function builtCli(): boolean {
  return existsSync(join(DIST, 'commands', 'collect.js')) && existsSync(join(DIST, 'collect', 'http-child.js'))
}

/**
 * Namespaces of the collector tests: `nl-col<pid>-<role>`, created and deleted here only (the lab's own cleanup
 * never matches them, and these helpers never touch another name).
 */
export class TestNamespaces {
  private readonly names = new Set<string>()
  name(role: string): string { return `nl-col${process.pid}-${role}` }
  create(role: string): string {
    const ns = this.name(role)
    execFileSync('ip', ['netns', 'add', ns], { timeout: 5000 })
    this.names.add(ns)
    this.sh(ns, 'ip link set lo up')
    return ns
  }
  /** A command line inside the namespace (test setup only: addresses, routes, rules, iptables-restore). */
  sh(ns: string, script: string, input?: string): string {
    if (!this.names.has(ns)) throw new Error(`not a namespace of this test: ${ns}`)
    return execFileSync('ip', ['netns', 'exec', ns, 'sh', '-c', script], { timeout: 30_000, ...(input !== undefined ? { input } : {}) }).toString()
  }
  cleanup(): void {
    for (const ns of this.names) {
      try {
        for (const pid of execFileSync('ip', ['netns', 'pids', ns], { timeout: 5000 }).toString().split(/\s+/).filter(Boolean).map(Number)) {
          if (pid > 1 && pid !== process.pid) try { process.kill(pid, 'SIGKILL') } catch { /* gone */ }
        }
      } catch { /* gone */ }
      try { execFileSync('ip', ['netns', 'del', ns], { timeout: 5000 }) } catch { /* gone */ }
    }
    this.names.clear()
  }
}

/** A small VPC-CNI-like node in a namespace: ENIs as veths, a pod route and rules, the CNI's SNAT rules (legacy). */
export const SMALL_NODE_RULES = `*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i eth0 -m comment --comment "AWS, primary ENI" -m addrtype --dst-type LOCAL --limit-iface-in -j CONNMARK --set-xmark 0x80/0x80
-A PREROUTING -i eni+ -m comment --comment "AWS, primary ENI" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:AWS-CONNMARK-CHAIN-0 - [0:0]
:AWS-SNAT-CHAIN-0 - [0:0]
-A PREROUTING -i eni+ -m comment --comment "AWS, outbound connections" -j AWS-CONNMARK-CHAIN-0
-A POSTROUTING -m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-0
-A AWS-CONNMARK-CHAIN-0 -d 10.0.0.0/16 -m comment --comment "AWS CONNMARK CHAIN, VPC CIDR" -j RETURN
-A AWS-CONNMARK-CHAIN-0 -m comment --comment "AWS, CONNMARK" -j CONNMARK --set-xmark 0x80/0x80
-A AWS-SNAT-CHAIN-0 -d 10.0.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN
-A AWS-SNAT-CHAIN-0 ! -o vlan+ -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL -j SNAT --to-source 10.0.3.45 --random-fully
COMMIT
`

/** Builds the small node in `ns` (no traffic leaves it: the veth peers stay inside the same namespace). */
export function buildSmallNode(n: TestNamespaces, ns: string): void {
  n.sh(ns, [
    'ip link add eth0 address 02:00:0a:00:03:2d type veth peer name leg0 address 02:00:0a:00:00:01',
    'ip link add eni212428e8e5c address 02:56:c0:fc:7c:41 type veth peer name podeth0',
    'for l in eth0 leg0 eni212428e8e5c podeth0; do ip link set $l up; done',
    'ip addr add 10.0.3.45/20 dev eth0',
    'ip route add default via 10.0.0.1 dev eth0 onlink',
    'ip route add 10.0.7.201 dev eni212428e8e5c scope link',
    'ip rule add pref 512 to 10.0.7.201 lookup main',
    'ip rule add pref 1024 fwmark 0x80/0x80 lookup main',
    'sysctl -q -w net.ipv4.ip_forward=1 net.ipv4.conf.eth0.rp_filter=2',
  ].join(' && '))
  n.sh(ns, 'iptables-legacy-restore', SMALL_NODE_RULES)
  n.sh(ns, 'nft -f -', 'table ip natlens_test {\n  chain c {\n    type filter hook output priority 0; policy accept;\n    counter\n  }\n}\n')
  // Some conntrack entries: a few datagrams on the namespace's own loopback.
  execFileSync('ip', ['netns', 'exec', ns, ...udpTraffic(1, '127.0.0.1')], { timeout: 10_000 })
}

/**
 * A command that sends UDP datagrams to `target`:9 every 100 ms for `seconds` (inside a namespace of the test:
 * the traffic stays on its loopback). Node is used because ping is not everywhere.
 */
export function udpTraffic(seconds: number, target: string): string[] {
  const js = `const s=require('dgram').createSocket('udp4');let n=0;const t=setInterval(()=>{s.send('natlens-test',9,${JSON.stringify(target)});if(++n>=${seconds * 10}){clearInterval(t);setTimeout(()=>process.exit(0),50)}},100)`
  return [process.execPath, '-e', js]
}
