import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { formatIp } from '../../src/model/ip.js'
import { makeContext } from '../../src/parse/context.js'
import { looksLikeConntrack, looksLikeConntrackStats, parseConntrack, parseConntrackStats } from '../../src/parse/conntrack.js'
import { looksLikeSysctl } from '../../src/parse/sysctl.js'

const fixture = (p: string): string => readFileSync(new URL(`./fixtures/${p}`, import.meta.url), 'utf8')
const shared = (p: string): string => readFileSync(new URL(`../../../shared/${p}`, import.meta.url), 'utf8')

function parse(text: string) {
  const ctx = makeContext('conntrack.txt')
  return { entries: parseConntrack(text, ctx), stats: parseConntrackStats(text, ctx), diagnostics: ctx.sink.items }
}

describe('conntrack -L', () => {
  it('reads a SNATed TCP flow: original tuple, reply tuple, state, flags, mark, counters', () => {
    const line = 'tcp      6 116 TIME_WAIT src=192.168.50.1 dst=10.0.0.1 sport=41701 dport=8080 packets=5 bytes=272 src=10.0.0.1 dst=10.0.3.45 sport=8080 dport=52067 packets=4 bytes=216 [ASSURED] mark=128 zone=3 use=1'
    const { entries, diagnostics } = parse(line)
    expect(diagnostics).toEqual([])
    const e = entries[0]!
    expect(e).toMatchObject({ family: 4, proto: 'tcp', timeout: 116, state: 'TIME_WAIT', flags: ['ASSURED'], mark: 128, zone: 3, use: 1 })
    expect([formatIp(e.orig.src), formatIp(e.orig.dst), e.orig.sport, e.orig.dport]).toEqual(['192.168.50.1', '10.0.0.1', 41701, 8080])
    expect([formatIp(e.reply.src), formatIp(e.reply.dst), e.reply.sport, e.reply.dport]).toEqual(['10.0.0.1', '10.0.3.45', 8080, 52067])
    expect(e.counters).toEqual({ origPackets: 5, origBytes: 272, replyPackets: 4, replyBytes: 216 })
    expect(e.ref).toEqual({ artifact: 'conntrack.txt', line: 1, text: line })
  })
  it('-o extended prefix, ICMP type/code/id, [UNREPLIED] between the tuples, protocols without ports', () => {
    const { entries, diagnostics } = parse([
      'ipv4     2 icmp     1 29 src=10.0.9.88 dst=10.0.0.1 type=8 code=0 id=77 [UNREPLIED] src=10.0.0.1 dst=10.0.9.88 type=0 code=0 id=77 mark=0 use=1',
      'ipv6     10 icmpv6   58 29 src=2001:db8::5 dst=2001:db8::6 type=128 code=0 id=9 [UNREPLIED] src=2001:db8::6 dst=2001:db8::5 type=129 code=0 id=9 mark=0 use=1',
      'unknown  2 596 src=192.168.50.1 dst=224.0.0.22 [UNREPLIED] src=224.0.0.22 dst=192.168.50.1 mark=0 use=1',
      'conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.',
    ].join('\n'))
    expect(diagnostics).toEqual([])
    expect(entries[0]!.orig.icmp).toEqual({ type: 8, code: 0, id: 77 })
    expect(entries[0]!.reply.icmp).toEqual({ type: 0, code: 0, id: 77 })
    expect(entries[0]!.flags).toEqual(['UNREPLIED'])
    expect(entries[1]!.family).toBe(6)
    expect(entries[2]).toMatchObject({ proto: 'unknown', orig: { sport: null, dport: null } })
  })
  it('the recorded lab listings (captured with 2>&1) parse without diagnostics', () => {
    for (const f of ['lab/conntrack-L.txt', 'lab/conntrack-L-ipv6.txt', 'lab/conntrack-L-extended.txt']) {
      const { entries, diagnostics } = parse(fixture(f))
      expect(diagnostics, f).toEqual([])
      expect(entries.length, f).toBeGreaterThan(0)
    }
  })
  it('flags what it cannot read and goes on', () => {
    const { entries, diagnostics } = parse('tcp 6 10 ESTABLISHED src=1.2.3.4 dst=5.6.7.8 sport=1 dport=2\nhello\nudp 17 5 src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1 mark=0 use=1\n')
    expect(entries).toHaveLength(1)
    expect(diagnostics.map((d) => d.line)).toEqual([1, 2])
  })
})

describe('conntrack -S', () => {
  it('per-CPU counters', () => {
    const { stats, entries, diagnostics } = parse(fixture('lab/conntrack-S.txt'))
    expect(diagnostics).toEqual([])
    expect(entries).toEqual([])
    expect(stats[0]).toMatchObject({ cpu: 0 })
    expect(Object.keys(stats[0]!.counters)).toEqual(expect.arrayContaining(['found', 'invalid', 'insert', 'insert_failed', 'drop', 'early_drop']))
  })
})

describe('sniffers and robustness', () => {
  it('tell flows from stats from other formats', () => {
    expect(looksLikeConntrack(fixture('lab/conntrack-L.txt'))).toBe(true)
    expect(looksLikeConntrack(fixture('lab/conntrack-L-extended.txt'))).toBe(true)
    expect(looksLikeConntrack(fixture('lab/conntrack-S.txt'))).toBe(false)
    expect(looksLikeConntrackStats(fixture('lab/conntrack-S.txt'))).toBe(true)
    expect(looksLikeConntrackStats(fixture('lab/conntrack-L.txt'))).toBe(false)
    expect(looksLikeSysctl(fixture('lab/conntrack-L.txt'))).toBe(false)
    for (const f of ['default-ipv4/ip-rule.txt', 'default-ipv4/ip-route-all.txt', 'default-ipv4/iptables-save-nat.txt', 'default-ipv4/nft-list-table-ip-aws-cni.v1.23-nft-host.txt']) {
      expect(looksLikeConntrack(shared(`examples/node-states/${f}`)), f).toBe(false)
    }
  })
  it('never throw', () => {
    fc.assert(fc.property(fc.string(), (s) => { parse(s); parse(`tcp 6 1 src=1.2.3.4 dst=1.2.3.4 ${s}`); parse(`cpu=0 ${s}`); looksLikeConntrack(s); looksLikeConntrackStats(s); return true }))
  })
})
