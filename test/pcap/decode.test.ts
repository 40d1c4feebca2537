// The decoder and the flow table on single frames: link layers, IP options and extension headers,
// fragments, ICMP errors, tunnels; and the property that no byte sequence makes them throw.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { LINKTYPE, PacketDecoder } from '../../src/pcap/decode.js'
import { FlowTable } from '../../src/pcap/flows.js'
import { Direction, Layer, Packet } from '../../src/pcap/packet.js'
import { ACK, FIN, RST, SYN, ether, icmp, ipv4, ipv6, tcp, udp } from './build.js'

function decodeOne(linktype: number, data: Buffer, decoder = new PacketDecoder()): Packet {
  const p = new Packet()
  p.bytes = data
  p.start = 0
  p.caplen = data.length
  p.length = data.length
  p.linktype = linktype
  p.interface = { format: 'pcap', id: '1:0', section: 1, interfaceId: 0, linktype, snaplen: 65535, decoded: true, packets: 0 }
  decoder.decode(p)
  return p
}

function flowsOf(frames: Buffer[], options: { decap?: boolean; linktype?: number } = {}) {
  const table = new FlowTable({ decap: options.decap ?? false })
  const decoder = new PacketDecoder()
  frames.forEach((f, i) => {
    const p = decodeOne(options.linktype ?? LINKTYPE.ethernet, f, decoder)
    p.tsSec = 1000 + i
    table.add(p)
  })
  return table.flows()
}

describe('link layers', () => {
  it('reads through 802.1ad QinQ to the IP header and keeps the outer VLAN id', () => {
    const f = ether(0x0800, ipv4({ src: '10.1.0.1', dst: '10.1.0.2', proto: 6, payload: tcp({ sport: 1234, dport: 80, flags: SYN }) }), [100, 200])
    const p = decodeOne(LINKTYPE.ethernet, f)
    expect(p.vlanTags).toBe(2)
    expect(p.vlanId).toBe(100)
    expect(p.outer?.srcAddress()).toBe('10.1.0.1')
    expect(p.outer?.dport).toBe(80)
    expect(p.layers & Layer.vlan).toBeTruthy()
  })

  // Linux cooked v1 (tcpdump -i any -y LINUX_SLL): packet type 4 = sent by this host
  // 0000  00 04 00 01 00 06 02 00 00 00 00 01 00 00 08 00
  // 0010  45 00 00 1c 00 01 00 00 40 11 00 00 0a 00 00 01   IPv4 10.0.0.1 -> 10.0.0.2 UDP
  // 0020  0a 00 00 02 9c 40 00 35 00 08 00 00               40000 -> 53
  it('takes the direction from the SLL packet type', () => {
    const sll = Buffer.from('00040001000602000000000100000800', 'hex')
    const p = decodeOne(LINKTYPE.linuxSll, Buffer.concat([sll, ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 17, payload: udp(40000, 53) })]))
    expect(p.direction).toBe(Direction.outgoing)
    expect(p.sllPacketType).toBe(4)
    expect(p.outer?.dport).toBe(53)
    sll[1] = 0
    expect(decodeOne(LINKTYPE.linuxSll, Buffer.concat([sll, ipv4({ src: '10.0.0.2', dst: '10.0.0.1', proto: 17, payload: udp(53, 40000) })])).direction).toBe(Direction.incoming)
  })

  // Linux cooked v2 (tcpdump -i any): protocol, reserved, ifindex 26, hatype 1, packet type 0 (to us)
  // 0000  86 dd 00 00 00 00 00 1a 00 01 00 06 02 00 00 00 00 01 00 00
  it('takes the interface index from SLL2', () => {
    const sll2 = Buffer.from('86dd0000' + '0000001a' + '0001' + '00' + '06' + '0200000000010000', 'hex')
    const p = decodeOne(LINKTYPE.linuxSll2, Buffer.concat([sll2, ipv6({ src: 'fd00::1', dst: 'fd00::2', next: 6, payload: tcp({ sport: 5, dport: 6, flags: ACK }) })]))
    expect(p.ifindex).toBe(26)
    expect(p.direction).toBe(Direction.incoming)
    expect(p.outer?.srcAddress()).toBe('fd00::1')
  })

  it('reads BSD loopback in host order (NULL) and network order (LOOP), with every AF_INET6 value', () => {
    const v6 = ipv6({ src: '::1', dst: '::1', next: 17, payload: udp(1, 2) })
    for (const af of [10, 23, 24, 28, 30]) {
      const le = Buffer.from([af, 0, 0, 0])
      expect(decodeOne(LINKTYPE.null, Buffer.concat([le, v6])).outer?.family).toBe(6)
      expect(decodeOne(LINKTYPE.null, Buffer.concat([Buffer.from([0, 0, 0, af]), v6])).outer?.family).toBe(6)
      expect(decodeOne(LINKTYPE.loop, Buffer.concat([Buffer.from([0, 0, 0, af]), v6])).outer?.family).toBe(6)
    }
  })

  it('decodes raw IP by its version nibble', () => {
    expect(decodeOne(LINKTYPE.raw, ipv6({ src: '::1', dst: '::2', next: 17, payload: udp(1, 2) })).outer?.family).toBe(6)
    expect(decodeOne(LINKTYPE.raw, ipv4({ src: '1.2.3.4', dst: '5.6.7.8', proto: 17, payload: udp(1, 2) })).outer?.family).toBe(4)
  })
})

describe('IP', () => {
  it('skips IPv4 options to find the ports', () => {
    const options = Buffer.from('44080500000000000000000001010101', 'hex') // timestamp option, padded
    const p = decodeOne(LINKTYPE.raw, ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 17, payload: udp(1111, 2222), options }))
    expect([p.outer?.sport, p.outer?.dport]).toEqual([1111, 2222])
  })

  it('ends an IPv4 datagram at its total length, not at the Ethernet padding', () => {
    const pkt = ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 6, payload: tcp({ sport: 1, dport: 2, flags: ACK }) })
    const p = decodeOne(LINKTYPE.ethernet, Buffer.concat([ether(0x0800, pkt), Buffer.alloc(6)]))
    expect(p.outer?.payloadLength).toBe(0)
  })

  it('walks an IPv6 extension header chain to the transport header', () => {
    // hop-by-hop (8 bytes, PadN) -> destination options (8) -> routing type 0, 0 segments left (8) -> UDP
    const hbh = Buffer.from('3c00010400000000', 'hex')
    const dst = Buffer.from('2b00010400000000', 'hex')
    const rt = Buffer.from('1100000000000000', 'hex')
    const p = decodeOne(LINKTYPE.raw, ipv6({ src: '2001:db8::1', dst: '2001:db8::2', next: 0, payload: Buffer.concat([hbh, dst, rt, udp(53, 5353)]) }))
    expect(p.outer?.proto).toBe(17)
    expect(p.outer?.sport).toBe(53)
    expect(p.layers & (Layer.hopopts | Layer.dstopts | Layer.routing)).toBe(Layer.hopopts | Layer.dstopts | Layer.routing)
  })

  it('gives later IPv4 fragments the ports of the first, so the whole datagram is one flow', () => {
    const whole = udp(5060, 5060, Buffer.alloc(2000, 1))
    const first = ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 17, id: 77, mf: true, payload: whole.subarray(0, 1480) })
    const second = ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 17, id: 77, fragOffset: 1480, payload: whole.subarray(1480) })
    const decoder = new PacketDecoder()
    const a = decodeOne(LINKTYPE.raw, first, decoder)
    const b = decodeOne(LINKTYPE.raw, second, decoder)
    expect(a.outer?.moreFragments).toBe(true)
    expect(b.outer?.fragOffset).toBe(1480)
    expect(b.outer?.portsFromFragment).toBe(true)
    expect(b.outer?.dport).toBe(5060)
    const flows = flowsOf([first, second], { linktype: LINKTYPE.raw })
    expect(flows).toHaveLength(1)
    expect(flows[0]).toMatchObject({ proto: 'udp', sport: 5060, dport: 5060, srcPackets: 2, srcBytes: first.length + second.length })
  })

  it('does the same for IPv6 fragments, and keeps an orphan fragment in a flow without ports', () => {
    const whole = udp(53, 40000, Buffer.alloc(1600, 2))
    const frag = (offset: number, more: boolean, id: number, body: Buffer): Buffer =>
      ipv6({ src: '2001:db8::53', dst: '2001:db8::1', next: 44, payload: Buffer.concat([Buffer.from([17, 0, (offset >> 8) & 0xff, (offset & 0xf8) | (more ? 1 : 0), 0, 0, 0, id]), body]) })
    const frames = [frag(0, true, 1, whole.subarray(0, 1200)), frag(1200, false, 1, whole.subarray(1200)), frag(800, false, 2, Buffer.alloc(100))]
    const flows = flowsOf(frames, { linktype: LINKTYPE.raw })
    expect(flows.map((f) => [f.proto, f.sport, f.dport, f.packets])).toEqual([['udp', 53, 40000, 2], ['udp', null, null, 1]])
  })
})

describe('TCP and flows', () => {
  it('makes the first sender src, counts each direction, and records the flags each side sent', () => {
    const c = (flags: number, payload = 0): Buffer => ether(0x0800, ipv4({ src: '10.0.0.1', dst: '93.184.216.34', proto: 6, payload: tcp({ sport: 50000, dport: 443, flags, payload: Buffer.alloc(payload) }) }))
    const s = (flags: number): Buffer => ether(0x0800, ipv4({ src: '93.184.216.34', dst: '10.0.0.1', proto: 6, payload: tcp({ sport: 443, dport: 50000, flags }) }))
    const flows = flowsOf([c(SYN), s(SYN | ACK), c(ACK), c(ACK, 100), s(RST)])
    expect(flows).toHaveLength(1)
    const f = flows[0]
    expect(f).toMatchObject({ src: '10.0.0.1', sport: 50000, dst: '93.184.216.34', dport: 443, srcPackets: 3, dstPackets: 2 })
    expect(f.srcTcpFlags).toBe(SYN | ACK)
    expect(f.dstTcpFlags).toBe(SYN | ACK | RST)
    expect(f.firstNs).toBe(1000_000_000_000n)
    expect(f.lastNs).toBe(1004_000_000_000n)
    // the same conversation seen from the server's side first has the server as src
    expect(flowsOf([s(SYN | ACK), c(FIN)])[0]).toMatchObject({ src: '93.184.216.34', sport: 443 })
  })

  it('reads SCTP ports', () => {
    const p = decodeOne(LINKTYPE.raw, ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 132, payload: Buffer.from('0b5900500000000000000000', 'hex') }))
    expect(p.layers & Layer.sctp).toBeTruthy()
    expect([p.outer?.sport, p.outer?.dport]).toEqual([2905, 80])
  })
})

describe('ICMP errors belong to the flow they quote', () => {
  const probe = ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 17, payload: udp(35140, 40010, Buffer.from('hello')) })
  it('ICMPv4 port unreachable', () => {
    const err = ipv4({ src: '10.0.0.2', dst: '10.0.0.1', proto: 1, payload: icmp(3, 3, Buffer.concat([Buffer.alloc(4), probe.subarray(0, 28)])) })
    const p = decodeOne(LINKTYPE.raw, err)
    expect(p.hasQuoted).toBe(true)
    expect(p.quoted.srcAddress()).toBe('10.0.0.1')
    expect(p.quoted.dport).toBe(40010)
    const flows = flowsOf([probe, err], { linktype: LINKTYPE.raw })
    expect(flows).toHaveLength(1)
    expect(flows[0]).toMatchObject({ proto: 'udp', src: '10.0.0.1', sport: 35140, packets: 1, icmpErrors: 1 })
  })

  it('ICMPv6 time exceeded, and an error about a flow never seen', () => {
    const probe6 = ipv6({ src: '2001:db8::1', dst: '2001:db8::99', next: 6, payload: tcp({ sport: 33000, dport: 22, flags: SYN }) })
    const err = ipv6({ src: '2001:db8::fe', dst: '2001:db8::1', next: 58, payload: icmp(3, 0, Buffer.concat([Buffer.alloc(4), probe6.subarray(0, 48)])) })
    const flows = flowsOf([err], { linktype: LINKTYPE.raw })
    expect(flows).toHaveLength(1)
    expect(flows[0]).toMatchObject({ proto: 'tcp', src: '2001:db8::1', sport: 33000, dst: '2001:db8::99', dport: 22, packets: 0, icmpErrors: 1 })
  })

  it('echo request and reply are one ICMP flow without ports', () => {
    const req = ipv4({ src: '10.0.0.1', dst: '8.8.8.8', proto: 1, payload: icmp(8, 0, Buffer.from('00070001', 'hex')) })
    const rep = ipv4({ src: '8.8.8.8', dst: '10.0.0.1', proto: 1, payload: icmp(0, 0, Buffer.from('00070001', 'hex')) })
    const p = decodeOne(LINKTYPE.raw, req)
    expect([p.outer?.icmpType, p.outer?.icmpId, p.outer?.icmpSeq]).toEqual([8, 7, 1])
    expect(flowsOf([req, rep], { linktype: LINKTYPE.raw })).toMatchObject([{ proto: 'icmp', sport: null, dport: null, srcPackets: 1, dstPackets: 1 }])
  })
})

describe('tunnels: the outer conversation, and the inner ones with decap', () => {
  const inner = ether(0x0800, ipv4({ src: '172.16.0.1', dst: '172.16.0.2', proto: 6, payload: tcp({ sport: 40000, dport: 80, flags: SYN }) }))
  const vxlan = ether(0x0800, ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 17, payload: udp(50000, 4789, Buffer.concat([Buffer.from('0800000000007b00', 'hex'), inner])) }))
  const geneve = ether(0x0800, ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 17,
    payload: udp(50000, 6081, Buffer.concat([Buffer.from('0100655800000a00', 'hex'), Buffer.from('0101010100000000', 'hex').subarray(0, 4), inner])) }))
  // GRE with key and sequence number (flags 0x3000) carrying IPv4
  const gre = ether(0x0800, ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 47,
    payload: Buffer.concat([Buffer.from('30000800' + '00000028' + '00000001', 'hex'), inner.subarray(14)]) }))

  it.each([['VXLAN', vxlan, Layer.vxlan], ['Geneve', geneve, Layer.geneve], ['GRE', gre, Layer.gre]])('%s', (_name, frame, layer) => {
    const p = decodeOne(LINKTYPE.ethernet, frame)
    expect(p.layers & layer).toBeTruthy()
    expect(p.tupleCount).toBe(2)
    expect(p.innermost?.srcAddress()).toBe('172.16.0.1')
    expect(p.innermost?.dport).toBe(80)
    expect(flowsOf([frame]).map((f) => f.proto)).toEqual([layer === Layer.gre ? 'gre' : 'udp'])
    const both = flowsOf([frame], { decap: true })
    expect(both.map((f) => [f.proto, f.inner])).toEqual([[layer === Layer.gre ? 'gre' : 'udp', false], ['tcp', true]])
  })
})

describe('no byte sequence makes the decoder throw', () => {
  const linktypes = [...Object.values(LINKTYPE), 147]
  it('on arbitrary bytes', () => {
    const decoder = new PacketDecoder()
    const table = new FlowTable({ decap: true })
    fc.assert(fc.property(fc.constantFrom(...linktypes), fc.uint8Array({ maxLength: 200 }), (lt, bytes) => {
      const p = decodeOne(lt, Buffer.from(bytes), decoder)
      table.add(p)
      expect(p.tupleCount).toBeLessThanOrEqual(4)
    }), { numRuns: 3000 })
  })

  it('on real headers with random bytes after them', () => {
    const decoder = new PacketDecoder()
    const heads = [
      Buffer.from('0200000000020200000000010800', 'hex'), // Ethernet IPv4
      Buffer.from('02000000000202000000000186dd', 'hex'), // Ethernet IPv6
      Buffer.from('020000000002020000000001810000640800', 'hex'), // VLAN IPv4
      Buffer.from('0200000000020200000000010800450000300001000040110000', 'hex'), // IPv4 UDP, addresses random
      Buffer.from('020000000002020000000001080045000030000100004006000001020304050607080000', 'hex'), // IPv4 TCP
      Buffer.from('0200000000020200000000010800450000300001000040010000010203040506070803030000', 'hex'), // ICMP error
      Buffer.from('020000000002020000000001080045000030000100004011000001020304050607081234' + '12b5', 'hex'), // to VXLAN's port
    ]
    fc.assert(fc.property(fc.constantFrom(...heads), fc.uint8Array({ maxLength: 120 }), (head, tail) => {
      const p = decodeOne(LINKTYPE.ethernet, Buffer.concat([head, Buffer.from(tail)]), decoder)
      expect(p.tupleCount).toBeLessThanOrEqual(4)
    }), { numRuns: 3000 })
  })
})
