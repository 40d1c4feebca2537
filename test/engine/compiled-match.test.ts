// The walk evaluates rules from a compiled form (conditions as 32-bit integers, comments dropped). This property test
// sets it against the matches' meaning as the kernel modules define it, written here independently: a rule built
// from random conditions (addresses and prefixes, protocol, destination port ranges, marks with masks, interfaces
// with `+` wildcards, each possibly negated) matches a random packet exactly when every condition holds.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { makeContext } from '../../src/parse/context.js'
import { parseIptablesSave } from '../../src/parse/iptables.js'
import { parseIp, type IpAddress } from '../../src/model/ip.js'
import { ChoiceScript, Netfilter, type Packet, type WalkContext } from '../../src/engine/netfilter.js'
import type { AddressBook } from '../../src/engine/addresses.js'
import type { Protocol } from '../../src/model/flow.js'

interface Cond { readonly text: string; readonly holds: (p: Packet) => boolean }

const u32 = (ip: IpAddress) => Number(ip.value)
// Addresses near a few networks, so that prefixes both contain and miss them.
const address = fc.tuple(fc.constantFrom(0x0a000000, 0x0a00ff00, 0xac140000, 0xc0000200, 0xffffff00), fc.integer({ min: 0, max: 0x1ff }))
  .map(([base, off]) => ((base + off) >>> 0))
const dotted = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')
const maskOf = (prefix: number) => (prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0)
const not = fc.boolean()

const cidrCond = (flag: '-s' | '-d') => fc.tuple(address, fc.integer({ min: 0, max: 32 }), not).map(([a, prefix, neg]): Cond => {
  const net = (a & maskOf(prefix)) >>> 0
  return {
    text: `${neg ? '! ' : ''}${flag} ${dotted(net)}/${prefix}`,
    holds: (p) => (((u32(flag === '-s' ? p.src : p.dst) & maskOf(prefix)) >>> 0) === net) !== neg,
  }
})
const protoCond = fc.tuple(fc.constantFrom<Protocol>('tcp', 'udp', 'icmp'), not).map(([proto, neg]): Cond => ({
  text: `${neg ? '! ' : ''}-p ${proto}`, holds: (p) => (p.proto === proto) !== neg,
}))
// `-p tcp -m tcp --dport a[:b]`: the port match needs its protocol.
const portCond = fc.tuple(fc.constantFrom<Protocol>('tcp', 'udp'), fc.integer({ min: 0, max: 70 }), fc.integer({ min: 0, max: 20 }), not).map(([proto, from, width, neg]): Cond => ({
  text: `-p ${proto} -m ${proto} ${neg ? '! ' : ''}--dport ${width === 0 ? from : `${from}:${from + width}`}`,
  holds: (p) => p.proto === proto && ((p.dport !== null && p.dport >= from && p.dport <= from + width) !== neg),
}))
// xt_mark: (skb->mark & mask) == mark; a value with bits outside the mask never matches.
const markCond = fc.tuple(fc.constantFrom(0x80, 0x4000, 0x4080, 0xc0, 0), fc.constantFrom(0x80, 0x4000, 0xffffffff, 0xc0, 0x4080), not).map(([value, mask, neg]): Cond => ({
  text: `-m mark ${neg ? '! ' : ''}--mark 0x${value.toString(16)}/0x${mask.toString(16)}`,
  holds: (p) => ((((p.mark & mask) >>> 0) === value) !== neg),
}))
const ifaceCond = (flag: '-i' | '-o') => fc.tuple(fc.constantFrom('eth0', 'eth', 'eni', 'eni1a2b', 'vlan'), fc.boolean(), not).map(([name, wildcard, neg]): Cond => ({
  text: `${neg ? '! ' : ''}${flag} ${name}${wildcard ? '+' : ''}`,
  holds: (p) => {
    const dev = flag === '-i' ? p.iif : p.oif
    return (dev !== undefined && (wildcard ? dev.startsWith(name) : dev === name)) !== neg
  },
}))
const comment = fc.constantFrom<Cond>({ text: '-m comment --comment "AWS, SNAT"', holds: () => true })

const condition = fc.oneof(cidrCond('-s'), cidrCond('-d'), protoCond, portCond, markCond, ifaceCond('-i'), ifaceCond('-o'), comment)

const packet = fc.record({
  src: address, dst: address, proto: fc.constantFrom<Protocol>('tcp', 'udp', 'icmp'), dport: fc.integer({ min: 0, max: 100 }),
  mark: fc.constantFrom(0, 0x80, 0x4000, 0x4080, 0xc0, 0xffffffff), iif: fc.constantFrom('eth0', 'eni1a2b3c', 'vlan7', 'lo'), oif: fc.constantFrom('eth0', 'eth1', 'eni9', undefined),
}).map((r): Packet => ({
  src: parseIp(dotted(r.src))!, dst: parseIp(dotted(r.dst))!, sport: r.proto === 'icmp' ? null : 40000, dport: r.proto === 'icmp' ? null : r.dport,
  proto: r.proto, mark: r.mark, ctmark: 0, iif: r.iif, oif: r.oif,
}))

/** Whether the rule matched: it sets the connmark, which nothing else touches. */
function ruleMatches(conds: readonly Cond[], pkt: Packet): boolean {
  const text = `*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING ${conds.map((c) => c.text).join(' ')} -j CONNMARK --set-xmark 0x1/0xffffffff\nCOMMIT\n`
  const netfilter = new Netfilter(parseIptablesSave(text, makeContext('compiled-match')))
  const ctx: WalkContext = {
    family: 4, firstPacket: true, original: { src: pkt.src, dst: pkt.dst, sport: pkt.sport, dport: pkt.dport },
    addresses: { known: true } as AddressBook, choices: new ChoiceScript(), steps: [], warnings: [], indeterminate: false, exemptions: [],
  }
  const p = { ...pkt }
  netfilter.runHook('prerouting', p, ctx)
  return p.ctmark === 1
}

describe('compiled rules match as the kernel modules define their matches', () => {
  it('a rule matches exactly when each of its conditions holds', () => {
    fc.assert(fc.property(fc.array(condition, { minLength: 1, maxLength: 4 }), packet, (conds, pkt) => {
      expect(ruleMatches(conds, pkt)).toBe(conds.every((c) => c.holds(pkt)))
    }), { numRuns: 2000 })
  })
})
