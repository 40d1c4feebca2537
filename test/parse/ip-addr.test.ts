import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { formatIp } from '../../src/model/ip.js'
import { makeContext } from '../../src/parse/context.js'
import { looksLikeIpAddr, looksLikeIpLink, mergeInterfaces, parseIpAddr } from '../../src/parse/ip-addr.js'

const shared = (p: string): string => readFileSync(new URL(`../../../shared/${p}`, import.meta.url), 'utf8')
const fixture = (p: string): string => readFileSync(new URL(`./fixtures/${p}`, import.meta.url), 'utf8')

function parse(text: string) {
  const ctx = makeContext('ip-addr.txt')
  return { ifaces: parseIpAddr(text, ctx), diagnostics: ctx.sink.items.filter((d) => d.severity !== 'info') }
}

describe('example node states', () => {
  it('sgp-standard ip link: veth peers by index, vlan.eth.N parents by name', () => {
    const { ifaces, diagnostics } = parse(shared('examples/node-states/sgp-standard/ip-link-abridged.txt'))
    expect(diagnostics).toEqual([])
    expect(ifaces.map((i) => i.name)).toEqual(['eth0', 'eth1', 'eth2', 'enif2e75028f15', 'vlan.eth.1', 'enifb03e9c22ed', 'vlan.eth.2'])
    expect(ifaces.find((i) => i.name === 'enif2e75028f15')).toMatchObject({ ifindex: 7, linkIndex: 3, mtu: 9001, state: 'UP' })
    expect(ifaces.find((i) => i.name === 'vlan.eth.1')!.linkName).toBe('eth2')
    expect(ifaces.find((i) => i.name === 'eth0')!.flags).toEqual(['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'])
  })
  it('ipv6-egress-v4 pod ip addr: eth0@if9 with a /128, v4if0 with 169.254.172.2/22', () => {
    const { ifaces, diagnostics } = parse(shared('examples/node-states/ipv6-egress-v4/pod-web-ip-addr.txt'))
    expect(diagnostics).toEqual([])
    const eth0 = ifaces.find((i) => i.name === 'eth0')!
    expect(eth0.linkIndex).toBe(9)
    expect(eth0.addresses.map((a) => `${formatIp(a.address)}/${a.prefix} ${a.scope}`)).toEqual(['2600:1f14:8a1:5c00:9b3e::1/128 global', 'fe80::a8c1:2bff:fe3e:77d0/64 link'])
    const v4 = ifaces.find((i) => i.name === 'v4if0')!.addresses[0]!
    expect(`${formatIp(v4.address)}/${v4.prefix}`).toBe('169.254.172.2/22')
    expect(v4.label).toBe('v4if0')
    expect(v4.ref.line).toBe(7)
  })
})

describe('recorded lab (ip -d addr)', () => {
  const { ifaces, diagnostics } = parse(fixture('lab/ip-d-addr.txt'))
  const by = (n: string) => ifaces.find((i) => i.name === n)!
  it('no diagnostics', () => expect(diagnostics).toEqual([]))
  it('veth kinds, peers in another namespace (link-netns) and in the same one (name@peer)', () => {
    expect(by('eth0')).toMatchObject({ kind: 'veth', linkIndex: 2 })
    expect(by('eth0').linkNetns).toMatch(/^nl-parse-.*-vpc$/)
    expect(by('eni212428e8e5c')).toMatchObject({ kind: 'veth', linkName: 'pod-web' })
    expect(by('eth0').mac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/)
  })
  it('bridge, bridge port with master, vxlan', () => {
    expect(by('br0').kind).toBe('bridge')
    expect(by('brport0')).toMatchObject({ kind: 'veth', master: 'br0' })
    expect(by('vxlan42')).toMatchObject({ kind: 'vxlan', state: 'DOWN' })
  })
  it('addresses: secondary, label, peer, scope link', () => {
    const a = by('eth0').addresses.map((x) => `${formatIp(x.address)}/${x.prefix} ${x.secondary ? 'secondary' : 'primary'} ${x.label ?? '-'}`)
    expect(a).toContain('10.0.3.45/20 primary eth0')
    expect(a).toContain('10.0.3.46/20 secondary eth0')
    expect(a).toContain('10.0.3.47/20 secondary eth0:1')
    expect(by('enie90ff0f6268').addresses[0]).toMatchObject({ prefix: 32 })
    expect(formatIp(by('enie90ff0f6268').addresses[0]!.address)).toBe('10.0.99.1')
    expect(by('eni212428e8e5c').addresses[0]!.scope).toBe('link')
  })
})

describe('details this machine cannot build (vlan), and merging ip link with ip addr', () => {
  const text = [
    '8: vlan.eth.1@eth2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 9001 qdisc noqueue state UP mode DEFAULT group default qlen 1000',
    '    link/ether 0a:1b:2c:3d:4e:5f brd ff:ff:ff:ff:ff:ff promiscuity 0 minmtu 0 maxmtu 65535',
    '    vlan protocol 802.1Q id 1 <REORDER_HDR> addrgenmode eui64 numtxqueues 1 numrxqueues 1 gso_max_size 65536 gso_max_segs 65535',
    '    altname vlan1',
    '7: enif2e75028f15@if3: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 9001 qdisc noqueue state UP mode DEFAULT group default',
    '    link/ether 36:5e:aa:01:02:03 brd ff:ff:ff:ff:ff:ff link-netnsid 1',
    '    veth addrgenmode eui64',
    '8: vlan.eth.1@eth2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 9001 qdisc noqueue state UP group default qlen 1000',
    '    link/ether 0a:1b:2c:3d:4e:5f brd ff:ff:ff:ff:ff:ff',
    '    inet 10.0.11.2/24 scope global vlan.eth.1',
    '       valid_lft forever preferred_lft forever',
  ].join('\n')
  it('reads the vlan id, the netns id, and merges the two listings of vlan.eth.1', () => {
    const { ifaces, diagnostics } = parse(text)
    expect(diagnostics).toEqual([])
    expect(ifaces).toHaveLength(2)
    const v = ifaces.find((i) => i.name === 'vlan.eth.1')!
    expect(v).toMatchObject({ kind: 'vlan', vlanId: 1, linkName: 'eth2', mac: '0a:1b:2c:3d:4e:5f' })
    expect(v.addresses).toHaveLength(1)
    expect(ifaces.find((i) => i.name === 'enif2e75028f15')).toMatchObject({ linkNetns: '1', linkIndex: 3, kind: 'veth' })
  })
  it('mergeInterfaces unites addresses and keeps the first facts', () => {
    const a = parse(text).ifaces
    const b = parse(fixture('lab/ip-d-addr.txt')).ifaces
    const merged = mergeInterfaces(a, b)
    expect(merged.length).toBe(a.length + b.length)
    expect(mergeInterfaces(b, b).map((i) => i.addresses.length)).toEqual(b.map((i) => i.addresses.length))
  })
})

describe('bad input and sniffers', () => {
  it('flags lines before any header and unknown detail lines', () => {
    const { diagnostics } = parse('    inet 10.0.0.1/8 scope global eth0\n2: eth0: <UP> mtu 1500\n    inet 10.0.0.300/8 scope global eth0\n')
    expect(diagnostics.map((d) => [d.code, d.line])).toEqual([['ip-addr.unknown-line', 1], ['ip-addr.bad-value', 3]])
  })
  it('never throws', () => {
    fc.assert(fc.property(fc.string(), (s) => { parse(s); parse(`1: lo: <UP> mtu 1\n    ${s}`); parse(`${s}\\ x`); looksLikeIpAddr(s); looksLikeIpLink(s); return true }))
    fc.assert(fc.property(fc.json(), (j) => { parse(j); parse(`[${j}]`); return true }))
  })
  it('ip addr vs ip link', () => {
    expect(looksLikeIpAddr(fixture('lab/ip-d-addr.txt'))).toBe(true)
    expect(looksLikeIpAddr(fixture('lab/ip-o-addr.txt'))).toBe(true)
    expect(looksLikeIpLink(fixture('lab/ip-o-addr.txt'))).toBe(false)
    expect(looksLikeIpLink(fixture('lab/ip-d-addr.txt'))).toBe(false)
    expect(looksLikeIpLink(shared('examples/node-states/sgp-standard/ip-link-abridged.txt'))).toBe(true)
    expect(looksLikeIpAddr(shared('examples/node-states/sgp-standard/ip-link-abridged.txt'))).toBe(false)
    expect(looksLikeIpAddr(fixture('lab/ip-d-addr.json'))).toBe(true)
    expect(looksLikeIpLink(fixture('lab/ip-d-link.json'))).toBe(true)
    expect(looksLikeIpAddr(shared('examples/node-states/default-ipv4/ip-route-all.txt'))).toBe(false)
    expect(looksLikeIpLink(shared('examples/node-states/default-ipv4/ip-rule.txt'))).toBe(false)
  })
})
