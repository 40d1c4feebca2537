import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { formatCidr, parseCidr } from '../../src/model/ip.js'
import type { RoutingRule } from '../../src/model/routing.js'
import { makeContext } from '../../src/parse/context.js'
import { formatIpRule, looksLikeIpRule, parseIpRules } from '../../src/parse/ip-rule.js'

// <repo root>/../shared, wherever the repo is cloned.
const shared = (p: string): string => readFileSync(new URL(`../../../shared/${p}`, import.meta.url), 'utf8')
const fixture = (p: string): string => readFileSync(new URL(`./fixtures/${p}`, import.meta.url), 'utf8')

function parse(text: string, hints: { family?: 4 | 6 } = {}) {
  const ctx = makeContext('ip-rule.txt', hints)
  const rules = parseIpRules(text, ctx)
  return { rules, diagnostics: ctx.sink.items }
}

const show = (r: RoutingRule): string => formatIpRule(r)

describe('ip rule on the example node states', () => {
  it.each(['default-ipv4', 'externalsnat-true', 'sgp-standard', 'ipv6-egress-v4'])('%s parses without diagnostics', (scenario) => {
    const { rules, diagnostics } = parse(shared(`examples/node-states/${scenario}/ip-rule.txt`))
    expect(diagnostics).toEqual([])
    expect(rules.length).toBeGreaterThanOrEqual(3)
    expect(rules.every((r) => r.family === 4)).toBe(true)
  })

  it('default-ipv4: 1024 fwmark 0x80/0x80 lookup main, 1536 from 10.0.9.88 lookup 2, 32765 from the ENI IP', () => {
    const { rules } = parse(shared('examples/node-states/default-ipv4/ip-rule.txt'))
    const fw = rules.find((r) => r.priority === 1024)!
    expect(fw.fwmark).toEqual({ value: 0x80, mask: 0x80 })
    expect(fw.action).toEqual({ kind: 'lookup', table: 'main' })
    expect(fw.from).toBeUndefined()
    const api = rules.find((r) => r.priority === 1536 && r.from && formatCidr(r.from) === '10.0.9.88/32')!
    expect(api.action).toEqual({ kind: 'lookup', table: '2' })
    expect(api.ref).toEqual({ artifact: 'ip-rule.txt', line: 7, text: '1536:\tfrom 10.0.9.88 lookup 2' })
    expect(rules.filter((r) => r.priority === 512).map((r) => formatCidr(r.to!))).toEqual(['10.0.7.201/32', '10.0.12.9/32', '10.0.9.88/32', '10.0.14.3/32'])
    expect(formatCidr(rules.find((r) => r.priority === 32765)!.from!)).toBe('10.0.6.120/32')
    expect(rules.map((r) => r.priority)).toEqual([0, 512, 512, 512, 512, 1024, 1536, 1536, 32765, 32766, 32767])
  })

  it('sgp-standard: branch pods look up 100+vlan tables', () => {
    const { rules } = parse(shared('examples/node-states/sgp-standard/ip-rule.txt'))
    const ledger = rules.find((r) => r.from && formatCidr(r.from) === '10.0.11.140/32')!
    expect(ledger.action).toEqual({ kind: 'lookup', table: '101' })
  })

  it('ipv6-egress-v4: ip -6 rule is IPv6 even for rules without addresses', () => {
    const { rules, diagnostics } = parse(shared('examples/node-states/ipv6-egress-v4/ip-6-rule.txt'))
    expect(diagnostics).toEqual([])
    expect(rules.every((r) => r.family === 6)).toBe(true)
    expect(formatCidr(rules[1]!.to!)).toBe('2600:1f14:8a1:5c00:9b3e::1/128')
    expect(rules.find((r) => r.priority === 1024)!.fwmark).toEqual({ value: 0x80, mask: 0x80 })
  })
})

describe('every selector and action ip(8) prints', () => {
  const text = [
    '0:\tfrom all lookup local',
    '100:\tnot from 10.1.0.0/16 to 10.2.0.0/16 iif dummy0 [detached] oif lo lookup 100 proto unspec',
    '101:\tfrom all fwmark 0x5 lookup 101',
    '102:\tfrom all lookup main suppress_prefixlength 0',
    '103:\tfrom all uidrange 1000-2000 lookup 103',
    '104:\tfrom all ipproto tcp sport 1000-2000 dport 80 lookup 104',
    '105:\tfrom all tos 0x10 unreachable',
    '106:\tfrom all prohibit',
    '107:\tfrom all blackhole',
    '108:\tfrom all nop',
    '109:\tfrom all goto 1024',
    '110:\tfrom all lookup [l3mdev-table]',
    '111:\tfrom all lookup main suppress_ifgroup 5',
    '113:\tfrom all lookup 6 proto openr',
    '114:\tfrom 10.5.0.0/16 to 10.6.0.1 lookup 255',
    '115:\tfrom all fwmark 128/0xff lookup 254',
  ].join('\n')
  const { rules, diagnostics } = parse(text)
  const by = (p: number) => rules.find((r) => r.priority === p)!
  it('reads them without diagnostics', () => expect(diagnostics).toEqual([]))
  it('not, from/to, iif/oif with [detached]', () => {
    expect(by(100)).toMatchObject({ not: true, iif: 'dummy0', iifDetached: true, oif: 'lo', proto: 'unspec' })
    expect(formatCidr(by(100).from!)).toBe('10.1.0.0/16')
    expect(formatCidr(by(100).to!)).toBe('10.2.0.0/16')
  })
  it('fwmark without a mask is a full mask; decimal marks are read too', () => {
    expect(by(101).fwmark).toEqual({ value: 5, mask: 0xffffffff })
    expect(by(115).fwmark).toEqual({ value: 128, mask: 0xff })
  })
  it('numeric tables are normalised', () => {
    expect(by(114).action).toEqual({ kind: 'lookup', table: 'local' })
    expect(by(115).action).toEqual({ kind: 'lookup', table: 'main' })
  })
  it('suppress_prefixlength, suppress_ifgroup, uidrange, ipproto, ports, tos', () => {
    expect(by(102).suppressPrefixlength).toBe(0)
    expect(by(111).suppressIfgroup).toBe('5')
    expect(by(103).uidrange).toEqual({ from: 1000, to: 2000 })
    expect(by(104)).toMatchObject({ ipproto: 'tcp', sport: { from: 1000, to: 2000 }, dport: { from: 80, to: 80 } })
    expect(by(105)).toMatchObject({ tos: 0x10, action: { kind: 'unreachable' } })
  })
  it('actions', () => {
    expect(by(106).action.kind).toBe('prohibit')
    expect(by(107).action.kind).toBe('blackhole')
    expect(by(108).action.kind).toBe('nop')
    expect(by(109).action).toEqual({ kind: 'goto', priority: 1024 })
    expect(by(110)).toMatchObject({ l3mdev: true, action: { kind: 'lookup', table: 'l3mdev' } })
  })
  it('prints back to the same text', () => {
    for (const r of rules) expect(show(r)).toBe(r.ref.text.replace(/lookup 255$/, 'lookup local').replace(/lookup 254$/, 'lookup main').replace('fwmark 128/0xff', 'fwmark 0x80/0xff'))
  })
})

describe('ip -j rule', () => {
  it('reads the same rules as the text rendering (recorded on this machine)', () => {
    const t = parse(fixture('lab/ip-rule.txt'))
    const j = parse(fixture('lab/ip-rule.json'))
    expect(t.diagnostics).toEqual([])
    expect(j.diagnostics).toEqual([])
    expect(j.rules.map(show)).toEqual(t.rules.map(show))
  })
})

describe('bad input', () => {
  it('flags an unknown word and keeps the rule', () => {
    const { rules, diagnostics } = parse('5:\tfrom all frobnicate 3 lookup main\n')
    expect(rules).toHaveLength(1)
    expect(diagnostics.map((d) => d.code)).toContain('ip-rule.unknown-selector')
  })
  it('flags a line that is not a rule', () => {
    const { rules, diagnostics } = parse('hello\n')
    expect(rules).toEqual([])
    expect(diagnostics[0]).toMatchObject({ code: 'ip-rule.unknown-line', line: 1 })
  })
  it('never throws on arbitrary text or JSON', () => {
    fc.assert(fc.property(fc.string(), (s) => { parse(s); parse(`[${s}`); parse(`0:\tfrom ${s}`); looksLikeIpRule(s); return true }))
    fc.assert(fc.property(fc.json(), (s) => { parse(s); return true }))
  })
})

describe('sniffer', () => {
  it('recognises ip rule text and JSON, not routes', () => {
    expect(looksLikeIpRule(shared('examples/node-states/default-ipv4/ip-rule.txt'))).toBe(true)
    expect(looksLikeIpRule(fixture('lab/ip-rule.json'))).toBe(true)
    expect(looksLikeIpRule(shared('examples/node-states/default-ipv4/ip-route-all.txt'))).toBe(false)
    expect(looksLikeIpRule(shared('examples/node-states/default-ipv4/iptables-save-nat.txt'))).toBe(false)
  })
})

describe('round trip: print random rules as ip rule text, parse them back', () => {
  const v4 = fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 32 }))
    .map(([n, p]) => parseCidr(`${[n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')}/${p}`)!)
  const port = fc.integer({ min: 0, max: 65535 })
  const range = fc.tuple(port, port).map(([a, b]) => ({ from: Math.min(a, b), to: Math.max(a, b) }))
  const action = fc.oneof(
    fc.constantFrom('main', 'local', 'default', '2', '101').map((table) => ({ kind: 'lookup' as const, table })),
    fc.integer({ min: 1, max: 32767 }).map((priority) => ({ kind: 'goto' as const, priority })),
    fc.constantFrom('unreachable', 'prohibit', 'blackhole', 'nop').map((kind) => ({ kind: kind as 'nop' })),
  )
  const rule = fc.record({
    priority: fc.integer({ min: 0, max: 32767 }),
    not: fc.boolean(),
    from: fc.option(v4.filter((c) => c.prefix > 0), { nil: undefined }),
    to: fc.option(v4.filter((c) => c.prefix > 0), { nil: undefined }),
    fwmark: fc.option(fc.record({ value: fc.integer({ min: 0, max: 0xffffffff }), mask: fc.integer({ min: 1, max: 0xffffffff }) }), { nil: undefined }),
    iif: fc.option(fc.constantFrom('eth0', 'vlan.eth.1', 'eni212428e8e5c'), { nil: undefined }),
    uidrange: fc.option(range, { nil: undefined }),
    ipproto: fc.option(fc.constantFrom('tcp', 'udp', 'icmp'), { nil: undefined }),
    sport: fc.option(range, { nil: undefined }),
    dport: fc.option(range, { nil: undefined }),
    action,
    suppressPrefixlength: fc.option(fc.integer({ min: 0, max: 32 }), { nil: undefined }),
  }, { requiredKeys: ['priority', 'not', 'action'] })
  it('parses back to the same rule', () => {
    fc.assert(fc.property(rule, (r) => {
      const full = { family: 4 as const, l3mdev: false, ...Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) } as unknown as RoutingRule
      const text = formatIpRule(full)
      const { rules, diagnostics } = parse(text)
      expect(diagnostics).toEqual([])
      const { ref: _ref, ...back } = rules[0]!
      expect(back).toEqual(full)
    }), { numRuns: 300 })
  })
})
