// natlens's reading of a capture, put in the shape of the tshark oracle (../shared/corpus/oracle/*.json) so
// the two compare field by field. The oracle's README says what tshark counts; this file reproduces each
// count from natlens's own decoded packets and flows:
//   packets, linktypes, packets per interface ("section:id"), SLL2 ifindex counts  → the reader's summary
//   packets_containing (one count per packet per protocol)                         → Packet.layers
//   conversations.tcp / .udp (tshark's conv,tcp / conv,udp)                         → FlowTable with decap
//   conversations.ipv4 / .ipv6 (conv,ipv4 / conv,ipv6: every IP header, tunnel inner ones included, not
//   those quoted in ICMP errors; A = source of the first packet)                    → Packet.tuples, aggregated here
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { FlowTable, type Flow } from '../../src/pcap/flows.js'
import { LAYER_NAMES, LAYER_TOKEN, Layer, formatAddress, type Packet } from '../../src/pcap/packet.js'
import { PacketSource, type ReaderName, type ReadResult } from '../../src/pcap/source.js'

const here = path.dirname(fileURLToPath(import.meta.url))
/** <repo root>/../shared, wherever the repository is cloned. */
export const SHARED = path.resolve(here, '../../../shared')
export const CORPUS = path.join(SHARED, 'corpus')
export const PCAPS = path.join(CORPUS, 'pcaps')
export const ORACLE = path.join(CORPUS, 'oracle')

export interface ConvRow {
  a: string
  b: string
  a_port?: number
  b_port?: number
  frames_a_to_b: number
  bytes_a_to_b: number
  frames_b_to_a: number
  bytes_b_to_a: number
  duration: number
}
export interface ConvTables {
  ipv4: ConvRow[]
  ipv6: ConvRow[]
  tcp: ConvRow[]
  udp: ConvRow[]
}
/** The comparable part of an oracle file, or of natlens's reading. */
export interface View {
  readable: boolean
  packets: number
  linktypes: number[]
  /** Interface names (pcapng if_name; null without one), in file order: capinfos's interface list. */
  interface_names: (string | null)[]
  packets_per_interface: Record<string, number>
  sll_ifindex_packets: Record<string, number>
  packets_containing: Record<string, number>
  conversations: ConvTables
  conversations_per_interface?: Record<string, ConvTables>
}

/** Protocols compared with tshark's frame.protocols counts (eth is left out: tshark also counts it for SLL-less trailers). */
export const COMPARED_PROTOCOLS = LAYER_NAMES.filter((n) => n !== 'eth').map((n) => LAYER_TOKEN[n])

function round9(x: number): number {
  return Math.round(x * 1e9) / 1e9
}

function sortRows(rows: ConvRow[]): ConvRow[] {
  const key = (r: ConvRow): string => `${r.a} ${r.a_port ?? ''} ${r.b} ${r.b_port ?? ''}`
  return [...rows].sort((x, y) => (key(x) < key(y) ? -1 : key(x) > key(y) ? 1 : 0))
}

interface OracleRow {
  a: string; b: string; a_port?: number; b_port?: number
  frames_a_to_b: number; bytes_a_to_b: number; frames_b_to_a: number; bytes_b_to_a: number; duration: number
}
function oracleTables(conv: Record<string, unknown>): ConvTables {
  const pick = (rows: OracleRow[]): ConvRow[] => sortRows(rows.map((r) => ({
    a: r.a, b: r.b, ...(r.a_port !== undefined ? { a_port: r.a_port, b_port: r.b_port } : {}),
    frames_a_to_b: r.frames_a_to_b, bytes_a_to_b: r.bytes_a_to_b, frames_b_to_a: r.frames_b_to_a, bytes_b_to_a: r.bytes_b_to_a,
    duration: round9(r.duration),
  })))
  return { ipv4: pick(conv.ipv4 as OracleRow[]), ipv6: pick(conv.ipv6 as OracleRow[]), tcp: pick(conv.tcp as OracleRow[]), udp: pick(conv.udp as OracleRow[]) }
}

export function readOracle(file: string): { view: View; noDefragment?: { packets_containing: Record<string, number>; conversations: ConvTables }; raw: any } {
  const o = JSON.parse(readFileSync(path.join(ORACLE, `${file}.json`), 'utf8'))
  const t = o.tshark
  const readable = o.capinfos.exit_status === 0
  const containing = (pc: Record<string, number>): Record<string, number> =>
    Object.fromEntries(COMPARED_PROTOCOLS.filter((k) => pc[k]).map((k) => [k, pc[k]]))
  const view: View = {
    readable,
    packets: t.packets,
    linktypes: o.header.linktypes ?? [],
    interface_names: ((o.capinfos.interfaces ?? []) as { Name?: string }[]).map((i) => i.Name ?? null),
    packets_per_interface: t.packets_per_interface,
    sll_ifindex_packets: t.sll_ifindex_packets,
    packets_containing: containing(t.packets_containing),
    conversations: oracleTables(t.conversations),
  }
  if (t.conversations_per_interface) {
    view.conversations_per_interface = Object.fromEntries(Object.entries(t.conversations_per_interface as Record<string, Record<string, unknown>>)
      .map(([k, v]) => [k, oracleTables(v)]))
  }
  const nd = o.no_defragment
  return {
    view,
    ...(nd ? { noDefragment: { packets_containing: containing(nd.packets_containing), conversations: oracleTables(nd.conversations) } } : {}),
    raw: o,
  }
}

function headerAddress(p: Packet, family: number, l3: number, which: 'src' | 'dst'): string {
  const b = p.bytes
  const w = (o: number): number => b.readUInt32BE(o)
  if (family === 4) return formatAddress(4, w(l3 + (which === 'src' ? 12 : 16)), 0, 0, 0)
  const o = l3 + (which === 'src' ? 8 : 24)
  return formatAddress(6, w(o), w(o + 4), w(o + 8), w(o + 12))
}

/** conv,ipv4 / conv,ipv6: one row per address pair over every IP header outside ICMP errors. */
class HostPairs {
  private readonly rows = new Map<string, ConvRow & { firstNs: bigint; lastNs: bigint }>()
  add(p: Packet): void {
    const ts = p.timestampNs()
    for (let i = 0; i < p.tupleCount; i++) {
      const t = p.tuples[i]
      // conv,ipv4/ipv6 key on the IP header's own addresses (TCP/UDP use the routing header's final destination)
      const src = headerAddress(p, t.family, t.l3Offset, 'src')
      const dst = headerAddress(p, t.family, t.l3Offset, 'dst')
      const fam = t.family === 4 ? 'ipv4' : 'ipv6'
      const key = `${fam} ${src < dst ? `${src} ${dst}` : `${dst} ${src}`}`
      let r = this.rows.get(key)
      if (!r) {
        r = { a: src, b: dst, frames_a_to_b: 0, bytes_a_to_b: 0, frames_b_to_a: 0, bytes_b_to_a: 0, duration: 0, firstNs: ts, lastNs: ts }
        this.rows.set(key, r)
      }
      // tshark puts both directions of a same-address pair (127.0.0.1 <-> 127.0.0.1) in a_to_b
      if (src === r.a) { r.frames_a_to_b++; r.bytes_a_to_b += p.length } else { r.frames_b_to_a++; r.bytes_b_to_a += p.length }
      if (ts < r.firstNs) r.firstNs = ts
      if (ts > r.lastNs) r.lastNs = ts
    }
  }
  tables(): { ipv4: ConvRow[]; ipv6: ConvRow[] } {
    const out = { ipv4: [] as ConvRow[], ipv6: [] as ConvRow[] }
    for (const [key, r] of this.rows) {
      const { firstNs, lastNs, ...row } = r
      row.duration = round9(Number(lastNs - firstNs) / 1e9)
      out[key.startsWith('ipv4') ? 'ipv4' : 'ipv6'].push(row)
    }
    return { ipv4: sortRows(out.ipv4), ipv6: sortRows(out.ipv6) }
  }
}

function flowRows(flows: Flow[], proto: string): ConvRow[] {
  return sortRows(flows.filter((f) => f.proto === proto && f.packets > 0).map((f) => ({
    a: f.src, b: f.dst, a_port: f.sport ?? 0, b_port: f.dport ?? 0,
    frames_a_to_b: f.srcPackets, bytes_a_to_b: f.srcBytes, frames_b_to_a: f.dstPackets, bytes_b_to_a: f.dstBytes,
    duration: round9(Number(f.lastNs - f.firstNs) / 1e9),
  })))
}

class Tables {
  readonly flows = new FlowTable({ decap: true })
  readonly hosts = new HostPairs()
  add(p: Packet): void {
    this.flows.add(p)
    this.hosts.add(p)
  }
  tables(): ConvTables {
    const flows = this.flows.flows()
    return { ...this.hosts.tables(), tcp: flowRows(flows, 'tcp'), udp: flowRows(flows, 'udp') }
  }
}

export interface NatlensReading {
  view: View
  read: ReadResult
  flows: Flow[]
}

export async function readNatlens(file: string, reader: ReaderName = 'builtin'): Promise<NatlensReading> {
  const all = new Tables()
  const perInterface = new Map<string, Tables>()
  const containing = new Map<string, number>()
  const read = await new PacketSource([path.join(PCAPS, file)], { reader }).forEach((p) => {
    all.add(p)
    let t = perInterface.get(p.interface.id)
    if (!t) perInterface.set(p.interface.id, (t = new Tables()))
    t.add(p)
    for (const n of LAYER_NAMES) if (p.layers & Layer[n]) containing.set(LAYER_TOKEN[n], (containing.get(LAYER_TOKEN[n]) ?? 0) + 1)
  })
  const s = read.files[0]
  const view: View = {
    readable: !(s.problem && s.packets === 0 && s.interfaces.length === 0),
    packets: s.packets,
    linktypes: s.interfaces.map((i) => i.linktype),
    interface_names: s.interfaces.map((i) => i.name ?? null),
    packets_per_interface: Object.fromEntries(s.interfaces.filter((i) => i.packets > 0).map((i) => [i.id, i.packets])),
    sll_ifindex_packets: s.ifindexPackets,
    packets_containing: Object.fromEntries(COMPARED_PROTOCOLS.filter((k) => containing.get(k)).map((k) => [k, containing.get(k) as number])),
    conversations: all.tables(),
  }
  if (perInterface.size > 1) {
    view.conversations_per_interface = Object.fromEntries([...perInterface].sort().map(([k, t]) => [k, t.tables()]))
  }
  return { view, read, flows: all.flows.flows() }
}
