// Text and JSON renderings of one real kernel state parse to the same model. The state is built by
// fixtures/lab/build-lab.sh in nl-parse-* network namespaces: on every run when root (live), and once recorded in
// fixtures/lab/ (see its README) so the same checks run where root is not available.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Diagnostic } from '../../src/model/evidence.js'
import { formatIp } from '../../src/model/ip.js'
import { makeContext, type ParseContext } from '../../src/parse/context.js'
import { parseConntrack, parseConntrackStats } from '../../src/parse/conntrack.js'
import { parseIpAddr } from '../../src/parse/ip-addr.js'
import { parseIpRoutes } from '../../src/parse/ip-route.js'
import { formatIpRule, parseIpRules } from '../../src/parse/ip-rule.js'
import { parseNftRuleset } from '../../src/parse/nft.js'
import { parseSysctl } from '../../src/parse/sysctl.js'
import { interfaceView, labUnavailable, readFixture, routeView, runLab, tableView, type Lab } from './fixtures/lab/compare.js'

function parsed<T>(parse: (text: string, ctx: ParseContext) => T, text: string, name: string, hints: { family?: 4 | 6; table?: string } = {}): { value: T; diagnostics: Diagnostic[] } {
  const ctx = makeContext(name, hints)
  return { value: parse(text, ctx), diagnostics: ctx.sink.items }
}

/** Diagnostics on the lab outputs that are deliberate (each one says why in the nft tests). */
const expectedNftWarnings = (d: Diagnostic): boolean =>
  d.code === 'nft.unknown-expression' && /several statements|iptables extension|iptables-nft (match|target) as blank/.test(d.message) || d.severity === 'info'

function sameStateChecks(read: () => (name: string) => string): void {
  it('ip rule and ip -j rule (IPv4 and IPv6) give the same rules, without diagnostics', () => {
    for (const [t, j, family] of [['ip-rule.txt', 'ip-rule.json', 4], ['ip-6-rule.txt', 'ip-6-rule.json', 6]] as const) {
      const a = parsed(parseIpRules, read()(t), t, { family })
      const b = parsed(parseIpRules, read()(j), j, { family })
      expect(a.diagnostics).toEqual([])
      expect(b.diagnostics).toEqual([])
      expect(b.value.map(formatIpRule)).toEqual(a.value.map(formatIpRule))
      expect(a.value.length).toBeGreaterThan(3)
    }
  })
  it('ip route show table all / table 2, text and JSON, give the same routes', () => {
    for (const [t, j, hints] of [['ip-route-all.txt', 'ip-route-all.json', {}], ['ip-6-route-all.txt', 'ip-6-route-all.json', { family: 6 as const }], ['ip-route-table-2.txt', 'ip-route-table-2.json', { table: '2' }]] as const) {
      const a = parsed(parseIpRoutes, read()(t), t, hints)
      const b = parsed(parseIpRoutes, read()(j), j, hints)
      expect(a.diagnostics).toEqual([])
      expect(b.diagnostics).toEqual([])
      expect(routeView(b.value)).toEqual(routeView(a.value))
    }
  })
  it('ip -d addr / ip -d link, text and JSON, give the same interfaces', () => {
    for (const [t, j] of [['ip-d-addr.txt', 'ip-d-addr.json'], ['ip-d-link.txt', 'ip-d-link.json']]) {
      const a = parsed(parseIpAddr, read()(t), t!)
      const b = parsed(parseIpAddr, read()(j!), j!)
      expect(a.diagnostics.filter((d) => d.severity !== 'info')).toEqual([])
      expect(b.diagnostics).toEqual([])
      expect(interfaceView(b.value)).toEqual(interfaceView(a.value))
    }
  })
  it('ip -o addr reads the same addresses as ip addr', () => {
    const full = parsed(parseIpAddr, read()('ip-addr.txt'), 'ip-addr.txt')
    const one = parsed(parseIpAddr, read()('ip-o-addr.txt'), 'ip-o-addr.txt')
    expect(one.diagnostics.filter((d) => d.severity !== 'info')).toEqual([])
    const addrs = (v: typeof full.value) => v.flatMap((i) => i.addresses.map((a) => `${i.name} ${formatIp(a.address)}/${a.prefix} ${a.scope ?? ''} ${a.secondary}`)).sort()
    expect(addrs(one.value)).toEqual(addrs(full.value))
  })
  it('nft list ruleset and nft -j list ruleset give the same native tables', () => {
    const a = parsed(parseNftRuleset, read()('nft-list-ruleset.txt'), 'nft-list-ruleset.txt')
    const b = parsed(parseNftRuleset, read()('nft-list-ruleset.json'), 'nft-list-ruleset.json')
    expect(a.diagnostics.filter((d) => !expectedNftWarnings(d))).toEqual([])
    expect(b.diagnostics.filter((d) => !expectedNftWarnings(d))).toEqual([])
    const skip = new Set(['ip nat'])
    expect(tableView(b.value, skip)).toEqual(tableView(a.value, skip))
    expect(a.value.map((t) => `${t.family} ${t.name}`)).toEqual(['ip aws-cni', 'ip kube-proxy', 'inet lab', 'ip6 lab6', 'ip nat'])
  })
  it('iptables-nft table: the JSON names its extensions only, and each is flagged, never dropped', () => {
    const b = parsed(parseNftRuleset, read()('nft-list-ruleset.json'), 'nft-list-ruleset.json')
    const nat = b.value.find((t) => t.name === 'nat')!
    const kp = nat.chains.get('KUBE-POSTROUTING')!
    expect(kp.rules.map((r) => r.target.kind)).toEqual(['return', 'opaque', 'opaque'])
    expect(b.diagnostics.filter((d) => /iptables extension (MARK|MASQUERADE)/.test(d.message))).toHaveLength(2)
  })
  it('conntrack -L and conntrack -L -o extended list the same flows', () => {
    const a = parsed(parseConntrack, read()('conntrack-L.txt'), 'conntrack-L.txt')
    const b = parsed(parseConntrack, read()('conntrack-L-extended.txt'), 'conntrack-L-extended.txt')
    expect(a.diagnostics).toEqual([])
    expect(b.diagnostics).toEqual([])
    const view = (v: typeof a.value) => v.map(({ ref: _r, timeout: _t, ...e }) => JSON.stringify(e, (_k, x) => (typeof x === 'bigint' ? String(x) : x))).sort()
    expect(view(b.value)).toEqual(view(a.value))
    // The TCP exchange from 192.168.50.1 to 10.0.0.1:8080 was masqueraded to eth0's address.
    const tcp = a.value.find((e) => e.proto === 'tcp' && e.orig.dport === 8080)!
    expect(formatIp(tcp.orig.src)).toBe('192.168.50.1')
    expect(formatIp(tcp.reply.dst)).toBe('10.0.3.45')
    expect(tcp.flags).toContain('ASSURED')
    expect(tcp.counters!.origPackets).toBeGreaterThan(0)
    const v6 = parsed(parseConntrack, read()('conntrack-L-ipv6.txt'), 'conntrack-L-ipv6.txt')
    expect(v6.value.every((e) => e.family === 6)).toBe(true)
    expect(v6.value.find((e) => e.proto === 'tcp')!.zone).toBe(3)
    expect(v6.value.find((e) => e.proto === 'icmpv6')!.orig.icmp).toEqual({ type: 128, code: 0, id: 9 })
    const stats = parsed(parseConntrackStats, read()('conntrack-S.txt'), 'conntrack-S.txt')
    expect(stats.diagnostics).toEqual([])
    expect(stats.value.length).toBeGreaterThan(0)
    expect(stats.value.reduce((n, s) => n + (s.counters['insert'] ?? 0), 0)).toBeGreaterThan(0)
  })
  it('sysctl -a', () => {
    const s = parsed(parseSysctl, read()('sysctl-a.txt'), 'sysctl-a.txt')
    expect(s.diagnostics).toEqual([])
    expect(s.value.find((x) => x.name === 'net.ipv4.ip_forward')!.value).toBe('1')
    expect(s.value.find((x) => x.name === 'net.netfilter.nf_conntrack_acct')!.value).toBe('1')
  })
}

describe('recorded lab outputs (fixtures/lab)', () => {
  sameStateChecks(() => readFixture)
})

const why = labUnavailable()
if (why) console.log(`live lab skipped: ${why}`)
describe.skipIf(why !== undefined)('live lab on this machine (nl-parse-* namespaces)', () => {
  let lab: Lab | undefined
  beforeAll(() => { lab = runLab() })
  afterAll(() => { lab?.remove() })
  sameStateChecks(() => (name) => lab!.read(name))
})
