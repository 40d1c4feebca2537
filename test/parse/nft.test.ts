import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { formatCidr, formatIp } from '../../src/model/ip.js'
import type { Rule, Table } from '../../src/model/netfilter.js'
import { makeContext } from '../../src/parse/context.js'
import { looksLikeNft, parseNftRuleset, priorityValue } from '../../src/parse/nft.js'
import { looksLikeIpRule } from '../../src/parse/ip-rule.js'
import { looksLikeIpRoute } from '../../src/parse/ip-route.js'
import { looksLikeConntrack } from '../../src/parse/conntrack.js'
import { tableView } from './fixtures/lab/compare.js'

const shared = (p: string): string => readFileSync(new URL(`../../../shared/${p}`, import.meta.url), 'utf8')
const fixture = (p: string): string => readFileSync(new URL(`./fixtures/${p}`, import.meta.url), 'utf8')

function parse(text: string, name = 'nft.txt') {
  const ctx = makeContext(name)
  const tables = parseNftRuleset(text, ctx)
  return { tables, diagnostics: ctx.sink.items }
}
const table = (tables: Table[], family: string, name: string): Table => tables.find((t) => t.family === family && t.name === name)!
const rules = (t: Table, chain: string): Rule[] => t.chains.get(chain)!.rules

describe('VPC CNI v1.23 table ip aws-cni (default-ipv4 example)', () => {
  const { tables, diagnostics } = parse(shared('examples/node-states/default-ipv4/nft-list-table-ip-aws-cni.v1.23-nft-host.txt'), 'nft-list-table-ip-aws-cni.txt')
  const t = table(tables, 'ip', 'aws-cni')
  it('parses without diagnostics, as one native table', () => {
    expect(diagnostics).toEqual([])
    expect(tables).toHaveLength(1)
    expect(t.origin).toBe('nft')
  })
  it('nat-prerouting is a nat base chain on prerouting at priority -90 (after kube-proxy DNAT)', () => {
    const c = t.chains.get('nat-prerouting')!
    expect(c).toMatchObject({ type: 'nat', hook: 'prerouting', priority: -90, policy: 'accept' })
    expect(t.chains.get('snat-mark')!.hook).toBeUndefined()
  })
  it('its rules map to addrtype LOCAL return, iifname eni* jump snat-mark, and mark-from-ct', () => {
    const [local, eni, restore] = rules(t, 'nat-prerouting')
    expect(local!.matches).toEqual([{ kind: 'addrtype', which: 'dst', negated: false, types: ['LOCAL'] }])
    expect(local!.target).toEqual({ kind: 'return' })
    expect(eni!.matches).toEqual([{ kind: 'in-iface', negated: false, name: 'eni', wildcard: true }])
    expect(eni!.target).toEqual({ kind: 'jump', chain: 'snat-mark', goto: false })
    expect(eni!.counters).toEqual({ packets: 1873n, bytes: 112380n })
    expect(restore!.target).toEqual({ kind: 'mark-from-ct', and: 0x80, or: 0, xor: 0 })
    expect(restore!.ref).toMatchObject({ artifact: 'nft-list-table-ip-aws-cni.txt', line: 6, text: 'counter packets 50211 bytes 3012660 meta mark set ct mark & 0x00000080' })
  })
  it('snat-mark returns for the VPC CIDR and sets connmark bit 0x80 otherwise', () => {
    const [vpc, mark] = rules(t, 'snat-mark')
    expect(vpc!.matches).toHaveLength(1)
    expect(formatCidr((vpc!.matches[0] as { cidr: Parameters<typeof formatCidr>[0] }).cidr)).toBe('10.0.0.0/16')
    expect(vpc!.target).toEqual({ kind: 'return' })
    expect(mark!.target).toEqual({ kind: 'ctmark-expr', and: 0xffffffff, or: 0x80, xor: 0 })
  })
})

describe("kube-proxy's nftables transaction (TestOverallNFTablesRules)", () => {
  const { tables, diagnostics } = parse(shared('examples/kube-proxy/nft-transaction.TestOverallNFTablesRules.txt'), 'nft-transaction.txt')
  const t = table(tables, 'ip', 'kube-proxy')
  it('parses without diagnostics', () => expect(diagnostics).toEqual([]))
  it('base chains get their hooks and numeric priorities', () => {
    expect(t.chains.get('filter-prerouting-pre-dnat')).toMatchObject({ type: 'filter', hook: 'prerouting', priority: -110 })
    expect(t.chains.get('nat-postrouting')).toMatchObject({ type: 'nat', hook: 'postrouting', priority: 100 })
    expect(t.chains.get('nat-prerouting')).toMatchObject({ type: 'nat', hook: 'prerouting', priority: -100 })
  })
  it('sets and verdict maps hold the elements added later in the transaction', () => {
    expect(t.sets.get('service-ips')).toMatchObject({ kind: 'map', keyType: 'ipv4_addr . inet_proto . inet_service', dataType: 'verdict' })
    const svc = t.sets.get('service-ips')!.elements.map((e) => `${e.key.join(' . ')} : ${e.value}`)
    expect(svc).toContain('172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80')
    expect(svc).toContain('5.6.7.8 . tcp . 80 : goto external-HVFWP5L3-ns5/svc5/tcp/p80')
    expect(t.sets.get('cluster-ips')!.elements.map((e) => e.key[0])).toEqual(['172.30.0.41', '172.30.0.42', '172.30.0.43', '172.30.0.44', '172.30.0.45', '172.30.0.46'])
    // Per-element comments are not part of the key.
    expect(t.sets.get('no-endpoint-nodeports')!.elements[0]).toMatchObject({ key: ['tcp', '3001'], value: 'drop' })
  })
  it('services: vmap over ip daddr . meta l4proto . th dport, and the nodeport set lookup', () => {
    const [ips, nodeports] = rules(t, 'services')
    expect(ips!.target).toEqual({ kind: 'vmap', keys: ['ip daddr', 'meta l4proto', 'th dport'], map: 'service-ips' })
    expect(nodeports!.matches).toEqual([{ kind: 'nft-set', negated: false, keys: ['ip daddr'], set: 'nodeport-ips' }])
    expect(nodeports!.target).toEqual({ kind: 'vmap', keys: ['meta l4proto', 'th dport'], map: 'service-nodeports' })
  })
  it('numgen random mod 2 vmap picks one of two endpoints', () => {
    const r = rules(t, 'service-LAUZTJTB-ns4/svc4/tcp/p80')[1]!
    expect(r.target).toEqual({ kind: 'numgen-vmap', modulus: 2, choices: [
      { index: 0, chain: 'endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80', goto: true },
      { index: 1, chain: 'endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80', goto: true },
    ] })
  })
  it('masquerade marking in the transaction syntax (`mark and 0x4000 == 0`, `mark set mark or 0x4000`)', () => {
    expect(rules(t, 'mark-for-masquerade')[0]!.target).toEqual({ kind: 'mark', value: 0x4000, mask: 0x4000 })
    const [ret, xor, masq] = rules(t, 'masquerading')
    expect(ret!.matches).toEqual([{ kind: 'mark', negated: false, value: 0, mask: 0x4000 }])
    expect(xor!.target).toEqual({ kind: 'mark', value: 0x4000, mask: 0 })
    expect(masq!.target).toEqual({ kind: 'masquerade', random: false, randomFully: true })
  })
  it('endpoint chains: hairpin mark, affinity update (passive), dnat to endpoint', () => {
    const [hairpin, update, dnat] = rules(t, 'endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80')
    expect(hairpin!.target).toEqual({ kind: 'jump', chain: 'mark-for-masquerade', goto: false })
    expect(update!.target).toEqual({ kind: 'passive', name: 'update set' })
    expect(dnat!.matches).toEqual([{ kind: 'protocol', negated: false, protocol: 'tcp' }])
    expect(dnat!.target.kind).toBe('dnat')
    const to = (dnat!.target as unknown as { to: { minAddr: Parameters<typeof formatIp>[0]; ports: unknown }[] }).to[0]!
    expect(formatIp(to.minAddr)).toBe('10.180.0.3')
    expect(to.ports).toEqual({ from: 80, to: 80 })
  })
  it('external chains: fib saddr type local, comments, goto', () => {
    const [pod, local] = rules(t, 'external-42NFTM6N-ns2/svc2/tcp/p80')
    expect(pod!.target).toEqual({ kind: 'jump', chain: 'service-42NFTM6N-ns2/svc2/tcp/p80', goto: true })
    expect(pod!.comment).toBe('short-circuit pod traffic')
    expect(local!.matches[0]).toEqual({ kind: 'addrtype', which: 'src', negated: false, types: ['LOCAL'] })
  })
  it('a single-element anonymous set is a plain address match; `!= { … }` negates it', () => {
    expect(rules(t, 'cluster-ips-check')[1]!.matches[0]).toMatchObject({ kind: 'dst', negated: false })
    expect(rules(t, 'firewall-HVFWP5L3-ns5/svc5/tcp/p80')[0]!.matches[0]).toMatchObject({ kind: 'src', negated: true })
  })
})

describe('the lab ruleset recorded on this machine (nft list ruleset)', () => {
  const { tables, diagnostics } = parse(fixture('lab/nft-list-ruleset.txt'), 'nft-list-ruleset.txt')
  const lab = table(tables, 'inet', 'lab')
  it('named priorities: dstnat, srcnat - 10, filter + 5, mangle; dstnat + 10 for aws-cni', () => {
    expect(lab.chains.get('prerouting')!.priority).toBe(-100)
    expect(lab.chains.get('postrouting')!.priority).toBe(90)
    expect(lab.chains.get('forward')).toMatchObject({ priority: 5, policy: 'drop', type: 'filter', hook: 'forward' })
    expect(lab.chains.get('output')).toMatchObject({ priority: -150, type: 'route' })
    expect(table(tables, 'ip', 'aws-cni').chains.get('nat-prerouting')!.priority).toBe(-90)
  })
  it('NAT statements with flags', () => {
    const post = rules(lab, 'postrouting')
    expect(post[0]!.target).toEqual({ kind: 'masquerade', random: false, randomFully: true })
    expect(post[2]!.target).toMatchObject({ kind: 'snat', random: true, persistent: true, randomFully: false })
    expect(post[3]!.matches).toContainEqual({ kind: 'out-iface', negated: true, name: 'eth0', wildcard: false })
    const v6 = rules(table(tables, 'ip6', 'lab6'), 'postrouting')[0]!.target as unknown as { kind: string; to: { minAddr: Parameters<typeof formatIp>[0] }[] }
    expect(formatIp(v6.to[0]!.minAddr)).toBe('2600:1f14:8a1:5c00:4b1e:9d2a:7c3f:10e2')
  })
  it('anonymous sets are stored in the table and referred to by name', () => {
    const r = rules(lab, 'forward')[4]!
    const m = r.matches[0] as { kind: string; set: string; negated: boolean }
    expect(m).toMatchObject({ kind: 'nft-set', negated: true })
    expect(lab.sets.get(m.set)).toMatchObject({ anonymous: true, kind: 'set' })
    expect(lab.sets.get(m.set)!.elements.map((e) => e.key[0])).toEqual(['10.0.0.0/8', '192.168.0.0/16'])
  })
  it('mark arithmetic: connmark match, mark set, mark from ct, connmark save', () => {
    const [a, b, c] = rules(lab, 'output')
    expect(a!.matches).toEqual([{ kind: 'connmark', negated: false, value: 0x80, mask: 0x80 }])
    expect(a!.target).toEqual({ kind: 'mark', value: 0x80, mask: 0xffffffff })
    expect(b!.target).toEqual({ kind: 'mark-from-ct', and: 0xffffffff, or: 0, xor: 0 })
    expect(c!.target).toEqual({ kind: 'connmark-save', nfmask: 0xffffffff, ctmask: 0xffffffff })
  })
  it('deliberate gaps are flagged, never dropped', () => {
    // `ct mark set 0x80 accept`: two effects in one rule; the model holds one target per rule.
    const twoEffects = rules(lab, 'forward')[2]!
    expect(twoEffects.target).toMatchObject({ kind: 'opaque', name: 'statements' })
    // nft 1.0.6 prints iptables-nft's untranslatable `-m comment` as a blank (leading space): an opaque xt match.
    const natPost = rules(table(tables, 'ip', 'nat'), 'POSTROUTING')[0]!
    expect(natPost.matches).toContainEqual(expect.objectContaining({ kind: 'opaque', module: 'xt' }))
    expect(diagnostics.filter((d) => d.severity !== 'info').map((d) => d.message)).toEqual([
      'rule with several statements (ct mark set 0x00000080 accept) is not modelled as one target',
      'nft printed an iptables-nft match as blank; read this table from iptables-nft-save instead',
      'nft printed an iptables-nft match as blank; read this table from iptables-nft-save instead',
    ])
  })
})

describe('iptables-nft tables as nft prints them', () => {
  it('reads translated expressions and flags `xt` ones', () => {
    const text = [
      '# Warning: table ip nat is managed by iptables-nft, do not touch!',
      'table ip nat {',
      '\tchain POSTROUTING {',
      '\t\ttype nat hook postrouting priority srcnat; policy accept;',
      '\t\tip saddr 10.0.3.0/24 oifname "eth0" xt match "policy" counter packets 0 bytes 0 accept',
      '\t\tmeta l4proto tcp counter packets 19 bytes 3653 xt target "MASQUERADE"',
      '\t\toifname != "vlan*" fib daddr type != local counter packets 0 bytes 0 snat to 10.0.3.45 fully-random',
      '\t\ttcp dport 80 meta random & 2147483647 < 1073741824 counter packets 0 bytes 0 dnat to 10.1.1.1:8080',
      '\t}',
      '}',
    ].join('\n')
    const { tables, diagnostics } = parse(text)
    const r = rules(tables[0]!, 'POSTROUTING')
    expect(r[0]!.matches).toContainEqual({ kind: 'opaque', negated: false, module: 'policy', text: 'xt match "policy"' })
    expect(r[0]!.target).toEqual({ kind: 'accept' })
    expect(r[1]!.target).toEqual({ kind: 'opaque', name: 'MASQUERADE', text: 'xt target "MASQUERADE"' })
    expect(r[2]!.matches).toEqual([
      { kind: 'out-iface', negated: true, name: 'vlan', wildcard: true },
      { kind: 'addrtype', which: 'dst', negated: true, types: ['LOCAL'] },
    ])
    expect(r[2]!.target).toMatchObject({ kind: 'snat', randomFully: true })
    expect(r[3]!.matches).toContainEqual({ kind: 'statistic-random', negated: false, probability: 0.5 })
    expect(diagnostics.filter((d) => d.code === 'nft.unknown-expression').map((d) => d.line)).toEqual([5, 6])
    expect(diagnostics.find((d) => d.code === 'nft.iptables-nft-table')).toBeDefined()
  })
})

describe('unknown constructs', () => {
  it('stay in the rule as opaque parts with a diagnostic naming the line; the verdict after them is read', () => {
    const { tables, diagnostics } = parse('table ip t {\n\tchain c {\n\t\tsocket transparent 1 meta mark set 0x1 accept\n\t\tosf name "Linux" drop\n\t}\n}\n')
    const [a, b] = rules(tables[0]!, 'c')
    expect(a!.matches.some((m) => m.kind === 'opaque')).toBe(true)
    expect(b!.matches[0]).toMatchObject({ kind: 'opaque' })
    expect(b!.target).toEqual({ kind: 'drop' })
    expect(diagnostics.filter((d) => d.code === 'nft.unknown-expression').map((d) => d.line)).toContain(4)
  })
  it('never throw on arbitrary text, arbitrary rule bodies, or arbitrary JSON', () => {
    fc.assert(fc.property(fc.string(), (s) => { parse(s); parse(`table ip t {\n chain c {\n ${s}\n }\n}`); parse(`add rule ip t c ${s}`); looksLikeNft(s); return true }), { numRuns: 500 })
    const words = fc.constantFrom('ip', 'daddr', 'saddr', '@s', '{', '}', ',', '.', ':', 'meta', 'mark', 'set', 'ct', 'state', 'new', '&', '|', '^', '0x80', '10.0.0.0/8', 'vmap', 'goto', 'x', 'numgen', 'random', 'mod', '2', 'snat', 'to', '[::1]:80', 'tcp', 'dport', '!=', 'fib', 'type', 'local', 'counter', 'packets', 'jump', 'accept', '"eni*"', 'iifname', 'xt', 'comment', 'reject', 'with')
    fc.assert(fc.property(fc.array(words, { maxLength: 20 }), (ws) => { parse(`table inet t {\n\tchain c {\n\t\t${ws.join(' ')}\n\t}\n}`); return true }), { numRuns: 1000 })
    fc.assert(fc.property(fc.json(), (j) => { parse(`{"nftables": [${j}]}`); parse(j); return true }), { numRuns: 300 })
    fc.assert(fc.property(fc.anything(), (x) => {
      parse(JSON.stringify({ nftables: [{ table: { family: 'ip', name: 't' } }, { chain: { family: 'ip', table: 't', name: 'c' } }, { rule: { family: 'ip', table: 't', chain: 'c', expr: [x] } }] }) ?? '')
      return true
    }), { numRuns: 300 })
  })
})

describe('priorities', () => {
  it.each([[['-90'], -90], [['dstnat'], -100], [['dstnat', '+', '10'], -90], [['srcnat', '-', '10'], 90], [['filter'], 0], [['mangle'], -150], [['raw'], -300], [['security'], 50]] as const)('%j = %d', (p, n) => {
    expect(priorityValue(p)).toBe(n)
  })
  it('refuses unknown names', () => expect(priorityValue(['bogus'])).toBeUndefined())
})

describe('JSON rendering', () => {
  it('nft -j list ruleset gives the same native tables as the text (recorded lab)', () => {
    const a = parse(fixture('lab/nft-list-ruleset.txt'))
    const b = parse(fixture('lab/nft-list-ruleset.json'), 'nft.json')
    expect(tableView(b.tables, new Set(['ip nat']))).toEqual(tableView(a.tables, new Set(['ip nat'])))
  })
})

describe('sniffer', () => {
  it('recognises nft text, JSON and transactions, and nothing else', () => {
    expect(looksLikeNft(shared('examples/node-states/default-ipv4/nft-list-table-ip-aws-cni.v1.23-nft-host.txt'))).toBe(true)
    expect(looksLikeNft(shared('examples/kube-proxy/nft-transaction.TestOverallNFTablesRules.txt'))).toBe(true)
    expect(looksLikeNft(fixture('lab/nft-list-ruleset.json'))).toBe(true)
    for (const f of ['default-ipv4/iptables-save-nat.txt', 'default-ipv4/iptables-save-nat.v1.23-nft-host.txt', 'default-ipv4/ip-rule.txt', 'default-ipv4/ip-route-all.txt', 'default-ipv4/10-aws.conflist', 'default-ipv4/iptables-nvL-nat.AWS-part.txt']) {
      expect(looksLikeNft(shared(`examples/node-states/${f}`)), f).toBe(false)
    }
    expect(looksLikeNft(shared('examples/kube-proxy/iptables-restore-input.TestOverallIPTablesRules.txt'))).toBe(false)
    const nftText = shared('examples/node-states/default-ipv4/nft-list-table-ip-aws-cni.v1.23-nft-host.txt')
    expect(looksLikeIpRule(nftText) || looksLikeIpRoute(nftText) || looksLikeConntrack(nftText)).toBe(false)
  })
})
