// One test per doctor check with a state that triggers it and one that does not. The states are the example node of
// ../shared/examples (healthy) and that node broken one line at a time, read through the loader.
import { describe, expect, it } from 'vitest'
import { CHECKS, hasProblems, runDoctor } from '../../src/doctor/index.js'
import type { Check, Finding } from '../../src/doctor/index.js'
import { DoctorContext } from '../../src/doctor/model.js'
import type { LoadedNode } from '../../src/sources/load.js'
import { loadNodeState } from '../../src/sources/load.js'
import { change, exampleFiles, imds, insertAfter, ipamdEnis, replaceLine, stateOf, withSettings, type Files } from './states.js'
import { FIXTURES } from '../helpers.js'

function run(id: string, state: LoadedNode): Finding[] {
  const check = CHECKS.find((c) => c.id === id) as Check
  const r = check.run(new DoctorContext(state))
  if ('skip' in r) throw new Error(`${id} skipped: ${r.skip}`)
  return [...r]
}

const healthy = () => stateOf(exampleFiles())
const nat = (files: Files, edit: (t: string) => string) => change(files, 'iptables-save-nat.txt', edit)
const SNAT_LINE = '-A AWS-SNAT-CHAIN-0 ! -o vlan+ -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL -j SNAT --to-source 10.0.3.45 --random-fully'

const SYSCTL_OK = 'net.ipv4.conf.all.rp_filter = 1\nnet.ipv4.conf.default.rp_filter = 1\nnet.ipv4.conf.eth0.rp_filter = 2\nnet.ipv4.conf.eth1.rp_filter = 1\nnet.ipv4.ip_local_port_range = 32768\t60999\nnet.netfilter.nf_conntrack_count = 212\nnet.netfilter.nf_conntrack_max = 262144\n'
const STATS_OK = 'cpu=0   \tfound=0 invalid=3 insert=0 insert_failed=0 drop=0 early_drop=0 error=0 search_restart=0 clash_resolve=0 chaintoolong=0\ncpu=1   \tfound=0 invalid=0 insert=0 insert_failed=0 drop=0 early_drop=0 error=0 search_restart=0 clash_resolve=0 chaintoolong=0\n'

/** `conntrack -L` lines: n connections from pods to one internet destination, SNATed to the node. */
function snatConnections(n: number, dst = '93.184.216.34', dport = 443): string {
  const out: string[] = []
  for (let i = 0; i < n; i++) out.push(`tcp      6 431999 ESTABLISHED src=10.0.${i % 2 ? '9.88' : '7.201'} dst=${dst} sport=${40000 + i} dport=${dport} src=${dst} dst=10.0.3.45 sport=${dport} dport=${1024 + i} [ASSURED] mark=128 use=1`)
  return `${out.join('\n')}\n`
}

describe('every check has its two tests here', () => {
  it('lists the checks this file tests', () => {
    expect(CHECKS.map((c) => c.id).sort()).toEqual(['conntrack-table', 'duplicate-snat', 'ephemeral-ports', 'iptables-backends', 'mark-conflict', 'pod-ip-rules', 'rp-filter', 'snat-address', 'snat-random-fully', 'vpc-cni-intent'])
    for (const c of CHECKS) expect(c.description.length).toBeGreaterThan(20)
  })
  it('the example node is healthy: no finding, exit status 0', () => {
    const report = runDoctor(stateOf({ ...exampleFiles(), 'sysctl.txt': SYSCTL_OK, 'conntrack-S.txt': STATS_OK, 'conntrack.txt': snatConnections(5) }))
    expect(report.findings).toEqual([])
    expect(report.skipped).toEqual([])
    expect(report.checked).toHaveLength(CHECKS.length)
    expect(hasProblems(report)).toBe(false)
  })
  it('fixtures/example-node (the README\'s node) is healthy too', async () => {
    const report = runDoctor(await loadNodeState([`${FIXTURES}/example-node`]))
    expect(report.findings).toEqual([])
  })
})

describe('vpc-cni-intent', () => {
  it('does not fire when the rules are what the settings imply', () => expect(run('vpc-cni-intent', healthy())).toEqual([]))
  it('EXCLUDE_SNAT_CIDRS not reflected: an error naming the CIDR, with the setting as evidence', () => {
    const f = run('vpc-cni-intent', stateOf(withSettings(exampleFiles(), { AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS: ['192.168.0.0/16'] })))
    expect(f).toHaveLength(1)
    expect(f[0]).toMatchObject({ severity: 'error', title: expect.stringMatching(/EXCLUDE_SNAT_CIDRS is not reflected: 192\.168\.0\.0\/16/) })
    expect(f[0]!.evidence[0]).toMatchObject({ file: 'networkutils-env-settings.json', line: 1, text: expect.stringContaining('192.168.0.0/16') })
    expect(f[0]!.fix).toMatch(/rollout restart daemonset aws-node/)
  })
  it('rules left behind after EXTERNALSNAT was set to true: every leftover with file:line, and the delete commands', () => {
    const f = run('vpc-cni-intent', stateOf(withSettings(exampleFiles(), { AWS_VPC_K8S_CNI_EXTERNALSNAT: true })))
    const leftover = f.find((x) => /left behind after AWS_VPC_K8S_CNI_EXTERNALSNAT/.test(x.title))!
    expect(leftover.severity).toBe('error')
    expect(leftover.evidence).toContainEqual({ file: 'iptables-save-nat.txt', line: 31, text: SNAT_LINE })
    expect(leftover.fix).toContain(`iptables -t nat ${SNAT_LINE.replace('-A ', '-D ')}`)
  })
  it('a secondary VPC CIDR missing from the exemptions', () => {
    const f = run('vpc-cni-intent', stateOf({ ...exampleFiles(), 'imds.txt': imds(['10.0.0.0/16', '100.64.0.0/16']) }))
    expect(f.map((x) => x.title)).toEqual(['VPC CIDR 100.64.0.0/16 is missing from the SNAT exemptions'])
    expect(f[0]!.evidence.some((e) => e.file === 'imds.txt')).toBe(true)
  })
})

describe('pod-ip-rules', () => {
  const withEnis = (files: Files) => ({ ...files, 'enis.json': ipamdEnis(['10.0.9.88', '10.0.14.3']) })
  it('does not fire when every pod has its rules', () => expect(run('pod-ip-rules', stateOf(withEnis(exampleFiles())))).toEqual([]))
  it('a pod on eth1 without its 512 and 1536 rules (ipamd knows its ENI): an error with the commands that restore them', () => {
    const files = change(withEnis(exampleFiles()), 'ip-rule.txt', (t) => replaceLine(replaceLine(t, '1536:\tfrom 10.0.9.88', null), '512:\tfrom all to 10.0.9.88', null))
    const f = run('pod-ip-rules', stateOf(files))
    expect(f).toHaveLength(1)
    expect(f[0]).toMatchObject({ severity: 'error', title: 'Pod 10.0.9.88 (default/pod-10.0.9.88) is missing its ip rules: 512: 1536:' })
    expect(f[0]!.fix).toContain('ip rule add pref 1536 from 10.0.9.88 lookup 2')
    expect(f[0]!.fix).toContain('ip rule add pref 512 to 10.0.9.88 lookup main')
    expect(f[0]!.evidence.map((e) => e.file)).toEqual(expect.arrayContaining(['ip-route-all.txt', 'enis.json']))
  })
  it('a rule left behind by a pod that is gone, and a pod rule into an empty table', () => {
    const files = change(exampleFiles(), 'ip-rule.txt', (t) => insertAfter(insertAfter(t, '512:\tfrom all to 10.0.14.3', '512:\tfrom all to 10.0.15.77 lookup main'), '1536:\tfrom 10.0.14.3', '1536:\tfrom 10.0.15.77 lookup 7'))
    const f = run('pod-ip-rules', stateOf(files))
    expect(f.map((x) => `${x.severity} ${x.title}`)).toEqual([
      'warning ip rules for 10.0.15.77 left behind (no such pod on the node)',
      'error Pod 10.0.15.77\'s rule looks up table 7, which has no routes',
    ])
  })
})

describe('iptables-backends', () => {
  it('does not fire with one backend', () => expect(run('iptables-backends', healthy())).toEqual([]))
  it('legacy nat and iptables-nft mangle both hold rules: which runs first at each hook', () => {
    const files = change(exampleFiles(), 'iptables-save-mangle.txt', (t) => t.replace('# Generated by iptables-save v1.8.4', '# Generated by iptables-nft-save v1.8.8 (nf_tables)'))
    const f = run('iptables-backends', stateOf(files))
    expect(f).toHaveLength(1)
    expect(f[0]!.severity).toBe('warning')
    expect(f[0]!.detail).toMatch(/prerouting: iptables-nft mangle PREROUTING \(priority -150, 3 rules\) → iptables-legacy nat PREROUTING \(priority -100, 3 rules\)/)
    expect(f[0]!.evidence.map((e) => e.file).sort()).toEqual(['iptables-save-mangle.txt', 'iptables-save-nat.txt'])
  })
})

describe('snat-address', () => {
  it('does not fire when the SNAT address is the node\'s', () => expect(run('snat-address', healthy())).toEqual([]))
  it('SNAT to an address no interface holds', () => {
    const f = run('snat-address', stateOf(nat(exampleFiles(), (t) => t.replace('--to-source 10.0.3.45', '--to-source 10.0.3.99'))))
    expect(f).toHaveLength(1)
    expect(f[0]).toMatchObject({ severity: 'error', title: 'SNAT to 10.0.3.99, which is not an address of this node' })
    expect(f[0]!.evidence[0]).toMatchObject({ file: 'iptables-save-nat.txt', line: 31 })
  })
})

describe('duplicate-snat', () => {
  it('does not fire on one SNAT rule', () => expect(run('duplicate-snat', healthy())).toEqual([]))
  it('the AWS SNAT rule twice', () => {
    const f = run('duplicate-snat', stateOf(nat(exampleFiles(), (t) => insertAfter(t, SNAT_LINE, SNAT_LINE))))
    expect(f.map((x) => x.title)).toEqual(['SNAT rule installed twice in nat AWS-SNAT-CHAIN-0'])
    expect(f[0]!.evidence.map((e) => e.line)).toEqual([31, 32])
  })
  it('a SNAT shadowed by an earlier MASQUERADE with fewer conditions', () => {
    const f = run('duplicate-snat', stateOf(nat(exampleFiles(), (t) => insertAfter(t, '-A AWS-SNAT-CHAIN-0 -d 10.0.0.0/16', '-A AWS-SNAT-CHAIN-0 ! -o vlan+ -j MASQUERADE'))))
    expect(f.map((x) => x.title)).toEqual(['SNAT rule in nat AWS-SNAT-CHAIN-0 can never fire'])
  })
})

describe('mark-conflict', () => {
  it('does not fire when the CNI uses 0x80 and kube-proxy 0x4000', () => expect(run('mark-conflict', healthy())).toEqual([]))
  it('the CNI\'s connmark set to kube-proxy\'s masquerade bit', () => {
    let files = withSettings(exampleFiles(), { AWS_VPC_K8S_CNI_CONNMARK: 16384 })
    files = nat(files, (t) => t.replace(/0x80/g, '0x4000'))
    files = change(files, 'iptables-save-mangle.txt', (t) => t.replace(/0x80/g, '0x4000'))
    files = change(files, 'ip-rule.txt', (t) => t.replace('0x80/0x80', '0x4000/0x4000'))
    const f = run('mark-conflict', stateOf(files))
    expect(f.map((x) => `${x.severity} ${x.title}`)).toEqual(['error The VPC CNI\'s mark overlaps kube-proxy\'s masquerade bit 0x4000'])
  })
  it('rule 1024 matching another mark than the chains set', () => {
    const f = run('mark-conflict', stateOf(change(exampleFiles(), 'ip-rule.txt', (t) => t.replace('0x80/0x80', '0x100/0x100'))))
    expect(f.map((x) => x.title)).toEqual(['The VPC CNI\'s rules use different marks: 0x80, 0x100'])
    expect(f[0]!.evidence.some((e) => e.file === 'ip-rule.txt' && e.line === 6)).toBe(true)
  })
})

describe('rp-filter', () => {
  it('does not fire with the primary ENI loose and eth1 strict (every reverse route of eth1 leaves through eth1)', () => {
    expect(run('rp-filter', stateOf({ ...exampleFiles(), 'sysctl.txt': SYSCTL_OK }))).toEqual([])
  })
  it('strict on the primary ENI while pods on eth1 are SNATed: their replies arrive on eth0 and route back out eth1', () => {
    const f = run('rp-filter', stateOf({ ...exampleFiles(), 'sysctl.txt': SYSCTL_OK.replace('eth0.rp_filter = 2', 'eth0.rp_filter = 1') }))
    expect(f).toHaveLength(1)
    expect(f[0]!.title).toMatch(/strict on eth0/)
    expect(f[0]!.detail).toMatch(/replies to pod 10\.0\.9\.88's SNATed off-VPC traffic arrive on eth0, but the route back from the pod leaves through eth1/)
  })
  it('strict on eth1 without the 32765 rule for its own address (before v1.20)', () => {
    const addr = '2: eth0    inet 10.0.3.45/20 brd 10.0.15.255 scope global eth0\\       valid_lft forever preferred_lft forever\n3: eth1    inet 10.0.6.120/20 brd 10.0.15.255 scope global eth1\\       valid_lft forever preferred_lft forever\n'
    const f = run('rp-filter', stateOf(change({ ...exampleFiles(), 'sysctl.txt': SYSCTL_OK, 'ip-addr.txt': addr }, 'ip-rule.txt', (t) => replaceLine(t, '32765:', null))))
    expect(f.map((x) => x.title)).toEqual([expect.stringMatching(/strict on eth1/)])
  })
})

describe('conntrack-table', () => {
  it('does not fire on a table far from full without failures', () => expect(run('conntrack-table', stateOf({ ...exampleFiles(), 'sysctl.txt': SYSCTL_OK, 'conntrack-S.txt': STATS_OK }))).toEqual([]))
  it('a table 95% full and insert failures', () => {
    const sysctl = SYSCTL_OK.replace('nf_conntrack_count = 212', 'nf_conntrack_count = 249000')
    const stats = STATS_OK.replace('insert_failed=0', 'insert_failed=17')
    const f = run('conntrack-table', stateOf({ ...exampleFiles(), 'sysctl.txt': sysctl, 'conntrack-S.txt': stats }))
    expect(f.map((x) => `${x.severity} ${x.title}`)).toEqual([
      'error The conntrack table is 95% full (249000 of 262144)',
      'warning conntrack reports 17 insert failures, 0 drops and 0 early drops',
    ])
    expect(f[1]!.evidence[0]).toMatchObject({ file: 'conntrack-S.txt', line: 1 })
  })
})

describe('ephemeral-ports', () => {
  it('does not fire with few connections per destination', () => expect(run('ephemeral-ports', stateOf({ ...exampleFiles(), 'sysctl.txt': SYSCTL_OK, 'conntrack.txt': snatConnections(40) }))).toEqual([]))
  it('a small port range against the connections SNATed to one destination', () => {
    const f = run('ephemeral-ports', stateOf({ ...exampleFiles(), 'sysctl.txt': SYSCTL_OK.replace('32768\t60999', '60960\t60999'), 'conntrack.txt': snatConnections(40) }))
    expect(f.map((x) => `${x.severity} ${x.title}`)).toEqual(['error 40 connections to one destination (tcp 10.0.3.45 → 93.184.216.34:443) against 40 ephemeral ports'])
    expect(f[0]!.evidence[0]).toMatchObject({ file: 'sysctl.txt', text: expect.stringContaining('ip_local_port_range') })
  })
  it('connections to the VPC do not count (not SNATed)', () => {
    expect(run('ephemeral-ports', stateOf({ ...exampleFiles(), 'sysctl.txt': SYSCTL_OK.replace('32768\t60999', '60960\t60999'), 'conntrack.txt': snatConnections(40, '10.0.20.15', 5432) }))).toEqual([])
  })
})

describe('snat-random-fully', () => {
  it('does not fire when every translation has --random-fully', () => expect(run('snat-random-fully', healthy())).toEqual([]))
  it('the AWS SNAT rule without it (RANDOMIZESNAT=none): a warning with the setting', () => {
    const files = withSettings(nat(exampleFiles(), (t) => t.replace('--to-source 10.0.3.45 --random-fully', '--to-source 10.0.3.45')), { AWS_VPC_K8S_CNI_RANDOMIZESNAT: 0 })
    const f = run('snat-random-fully', stateOf(files))
    expect(f.map((x) => `${x.severity} ${x.title}`)).toEqual(['warning SNAT in nat AWS-SNAT-CHAIN-0 without --random-fully'])
    expect(f[0]!.evidence.map((e) => e.file)).toEqual(['iptables-save-nat.txt', 'networkutils-env-settings.json'])
    expect(f[0]!.fix).toMatch(/RANDOMIZESNAT=prng/)
  })
})

describe('checks say why they cannot run', () => {
  it('a bundle of ip rules only: the checks whose inputs are missing are skipped with the reason', () => {
    const report = runDoctor(stateOf({ 'ip-rule.txt': exampleFiles()['ip-rule.txt']! }))
    expect(report.skipped.map((s) => s.id).sort()).toEqual(['conntrack-table', 'duplicate-snat', 'ephemeral-ports', 'iptables-backends', 'pod-ip-rules', 'rp-filter', 'snat-address', 'snat-random-fully', 'vpc-cni-intent'])
    expect(report.checked).toEqual(['mark-conflict'])
    expect(report.skipped.find((s) => s.id === 'rp-filter')!.reason).toMatch(/rp_filter/)
  })
})
