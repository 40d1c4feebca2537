// Real iptables output captured on a development machine (see fixtures/iptables/README.md): every rendering parses
// without diagnostics and means the same as the iptables-save of the same rules.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { makeContext } from '../../src/parse/context.js'
import { detectIptablesFamily, looksLikeIptablesList, looksLikeIptablesRules, looksLikeIptablesSave, parseIptablesList, parseIptablesRules, parseIptablesSave } from '../../src/parse/iptables.js'
import { formatIp } from '../../src/model/ip.js'
import type { Table } from '../../src/model/netfilter.js'
import { FIXTURES, findRule, natTargets, ruleCount, tableSignature } from './fixtures/iptables/semantics.js'

const read = (f: string) => readFileSync(path.join(FIXTURES, f), 'utf8')

function parse(kind: 'save' | 'rules' | 'list', f: string, hints: { table?: string; family?: 4 | 6 } = {}) {
  const ctx = makeContext(f, hints)
  const fn = kind === 'save' ? parseIptablesSave : kind === 'rules' ? parseIptablesRules : parseIptablesList
  return { tables: fn(read(f), ctx), diags: ctx.sink.items }
}

const byName = (ts: Table[], n: string) => ts.find((t) => t.name === n)!

describe('kube-proxy rules as the kernel gives them back (legacy)', () => {
  const save = parse('save', 'real.legacy-save-c.kube-proxy.txt')
  const nat = byName(save.tables, 'nat')

  it('save -c: counters on chains and rules, no diagnostics', () => {
    expect(save.diags).toEqual([])
    expect(save.tables.map((t) => t.name)).toEqual(['nat', 'filter'])
    expect(nat.origin).toBe('iptables-legacy')
    expect(nat.chains.get('POSTROUTING')!.counters).toEqual({ packets: 0n, bytes: 0n })
    expect(nat.chains.get('KUBE-MARK-MASQ')!.rules[0]!.counters).toEqual({ packets: 0n, bytes: 0n })
  })

  it('-S and -nvL of nat mean the same rules', () => {
    const s = parse('rules', 'real.legacy-S-nat.kube-proxy.txt', { table: 'nat' })
    const l = parse('list', 'real.legacy-nvL-nat.kube-proxy.txt', { table: 'nat' })
    expect(s.diags).toEqual([])
    expect(l.diags).toEqual([])
    expect(tableSignature(s.tables[0]!)).toEqual(tableSignature(nat))
    expect(tableSignature(l.tables[0]!)).toEqual(tableSignature(nat))
    expect(natTargets(l.tables[0]!)).toEqual(natTargets(nat))
    expect(looksLikeIptablesRules(read('real.legacy-S-nat.kube-proxy.txt'))).toBe(true)
    expect(looksLikeIptablesList(read('real.legacy-nvL-nat.kube-proxy.txt'))).toBe(true)
    expect(looksLikeIptablesSave(read('real.legacy-nvL-nat.kube-proxy.txt'))).toBe(false)
  })

  it('-nvL: a rule without a target (empty target column) is target none', () => {
    const l = parse('list', 'real.legacy-nvL-nat.kube-proxy.txt', { table: 'nat' }).tables[0]!
    expect(findRule(l, 'KUBE-FW-NUKIZ6OKUXPJNT4C', (r) => r.index === 2).target).toEqual({ kind: 'none' })
    expect(findRule(l, 'KUBE-FW-NUKIZ6OKUXPJNT4C', (r) => r.index === 2).comment).toBe('other traffic to ns5/svc5:p80 will be dropped by KUBE-PROXY-FIREWALL')
  })
})

describe('the coverage rule set through the nft backend', () => {
  const save = parse('save', 'real.nft-save.coverage-v4.txt')

  it('save: origin from the warning and the (nf_tables) header; the warning is an info diagnostic', () => {
    expect(save.diags.map((d) => [d.code, d.severity])).toEqual([['iptables.legacy-tables-present', 'info']])
    expect(save.tables.every((t) => t.origin === 'iptables-nft')).toBe(true)
    expect(save.tables.map((t) => t.name)).toEqual(['mangle', 'raw', 'filter', 'nat'])
  })

  it('reads every modelled module of the coverage set', () => {
    const nat = byName(save.tables, 'nat')
    const pre = nat.chains.get('PREROUTING')!.rules
    expect(pre[0]!.matches).toContainEqual({ kind: 'port', which: 'dst', negated: false, ranges: [{ from: 80, to: 80 }, { from: 443, to: 443 }, { from: 8000, to: 8080 }] })
    expect(pre[0]!.target).toMatchObject({ kind: 'dnat', random: true, persistent: true })
    expect(pre[1]!.matches).toContainEqual({ kind: 'port', which: 'src', negated: true, ranges: [{ from: 53, to: 53 }, { from: 5353, to: 5353 }] })
    expect(pre[1]!.target).toEqual({ kind: 'redirect', ports: { from: 5353, to: 5353 }, random: false })
    expect(pre[2]!.matches).toContainEqual({ kind: 'port', which: 'either', negated: false, ranges: [{ from: 22, to: 22 }] })
    expect(pre[4]!.matches).toContainEqual({ kind: 'port', which: 'dst', negated: true, ranges: [{ from: 1, to: 1023 }] })
    expect(pre[5]!.matches).toContainEqual({ kind: 'statistic-nth', negated: false, every: 3, packet: 1 })
    expect(pre[6]!.matches).toContainEqual({ kind: 'statistic-random', negated: true, probability: 0.25 })
    expect(pre[7]!.matches.filter((m) => m.kind === 'ctaddr').map((m) => m.kind === 'ctaddr' && [m.which, m.negated])).toEqual([['origsrc', false], ['origdst', false], ['replsrc', false], ['repldst', true]])
    expect(pre[7]!.matches).toContainEqual({ kind: 'ctstatus', negated: false, text: 'ctstatus ASSURED' })
    expect(pre[8]!.matches).toContainEqual({ kind: 'ctport', which: 'origsrc', negated: false, ranges: [{ from: 1000, to: 2000 }] })
    expect(pre[8]!.matches).toContainEqual({ kind: 'ctstatus', negated: false, text: 'ctproto tcp' })
    expect(pre[10]!.matches.map((m) => m.kind)).toEqual(['src-range', 'dst-range'])
    expect(pre[11]!.matches).toEqual([{ kind: 'opaque', negated: false, module: 'mac', text: '-m mac --mac-source 02:42:ac:11:00:02' }])
    expect(pre[14]!.matches).toContainEqual({ kind: 'icmp-type', negated: true, type: '3/4' })
    expect(pre[15]!.matches).toContainEqual({ kind: 'tcp-flags', negated: false, mask: ['FIN', 'SYN', 'RST', 'ACK'], comp: ['SYN'] })
    expect(pre[17]!.matches).toEqual([{ kind: 'fragment', negated: false }])
    expect(pre[19]!.target).toEqual({ kind: 'passive', name: 'LOG' })
    const post = nat.chains.get('POSTROUTING')!.rules
    expect(post[0]!.matches).toContainEqual({ kind: 'addrtype', which: 'dst', negated: true, types: ['BROADCAST', 'MULTICAST'], limitIfaceOut: true })
    expect(post[1]!.comment).toBe('name: "aws-cni" id: "3f2a9c1be8d74f06"')
    expect(post[2]!.target).toEqual({ kind: 'jump', chain: 'AWS-SNAT-CHAIN-0', goto: true })
    expect(post[3]!.target).toEqual({ kind: 'masquerade', ports: { from: 1024, to: 65535 }, random: false, randomFully: true })
    const snatPorts = post[5]!.target
    if (snatPorts.kind !== 'snat') throw new Error('not snat')
    expect(snatPorts.persistent).toBe(true)
    expect(snatPorts.to[0]!.ports).toEqual({ from: 1024, to: 2048 })
    const snatRange = post[6]!.target
    if (snatRange.kind !== 'snat') throw new Error('not snat')
    expect([formatIp(snatRange.to[0]!.minAddr!), formatIp(snatRange.to[0]!.maxAddr!)]).toEqual(['10.0.3.45', '10.0.3.50'])
    const mangle = byName(save.tables, 'mangle').chains.get('PREROUTING')!.rules
    expect(mangle[2]!.target).toEqual({ kind: 'connmark-restore', nfmask: 0x80, ctmask: 0xff })
    expect(mangle[3]!.target).toEqual({ kind: 'connmark-save', nfmask: 0xff00, ctmask: 0xff })
    expect(mangle[4]!.target).toEqual({ kind: 'connmark-set', value: 0x10, mask: 0x30 })
    expect(mangle[6]!.matches).toEqual([{ kind: 'connmark', negated: false, value: 0x80, mask: 0x80 }])
    expect(mangle[8]!.target).toEqual({ kind: 'mark', value: 0, mask: 0xff00 })
    expect(mangle[9]!.target).toEqual({ kind: 'mark', value: 0x10, mask: 0 })
    const filter = byName(save.tables, 'filter')
    expect(filter.chains.get('FORWARD')!.policy).toBe('drop')
    expect(findRule(filter, 'INPUT', (r) => r.index === 2).matches).toContainEqual({ kind: 'recent', negated: false, name: 'ssh', mode: 'set', text: '--set --name ssh --mask 255.255.255.255 --rsource' })
    expect(findRule(filter, 'INPUT', (r) => r.index === 4).target).toEqual({ kind: 'reject', with: 'tcp-reset' })
  })

  it('-nvxL of mangle (with the legacy warning) and the EKS collector nat file mean the same as the save', () => {
    const mangle = parse('list', 'real.nft-nvxL-mangle.coverage-v4.txt', { table: 'mangle' })
    expect(mangle.diags.map((d) => d.code)).toEqual(['iptables.legacy-tables-present'])
    expect(mangle.tables[0]!.origin).toBe('iptables-nft')
    expect(tableSignature(mangle.tables[0]!)).toEqual(tableSignature(byName(save.tables, 'mangle')))
    // No table hint: the built-in chains say nat; the footer's rule count is checked.
    const eks = parse('list', 'real.eks-collector.iptables-nat.txt')
    expect(eks.diags).toEqual([])
    expect(eks.tables[0]!.name).toBe('nat')
    expect(ruleCount(eks.tables[0]!)).toBe(43)
    expect(tableSignature(eks.tables[0]!)).toEqual(tableSignature(byName(save.tables, 'nat')))
  })

  it('-nL without -v: same rules, but interfaces are unknown and every rule says so', () => {
    const f = parse('list', 'real.nft-nL-filter.coverage-v4.txt', { table: 'filter' })
    expect(f.diags.map((d) => d.code)).toEqual(['iptables.legacy-tables-present', 'iptables.list-without-interfaces'])
    expect(ruleCount(f.tables[0]!)).toBe(ruleCount(byName(save.tables, 'filter')))
    for (const c of f.tables[0]!.chains.values()) for (const r of c.rules) expect(r.matches).toContainEqual(expect.objectContaining({ kind: 'opaque', module: 'interfaces' }))
    expect(natTargets(f.tables[0]!)).toEqual(natTargets(byName(save.tables, 'filter')))
  })

  it('a truncated EKS collector file is reported by its footer count', () => {
    const text = read('real.eks-collector.iptables-nat.txt').split('\n').filter((l) => !l.includes('CNI-E4-2a82b03e3c75f4403ec11  0')).join('\n')
    const ctx = makeContext('cut.txt')
    parseIptablesList(text, ctx)
    expect(ctx.sink.items.map((d) => d.code)).toContain('iptables.rule-count-mismatch')
  })
})

describe('ip6tables (legacy)', () => {
  it('save and -nvL of nat agree; family ip6 from the header and from the addresses', () => {
    const save = parse('save', 'real.ip6tables-legacy-save.coverage-v6.txt')
    const list = parse('list', 'real.ip6tables-legacy-nvL-nat.coverage-v6.txt', { table: 'nat' })
    expect(save.diags).toEqual([])
    expect(list.diags).toEqual([])
    expect(save.tables.every((t) => t.family === 'ip6')).toBe(true)
    expect(list.tables[0]!.family).toBe('ip6')
    expect(tableSignature(list.tables[0]!)).toEqual(tableSignature(byName(save.tables, 'nat')))
    expect(detectIptablesFamily(read('real.ip6tables-legacy-save.coverage-v6.txt'))).toBe(6)
    expect(detectIptablesFamily(read('real.ip6tables-legacy-nvL-nat.coverage-v6.txt'))).toBe(6)
    expect(detectIptablesFamily(read('real.legacy-nvL-nat.kube-proxy.txt'))).toBe(4)
    const filter = byName(save.tables, 'filter')
    expect(findRule(filter, 'INPUT', (r) => r.index === 2).matches).toContainEqual({ kind: 'icmp-type', negated: false, type: '135' })
    expect(findRule(filter, 'INPUT', (r) => r.index === 3).matches).toEqual([{ kind: 'opaque', negated: false, module: 'frag', text: '-m frag --fragmore' }])
  })
})
