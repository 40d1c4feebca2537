// The readers on files built byte by byte: every fixture in both byte orders, timestamps to the nanosecond,
// pcapng's block zoo, and every kind of bad input the issue lists (each reported with its byte offset,
// flows up to that point kept, no allocation driven by a lying length).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { gzipSync } from 'node:zlib'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { CaptureError, RecordSink, emptySummary } from '../../src/pcap/capture.js'
import { flowJson, readFlows } from '../../src/pcap/conversations.js'
import { PacketDecoder } from '../../src/pcap/decode.js'
import { FlowTable } from '../../src/pcap/flows.js'
import { ByteWindow, type ByteInput } from '../../src/pcap/input.js'
import { Direction, Packet } from '../../src/pcap/packet.js'
import { readPcap } from '../../src/pcap/pcap.js'
import { readPcapng } from '../../src/pcap/pcapng.js'
import { PacketSource } from '../../src/pcap/source.js'
import { ACK, PcapngWriter, SYN, ether, ipv4, ipv6, pcapFile, tcp, udp } from './build.js'
import { PCAPS } from './oracle-view.js'

const dir = mkdtempSync(path.join(tmpdir(), 'natlens-pcap-'))
let n = 0
function file(bytes: Buffer, ext = 'pcap'): string {
  const p = path.join(dir, `f${n++}.${ext}`)
  writeFileSync(p, bytes)
  return p
}

interface Seen {
  ts: bigint
  caplen: number
  length: number
  linktype: number
  iface: string
  name: string | undefined
  direction: number
  offset: number
  src: string | undefined
  sport: number
}
async function readAll(paths: string[]): Promise<{ seen: Seen[]; result: Awaited<ReturnType<PacketSource['forEach']>> }> {
  const seen: Seen[] = []
  const result = await new PacketSource(paths).forEach((p) => {
    seen.push({
      ts: p.timestampNs(), caplen: p.caplen, length: p.length, linktype: p.linktype, iface: p.interface.id, name: p.interface.name,
      direction: p.direction, offset: p.offset, src: p.outer?.srcAddress(), sport: p.outer?.sport ?? -1,
    })
  })
  return { seen, result }
}

const syn = ether(0x0800, ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 6, payload: tcp({ sport: 40000, dport: 443, flags: SYN }) }))
const synAck = ether(0x0800, ipv4({ src: '10.0.0.2', dst: '10.0.0.1', proto: 6, payload: tcp({ sport: 443, dport: 40000, flags: SYN | ACK }) }))

describe.each([
  ['little-endian', true],
  ['big-endian', false],
])('classic pcap, %s', (_name, littleEndian) => {
  it('reads microsecond timestamps as exact nanoseconds', async () => {
    const f = file(pcapFile({ littleEndian }, [{ sec: 1_700_000_000, frac: 123456, data: syn }, { sec: 1_700_000_001, frac: 999999, data: synAck }]))
    const { seen, result } = await readAll([f])
    expect(result.files[0]).toMatchObject({ format: 'pcap', byteOrder: littleEndian ? 'little' : 'big', tsResolution: 'microsecond', packets: 2 })
    expect(seen.map((s) => s.ts)).toEqual([1_700_000_000_123_456_000n, 1_700_000_001_999_999_000n])
    expect(seen.map((s) => s.offset)).toEqual([24, 24 + 16 + syn.length])
    expect(seen[0]).toMatchObject({ src: '10.0.0.1', sport: 40000, linktype: 1, iface: '1:0' })
  })

  it('reads nanosecond timestamps (magic a1b23c4d)', async () => {
    const f = file(pcapFile({ littleEndian, nano: true }, [{ sec: 1_700_000_000, frac: 123_456_789, data: syn }]))
    const { seen, result } = await readAll([f])
    expect(result.files[0].tsResolution).toBe('nanosecond')
    expect(seen[0].ts).toBe(1_700_000_000_123_456_789n)
  })

  it('keeps the original length of a record cut by the snaplen', async () => {
    const f = file(pcapFile({ littleEndian, snaplen: 40 }, [{ sec: 1, frac: 0, data: syn.subarray(0, 40), length: syn.length }]))
    const { seen, result } = await readAll([f])
    expect(seen[0]).toMatchObject({ caplen: 40, length: syn.length, sport: 40000 })
    expect(result.files[0].packetsCut).toBe(1)
  })

  it('stops at a record cut short, keeps what came before, and says where', async () => {
    const whole = pcapFile({ littleEndian }, [{ sec: 1, frac: 0, data: syn }, { sec: 2, frac: 0, data: synAck }])
    const f = file(whole.subarray(0, whole.length - 10))
    const r = await readFlows([f])
    expect(r.packets).toBe(1)
    expect(r.truncated).toBe(true)
    expect(r.flows).toHaveLength(1)
    expect(r.read.problems[0]).toMatchObject({ offset: 24 + 16 + syn.length, code: 'pcap.truncated-record' })
    expect(r.read.problems[0].message).toBe(`record 2: wants ${synAck.length} bytes of packet data, the file ends after ${synAck.length - 10}`)
  })

  it('stops inside a record header', async () => {
    const whole = pcapFile({ littleEndian }, [{ sec: 1, frac: 0, data: syn }])
    const f = file(Buffer.concat([whole, Buffer.alloc(7)]))
    const r = await readFlows([f])
    expect(r.packets).toBe(1)
    expect(r.read.problems[0].message).toBe('record 2: the file ends inside the record header (7 of 16 bytes)')
  })

  // The second case was found by the fuzz test below: a corrupt snaplen raised the limit to whatever it said.
  it.each([
    ['a lying captured length', 65535, 0x7ffffff0, 'record 2: captured length 2147483632 is larger than the snaplen 65535 and the 262144-byte limit; the length field is corrupt', 4 << 20],
    ['a lying captured length under a corrupt snaplen', 0xffffffff, 0x2000050, 'record 2: captured length 33554512 is larger than the snaplen 4294967295 allows (at most 16777216 bytes); the length field is corrupt', 16 << 20],
  ])('refuses %s without allocating it', async (_what, snaplen, caplen, message, most) => {
    const bytes = pcapFile({ littleEndian, snaplen }, [{ sec: 1, frac: 0, data: syn }, { sec: 2, frac: 0, data: synAck, caplen }])
    const { sink, window } = await readDirect(bytes, 'pcap')
    expect(sink.summary.packets).toBe(1)
    expect(sink.summary.problem).toMatchObject({ code: 'pcap.bad-caplen', offset: 24 + 16 + syn.length, message })
    expect(window.buf.length).toBeLessThanOrEqual(most)
  })

  it('warns about a captured length over the snaplen and reads on (as libpcap and tshark do)', async () => {
    const f = file(pcapFile({ littleEndian, snaplen: 37 }, [{ sec: 1, frac: 0, data: syn }, { sec: 2, frac: 0, data: synAck }]))
    const r = await readFlows([f])
    expect(r.packets).toBe(2)
    expect(r.truncated).toBe(false)
    expect(r.read.warnings).toHaveLength(1)
    expect(r.read.warnings[0]).toMatchObject({ code: 'pcap.caplen-over-snaplen', offset: 24 })
    expect(r.read.warnings[0].message).toContain('(and 1 more like it)')
  })

  it('counts packets on a link type it does not decode, and says so', async () => {
    const f = file(pcapFile({ littleEndian, linktype: 147 }, [{ sec: 1, frac: 0, data: syn }]))
    const r = await readFlows([f])
    expect(r.packets).toBe(1)
    expect(r.flows).toHaveLength(0)
    expect(r.read.files[0].undecodedPackets).toBe(1)
    expect(r.read.warnings[0].message).toContain('link type 147, which natlens does not decode')
    expect(r.read.warnings[0].offset).toBe(24)
  })

  it('refuses version 1.4 and reserved link-type bits', async () => {
    const v1 = await readFlows([file(pcapFile({ littleEndian, major: 1 }, [{ sec: 1, frac: 0, data: syn }]))])
    expect(v1.read.problems[0]).toMatchObject({ offset: 4, code: 'pcap.bad-version' })
    expect(v1.read.unreadable).toBe(true)
    const reserved = await readFlows([file(pcapFile({ littleEndian, linktypeField: 0x00300001 }, []))])
    expect(reserved.read.problems[0]).toMatchObject({ offset: 20, code: 'pcap.bad-linktype-field' })
  })

  it('reads the low 16 bits of a link-type field with FCS bits set (as tshark does)', async () => {
    const r = await readFlows([file(pcapFile({ littleEndian, linktypeField: 0x30000001 }, [{ sec: 1, frac: 0, data: syn }]))])
    expect(r.read.files[0].interfaces[0].linktype).toBe(1)
    expect(r.flows).toHaveLength(1)
  })
})

/** A ByteInput over bytes in memory, as the readers see a file. */
function memoryInput(bytes: Buffer): ByteInput {
  let pos = 0
  return {
    consumed: 0,
    async read(buf, offset, length) {
      const k = Math.min(length, bytes.length - pos)
      bytes.copy(buf, offset, pos, pos + k)
      pos += k
      return k
    },
    async close() {},
  }
}

async function readDirect(bytes: Buffer, format: 'pcap' | 'pcapng'): Promise<{ sink: RecordSink; window: ByteWindow }> {
  const input = memoryInput(bytes)
  const window = new ByteWindow(input, 1024)
  const sink = new RecordSink(emptySummary('mem'), { path: 'mem', index: 0 }, new PacketDecoder(), new Packet(), () => {})
  try {
    if (format === 'pcap') await readPcap(window, sink)
    else await readPcapng(window, sink, undefined)
  } catch (e) {
    sink.fail(e as never)
  }
  sink.close()
  return { sink, window }
}

describe.each([
  ['little-endian', true],
  ['big-endian', false],
])('pcapng, %s', (_name, littleEndian) => {
  const dns = ether(0x0800, ipv4({ src: '10.0.0.1', dst: '10.0.0.53', proto: 17, payload: udp(5353, 53, Buffer.from('q')) }))
  const sll2 = Buffer.concat([Buffer.from([0x08, 0x00, 0, 0, 0, 0, 0, 7, 0, 1, 4, 6, 2, 0, 0, 0, 0, 1, 0, 0]),
    ipv4({ src: '10.0.0.9', dst: '10.0.0.1', proto: 6, payload: tcp({ sport: 8080, dport: 40001, flags: ACK }) })])

  function sample(): Buffer {
    return new PcapngWriter()
      .shb({ littleEndian, options: [[4, Buffer.from('natlens test')]] })
      .block(0xbad, Buffer.from('deadbeefcustom00', 'hex'))
      .block(4, Buffer.from('0000000000000000', 'hex')) // NRB: just opt_endofrecord
      .idb({ linktype: 1, name: 'eth0', tsresol: 9, tsoffset: 100n })
      .idb({ linktype: 276, name: 'any' })
      .idb({ linktype: 1, name: 'eth1', tsresol: 0x80 | 20 })
      .epb({ iface: 0, ticks: 1_700_000_000_123_456_789n, data: dns, flags: 1 })
      .epb({ iface: 1, ticks: 1_700_000_001_000_001n, data: sll2, flags: 2 })
      .spb(dns)
      .opb({ iface: 2, ticks: (1_700_000_002n << 20n) + (1n << 19n), data: dns })
      .block(5, Buffer.from('00000000000000000000000000000000', 'hex')) // ISB
      .block(10, Buffer.from('544c534b0000000000000000', 'hex')) // DSB
      .bytes()
  }

  it('reads EPB, SPB and OPB on several interfaces and skips the blocks without packets', async () => {
    const { seen, result } = await readAll([file(sample(), 'pcapng')])
    const s = result.files[0]
    expect(s).toMatchObject({ format: 'pcapng', byteOrder: littleEndian ? 'little' : 'big', packets: 4, problem: undefined })
    expect(s.skippedBlocks).toEqual({ custom: 1, NRB: 1, ISB: 1, DSB: 1 })
    expect(s.interfaces.map((i) => [i.id, i.linktype, i.name, i.packets])).toEqual([['1:0', 1, 'eth0', 2], ['1:1', 276, 'any', 1], ['1:2', 1, 'eth1', 1]])
    // if_tsresol 9 with if_tsoffset 100 s; default microseconds; 2^-20 s (half a tick-second = 0.5 s)
    expect(seen.map((x) => x.ts)).toEqual([1_700_000_100_123_456_789n, 1_700_000_001_000_001_000n, 1_700_000_001_000_001_000n, 1_700_000_002_500_000_000n])
    expect(seen.map((x) => x.direction)).toEqual([Direction.incoming, Direction.outgoing, Direction.unknown, Direction.unknown])
    expect(seen.map((x) => x.iface)).toEqual(['1:0', '1:1', '1:0', '1:2'])
    expect(s.ifindexPackets).toEqual({ 7: 1 })
  })

  it('reports the SPB with the previous packet\'s timestamp (it has none of its own)', async () => {
    const { seen } = await readAll([file(sample(), 'pcapng')])
    expect(seen[2].ts).toBe(seen[1].ts)
  })

  it('puts interface names on flows', async () => {
    const r = await readFlows([file(sample(), 'pcapng')])
    const dnsFlow = r.flows.find((f) => f.dport === 53)
    expect(dnsFlow?.interfaces).toEqual([{ name: 'eth0' }, { name: 'eth1' }])
    const tcpFlow = r.flows.find((f) => f.proto === 'tcp')
    expect(tcpFlow?.interfaces).toEqual([{ name: 'any', ifindex: 7 }])
  })

  it('refuses a zero-length block, naming its offset', async () => {
    const bytes = new PcapngWriter().shb({ littleEndian }).idb({ linktype: 1 }).epb({ iface: 0, ticks: 1n, data: dns }).block(6, Buffer.alloc(0), { lengthOverride: 0 }).bytes()
    const r = await readFlows([file(bytes, 'pcapng')])
    expect(r.packets).toBe(1)
    expect(r.truncated).toBe(true)
    expect(r.read.problems[0].code).toBe('pcapng.bad-block-length')
    expect(r.read.problems[0].message).toBe('block of type 0x6 has length 0, not a multiple of 4 of at least 12')
  })

  it('refuses an oversize block without allocating it', async () => {
    const bytes = new PcapngWriter().shb({ littleEndian }).idb({ linktype: 1 }).epb({ iface: 0, ticks: 1n, data: dns }).block(6, Buffer.alloc(20), { lengthOverride: 0x7ffffff0 }).bytes()
    const { sink, window } = await readDirect(bytes, 'pcapng')
    expect(sink.summary.packets).toBe(1)
    expect(sink.summary.problem?.message).toContain('claims 2147483632 bytes, more than the 16777216-byte limit')
    expect(window.buf.length).toBeLessThanOrEqual(4 << 20)
  })

  it('reports a block that runs past the end of the file as truncation', async () => {
    const whole = new PcapngWriter().shb({ littleEndian }).idb({ linktype: 1 }).epb({ iface: 0, ticks: 1n, data: dns }).epb({ iface: 0, ticks: 2n, data: dns }).bytes()
    const r = await readFlows([file(whole.subarray(0, whole.length - 8), 'pcapng')])
    expect(r.packets).toBe(1)
    expect(r.read.problems[0].code).toBe('pcapng.truncated-block')
    expect(r.read.problems[0].message).toMatch(/block of type 0x6 wants \d+ bytes, the file ends after \d+/)
  })

  it('refuses a trailing length that differs from the leading one', async () => {
    const bytes = new PcapngWriter().shb({ littleEndian }).idb({ linktype: 1 }).block(6, Buffer.alloc(20), { trailerOverride: 36 }).bytes()
    const r = await readFlows([file(bytes, 'pcapng')])
    expect(r.read.problems[0].message).toBe('block of type 0x6: trailing length 36 differs from the leading 32')
  })

  it('refuses a packet block on an interface the section does not describe', async () => {
    const bytes = new PcapngWriter().shb({ littleEndian }).idb({ linktype: 1 }).epb({ iface: 3, ticks: 1n, data: dns }).bytes()
    const r = await readFlows([file(bytes, 'pcapng')])
    expect(r.read.problems[0]).toMatchObject({ code: 'pcapng.unknown-interface', offset: 28 + 20 })
  })

  it('refuses an EPB whose captured length exceeds its block', async () => {
    const bytes = new PcapngWriter().shb({ littleEndian }).idb({ linktype: 1 }).epb({ iface: 0, ticks: 1n, data: dns, caplen: 5000 }).bytes()
    const r = await readFlows([file(bytes, 'pcapng')])
    expect(r.read.problems[0].code).toBe('pcapng.bad-caplen')
  })

  it('refuses an SHB option that runs past its block (libpcap\'s shb-option-too-long)', async () => {
    const shb = new PcapngWriter().shb({ littleEndian, options: [[4, Buffer.from('abcd')]] }).bytes()
    // make the option claim 200 bytes
    littleEndian ? shb.writeUInt16LE(200, 26) : shb.writeUInt16BE(200, 26)
    const r = await readFlows([file(shb, 'pcapng')])
    expect(r.read.problems[0].message).toBe('section header block: option 4 of 200 bytes runs past the end of the block')
    expect(r.read.unreadable).toBe(true)
  })
})

describe('pcapng sections of different byte order in one file', () => {
  it('settles byte order per section and numbers interfaces per section', async () => {
    const frame = ether(0x0800, ipv4({ src: '192.168.0.1', dst: '192.168.0.10', proto: 17, payload: udp(67, 68) }))
    const bytes = new PcapngWriter()
      .shb({ littleEndian: true }).idb({ linktype: 1, name: 'a' }).epb({ iface: 0, ticks: 1_000_000n, data: frame })
      .shb({ littleEndian: false }).idb({ linktype: 0, name: 'b' }).idb({ linktype: 1, name: 'c' }).epb({ iface: 1, ticks: 2_000_000n, data: frame })
      .shb({ littleEndian: true }).idb({ linktype: 1, name: 'd' }).epb({ iface: 0, ticks: 3_000_000n, data: frame })
      .bytes()
    const { seen, result } = await readAll([file(bytes, 'pcapng')])
    expect(seen.map((s) => [s.iface, s.name, s.ts])).toEqual([['1:0', 'a', 1_000_000_000n], ['2:1', 'c', 2_000_000_000n], ['3:0', 'd', 3_000_000_000n]])
    expect(result.files[0].interfaces.map((i) => i.id)).toEqual(['1:0', '2:0', '2:1', '3:0'])
  })
})

describe('inputs', () => {
  const frames = [syn, synAck]
  const records = (t0: number): { sec: number; frac: number; data: Buffer }[] => frames.map((data, i) => ({ sec: t0 + i, frac: 0, data }))

  it('reads gzip-compressed captures as the EKS node monitoring agent writes them', async () => {
    const plain = pcapFile({ littleEndian: true }, records(100))
    const a = await readFlows([file(plain)])
    const b = await readFlows([file(gzipSync(plain), 'pcap.gz')])
    expect(b.read.files[0].compression).toBe('gzip')
    expect(b.flows).toEqual(a.flows)
  })

  it('keeps the flows of a gzip file cut short and says the data is corrupt', async () => {
    const many = pcapFile({ littleEndian: true }, Array.from({ length: 2000 }, (_, i) => ({ sec: i, frac: 0, data: i % 2 ? synAck : syn })))
    const gz = gzipSync(many)
    const r = await readFlows([file(gz.subarray(0, Math.floor(gz.length * 0.6)), 'pcap.gz')])
    expect(r.packets).toBeGreaterThan(0)
    expect(r.packets).toBeLessThan(2000)
    expect(r.truncated).toBe(true)
    expect(r.read.problems[0].code).toBe('capture.bad-gzip')
  })

  it('reads a rotated set in the order of the first packets, whatever order it is given in', async () => {
    const first = file(pcapFile({ littleEndian: true }, [{ sec: 100, frac: 0, data: syn }]))
    const second = file(pcapFile({ littleEndian: true }, [{ sec: 200, frac: 0, data: synAck }]))
    const r = await readFlows([second, first])
    expect(r.read.files.map((f) => f.path)).toEqual([first, second])
    // src is the side that sent the first packet: the SYN in the earlier file
    expect(r.flows[0]).toMatchObject({ src: '10.0.0.1', sport: 40000, srcPackets: 1, dstPackets: 1 })
  })

  it('refuses files of another format by their first bytes', async () => {
    const r = await readFlows([file(Buffer.from('GET / HTTP/1.1\r\n\r\n'))])
    expect(r.read.problems[0]).toMatchObject({ offset: 0, code: 'capture.bad-magic' })
    expect(r.read.problems[0].message).toBe('not a pcap or pcapng file (the first bytes are 47455420)')
    expect(r.read.unreadable).toBe(true)
  })

  it('reports an empty file and a missing one', async () => {
    const r = await readFlows([file(Buffer.alloc(0)), path.join(dir, 'missing.pcap')])
    expect(r.read.problems.map((p) => p.message)).toEqual(['the file is empty', 'no such file'])
  })

  it('goes on with the next file after a bad one', async () => {
    const good = file(pcapFile({ littleEndian: true }, records(1)))
    const bad = file(Buffer.from('not a capture at all'))
    const r = await readFlows([bad, good])
    expect(r.packets).toBe(2)
    expect(r.read.unreadable).toBe(false)
    expect(r.read.problems).toHaveLength(1)
  })
})

describe('timestamps of every pcapng resolution', () => {
  it.each([
    [6, 1_700_000_000_123_456n, 1_700_000_000_123_456_000n],
    [9, 1_700_000_000_123_456_789n, 1_700_000_000_123_456_789n],
    [3, 1_700_000_000_123n, 1_700_000_000_123_000_000n],
    [0x80 | 10, (1_700_000_000n << 10n) + 512n, 1_700_000_000_500_000_000n],
    [12, 86_400_123_456_789_012n, 86_400_123_456_789n],
  ])('if_tsresol %i', async (tsresol, ticks, ns) => {
    const frame = ether(0x86dd, ipv6({ src: '2001:db8::1', dst: '2001:db8::2', next: 17, payload: udp(1, 2) }))
    const bytes = new PcapngWriter().shb({ littleEndian: true }).idb({ linktype: 1, tsresol }).epb({ iface: 0, ticks, data: frame }).bytes()
    const { seen } = await readAll([file(bytes, 'pcapng')])
    expect(seen[0].ts).toBe(ns)
  })
})

describe('no file makes a reader throw anything but a CaptureError', () => {
  const corpus = ['local--lo-and-any.pcapng', 'pcapng-test--le-test202.pcapng', 'pcapng-test--be-test006.pcapng', 'local--any-sll1.pcap',
    'derived--lo-nano-be.pcap', 'zeek--tunnels_vxlan-encapsulated-http.pcap', 'tcpdump--various_gre.pcap', 'zeek--ipv6-http-atomic-frag.pcap']
    .map((f) => readFileSync(path.join(PCAPS, f)))

  async function readBytes(bytes: Buffer): Promise<RecordSink> {
    const format = bytes.length >= 4 && bytes.readUInt32LE(0) === 0x0a0d0d0a ? 'pcapng' : 'pcap'
    const input = memoryInput(bytes)
    const window = new ByteWindow(input, 256)
    const table = new FlowTable({ decap: true })
    const sink = new RecordSink(emptySummary('mem'), { path: 'mem', index: 0 }, new PacketDecoder(), new Packet(), (p) => table.add(p))
    try {
      if (format === 'pcap') await readPcap(window, sink)
      else await readPcapng(window, sink, bytes.length)
    } catch (e) {
      if (!(e instanceof CaptureError)) throw e
      sink.fail(e)
    }
    // every flow can be written out, whatever its timestamps
    for (const f of table.flows()) JSON.stringify(flowJson(f))
    // a lying length never grows the buffer past the largest legal record or block
    expect(window.buf.length).toBeLessThanOrEqual(16 * 1024 * 1024 + 256)
    return sink
  }

  it('on corpus files with bytes changed and cut anywhere', async () => {
    await fc.assert(fc.asyncProperty(
      fc.constantFrom(...corpus),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 12 }),
      fc.nat(),
      async (seed, flips, cut) => {
        const b = Buffer.from(seed)
        for (const [i, v] of flips) b[i % b.length] = v
        await readBytes(b.subarray(0, cut % (b.length + 1)))
      },
    ), { numRuns: 400 })
  })

  it('on arbitrary bytes behind each magic number', async () => {
    const magics = ['d4c3b2a1', 'a1b2c3d4', '4d3cb2a1', 'a1b23c4d', '0a0d0d0a'].map((h) => Buffer.from(h, 'hex'))
    await fc.assert(fc.asyncProperty(fc.constantFrom(...magics), fc.uint8Array({ maxLength: 400 }), async (magic, rest) => {
      await readBytes(Buffer.concat([magic, Buffer.from(rest)]))
    }), { numRuns: 1500 })
  })
})
