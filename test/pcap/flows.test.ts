// The flow table's selection and eviction, filters, and the text forms of addresses and times.
import path from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parseIp, formatIp } from '../../src/model/ip.js'
import { flowJson, formatTimestampNs, readFlows, sortFlows } from '../../src/pcap/conversations.js'
import { LINKTYPE, PacketDecoder } from '../../src/pcap/decode.js'
import { flowMatches, parseFlowFilter } from '../../src/pcap/filter.js'
import { FlowTable } from '../../src/pcap/flows.js'
import { Packet, formatIpv4, formatIpv6 } from '../../src/pcap/packet.js'
import { PacketSource } from '../../src/pcap/source.js'
import { ACK, FIN, SYN, ipv4, tcp, udp } from './build.js'
import { PCAPS } from './oracle-view.js'

describe('FlowTable.top picks what sortFlows would, building only the flows it returns', () => {
  const files = ['zeek--ftp_bruteforce.pcap', 'zeek--wikipedia.pcap', 'local--lo-and-any.pcapng', 'tcpdump--afs.pcap']
  for (const file of files) {
    it(file, async () => {
      const table = new FlowTable({ decap: true })
      await new PacketSource([path.join(PCAPS, file)]).forEach((p) => table.add(p))
      const all = table.flows()
      for (const key of ['bytes', 'packets', 'first', 'last', 'duration'] as const) {
        for (const n of [1, 5, 1000]) expect(table.top(key, n)).toEqual(sortFlows(all, key).slice(0, n))
      }
    })
  }

  it('and readFlows uses it for the table view without changing the answer', async () => {
    const file = path.join(PCAPS, 'zeek--wikipedia.pcap')
    const picked = await readFlows([file], { select: { sort: 'packets', top: 7 } })
    const full = await readFlows([file])
    expect(picked.flows).toEqual(sortFlows(full.flows, 'packets').slice(0, 7))
    expect(picked.flowCount).toBe(full.flowCount)
  })
})

describe('evict: finished flows leave the table (NDJSON streaming)', () => {
  function packet(data: Buffer, sec: number, decoder: PacketDecoder): Packet {
    const p = new Packet()
    Object.assign(p, { bytes: data, start: 0, caplen: data.length, length: data.length, linktype: LINKTYPE.raw, tsSec: sec })
    p.interface = { format: 'pcap', id: '1:0', section: 1, interfaceId: 0, linktype: LINKTYPE.raw, snaplen: 0, decoded: true, packets: 0 }
    decoder.decode(p)
    return p
  }
  it('a TCP flow closed both ways goes after the quiet time; an open one stays until idle', () => {
    const d = new PacketDecoder()
    const t = new FlowTable()
    const c = (flags: number): Buffer => ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 6, payload: tcp({ sport: 1000, dport: 80, flags }) })
    const s = (flags: number): Buffer => ipv4({ src: '10.0.0.2', dst: '10.0.0.1', proto: 6, payload: tcp({ sport: 80, dport: 1000, flags }) })
    for (const [bytes, sec] of [[c(SYN), 0], [s(SYN | ACK), 0], [c(FIN | ACK), 1], [s(FIN | ACK), 1]] as const) t.add(packet(bytes, sec, d))
    t.add(packet(ipv4({ src: '10.0.0.1', dst: '10.0.0.3', proto: 17, payload: udp(5000, 53) }), 1, d))
    expect(t.evict(3, 5, 120)).toEqual([])
    const gone = t.evict(7, 5, 120)
    expect(gone.map((f) => f.proto)).toEqual(['tcp'])
    expect(t.size).toBe(1)
    expect(t.evict(200, 5, 120).map((f) => f.proto)).toEqual(['udp'])
    expect(t.size).toBe(0)
    // the table keeps working after compaction
    t.add(packet(c(SYN), 300, d))
    expect(t.flows()).toMatchObject([{ proto: 'tcp', srcPackets: 1 }])
  })
})

describe('--filter expressions', () => {
  const flow = { proto: 'tcp', protoNumber: 6, src: '10.0.3.45', sport: 40000, dst: '203.0.113.10', dport: 443 } as Parameters<typeof flowMatches>[1]
  const valid: [string, boolean][] = [
    ['host 10.0.3.45', true],
    ['host 203.0.113.10 and port 443', true],
    ['src host 203.0.113.10', false],
    ['dst port 443', true],
    ['src port 443', false],
    ['net 10.0.0.0/16 and tcp', true],
    ['net 10.0.0.0/16 and udp', false],
    ['udp or port 443', true],
    ['not host 10.0.3.45', false],
    ['proto 6', true],
    ['proto icmp or dst port 53', false],
    ['host 10.0.3.45/32', true],
  ]
  it.each(valid)('%s → %s', (text, matches) => {
    expect(flowMatches(parseFlowFilter(text), flow)).toBe(matches)
  })
  const invalid: [string, string][] = [
    ['', 'the filter is empty'],
    ['host', '"host" needs an address'],
    ['host 010.0.0.1', 'is not an IP address or CIDR'],
    ['port 70000', 'is not a port number'],
    ['host 10.0.0.1 port 80', 'expected "and" or "or"'],
    ['proto bogus', 'is not a protocol name or number'],
    ['src tcp', 'must be followed by host, net or port'],
    ['10.0.0.1', 'is not a filter term'],
  ]
  it.each(invalid)('"%s" is refused: %s', (text, message) => {
    expect(() => parseFlowFilter(text)).toThrow(message)
  })
  it('never throws anything but its own error', () => {
    fc.assert(fc.property(fc.string(), (s) => {
      try {
        parseFlowFilter(s)
      } catch (e) {
        expect((e as Error).name).toBe('NatlensError')
      }
    }))
  })
})

describe('text forms', () => {
  it.each([
    [[0, 0, 0, 1], '::1'],
    [[0x20010db8, 0, 0, 1], '2001:db8::1'],
    [[0x20010db8, 0x00000000, 0x00010000, 0x00000001], '2001:db8::1:0:0:1'],
    [[0x20010db8, 0x00010000, 0x00010000, 0x00010001], '2001:db8:1:0:1:0:1:1'],
    [[0, 0, 0xffff, 0x0a000001], '::ffff:10.0.0.1'],
    [[0xfe800000, 0, 0x021122ff, 0xfe334455], 'fe80::211:22ff:fe33:4455'],
    [[0, 0, 0, 0], '::'],
  ])('IPv6 %j is %s, as tshark prints it (RFC 5952)', (w, text) => {
    expect(formatIpv6(w[0], w[1], w[2], w[3])).toBe(text)
  })

  it('IPv4 and IPv6 text parses back to the same address (model/ip round trip)', () => {
    fc.assert(fc.property(fc.array(fc.nat({ max: 0xffffffff }), { minLength: 4, maxLength: 4 }), (w) => {
      const text = formatIpv6(w[0], w[1], w[2], w[3])
      const ip = parseIp(text)
      const value = (BigInt(w[0]) << 96n) | (BigInt(w[1]) << 64n) | (BigInt(w[2]) << 32n) | BigInt(w[3])
      expect(ip?.value).toBe(value)
      expect(parseIp(formatIpv4(w[0]))?.value).toBe(BigInt(w[0]))
      if (w[0] !== 0 || w[1] !== 0 || w[2] !== 0xffff) expect(formatIp({ family: 6, value })).toBe(text)
    }))
  })

  it('timestamps are ISO 8601 UTC with nanoseconds', () => {
    expect(formatTimestampNs(1_795_405_063_994_102_847n)).toBe('2026-11-23T03:37:43.994102847Z')
    expect(formatTimestampNs(0n)).toBe('1970-01-01T00:00:00.000000000Z')
    expect(formatTimestampNs(-1n)).toBe('1969-12-31T23:59:59.999999999Z')
    expect(formatTimestampNs(18_446_744_073_709_551_615_000_000_000n)).toBe('18446744073709551615.000000000')
  })

  it('flowJson keeps the shape fixed by the issue', async () => {
    const r = await readFlows([path.join(PCAPS, 'local--any-sll2.pcap')])
    const j = flowJson(r.flows[0])
    expect(Object.keys(j).slice(0, 7)).toEqual(['proto', 'src', 'sport', 'dst', 'dport', 'packets', 'bytes'])
  })
})
