// The collector reads and never writes: every argv the plan can produce, under every option, is a read-only command
// on the allowlist; the allowlist refuses the commands that change a node; the runner refuses what is not on it
// before starting anything. The aws-node setting filter of the sh script equals the Node one.
import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { argvOf, captureItem, collectionPlan, CNI_SETTING_LINE, CREDENTIAL_LINE, SYSCTL_KEEP, type CaptureOptions, type PlanItem } from '../../src/collect/plan.js'
import { readOnlyViolation } from '../../src/collect/allowlist.js'
import { execCommand } from '../../src/collect/exec.js'
import { isCniSettingName } from '../../src/parse/cni.js'
import { parseDuration, parseSize } from '../../src/collect/flags.js'
import { ec2Evidence, endpointProblem } from '../../src/collect/http.js'

const NS = 'nl-col-test'
const wrap = (argv: readonly string[]) => ['ip', 'netns', 'exec', NS, ...argv]

const captureArb: fc.Arbitrary<CaptureOptions> = fc.record({
  durationMs: fc.integer({ min: 1000, max: 86_400_000 }),
  iface: fc.constantFrom('any', 'eth0', 'eni212428e8e5c', 'vlan.eth.1', 'lo'),
  filter: fc.option(fc.constantFrom('host 10.0.9.88', 'tcp port 443 and not port 22', 'icmp or icmp6', 'net 10.0.0.0/16'), { nil: undefined }),
  snaplen: fc.integer({ min: 64, max: 262_144 }),
  maxPackets: fc.integer({ min: 1, max: 10_000_000 }),
  maxBytes: fc.integer({ min: 128, max: 2 ** 40 }),
}).map((c) => (c.filter === undefined ? (({ filter: _f, ...rest }) => rest)(c) : c) as CaptureOptions)

function allArgv(items: readonly PlanItem[]): (readonly string[])[] {
  return items.flatMap((i) => { const a = argvOf(i); return a ? [a] : [] })
}

describe('every argv the collector can run is read-only', () => {
  it('the default plan: each command, bare and inside a namespace', () => {
    const argvs = allArgv(collectionPlan({ conntrackLimit: 100_000 }))
    expect(argvs.length).toBeGreaterThanOrEqual(20)
    for (const a of argvs) {
      expect(readOnlyViolation(a), a.join(' ')).toBeUndefined()
      expect(readOnlyViolation(wrap(a)), a.join(' ')).toBeUndefined()
    }
  })

  it('under any capture option and conntrack limit (property)', () => {
    fc.assert(fc.property(captureArb, fc.integer({ min: 1, max: 10_000_000 }), (capture, limit) => {
      for (const a of allArgv(collectionPlan({ conntrackLimit: limit, capture }))) {
        if (readOnlyViolation(a) !== undefined || readOnlyViolation(wrap(a)) !== undefined) return false
      }
      return true
    }), { numRuns: 300 })
  })

  it('the capture writes pcap to standard output only, through timeout, with no name lookups', () => {
    const a = captureItem({ durationMs: 30_000, iface: 'any', snaplen: 128, maxPackets: 1000, maxBytes: 1 << 20, filter: 'host 10.0.9.88' }).argv
    expect(a).toEqual(['timeout', '-s', 'TERM', '60', 'tcpdump', '-n', '-U', '-i', 'any', '-s', '128', '-c', '1000', '-w', '-', 'host 10.0.9.88'])
  })

  it('covers what the issue lists: ip addr/link/rule/route (text and JSON, both families), both iptables backends with counters, nft (text and JSON), conntrack, sysctls', () => {
    const lines = allArgv(collectionPlan({ conntrackLimit: 10 })).map((a) => a.join(' '))
    expect(lines).toEqual(expect.arrayContaining([
      'ip -d -j addr', 'ip -d -j link', 'ip rule', 'ip -j rule', 'ip -6 rule', 'ip -6 -j rule',
      'ip -4 route show table all', 'ip -4 -j route show table all', 'ip -6 route show table all', 'ip -6 -j route show table all',
      'iptables-legacy-save -c', 'iptables-nft-save -c', 'ip6tables-legacy-save -c', 'ip6tables-nft-save -c',
      'nft list ruleset', 'nft -j list ruleset', 'conntrack -L', 'conntrack -L -f ipv6', 'conntrack -S', 'sysctl -a',
    ]))
    const plan = collectionPlan({ conntrackLimit: 10 })
    expect(plan.filter((i) => i.kind === 'http').map((i) => (i as { path: string }).path)).toEqual(['/v1/enis', '/v1/eni-configs', '/v1/networkutils-env-settings', '/v1/ipamd-env-settings', '/proxyMode'])
    expect(plan.some((i) => i.kind === 'imds')).toBe(true)
    expect(plan.filter((i) => i.kind === 'files').map((i) => i.file)).toEqual(['cni/net.d/*', 'aws-node/ipam.json'])
    expect(plan.find((i) => i.id === 'conntrack')).toMatchObject({ maxLines: 10 })
    // Every item has a timeout, and files stay inside the bundle.
    for (const i of plan) {
      expect(i.timeoutMs).toBeGreaterThan(0)
      expect(i.file).not.toMatch(/^\/|\.\./)
    }
    expect(new Set(plan.map((i) => i.file)).size).toBe(plan.length)
  })
})

describe('the allowlist refuses what changes a node', () => {
  const refused: string[][] = [
    ['iptables', '-F'], ['iptables-legacy-save', '-c', '-t', 'nat', '-M', '/tmp/x'], ['iptables-restore'], ['iptables-legacy', '-t', 'nat', '-A', 'POSTROUTING', '-j', 'ACCEPT'],
    ['ip', 'route', 'add', '10.0.0.0/8', 'dev', 'lo'], ['ip', 'rule', 'del', 'pref', '1024'], ['ip', 'link', 'set', 'eth0', 'down'], ['ip', 'addr', 'flush', 'dev', 'eth0'],
    ['ip', '-batch', '-'], ['ip', 'route', 'show', 'table', 'all', 'extra'], ['ip', 'netns', 'add', 'x'], ['ip', 'netns', 'exec', NS, 'sh', '-c', 'id'],
    ['nft', 'flush', 'ruleset'], ['nft', '-f', '/tmp/rules'], ['nft', 'add', 'table', 'ip', 'x'],
    ['conntrack', '-D'], ['conntrack', '-F'], ['conntrack', '-U', '--mark', '1'], ['conntrack', '-I'],
    ['sysctl', '-w', 'net.ipv4.ip_forward=0'], ['sysctl', 'net.ipv4.ip_forward=0'], ['sysctl', '-p'], ['sysctl', '--system'],
    ['tcpdump', '-i', 'any', '-w', '/etc/passwd'], ['tcpdump', '-w', '-', '-z', '/bin/sh'], ['tcpdump', '-w', '-', '-C', '1', 'host', 'x'], ['tcpdump', '-i', 'any'], ['tcpdump', '-w', '-', '-Z', 'root'],
    ['timeout', '5', 'iptables', '-F'], ['timeout', '-s', 'HUP', '5', 'ip', 'rule'], ['node', '-e', 'require("fs").writeFileSync("/x","")'], ['node', '/tmp/evil.js'],
    ['sh', '-c', 'ip rule'], ['bash'], ['curl', 'http://169.254.169.254/'], ['cat', '/etc/shadow'], ['rm', '-rf', '/'], ['modprobe', 'ip_tables'], ['ethtool', '-K', 'eth0', 'gro', 'off'],
    ['ip', 'netns', 'exec', '../../x', 'ip', 'rule'], [],
  ]
  it.each(refused.map((a) => [a.join(' ') || '(empty)', a]))('%s', (_n, argv) => {
    expect(readOnlyViolation(argv as string[])).toBeDefined()
  })

  it('the runner refuses such an argv before starting any process', async () => {
    await expect(execCommand(['iptables', '-F'], { timeoutMs: 1000, env: { PATH: '/nonexistent' } })).rejects.toThrow(/refused to run .*iptables.*not a command the collector runs/)
    await expect(execCommand(['ip', 'netns', 'exec', NS, 'nft', 'flush', 'ruleset'], { timeoutMs: 1000, env: { PATH: '/nonexistent' } })).rejects.toThrow(/refused/)
  })

  it('accepts the namespace HTTP reader only as the collector\'s own script', () => {
    expect(readOnlyViolation(wrap([process.execPath, '/opt/natlens/dist/collect/http-child.js']))).toBeUndefined()
    expect(readOnlyViolation(wrap([process.execPath, '/opt/natlens/dist/collect/http-child.js', '--inspect']))).toBeDefined()
  })
})

describe('aws-node settings: the ERE the sh script uses keeps exactly what isCniSettingName keeps', () => {
  const keep = new RegExp(CNI_SETTING_LINE)
  const drop = new RegExp(CREDENTIAL_LINE, 'i')
  const kept = (name: string) => keep.test(`${name}=x`) && !drop.test(`${name}=x`)
  const known = ['AWS_VPC_K8S_CNI_EXTERNALSNAT', 'AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS', 'AWS_VPC_K8S_CNI_RANDOMIZESNAT', 'AWS_VPC_K8S_CNI_CONNMARK', 'ENABLE_IPv6', 'ENABLE_POD_ENI',
    'WARM_IP_TARGET', 'MINIMUM_IP_TARGET', 'POD_SECURITY_GROUP_ENFORCING_MODE', 'AWS_EXTERNAL_SERVICE_CIDRS', 'CLUSTER_NAME', 'DISABLE_NETWORK_RESOURCE_PROVISIONING',
    'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_VPC_K8S_CNI_TOKEN', 'ENABLE_PRIVATE_KEY', 'AWS_VPC_API_KEY', 'AWS_ROLE_ARN', 'AWS_WEB_IDENTITY_TOKEN_FILE',
    'HOME', 'PATH', 'KUBERNETES_SERVICE_HOST', 'MY_NODE_NAME', 'AWS_REGION', 'ENABLE_', 'ENABLE_auth_thing', 'WARM_CERT_DIR', 'lower_case', '1ABC']
  it.each(known)('%s', (name) => expect(kept(name)).toBe(isCniSettingName(name)))
  it('on arbitrary names (property)', () => {
    const name = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,30}$/)
    const prefixed = fc.tuple(fc.constantFrom('AWS_VPC_', 'ENABLE_', 'DISABLE_', 'WARM_', 'AWS_', ''), name).map(([p, n]) => p + n)
    fc.assert(fc.property(prefixed, (n) => kept(n) === isCniSettingName(n)), { numRuns: 2000 })
  })
  it('grep -E and grep -Ei -v with the same patterns filter an environment the same way', () => {
    const env = known.map((n) => `${n}=v`).join('\n') + '\n'
    const viaGrep = execFileSync('sh', ['-c', `grep -E '${CNI_SETTING_LINE}' | grep -Eiv '${CREDENTIAL_LINE}'`], { input: env }).toString().trim().split('\n')
    expect(viaGrep).toEqual(known.filter(kept).map((n) => `${n}=v`))
  })
})

describe('the sysctl filter', () => {
  it('keeps forwarding, rp_filter per interface, conntrack size and the local port range from sysctl -a of this machine', () => {
    const all = execFileSync('sysctl', ['-a'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString()
    const keep = new RegExp(SYSCTL_KEEP)
    const kept = all.split('\n').filter((l) => keep.test(l))
    expect(kept.some((l) => l.startsWith('net.ipv4.ip_forward = '))).toBe(true)
    expect(kept.some((l) => /^net\.ipv4\.conf\.all\.rp_filter = /.test(l))).toBe(true)
    expect(kept.some((l) => /^net\.ipv4\.conf\.lo\.rp_filter = /.test(l))).toBe(true)
    expect(kept.some((l) => l.startsWith('net.ipv4.ip_local_port_range = '))).toBe(true)
    expect(kept.some((l) => l.startsWith('net.ipv4.ip_forward_use_pmtu'))).toBe(false)
    expect(kept.length).toBeLessThan(60)
    // grep -E with the same pattern keeps the same lines.
    const viaGrep = execFileSync('grep', ['-E', SYSCTL_KEEP], { input: all }).toString().trim().split('\n')
    expect(viaGrep).toEqual(kept)
  })
})

describe('flag values', () => {
  it.each([['30s', 30_000], ['2m', 120_000], ['1h', 3_600_000], ['90', 90_000], ['1500ms', 1500], ['1.5s', 1500]])('duration %s', (t, ms) => expect(parseDuration(t)).toBe(ms))
  it.each(['', '30x', '-5s', '0s', '500ms', '25h', 's'])('bad duration %s', (t) => expect(() => parseDuration(t)).toThrow())
  it.each([['200M', 200 * 1024 ** 2], ['1G', 1024 ** 3], ['512k', 512 * 1024], ['4096', 4096], ['2MiB', 2 * 1024 ** 2], ['10MB', 10 * 1024 ** 2]])('size %s', (t, n) => expect(parseSize(t)).toBe(n))
  it.each(['', '5', 'x', '-1M', '1T'])('bad size %s', (t) => expect(() => parseSize(t)).toThrow())
})

describe('endpoints and IMDS', () => {
  it.each(['http://127.0.0.1:61679', 'http://169.254.169.254', 'http://[fd00:ec2::254]', 'http://localhost:10249', 'http://127.0.0.1:4321', 'http://[::1]:80'])('%s is allowed', (u) => expect(endpointProblem(u)).toBeUndefined())
  it.each(['http://example.com', 'https://169.254.169.254', 'http://10.0.0.1:61679', 'http://169.254.169.253', 'http://127.0.0.1.nip.io', 'http://127.0.0.1:80/v1', 'http://user:pw@127.0.0.1', 'file:///etc/passwd', 'not a url'])('%s is refused', (u) => expect(endpointProblem(u)).toBeDefined())

  it('decides EC2 from the firmware, and says so', () => {
    const fw = (files: Record<string, string>) => (p: string) => files[p]
    expect(ec2Evidence(fw({ '/sys/devices/virtual/dmi/id/sys_vendor': 'Amazon EC2\n' })).ec2).toBe(true)
    expect(ec2Evidence(fw({ '/sys/devices/virtual/dmi/id/sys_vendor': 'Xen', '/sys/hypervisor/uuid': 'ec2e1916-9099-7caf-fd21-012345abcdef' })).ec2).toBe(true)
    expect(ec2Evidence(fw({ '/sys/devices/virtual/dmi/id/sys_vendor': 'QEMU', '/sys/devices/virtual/dmi/id/board_asset_tag': 'i-0123456789abcdef0' })).ec2).toBe(true)
    const q = ec2Evidence(fw({ '/sys/devices/virtual/dmi/id/sys_vendor': 'QEMU\n' }))
    expect(q).toEqual({ ec2: false, why: 'DMI sys_vendor is "QEMU", not Amazon EC2' })
    expect(ec2Evidence(fw({})).ec2).toBeUndefined()
  })
})
