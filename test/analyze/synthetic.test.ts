// The diagnoses that the kernel lab cannot stage on demand, on captures written here byte by byte (LINUX_SLL2, the
// `tcpdump -i any` link type, or Ethernet for a one-interface capture) against the example node.
import { describe, expect, it } from 'vitest'
import { mkdtemp, writeFile, copyFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadNodeState } from '../../src/sources/load.js'
import { analyze } from '../../src/analyze/analyze.js'
import { REPO } from '../helpers.js'

const IF = { eth0: 2, eth1: 3, web: 5, api: 7 }
const ip4 = (s: string) => s.split('.').reduce((a, b) => a * 256 + Number(b), 0)

class PcapWriter {
  private readonly records: Buffer[] = []
  private t = 1_764_000_000_000_000_000n
  constructor(private readonly linktype: 276 | 1) {}
  tcp(ifindex: number, outgoing: boolean, src: string, dst: string, sport: number, dport: number, flags: number, seq: number, ipId: number): this {
    const ipLen = 40
    const l2 = this.linktype === 276 ? 20 : 14
    const rec = Buffer.alloc(16 + l2 + ipLen)
    this.t += 1_000_000n
    rec.writeUInt32LE(Number(this.t / 1_000_000_000n), 0); rec.writeUInt32LE(Number(this.t % 1_000_000_000n), 4)
    rec.writeUInt32LE(l2 + ipLen, 8); rec.writeUInt32LE(l2 + ipLen, 12)
    if (this.linktype === 276) {
      rec.writeUInt16BE(0x0800, 16); rec.writeUInt32BE(ifindex, 20); rec.writeUInt16BE(1, 24); rec.writeUInt8(outgoing ? 4 : 0, 26); rec.writeUInt8(6, 27)
    } else {
      rec.writeUInt16BE(0x0800, 16 + 12)
    }
    const ip = 16 + l2
    rec.writeUInt8(0x45, ip); rec.writeUInt16BE(ipLen, ip + 2); rec.writeUInt16BE(ipId, ip + 4); rec.writeUInt8(64, ip + 8); rec.writeUInt8(6, ip + 9)
    rec.writeUInt32BE(ip4(src), ip + 12); rec.writeUInt32BE(ip4(dst), ip + 16)
    rec.writeUInt16BE(sport, ip + 20); rec.writeUInt16BE(dport, ip + 22); rec.writeUInt32BE(seq >>> 0, ip + 24)
    rec.writeUInt8(0x50, ip + 32); rec.writeUInt8(flags, ip + 33); rec.writeUInt16BE(65535, ip + 34)
    this.records.push(rec)
    return this
  }
  async write(path: string): Promise<string> {
    const gh = Buffer.alloc(24)
    gh.writeUInt32LE(0xa1b23c4d, 0); gh.writeUInt16LE(2, 4); gh.writeUInt16LE(4, 6); gh.writeUInt32LE(262144, 16); gh.writeUInt32LE(this.linktype, 20)
    await writeFile(path, Buffer.concat([gh, ...this.records]))
    return path
  }
}

async function exampleBundle(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'natlens-synth-'))
  for (const f of ['ip-rule.txt', 'ip-route-all.txt', 'iptables-save-nat.txt', 'iptables-save-mangle.txt']) await copyFile(join(REPO, 'fixtures/example-node', f), join(dir, f))
  const links = [['lo', 1], ['eth0', 2], ['eth1', 3], ['eni212428e8e5c', 5], ['enie90ff0f6268', 7]] as const
  await writeFile(join(dir, 'ip-link.json'), JSON.stringify(links.map(([ifname, ifindex]) => ({ ifindex, ifname, flags: ['UP'], mtu: 9001, link_type: 'ether', address: '02:00:00:00:00:01' }))))
  return dir
}

describe('analyze diagnoses', () => {
  it('SNAT port exhaustion: many SYNs from one pod to one destination, none answered', async () => {
    const w = new PcapWriter(276)
    for (let i = 0; i < 25; i++) {
      w.tcp(IF.web, false, '10.0.7.201', '203.0.113.10', 40000 + i, 443, 0x02, 1000 + i * 7919, 100 + i)
      w.tcp(IF.eth0, true, '10.0.3.45', '203.0.113.10', 20000 + i, 443, 0x02, 1000 + i * 7919, 100 + i)
    }
    const dir = await exampleBundle()
    const a = await analyze(await loadNodeState([dir]), [await w.write(join(dir, '..', 'exhaust.pcap'))])
    expect(a.flows).toHaveLength(25)
    expect(a.flows.every((f) => f.agree)).toBe(true)
    expect(a.findings.map((f) => f.kind)).toContain('snat-port-exhaustion')
    expect(a.findings[0]!.text).toMatch(/25 TCP connections to 203\.0\.113\.10:443/)
  })

  it('a capture on one interface that cannot see the other leg: capture-gap, not a wrong rule', async () => {
    const w = new PcapWriter(1)
    w.tcp(0, false, '10.0.7.201', '203.0.113.10', 40000, 443, 0x02, 555, 1).tcp(0, false, '203.0.113.10', '10.0.7.201', 443, 40000, 0x12, 777, 2)
    const dir = await exampleBundle()
    const a = await analyze(await loadNodeState([dir]), [await w.write(join(dir, '..', 'veth-only.pcap'))])
    expect(a.flows).toHaveLength(1)
    expect(a.flows[0]).toMatchObject({ agree: false, observed: { snat: false, sourceAfter: '10.0.7.201' }, predicted: { snat: true } })
    expect(a.flows[0]!.diagnosis?.kind).toBe('capture-gap')
  })

  it('the classic failure seen on the wire: api SNATed but leaving eth1 while the rules send it out eth0 → asymmetric routing', async () => {
    const w = new PcapWriter(276)
    w.tcp(IF.api, false, '10.0.9.88', '203.0.113.10', 40000, 443, 0x02, 4242, 9)
    w.tcp(IF.eth1, true, '10.0.3.45', '203.0.113.10', 30000, 443, 0x02, 4242, 9)
    const dir = await exampleBundle()
    const a = await analyze(await loadNodeState([dir]), [await w.write(join(dir, '..', 'eth1.pcap'))])
    expect(a.flows).toHaveLength(1)
    const f = a.flows[0]!
    expect(f.observed).toMatchObject({ snat: true, sourceAfter: '10.0.3.45', egressInterface: 'eth1', ingressInterface: 'enie90ff0f6268' })
    expect(f.predicted.egressInterface).toBe('eth0')
    expect(f.agree).toBe(false)
    expect(f.diagnosis?.kind).toBe('asymmetric-routing')
  })

  it('a pod leg that never leaves although every interface was captured is listed as unpaired', async () => {
    const w = new PcapWriter(276)
    w.tcp(IF.web, false, '10.0.7.201', '203.0.113.10', 40000, 443, 0x02, 99, 1)
    const dir = await exampleBundle()
    const a = await analyze(await loadNodeState([dir]), [await w.write(join(dir, '..', 'drop.pcap'))])
    expect(a.flows).toHaveLength(0)
    expect(a.unpaired).toHaveLength(1)
    expect(a.unpaired[0]!.why).toMatch(/never leaving the node/)
  })
})
