import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { makeContext } from '../../src/parse/context.js'
import { looksLikeSysctl, parseSysctl, sysctlNameFromPath } from '../../src/parse/sysctl.js'

const fixture = (p: string): string => readFileSync(new URL(`./fixtures/${p}`, import.meta.url), 'utf8')
const shared = (p: string): string => readFileSync(new URL(`../../../shared/${p}`, import.meta.url), 'utf8')

function parse(text: string) {
  const ctx = makeContext('sysctl.txt')
  return { settings: parseSysctl(text, ctx), diagnostics: ctx.sink.items }
}

describe('sysctl', () => {
  it('sysctl -a from the lab namespace', () => {
    const { settings, diagnostics } = parse(fixture('lab/sysctl-a.txt'))
    expect(diagnostics).toEqual([])
    expect(settings.find((s) => s.name === 'net.ipv4.ip_forward')).toMatchObject({ value: '1', ref: { artifact: 'sysctl.txt' } })
    expect(settings.find((s) => s.name === 'net.ipv4.conf.eth0.rp_filter')).toBeDefined()
  })
  it('/proc/sys path forms; dots inside interface names become slashes, as sysctl writes them', () => {
    const { settings, diagnostics } = parse('/proc/sys/net/ipv4/ip_forward=1\n/proc/sys/net/ipv4/conf/vlan.eth.1/rp_filter: 2\n/proc/sys/net/ipv4/tcp_rmem:4096\t131072\t6291456\nsysctl: permission denied on key "fs.protected_hardlinks"\nnet.ipv4.conf.vlan/eth/1.forwarding = 1\n')
    expect(settings.map((s) => [s.name, s.value])).toEqual([
      ['net.ipv4.ip_forward', '1'], ['net.ipv4.conf.vlan/eth/1.rp_filter', '2'], ['net.ipv4.tcp_rmem', '4096\t131072\t6291456'], ['net.ipv4.conf.vlan/eth/1.forwarding', '1'],
    ])
    expect(diagnostics.map((d) => [d.severity, d.line])).toEqual([['info', 4]])
    expect(sysctlNameFromPath('net/ipv6/conf/all/forwarding')).toBe('net.ipv6.conf.all.forwarding')
  })
  it('flags other lines; never throws; the sniffer does not take other formats', () => {
    expect(parse('hello world\n').diagnostics[0]).toMatchObject({ code: 'sysctl.unknown-line', line: 1 })
    fc.assert(fc.property(fc.string(), (s) => { parse(s); parse(`net.${s} = ${s}`); looksLikeSysctl(s); return true }))
    expect(looksLikeSysctl(fixture('lab/sysctl-a.txt'))).toBe(true)
    for (const f of ['default-ipv4/ip-rule.txt', 'default-ipv4/ip-route-all.txt', 'default-ipv4/iptables-save-nat.txt', 'default-ipv4/networkutils-env-settings.json', 'ipv6-egress-v4/container-ids.txt']) {
      expect(looksLikeSysctl(shared(`examples/node-states/${f}`)), f).toBe(false)
    }
  })
})
