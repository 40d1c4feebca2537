// Captured packets → connections as seen at each capture point. One record per 5-tuple conversation (both
// directions), with what pairs the legs of a NAT later: the TCP initial sequence number, the first IPv4 ID, ICMP
// echo sequence, UDP payload length and a digest of the first payload bytes; per direction the interfaces it was
// seen on and whether the capture saw it leave or arrive. Memory grows with the number of conversations, not packets.
import { createHash } from 'node:crypto'
import { PacketSource, type Packet, type Tuple, type ReadResult } from '../pcap/index.js'
import type { IpAddress } from '../model/ip.js'

export interface Side {
  packets: number
  bytes: number
  /** Interface names (pcapng if_name, or the SLL2 ifindex resolved through the bundle's links) → direction seen. */
  readonly interfaces: Map<string, 'in' | 'out' | 'unknown'>
}

export interface Connection {
  readonly key: string
  readonly family: 4 | 6
  /** Transport protocol number (6 tcp, 17 udp, 1 icmp, 58 icmpv6, 132 sctp). */
  readonly proto: number
  /** The initiator: the side that sent the first packet seen. */
  readonly src: IpAddress
  readonly dst: IpAddress
  readonly sport: number | null
  readonly dport: number | null
  /** The initiator's endpoint key, to tell the two directions apart. */
  readonly srcEndpoint: string
  readonly fwd: Side
  readonly rev: Side
  firstNs: bigint
  lastNs: bigint
  /** Where in which file the first packet was. */
  readonly first: { readonly file: string; readonly record: number; readonly offset: number }
  /** Pairing signatures of the first forward packet. */
  readonly isn?: number
  readonly ipId?: number
  readonly icmpId?: number
  readonly icmpSeq?: number
  readonly payloadLength?: number
  readonly digest?: string
  synSeen: boolean
  synAckSeen: boolean
  rstSeen: boolean
}

export interface CaptureRead {
  readonly connections: Connection[]
  readonly result: ReadResult
  /** True when a capture point saw every interface (`-i any`), so a missing leg means the node did not send it. */
  readonly sawAllInterfaces: boolean
}

function toAddress(family: number, w0: number, w1: number, w2: number, w3: number): IpAddress {
  if (family === 4) return { family: 4, value: BigInt(w0 >>> 0), n: w0 >>> 0 }
  const v = (BigInt(w0 >>> 0) << 96n) | (BigInt(w1 >>> 0) << 64n) | (BigInt(w2 >>> 0) << 32n) | BigInt(w3 >>> 0)
  return { family: 6, value: v }
}

function endpointKey(family: number, a0: number, a1: number, a2: number, a3: number, port: number): string {
  return family === 4 ? `${a0 >>> 0}:${port}` : `${a0 >>> 0}.${a1 >>> 0}.${a2 >>> 0}.${a3 >>> 0}:${port}`
}

/** Reads captures into connections. `ifnames` maps SLL2 interface indexes to names (from the bundle's `ip link`). */
export async function readConnections(paths: readonly string[], ifnames: ReadonlyMap<number, string>): Promise<CaptureRead> {
  const byKey = new Map<string, Connection>()
  let sawAll = false
  const source = new PacketSource(paths)
  const result = await source.forEach((p: Packet) => {
    const t = p.outer
    if (!t || t.family === 0 || t.proto < 0 || t.isLaterFragment) return
    // ICMP errors belong to the flow they quote; they are not connections of their own.
    if (p.hasQuoted) return
    if (p.interface.name === 'any' || p.linktype === 113 || p.linktype === 276) sawAll = true
    const iface = p.ifindex >= 0 ? (ifnames.get(p.ifindex) ?? `if${p.ifindex}`) : (p.interface.name && p.interface.name !== 'any' ? p.interface.name : undefined)
    // SLL packet type 4 is "sent by us"; pcapng epb_flags give the same through p.direction.
    const dir: 'in' | 'out' | 'unknown' = p.sllPacketType === 4 || p.direction === 2 ? 'out' : p.sllPacketType >= 0 || p.direction === 1 ? 'in' : 'unknown'
    const { key, a } = connectionKey(t)
    let c = byKey.get(key)
    const ns = p.timestampNs()
    if (!c) {
      c = newConnection(key, t, p, ns, a)
      byKey.set(key, c)
    }
    const side = a === c.srcEndpoint ? c.fwd : c.rev
    side.packets++
    side.bytes += p.length
    if (iface) {
      const had = side.interfaces.get(iface)
      if (!had || had === 'unknown') side.interfaces.set(iface, dir)
    }
    if (ns > c.lastNs) c.lastNs = ns
    if (ns < c.firstNs) c.firstNs = ns
    if (t.proto === 6 && t.tcpFlags >= 0) {
      const syn = (t.tcpFlags & 0x02) !== 0, ack = (t.tcpFlags & 0x10) !== 0
      if (syn && !ack) c.synSeen = true
      if (syn && ack) c.synAckSeen = true
      if (t.tcpFlags & 0x04) c.rstSeen = true
    }
  })
  return { connections: [...byKey.values()], result, sawAllInterfaces: sawAll }
}

/** The direction-free key of the conversation a packet belongs to, and its sender's endpoint. */
export function connectionKey(t: Tuple): { key: string; a: string } {
  const sport = t.sport >= 0 ? t.sport : (t.proto === 1 || t.proto === 58) && t.icmpId >= 0 ? t.icmpId : -1
  const a = endpointKey(t.family, t.src0, t.src1, t.src2, t.src3, sport)
  const b = endpointKey(t.family, t.dst0, t.dst1, t.dst2, t.dst3, t.sport >= 0 ? t.dport : sport)
  return { key: a < b ? `${t.proto}|${a}|${b}` : `${t.proto}|${b}|${a}`, a }
}

function newConnection(key: string, t: Tuple, p: Packet, ns: bigint, srcEndpoint: string): Connection {
  const icmp = t.proto === 1 || t.proto === 58
  let digest: string | undefined
  if (t.payloadLength > 0 && t.l4Offset >= 0) {
    const hdr = t.proto === 6 ? ((p.bytes[p.start + t.l4Offset + 12] ?? 0x50) >> 4) * 4 : t.proto === 17 ? 8 : 0
    const from = p.start + t.l4Offset + hdr
    const to = Math.min(p.start + p.caplen, from + Math.min(t.payloadLength, 64))
    if (to > from) digest = createHash('sha1').update(p.bytes.subarray(from, to)).digest('hex').slice(0, 16)
  }
  const syn = t.proto === 6 && t.tcpFlags >= 0 && (t.tcpFlags & 0x12) === 0x02
  return {
    key, family: t.family as 4 | 6, proto: t.proto,
    src: toAddress(t.family, t.src0, t.src1, t.src2, t.src3), dst: toAddress(t.family, t.dst0, t.dst1, t.dst2, t.dst3),
    sport: t.sport >= 0 ? t.sport : null, dport: t.sport >= 0 ? t.dport : null, srcEndpoint,
    fwd: { packets: 0, bytes: 0, interfaces: new Map() }, rev: { packets: 0, bytes: 0, interfaces: new Map() },
    firstNs: ns, lastNs: ns, first: { file: p.file.path, record: p.recordNumber, offset: p.offset },
    ...(syn ? { isn: t.tcpSeq >>> 0 } : {}),
    ...(t.family === 4 && t.ipId >= 0 ? { ipId: t.ipId } : {}),
    ...(icmp && t.icmpId >= 0 ? { icmpId: t.icmpId, icmpSeq: t.icmpSeq } : {}),
    ...(t.payloadLength >= 0 ? { payloadLength: t.payloadLength } : {}),
    ...(digest ? { digest } : {}),
    synSeen: false, synAckSeen: false, rstSeen: false,
  }
}

export const PROTO_NAME: Record<number, 'tcp' | 'udp' | 'icmp' | 'icmpv6' | 'sctp'> = { 6: 'tcp', 17: 'udp', 1: 'icmp', 58: 'icmpv6', 132: 'sctp' }
