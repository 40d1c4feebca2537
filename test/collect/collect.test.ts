// natlens collect as a library, on this machine's own (host) network state, which it only reads; HTTP goes to a
// local stand-in for ipamd, kube-proxy and IMDS (test/collect/fake-endpoints.mjs), never to 169.254.169.254.
// What is checked: the manifest records every item (argv, exit code, stderr, duration, size, sha256) or says why
// it was skipped; failures never stop the collection; files and directories are 0600/0700; the bundle (directory
// or .tar.gz) loads with the loader; IMDSv2 is used properly and quickly given up; the state taken after a capture
// is set aside by the loader.
import { execFileSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync, cpSync } from 'node:fs'
import { createGunzip } from 'node:zlib'
import { createReadStream } from 'node:fs'
import { join } from 'node:path'
import tarStream from 'tar-stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { collect, type CollectEvent } from '../../src/collect/collect.js'
import { execCommand, type Exec } from '../../src/collect/exec.js'
import { readOnlyViolation } from '../../src/collect/allowlist.js'
import { collectionPlan } from '../../src/collect/plan.js'
import type { Manifest } from '../../src/collect/manifest.js'
import { loadNodeState } from '../../src/sources/load.js'
import { NatlensError } from '../../src/errors.js'
import { FAKE_TOKEN, imdsFor, startFakeEndpoints } from './fake-endpoints.mjs'
import { bundleFiles, isRoot, modesOf, schema, sha256, tmp } from './support.js'
import { EXAMPLES, REPO } from '../helpers.js'

type Fake = Awaited<ReturnType<typeof startFakeEndpoints>>
const NETWORKUTILS = { AWS_VPC_K8S_CNI_CONNMARK: 128, AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS: null, AWS_VPC_K8S_CNI_EXTERNALSNAT: false, AWS_VPC_K8S_CNI_RANDOMIZESNAT: 2, AWS_VPC_K8S_CNI_VETHPREFIX: 'eni' }
const IMDS = imdsFor({ mac: '02:56:c0:fc:7c:41', localIpv4: '10.0.3.45', vpcCidrs: ['10.0.0.0/16', '100.64.0.0/16'] })

let fake: Fake
let base: { natlensVersion: string; endpoints: { imds: string; ipamd: string; kubeProxy: string }; isRoot: boolean }
beforeAll(async () => {
  fake = await startFakeEndpoints({ imds: IMDS, ipamd: { 'networkutils-env-settings': NETWORKUTILS }, proxyMode: 'iptables' })
  base = { natlensVersion: '0.0.0-test', endpoints: { imds: fake.url, ipamd: fake.url, kubeProxy: fake.url }, isRoot }
})
afterAll(async () => { await fake.close() })

function manifestOf(dir: string): Manifest {
  return JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest
}

describe('a collection of this machine\'s state (read-only), into a directory', () => {
  let dir: string
  let events: CollectEvent[]
  let argvs: (readonly string[])[]
  beforeAll(async () => {
    dir = join(tmp(), 'bundle')
    events = []
    argvs = []
    const spy: Exec = (argv, o) => { argvs.push(argv); return execCommand(argv, o) }
    await collect({ ...base, output: dir, exec: spy, onProgress: (e) => events.push(e) })
  }, 120_000)

  it('writes a manifest with the natlens version, hostname, kernel, times, and every item recorded or skipped with a reason', async () => {
    const m = manifestOf(dir)
    const validate = await schema('manifest')
    expect(validate(m), JSON.stringify(validate.errors)).toBe(true)
    expect(m).toMatchObject({ natlensVersion: '0.0.0-test', collector: 'natlens', hostname: execFileSync('hostname').toString().trim(), kernel: execFileSync('uname', ['-r']).toString().trim(), netns: null, root: isRoot })
    expect(Date.parse(m.finishedAt)).toBeGreaterThanOrEqual(Date.parse(m.startedAt))
    const plan = collectionPlan({ conntrackLimit: 100_000 })
    for (const item of plan) {
      const seen = m.commands.some((r) => r.id === item.id) || m.skipped.some((s) => s.id === item.id)
      expect(seen, `${item.id} is neither recorded nor skipped`).toBe(true)
    }
    for (const s of m.skipped) expect(s.reason.length).toBeGreaterThan(10)
    const ipRule = m.commands.find((r) => r.id === 'ip-rule')!
    expect(ipRule).toMatchObject({ argv: ['ip', 'rule'], exitCode: 0, stderr: '', written: true, phase: 'before' })
    expect(ipRule.durationMs).toBeGreaterThanOrEqual(0)
  })

  it('records the true size and sha256 of every file it wrote, and no file it did not record', () => {
    const m = manifestOf(dir)
    const files = bundleFiles(dir)
    const written = m.commands.filter((r) => r.written)
    expect(written.length).toBeGreaterThanOrEqual(14)
    for (const r of written) {
      const b = files.get(r.file)
      expect(b, r.file).toBeDefined()
      expect(r.bytes).toBe(b!.length)
      expect(r.sha256).toBe(sha256(b!))
    }
    expect([...files.keys()].sort()).toEqual([...written.map((r) => r.file), 'manifest.json'].sort())
  })

  it('the files are 0600 and the directories 0700', () => {
    for (const e of modesOf(dir)) expect(e.mode, e.path).toBe(e.dir ? 0o700 : 0o600)
  })

  it('ran only allowlisted read-only commands', () => {
    expect(argvs.length).toBeGreaterThanOrEqual(15)
    for (const a of argvs) expect(readOnlyViolation(a), a.join(' ')).toBeUndefined()
  })

  it('asked IMDS the v2 way (a token first, then every GET with it) and never wrote the token', () => {
    const imds = fake.requests.filter((r) => r.url?.startsWith('/latest/'))
    expect(imds[0]).toMatchObject({ method: 'PUT', url: '/latest/api/token' })
    expect(imds[0]!.headers['x-aws-ec2-metadata-token-ttl-seconds']).toBe('60')
    for (const r of imds.slice(1)) { expect(r.method).toBe('GET'); expect(r.headers['x-aws-ec2-metadata-token']).toBe(FAKE_TOKEN) }
    for (const [name, b] of bundleFiles(dir)) expect(b.toString('latin1').includes(FAKE_TOKEN), name).toBe(false)
    expect(readFileSync(join(dir, 'imds.txt'), 'utf8')).toContain('network/interfaces/macs/02:56:c0:fc:7c:41/vpc-ipv4-cidr-blocks: 10.0.0.0/16\n100.64.0.0/16\n')
  })

  it('records an endpoint that does not answer a path as a failure and goes on', () => {
    const m = manifestOf(dir)
    expect(m.commands.find((r) => r.id === 'ipamd-enis')).toMatchObject({ kind: 'http', exitCode: 1, status: 404, written: false, stderr: 'HTTP 404' })
    expect(m.commands.find((r) => r.id === 'kube-proxy-mode')).toMatchObject({ written: true, exitCode: 0 })
  })

  it('loads with the loader: the manifest, the CNI settings from ipamd, the VPC CIDRs from IMDS, the interfaces', async () => {
    const state = await loadNodeState([dir])
    expect(state.manifest?.['natlensVersion']).toBe('0.0.0-test')
    expect(state.settings.get('AWS_VPC_K8S_CNI_RANDOMIZESNAT')?.value).toBe('prng')
    expect(state.derived.vpcCidrs.map((c) => c.source)).toContain('imds')
    expect(state.interfaces.some((i) => i.name === 'lo')).toBe(true)
    expect(state.artifacts.find((a) => a.artifact === 'ipamd/networkutils-env-settings.json')).toMatchObject({ kind: 'networkutils-env', used: true })
    // Text and JSON renderings of the same listing are the same source, not a conflict.
    expect(state.diagnostics.filter((d) => d.code === 'bundle.duplicate-source')).toEqual([])
  })

  it('told its progress: a start, one line per item or skip', () => {
    expect(events[0]).toMatchObject({ type: 'start', output: dir })
    const m = manifestOf(dir)
    expect(events.filter((e) => e.type === 'item').length).toBe(m.commands.length)
    expect(events.filter((e) => e.type === 'skip').length).toBe(m.skipped.length)
  })
})

describe('failures, bounds and choices', () => {
  it('a failing, a missing and a timed-out command never stop the collection; each says what happened', async () => {
    const dir = join(tmp(), 'b')
    const fakeExec: Exec = async (argv, o) => {
      const line = argv.join(' ')
      if (line === 'ip rule') return { argv, stdout: Buffer.alloc(0), stderr: 'RTNETLINK answers: Operation not permitted\n', exitCode: 2, timedOut: false, truncated: false, durationMs: 3 }
      if (line === 'ip -6 rule') return { argv, stdout: Buffer.alloc(0), stderr: '', exitCode: null, timedOut: true, truncated: false, durationMs: o.timeoutMs }
      if (line === 'sysctl -a') return { argv, stdout: Buffer.alloc(0), stderr: '', exitCode: null, timedOut: false, truncated: false, durationMs: 1, error: 'spawn sysctl ENOENT' }
      return execCommand(argv, o)
    }
    await collect({ ...base, output: dir, exec: fakeExec })
    const m = manifestOf(dir)
    expect(m.commands.find((r) => r.id === 'ip-rule')).toMatchObject({ exitCode: 2, written: false, stderr: 'RTNETLINK answers: Operation not permitted\n', note: 'exit 2: RTNETLINK answers: Operation not permitted' })
    expect(m.commands.find((r) => r.id === 'ip-6-rule')).toMatchObject({ exitCode: null, timedOut: true, written: false, note: 'timed out' })
    expect(m.commands.find((r) => r.id === 'sysctl')).toMatchObject({ written: false, note: 'spawn sysctl ENOENT' })
    expect(m.commands.find((r) => r.id === 'ip-j-rule')).toMatchObject({ exitCode: 0, written: true })
    expect(existsSync(join(dir, 'ip-rule.txt'))).toBe(false)
  })

  it('a second Ctrl-C (abort) ends the running commands and still writes a manifest that says so', async () => {
    const dir = join(tmp(), 'b')
    const abort = new AbortController()
    const hanging: Exec = async (argv, o) => {
      if (argv.join(' ') !== 'sysctl -a') return execCommand(argv, o)
      // Stands for a command that would take long: it ends only when the collection is aborted.
      await new Promise<void>((res) => { if (o.signal?.aborted) res(); o.signal?.addEventListener('abort', () => res(), { once: true }) })
      return { argv, stdout: Buffer.alloc(0), stderr: '', exitCode: null, signal: 'SIGTERM', timedOut: false, truncated: false, durationMs: 1 }
    }
    const s = await collect({ ...base, output: dir, exec: hanging, abort: abort.signal, onProgress: (e) => { if (e.type === 'item' && e.record.id === 'ip-rule') abort.abort('SIGINT') } })
    expect(s.interrupted).toMatch(/second interrupt/)
    const m = manifestOf(dir)
    expect(m.interrupted).toMatch(/some items may be missing/)
    // sysctl was either ended while it ran, or never started; nothing hangs either way.
    const sysctl = m.commands.find((r) => r.id === 'sysctl')
    if (sysctl) expect(sysctl).toMatchObject({ written: false, signal: 'SIGTERM' })
    else expect(m.skipped.find((x) => x.id === 'sysctl')?.reason).toBe('not started: the collection was interrupted')
    expect(m.commands.find((r) => r.id === 'ip-rule')).toMatchObject({ written: true })
  })

  it('stops reading at --conntrack-limit lines and marks the file truncated', async () => {
    // sysctl -a prints hundreds of lines: read 5 and stop.
    const o = await execCommand(['sysctl', '-a'], { timeoutMs: 10_000, maxLines: 5, env: { PATH: process.env['PATH']!, LC_ALL: 'C' } })
    expect(o.truncated).toBe(true)
    expect(o.stdout.toString().split('\n').filter(Boolean)).toHaveLength(5)
    const dir = join(tmp(), 'b')
    const fakeExec: Exec = async (argv, opts) => (argv.join(' ') === 'conntrack -L'
      ? { argv, stdout: Buffer.from('tcp      6 118 TIME_WAIT src=10.0.9.88 dst=203.0.113.10 sport=41003 dport=8080 src=203.0.113.10 dst=10.0.3.45 sport=8080 dport=13793 [ASSURED] mark=128 use=1\n'.repeat(opts.maxLines!)), stderr: '', exitCode: null, timedOut: false, truncated: true, durationMs: 5 }
      : execCommand(argv, opts))
    await collect({ ...base, output: dir, exec: fakeExec, conntrackLimit: 3, isRoot: true })
    const r = manifestOf(dir).commands.find((x) => x.id === 'conntrack')!
    expect(r).toMatchObject({ truncated: true, written: true, note: 'cut at 3 lines (--conntrack-limit)' })
    expect(readFileSync(join(dir, 'conntrack.txt'), 'utf8').trim().split('\n')).toHaveLength(3)
    expect((await loadNodeState([dir])).conntrack).toHaveLength(3)
  })

  it('without root: says which items need root and collects the rest', async () => {
    const dir = join(tmp(), 'b')
    await collect({ ...base, output: dir, isRoot: false })
    const m = manifestOf(dir)
    expect(m.root).toBe(false)
    const needRoot = m.skipped.filter((s) => /needs root/.test(s.reason)).map((s) => s.id)
    expect(needRoot).toEqual(expect.arrayContaining(['iptables-nft-save', 'nft-list-ruleset', 'conntrack', 'conntrack-S']))
    expect(m.commands.filter((r) => r.written).map((r) => r.id)).toEqual(expect.arrayContaining(['ip-rule', 'ip-d-j-addr', 'ip-route-all', 'sysctl', 'imds']))
    expect(m.commands.some((r) => r.id.startsWith('iptables') || r.id.startsWith('conntrack'))).toBe(false)
  })

  it('gives up on IMDS within about a second when nothing answers, and goes on', async () => {
    const hole = await startFakeEndpoints({ blackhole: true })
    try {
      const dir = join(tmp(), 'b')
      const t0 = Date.now()
      await collect({ ...base, endpoints: { ...base.endpoints, imds: hole.url }, output: dir })
      const r = manifestOf(dir).commands.find((x) => x.id === 'imds')!
      expect(r).toMatchObject({ exitCode: 1, written: false, requests: 1 })
      expect(r.stderr).toMatch(/no IMDSv2 token .*no answer within 1000 ms/)
      expect(r.durationMs).toBeLessThan(1500)
      expect(Date.now() - t0).toBeLessThan(10_000)
    } finally { await hole.close() }
  })

  it('off EC2 (the firmware says so) IMDS is not asked at all', async () => {
    const dir = join(tmp(), 'b')
    const before = fake.requests.length
    await collect({ ...base, endpoints: { ipamd: fake.url, kubeProxy: fake.url }, output: dir, ec2: () => ({ ec2: false, why: 'DMI sys_vendor is "QEMU", not Amazon EC2' }) })
    expect(manifestOf(dir).skipped.find((s) => s.id === 'imds')?.reason).toBe('not an EC2 instance (DMI sys_vendor is "QEMU", not Amazon EC2); IMDS was not asked')
    expect(fake.requests.slice(before).some((r) => r.url?.startsWith('/latest/'))).toBe(false)
  })

  it('--skip leaves items out, by id or file name; an unknown name is a usage error', async () => {
    const dir = join(tmp(), 'b')
    await collect({ ...base, output: dir, skip: ['imds', 'conntrack6.txt'] })
    const m = manifestOf(dir)
    expect(m.skipped.filter((s) => s.reason === 'left out with --skip').map((s) => s.id).sort()).toEqual(['conntrack6', 'imds'])
    await expect(collect({ ...base, output: join(tmp(), 'c'), skip: ['imsd'] })).rejects.toMatchObject({ code: 'usage.skip', exit: 2 })
  })

  it('never overwrites: an existing output, or the staging folder of a killed run, is refused with exit code 2', async () => {
    const d = tmp()
    writeFileSync(join(d, 'x.tar.gz'), 'old')
    await expect(collect({ ...base, output: join(d, 'x.tar.gz') })).rejects.toBeInstanceOf(NatlensError)
    mkdirSync(join(d, 'y.tar.gz.partial'))
    await expect(collect({ ...base, output: join(d, 'y.tar.gz') })).rejects.toMatchObject({ code: 'collect.partial-exists', exit: 2 })
    mkdirSync(join(d, 'ro'), { mode: 0o500 })
    if (isRoot) chmodSync(join(d, 'ro'), 0o500)
    expect(readFileSync(join(d, 'x.tar.gz'), 'utf8')).toBe('old')
  })

  it('refuses endpoints off the node and namespaces that do not exist', async () => {
    await expect(collect({ ...base, endpoints: { ...base.endpoints, imds: 'http://10.1.2.3' }, output: join(tmp(), 'x') })).rejects.toMatchObject({ code: 'collect.endpoint', exit: 2 })
    if (isRoot) await expect(collect({ ...base, netns: 'nl-col-no-such-ns', output: join(tmp(), 'x') })).rejects.toMatchObject({ code: 'collect.netns-missing', exit: 2 })
    await expect(collect({ ...base, netns: 'a/../b', output: join(tmp(), 'x') })).rejects.toMatchObject({ code: 'collect.netns', exit: 2 })
  })
})

async function tarEntries(file: string): Promise<{ name: string; mode: number; type: string; body: Buffer }[]> {
  const out: { name: string; mode: number; type: string; body: Buffer }[] = []
  const extract = tarStream.extract()
  extract.on('entry', (h, stream, next) => {
    const chunks: Buffer[] = []
    stream.on('data', (c: unknown) => { chunks.push(c as Buffer) })
    stream.on('end', () => { out.push({ name: h.name, mode: h.mode ?? 0, type: h.type ?? 'file', body: Buffer.concat(chunks) }); next() })
  })
  await new Promise<void>((res, rej) => { extract.on('finish', res); extract.on('error', rej); createReadStream(file).pipe(createGunzip()).pipe(extract) })
  return out
}

describe('a .tar.gz bundle', () => {
  it('holds one top folder, 0600 files and 0700 folders, is itself 0600, leaves no staging folder, and loads', async () => {
    const d = tmp()
    const out = join(d, 'node.tar.gz')
    const s = await collect({ ...base, output: out, skip: ['conntrack', 'conntrack6'] })
    expect(s).toMatchObject({ output: out, format: 'tar.gz' })
    expect(readdirSync(d)).toEqual(['node.tar.gz'])
    expect(modesOf(d).find((e) => e.path === 'node.tar.gz')!.mode).toBe(0o600)
    const entries = await tarEntries(out)
    for (const e of entries) {
      expect(e.name.startsWith('node/'), e.name).toBe(true)
      expect(e.mode, e.name).toBe(e.type === 'directory' ? 0o700 : 0o600)
    }
    const m = JSON.parse(entries.find((e) => e.name === 'node/manifest.json')!.body.toString()) as Manifest
    for (const r of m.commands.filter((x) => x.written)) expect(sha256(entries.find((e) => e.name === `node/${r.file}`)!.body)).toBe(r.sha256)
    const state = await loadNodeState([out])
    expect(state.manifest).toBeDefined()
    expect(state.routingRules.length).toBeGreaterThan(0)
    expect(s.bytes).toBe(readFileSync(out).length)
    expect(s.next[0]).toBe(`natlens inspect ${out}`)
  })

  it('-o naming an existing directory puts natlens-<host>-<time>.tar.gz in it', async () => {
    const d = tmp()
    const s = await collect({ ...base, output: d, skip: ['conntrack', 'conntrack6', 'imds'], hostname: 'ip-10-0-3-45.ec2.internal', now: () => new Date('2025-03-04T05:06:07.890Z') })
    expect(s.output).toBe(join(d, 'natlens-ip-10-0-3-45.ec2.internal-20250304T050607Z.tar.gz'))
    expect(readdirSync(d)).toEqual(['natlens-ip-10-0-3-45.ec2.internal-20250304T050607Z.tar.gz'])
  })
})

describe('redaction of a collected bundle', () => {
  it('--redact-ips: no MAC, hostname or non-reserved address of this machine is left, the manifest says what was done, and the bundle still loads', async () => {
    const dir = join(tmp(), 'b')
    const s = await collect({ ...base, output: dir, redact: { ips: true }, hostname: 'ip-10-0-3-45.us-west-2.compute.internal' })
    const m = manifestOf(dir)
    expect(m.redaction).toMatchObject({ ips: 'prefix-preserving' })
    expect(m.redaction!.counts.macs).toBeGreaterThan(0)
    expect(m.hostname).toMatch(/^host-[0-9a-f]{8}$/)
    expect(s.redaction?.ips).toBe('prefix-preserving')
    const all = [...bundleFiles(dir).values()].map((b) => b.toString()).join('\n')
    const links = JSON.parse(execFileSync('ip', ['-j', 'link']).toString()) as { address?: string }[]
    for (const l of links) if (l.address && !/^(00:){5}00$|^ff:/.test(l.address)) expect(all).not.toContain(l.address)
    const addrs = (JSON.parse(execFileSync('ip', ['-j', 'addr']).toString()) as { addr_info: { local: string }[] }[]).flatMap((i) => i.addr_info.map((a) => a.local))
    // As a whole token: a mapped address may begin like the original (prefix-preserving, and near a kept range).
    const token = (a: string) => new RegExp(`(^|[^0-9A-Fa-f:.])${a.replace(/[.]/g, '\\.')}($|[^0-9A-Fa-f:.])`)
    for (const a of addrs.filter((x) => !/^(127\.|::1$|fe80:)/.test(x))) expect(all, a).not.toMatch(token(a))
    expect(all).not.toContain('02:56:c0:fc:7c:41')
    expect(all).not.toContain('10.0.3.45')
    const state = await loadNodeState([dir])
    expect(state.interfaces.length).toBeGreaterThan(0)
    expect(state.derived.vpcCidrs.length).toBe(2)
  })
})

describe('the node\'s CNI files', () => {
  it('are copied from below --host-root (kubectl debug node mounts the node at /host), and read by the loader', async () => {
    const root = tmp()
    mkdirSync(join(root, 'etc/cni/net.d'), { recursive: true })
    mkdirSync(join(root, 'var/run/aws-node'), { recursive: true })
    cpSync(join(EXAMPLES, 'default-ipv4', '10-aws.conflist'), join(root, 'etc/cni/net.d/10-aws.conflist'))
    cpSync(join(REPO, 'test/parse/fixtures/cni/ipam.json'), join(root, 'var/run/aws-node/ipam.json'))
    const dir = join(tmp(), 'b')
    await collect({ ...base, output: dir, hostRoot: root, skip: ['conntrack', 'conntrack6'] })
    const m = manifestOf(dir)
    expect(m.commands.find((r) => r.file === 'cni/net.d/10-aws.conflist')).toMatchObject({ kind: 'file', path: join(root, 'etc/cni/net.d/10-aws.conflist'), written: true, exitCode: 0 })
    expect(m.commands.find((r) => r.file === 'aws-node/ipam.json')).toMatchObject({ kind: 'file', written: true })
    expect(readFileSync(join(dir, 'cni/net.d/10-aws.conflist'))).toEqual(readFileSync(join(root, 'etc/cni/net.d/10-aws.conflist')))
    const state = await loadNodeState([dir])
    expect(state.artifacts.find((a) => a.artifact === 'cni/net.d/10-aws.conflist')).toMatchObject({ kind: 'cni-conflist', used: true })
    expect(state.artifacts.find((a) => a.artifact === 'aws-node/ipam.json')).toMatchObject({ kind: 'ipam-checkpoint' })
    expect(state.settings.get('AWS_VPC_K8S_CNI_VETHPREFIX')?.value).toBe('eni')
  })
})

describe('the loader and the state taken after a capture (after/)', () => {
  const example = (f: string) => readFileSync(join(EXAMPLES, 'default-ipv4', f), 'utf8')
  function bundleWithAfter(): string {
    const dir = join(tmp(), 'bundle')
    mkdirSync(join(dir, 'after'), { recursive: true })
    for (const f of ['ip-rule.txt', 'ip-route-all.txt', 'iptables-save-nat.txt', 'iptables-save-mangle.txt']) {
      writeFileSync(join(dir, f), example(f))
      // The later copy differs: its SNAT rule is gone (as if the CNI had been reconfigured during the capture).
      writeFileSync(join(dir, 'after', f), example(f).split('\n').filter((l) => !l.includes('"AWS, SNAT"')).join('\n'))
    }
    const manifest = { natlensVersion: '0.0.0-test', manifestVersion: 1, commands: [], skipped: [], after: { dir: 'after/', note: 'x' } }
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest))
    writeFileSync(join(dir, 'after', 'manifest.json'), JSON.stringify({ ...manifest, after: undefined, stateOf: 'after-capture' }))
    return dir
  }
  const snatRules = (s: Awaited<ReturnType<typeof loadNodeState>>) => s.tables.flatMap((t) => [...t.chains.values()].flatMap((c) => c.rules)).filter((r) => r.target.kind === 'snat')

  it('reads the state before the capture only, and lists the later copy as set aside', async () => {
    const dir = bundleWithAfter()
    const state = await loadNodeState([dir])
    expect(snatRules(state)).toHaveLength(1)
    const nat = state.tables.filter((t) => t.name === 'nat')
    expect(nat).toHaveLength(1)
    for (const f of ['after/ip-rule.txt', 'after/iptables-save-nat.txt', 'after/manifest.json']) {
      expect(state.artifacts.find((a) => a.artifact === f)).toMatchObject({ used: false, reason: expect.stringMatching(/taken again after the capture.*not counted twice/) })
    }
    expect(state.diagnostics.filter((d) => d.code === 'bundle.duplicate-source')).toEqual([])
  })

  it('does the same inside a tarball, and the later state reads on its own', async () => {
    const dir = bundleWithAfter()
    const tgz = join(tmp(), 'b.tar.gz')
    execFileSync('tar', ['-czf', tgz, '-C', join(dir, '..'), 'bundle'])
    const state = await loadNodeState([tgz])
    expect(snatRules(state)).toHaveLength(1)
    expect(state.artifacts.filter((a) => a.artifact.includes('/after/')).every((a) => !a.used)).toBe(true)
    const later = await loadNodeState([join(dir, 'after')])
    expect(snatRules(later)).toHaveLength(0)
    expect(later.manifest?.['stateOf']).toBe('after-capture')
  })

  it('without a manifest naming it, a folder called after/ is read like any other', async () => {
    const dir = bundleWithAfter()
    const copy = join(tmp(), 'plain')
    cpSync(dir, copy, { recursive: true })
    writeFileSync(join(copy, 'manifest.json'), JSON.stringify({ natlensVersion: '0.0.0-test', manifestVersion: 1, commands: [], skipped: [] }))
    const state = await loadNodeState([copy])
    expect(state.artifacts.find((a) => a.artifact === 'after/iptables-save-nat.txt')?.reason ?? '').not.toMatch(/after the capture/)
  })
})
