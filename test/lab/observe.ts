// Turning captures and conntrack into observations: for each flow, what left the node, where, and what the destination saw.
import { describePacket, PACKET_OUTGOING, type CapturedPacket } from './capture.js'
import type { ConntrackObservation, ConntrackTuple, LabFlowSpec, Observation } from './model.js'

/** Parses `conntrack -L` lines (both families): the first src/dst/ports are the original tuple, the second the reply. */
export function parseConntrackLines(text: string): ConntrackObservation[] {
  const out: ConntrackObservation[] = []
  for (const line of text.split('\n')) {
    const tokens = line.trim().split(/\s+/)
    if (tokens.length < 4 || !tokens.some((t) => t.startsWith('src='))) continue
    const proto = tokens[0]!
    const firstKv = tokens.findIndex((t) => t.includes('='))
    const state = tokens.slice(0, firstKv).find((t) => /^[A-Z_]+$/.test(t)) ?? null
    const tuples: Record<string, string>[] = [{}, {}]
    let which = -1
    let mark = 0
    for (const t of tokens.slice(firstKv)) {
      const eq = t.indexOf('=')
      if (eq < 0) continue
      const k = t.slice(0, eq)
      const v = t.slice(eq + 1)
      if (k === 'src') which++
      if (k === 'mark') { mark = Number(v); continue }
      if (which >= 0 && which < 2 && ['src', 'dst', 'sport', 'dport', 'id'].includes(k)) tuples[which]![k] = v
    }
    const tuple = (m: Record<string, string>): ConntrackTuple => ({
      src: m.src ?? '', dst: m.dst ?? '',
      sport: m.sport !== undefined ? Number(m.sport) : null, dport: m.dport !== undefined ? Number(m.dport) : null,
      ...(m.id !== undefined ? { id: Number(m.id) } : {}),
    })
    out.push({ proto, state, orig: tuple(tuples[0]!), reply: tuple(tuples[1]!), mark, line: line.trim() })
  }
  return out
}

/** The conntrack entry whose original direction is exactly this flow's first packet. */
export function findConntrack(entries: readonly ConntrackObservation[], f: LabFlowSpec): ConntrackObservation | undefined {
  const proto = f.flow.proto
  return entries.find((e) => e.proto === proto && e.orig.src === f.flow.src && e.orig.dst === f.flow.dst &&
    (proto === 'icmp' || proto === 'icmpv6' ? e.orig.id === f.icmpId : e.orig.sport === f.flow.sport && e.orig.dport === f.flow.dport))
}

export interface TrafficRecord {
  readonly spec: LabFlowSpec
  /** Wall-clock window of the client run, in µs. */
  readonly startUs: number
  readonly endUs: number
  readonly client: string
  readonly tag: string
}

interface PacketMatch {
  readonly src: string
  readonly dst: string
  readonly sport: number | null
  readonly dport: number | null
  readonly proto: string
  /** For TCP: the flags the packet must carry (the SYN, or the SYN-ACK of a reply). */
  readonly tcp?: 'syn' | 'synack'
  readonly tag?: string
}

function matches(p: CapturedPacket, m: PacketMatch): boolean {
  if (p.proto !== m.proto || p.src !== m.src || p.dst !== m.dst) return false
  if (m.proto === 'tcp' || m.proto === 'udp') { if (p.sport !== m.sport || p.dport !== m.dport) return false }
  if (m.tcp === 'syn' && ((p.tcpFlags ?? 0) & 0x12) !== 0x02) return false
  if (m.tcp === 'synack' && ((p.tcpFlags ?? 0) & 0x12) !== 0x12) return false
  if ((m.proto === 'icmp' || m.proto === 'icmpv6') && p.icmpType !== (m.proto === 'icmp' ? 8 : 128)) return false
  if (m.tag !== undefined && !p.payload.includes(m.tag)) return false
  return true
}

export interface ObservationInput {
  readonly record: TrafficRecord
  readonly conntrack: readonly ConntrackObservation[]
  readonly nodePackets: readonly CapturedPacket[]
  readonly vpcPackets: readonly CapturedPacket[]
  readonly nodeIfnames: ReadonlyMap<number, string>
  readonly vpcIfnames: ReadonlyMap<number, string>
  /** Host veth names of the pods: a packet sent out of one of them has arrived at that pod. */
  readonly podVeths: ReadonlySet<string>
  /** For a reply flow: the observation of the flow it answers. */
  readonly parent?: { readonly record: TrafficRecord; readonly observed: Observation }
}

/**
 * What the kernel did with the flow's first packet (or, for a reply flow, with the SYN-ACK):
 * - conntrack links the packet as sent to the packet after NAT (its reply tuple, reversed);
 * - the node capture shows the interface it left through (first outgoing copy, in the client's time window);
 * - the destination shows what arrived: the pod behind a host veth receives exactly what left that veth;
 *   for an ENI or vlan.eth.N, the VPC namespace's own capture is read.
 */
export function observe(input: ObservationInput): Observation {
  const { record, nodePackets, vpcPackets, nodeIfnames, vpcIfnames } = input
  const f = record.spec
  const evidence: string[] = []
  let ct: ConntrackObservation | undefined
  let match: PacketMatch
  let window: [number, number]
  if (f.flow.origin === 'reply') {
    const parent = input.parent
    if (!parent?.observed.conntrack) {
      return { delivered: false, sourceSeen: null, sportSeen: null, egressInterface: null, arrivedAt: null, dportArrived: null, snat: null, portRewritten: null, evidence: [`the connection of ${f.replyOf} has no conntrack entry, so its reply cannot be identified`] }
    }
    ct = parent.observed.conntrack
    // The reply leaves with the original tuple reversed: conntrack undoes the DNAT (and SNAT) of the connection.
    match = { proto: f.flow.proto, src: ct.orig.dst, dst: ct.orig.src, sport: ct.orig.dport, dport: ct.orig.sport, tcp: 'synack' }
    window = [parent.record.startUs - 50_000, parent.record.endUs + 500_000]
    evidence.push(`reply of ${f.replyOf}: conntrack ${ct.line}`)
  } else {
    ct = findConntrack(input.conntrack, f)
    const tagged = f.flow.proto !== 'tcp' ? record.tag : undefined
    if (ct) {
      match = { proto: f.flow.proto, src: ct.reply.dst, dst: ct.reply.src, sport: ct.reply.dport, dport: ct.reply.sport, ...(f.flow.proto === 'tcp' ? { tcp: 'syn' as const } : {}), ...(tagged ? { tag: tagged } : {}) }
      evidence.push(`conntrack ${ct.line}`)
    } else {
      match = { proto: f.flow.proto, src: f.flow.src, dst: f.flow.dst, sport: f.flow.sport, dport: f.flow.dport, ...(f.flow.proto === 'tcp' ? { tcp: 'syn' as const } : {}), ...(tagged ? { tag: tagged } : {}) }
      evidence.push('conntrack: no entry for the flow (not confirmed: the packet was dropped before it left)')
    }
    window = [record.startUs - 50_000, record.endUs + 500_000]
  }
  evidence.push(`client ${record.client}`)
  const inWindow = (p: CapturedPacket) => p.ts >= window[0] && p.ts <= window[1]
  const leaving = nodePackets.filter((p) => p.pktType === PACKET_OUTGOING && inWindow(p) && matches(p, match))
  const first = leaving[0]
  if (!first) {
    evidence.push(`node capture: no packet ${match.src}:${match.sport ?? ''} > ${match.dst}:${match.dport ?? ''} left the node`)
    return { delivered: false, sourceSeen: null, sportSeen: null, egressInterface: null, arrivedAt: null, dportArrived: null, snat: null, portRewritten: null, ...(ct ? { conntrack: ct } : {}), evidence }
  }
  const egress = nodeIfnames.get(first.ifindex) ?? `ifindex ${first.ifindex}`
  evidence.push(`node.pcap ${describePacket(first, egress)}`)
  let seen: CapturedPacket | undefined
  if (input.podVeths.has(egress)) {
    seen = first
    evidence.push(`arrived at the pod behind ${egress} (a veth delivers what it sends)`)
  } else {
    seen = vpcPackets.find((p) => p.pktType !== PACKET_OUTGOING && inWindow(p) && matches(p, match))
    if (seen) evidence.push(`vpc.pcap ${describePacket(seen, vpcIfnames.get(seen.ifindex) ?? `ifindex ${seen.ifindex}`)}`)
    else evidence.push('vpc capture: the packet did not arrive')
  }
  const original = f.flow
  const snat = seen ? seen.src !== original.src : null
  const portRewritten = seen && original.sport !== null ? seen.sport !== original.sport : null
  return {
    delivered: Boolean(seen),
    sourceSeen: seen?.src ?? null,
    sportSeen: seen?.sport ?? null,
    egressInterface: egress,
    arrivedAt: seen?.dst ?? null,
    dportArrived: seen?.dport ?? null,
    snat,
    portRewritten,
    ...(ct ? { conntrack: ct } : {}),
    evidence,
  }
}
