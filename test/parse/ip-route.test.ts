import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { formatCidr, formatIp, parseCidr, parseIp } from '../../src/model/ip.js'
import type { Route } from '../../src/model/routing.js'
import { makeContext } from '../../src/parse/context.js'
import { formatIpRoute, looksLikeIpRoute, parseIpRoutes } from '../../src/parse/ip-route.js'
import { looksLikeIpRule } from '../../src/parse/ip-rule.js'
import { looksLikeIpAddr } from '../../src/parse/ip-addr.js'

const shared = (p: string): string => readFileSync(new URL(`../../../shared/${p}`, import.meta.url), 'utf8')
const fixture = (p: string): string => readFileSync(new URL(`./fixtures/${p}`, import.meta.url), 'utf8')

function parse(text: string, hints: { family?: 4 | 6; table?: string } = {}) {
  const ctx = makeContext('ip-route.txt', hints)
  return { routes: parseIpRoutes(text, ctx), diagnostics: ctx.sink.items }
}
const find = (routes: Route[], table: string, dst: string, type = 'unicast'): Route[] => routes.filter((r) => r.table === table && formatCidr(r.dst) === dst && r.type === type)

describe('ip route show table all on the example node states', () => {
  it.each(['default-ipv4', 'externalsnat-true', 'sgp-standard', 'ipv6-egress-v4'])('%s parses without diagnostics', (s) => {
    const { routes, diagnostics } = parse(shared(`examples/node-states/${s}/ip-route-all.txt`))
    expect(diagnostics).toEqual([])
    expect(routes.length).toBeGreaterThan(5)
  })
  it('default-ipv4: table 2 default via 10.0.0.1 dev eth1, main default via eth0, local table entries', () => {
    const { routes } = parse(shared('examples/node-states/default-ipv4/ip-route-all.txt'))
    const t2 = find(routes, '2', '0.0.0.0/0')[0]!
    expect(formatIp(t2.via!)).toBe('10.0.0.1')
    expect(t2.dev).toBe('eth1')
    expect(t2.ref.line).toBe(1)
    expect(find(routes, '2', '10.0.0.1/32')[0]).toMatchObject({ dev: 'eth1', scope: 'link' })
    expect(find(routes, 'main', '0.0.0.0/0')[0]!.dev).toBe('eth0')
    expect(find(routes, 'main', '10.0.9.88/32')[0]).toMatchObject({ dev: 'enie90ff0f6268', scope: 'link' })
    const local = find(routes, 'local', '10.0.3.45/32', 'local')[0]!
    expect(local).toMatchObject({ dev: 'eth0', proto: 'kernel', scope: 'host' })
    expect(formatIp(local.src!)).toBe('10.0.3.45')
    expect(find(routes, 'local', '10.0.15.255/32', 'broadcast')).toHaveLength(2)
    expect(routes.every((r) => r.family === 4)).toBe(true)
  })
  it('sgp-standard: branch ENI tables 101/102 route through vlan.eth.N', () => {
    const { routes } = parse(shared('examples/node-states/sgp-standard/ip-route-all.txt'))
    expect(find(routes, '101', '0.0.0.0/0')[0]!.dev).toBe('vlan.eth.1')
    expect(find(routes, '102', '0.0.0.0/0')[0]!.dev).toBe('vlan.eth.2')
  })
  it('ipv6-egress-v4: ip -6 route with proto ra, expires, hoplimit and pref', () => {
    const { routes, diagnostics } = parse(shared('examples/node-states/ipv6-egress-v4/ip-6-route-main-abridged.txt'))
    expect(diagnostics).toEqual([])
    expect(routes.every((r) => r.family === 6)).toBe(true)
    const def = find(routes, 'main', '::/0')[0]!
    expect(def).toMatchObject({ dev: 'eth0', proto: 'ra', metric: 1024 })
    expect(formatIp(def.via!)).toBe('fe80::4a:8fff:fe2c:1a01')
    expect(find(routes, 'main', '2600:1f14:8a1:5c00:9b3e::1/128')[0]!.dev).toBe('eni212428e8e5c')
  })
  it('pod-side listings (ip route, ip -6 route inside the web pod)', () => {
    const v4 = parse(shared('examples/node-states/ipv6-egress-v4/pod-web-ip-route.txt'))
    expect(v4.diagnostics).toEqual([])
    expect(formatIp(find(v4.routes, 'main', '0.0.0.0/0')[0]!.via!)).toBe('169.254.172.1')
    expect(formatIp(find(v4.routes, 'main', '169.254.172.0/22')[0]!.src!)).toBe('169.254.172.2')
    const v6 = parse(shared('examples/node-states/ipv6-egress-v4/pod-web-ip-6-route.txt'))
    expect(v6.diagnostics).toEqual([])
    expect(formatIp(find(v6.routes, 'main', '::/0')[0]!.via!)).toBe('fe80::1')
  })
})

describe('every route type and attribute (recorded lab, ip route show table all)', () => {
  const { routes, diagnostics } = parse(fixture('lab/ip-route-all.txt'))
  it('no diagnostics; IPv4 and IPv6 in one listing', () => {
    expect(diagnostics).toEqual([])
    expect(routes.some((r) => r.family === 6)).toBe(true)
  })
  it('types', () => {
    for (const [t, dst] of [['blackhole', '192.0.2.1/32'], ['throw', '192.0.2.3/32'], ['local', '192.0.2.4/32'], ['broadcast', '192.0.2.255/32'], ['anycast', '192.0.2.6/32'], ['multicast', '224.1.0.0/16']]) {
      expect(find(routes, '5', dst!, t), `${t} ${dst}`).toHaveLength(1)
    }
    expect(find(routes, 'main', '192.0.2.0/24', 'unreachable')).toHaveLength(1)
    expect(find(routes, 'main', '192.0.2.2/32', 'prohibit')[0]!.metric).toBe(7)
    expect(find(routes, '9', '2001:db8:7::/64', 'blackhole')).toHaveLength(1)
    expect(find(routes, 'local', 'ff00::/8', 'multicast').length).toBeGreaterThan(0)
  })
  it('multipath with weights (continuation lines)', () => {
    const mp = find(routes, 'main', '198.51.100.0/24')[0]!
    expect(mp).toMatchObject({ proto: 'static', metric: 100 })
    expect(mp.nexthops!.map((h) => [formatIp(h.via!), h.dev, h.weight])).toEqual([['10.0.0.1', 'eth0', 1], ['10.0.0.2', 'eth1', 3]])
    expect(find(routes, 'main', '2001:db8:5::/64')[0]!.nexthops).toHaveLength(2)
  })
  it('tos, onlink, src, via inet6 on an IPv4 route, default IPv6 route with pref', () => {
    const r = find(routes, 'main', '198.51.101.0/24')[0]!
    expect(r).toMatchObject({ tos: 0x10, onlink: true, dev: 'eth0' })
    expect(formatIp(r.src!)).toBe('10.0.3.45')
    const v = find(routes, 'main', '203.0.113.0/24')[0]!
    expect(v.family).toBe(4)
    expect(formatIp(v.via!)).toBe('fe80::1')
    expect(find(routes, 'main', '::/0')[0]!.metric).toBe(1024)
  })
  it('a single-table listing takes its table from the context', () => {
    const t2 = parse(fixture('lab/ip-route-table-2.txt'), { table: '2' })
    expect(t2.diagnostics).toEqual([])
    expect(t2.routes.map((r) => r.table)).toEqual(['2', '2'])
    const main = parse(fixture('lab/ip-route-main.txt'))
    expect(main.routes.every((r) => r.table === 'main')).toBe(true)
  })
})

describe('bad input', () => {
  it('flags unknown words and bad destinations, keeps going', () => {
    const { routes, diagnostics } = parse('10.0.0.0/8 dev eth0 wibble 3\nnot-a-route\n10.1.0.0/16 dev eth1\n')
    expect(routes.map((r) => formatCidr(r.dst))).toEqual(['10.0.0.0/8', '10.1.0.0/16'])
    // An unknown word's arity is unknown too: `wibble` and `3` are each flagged.
    expect(diagnostics.map((d) => [d.code, d.line])).toEqual([['ip-route.unknown-attribute', 1], ['ip-route.unknown-attribute', 1], ['ip-route.bad-value', 2]])
  })
  it('never throws', () => {
    fc.assert(fc.property(fc.string(), (s) => { parse(s); parse(`default ${s}`); parse(`10.0.0.0/8 dev x\n\t${s}`); parse(`[${s}`); looksLikeIpRoute(s); return true }))
    fc.assert(fc.property(fc.json(), (j) => { parse(j); parse(`[${j}]`); return true }))
  })
})

describe('sniffer', () => {
  it('routes yes, rules/addresses/iptables no', () => {
    expect(looksLikeIpRoute(shared('examples/node-states/default-ipv4/ip-route-all.txt'))).toBe(true)
    expect(looksLikeIpRoute(shared('examples/node-states/ipv6-egress-v4/ip-6-route-main-abridged.txt'))).toBe(true)
    expect(looksLikeIpRoute(fixture('lab/ip-route-all.json'))).toBe(true)
    expect(looksLikeIpRoute(shared('examples/node-states/default-ipv4/ip-rule.txt'))).toBe(false)
    expect(looksLikeIpRoute(shared('examples/node-states/default-ipv4/iptables-save-nat.txt'))).toBe(false)
    expect(looksLikeIpRoute(fixture('lab/ip-d-addr.txt'))).toBe(false)
    expect(looksLikeIpRoute(fixture('lab/ip-rule.json'))).toBe(false)
    expect(looksLikeIpRule(fixture('lab/ip-route-all.txt'))).toBe(false)
    expect(looksLikeIpAddr(fixture('lab/ip-route-all.txt'))).toBe(false)
  })
})

describe('round trip: random routes printed as ip route text parse back', () => {
  const v4 = fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 1, max: 32 }))
    .map(([n, p]) => parseCidr(`${[n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')}/${p}`)!)
  const ip4 = fc.integer({ min: 1, max: 0xfffffffe }).map((n) => parseIp([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.'))!)
  const route = fc.record({
    type: fc.constantFrom('unicast', 'local', 'broadcast', 'unreachable', 'blackhole', 'prohibit', 'throw', 'anycast', 'multicast'),
    dst: v4, table: fc.constantFrom('main', 'local', '2', '101'), metric: fc.integer({ min: 0, max: 100000 }),
    dev: fc.option(fc.constantFrom('eth0', 'eth1', 'vlan.eth.1'), { nil: undefined }), via: fc.option(ip4, { nil: undefined }),
    src: fc.option(ip4, { nil: undefined }), scope: fc.option(fc.constantFrom('link', 'host'), { nil: undefined }),
    proto: fc.option(fc.constantFrom('kernel', 'static', 'boot'), { nil: undefined }), onlink: fc.boolean(), linkdown: fc.boolean(),
  }, { requiredKeys: ['type', 'dst', 'table', 'metric', 'onlink', 'linkdown'] })
  it('parses back to the same route', () => {
    fc.assert(fc.property(route, (r) => {
      const full = { family: 4, ...Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) } as unknown as Route
      const { routes, diagnostics } = parse(formatIpRoute(full))
      expect(diagnostics).toEqual([])
      const { ref: _ref, ...back } = routes[0]!
      expect(back).toEqual(full)
    }), { numRuns: 300 })
  })
})
