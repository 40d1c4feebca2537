// The decoded view of one captured packet. One Packet object is reused for every record of a read: the
// reader overwrites it before each callback, so a consumer that keeps anything copies it (copyBytes(),
// Tuple.copyFrom, timestampNs()). This is gopacket's ZeroCopyReadPacketData contract.

/** Bits of Packet.layers: which headers the decoder found (tshark's frame.protocols tokens, counted once). */
export const Layer = {
  eth: 1 << 0,
  vlan: 1 << 1,
  sll: 1 << 2,
  null: 1 << 3,
  raw: 1 << 4,
  ip: 1 << 5,
  ipv6: 1 << 6,
  hopopts: 1 << 7,
  routing: 1 << 8,
  fraghdr: 1 << 9,
  dstopts: 1 << 10,
  mipv6: 1 << 11,
  ah: 1 << 12,
  esp: 1 << 13,
  tcp: 1 << 14,
  udp: 1 << 15,
  icmp: 1 << 16,
  icmpv6: 1 << 17,
  igmp: 1 << 18,
  sctp: 1 << 19,
  gre: 1 << 20,
  vxlan: 1 << 21,
  geneve: 1 << 22,
  arp: 1 << 23,
} as const
export type LayerName = keyof typeof Layer
/** Names as tshark writes them in frame.protocols, for comparisons with the oracle and for reports. */
export const LAYER_TOKEN: Record<LayerName, string> = {
  eth: 'eth', vlan: 'vlan', sll: 'sll', null: 'null', raw: 'raw', ip: 'ip', ipv6: 'ipv6',
  hopopts: 'ipv6.hopopts', routing: 'ipv6.routing', fraghdr: 'ipv6.fraghdr', dstopts: 'ipv6.dstopts',
  mipv6: 'ipv6.mipv6', ah: 'ah', esp: 'esp', tcp: 'tcp', udp: 'udp', icmp: 'icmp', icmpv6: 'icmpv6',
  igmp: 'igmp', sctp: 'sctp', gre: 'gre', vxlan: 'vxlan', geneve: 'geneve', arp: 'arp',
}
export const LAYER_NAMES = Object.keys(Layer) as LayerName[]

export const IPPROTO = {
  hopopts: 0, icmp: 1, igmp: 2, ipip: 4, tcp: 6, udp: 17, ipv6: 41, routing: 43, fragment: 44, gre: 47,
  esp: 50, ah: 51, icmpv6: 58, none: 59, dstopts: 60, sctp: 132, mobility: 135,
} as const

const PROTO_NAMES: Record<number, string> = {
  1: 'icmp', 2: 'igmp', 4: 'ipip', 6: 'tcp', 17: 'udp', 41: 'ipv6', 47: 'gre', 50: 'esp', 51: 'ah', 58: 'icmpv6',
  89: 'ospf', 103: 'pim', 112: 'vrrp', 132: 'sctp',
}
/** The protocol's usual name (`tcp`), or `ip-proto-N` for numbers without one. */
export function protoName(proto: number): string {
  return PROTO_NAMES[proto] ?? `ip-proto-${proto}`
}
export function protoNumber(name: string): number | undefined {
  const lower = name.toLowerCase()
  for (const [n, v] of Object.entries(PROTO_NAMES)) if (v === lower) return Number(n)
  const m = /^(?:ip-proto-)?(\d{1,3})$/.exec(lower)
  return m && Number(m[1]) < 256 ? Number(m[1]) : undefined
}

/** Which way a packet went, from the SLL packet type or the pcapng epb_flags option. */
export const Direction = { unknown: 0, incoming: 1, outgoing: 2 } as const
export type DirectionValue = (typeof Direction)[keyof typeof Direction]

/** Why the decoder stopped early; a constant string, so reporting it allocates nothing. */
export type DecodeProblem =
  | 'link-truncated' | 'ipv4-truncated' | 'ipv4-bad-header' | 'ipv6-truncated' | 'ipv6-ext-truncated'
  | 'tcp-truncated' | 'udp-truncated' | 'icmp-truncated' | 'sctp-truncated' | 'gre-truncated'
  | 'tunnel-truncated' | 'tunnel-too-deep' | 'version-mismatch' | 'unknown-linktype'

/**
 * One IP conversation layer of a packet: addresses, protocol, ports. A packet has one per IP header it
 * carries outside ICMP errors (a VXLAN packet has the outer UDP one and the inner one), plus, for an ICMP
 * error, the quoted header in Packet.quoted. Addresses are unsigned 32-bit words; IPv4 uses word 0 only.
 */
export class Tuple {
  family: 0 | 4 | 6 = 0
  src0 = 0; src1 = 0; src2 = 0; src3 = 0
  /**
   * The destination of the transport conversation. With an IPv6 routing header that still has segments left
   * it is the final destination (type 0: the last address, type 2: the home address, type 4: segment 0), as
   * the TCP/UDP checksum and tshark's conversations use it; the IP header's own address stays at l3Offset + 24.
   */
  dst0 = 0; dst1 = 0; dst2 = 0; dst3 = 0
  /** The transport protocol after any IPv6 extension headers; -1 when the IP header was cut short. */
  proto = -1
  /** Ports for TCP, UDP and SCTP, -1 otherwise or when cut off. */
  sport = -1
  dport = -1
  /** True when the ports came from an earlier first fragment rather than from this packet's own header. */
  portsFromFragment = false
  /** IPv4 identification, or the IPv6 fragment header's identification; -1 without one. */
  ipId = -1
  /** Fragment offset in bytes, and the more-fragments flag; fragOffset -1 when the packet is not a fragment. */
  fragOffset = -1
  moreFragments = false
  /** Offsets in Packet.bytes of the IP header and of the transport header (-1 when absent). */
  l3Offset = -1
  l4Offset = -1
  /** Length of the IP payload after extension headers, as the IP header states it (or as captured when it says 0). */
  l4Length = 0
  /** TCP flags byte (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, …); -1 when no full TCP header. */
  tcpFlags = -1
  tcpSeq = 0
  tcpAck = 0
  /** Transport payload length (TCP segment data, UDP datagram data); -1 when unknown. */
  payloadLength = -1
  /** ICMP/ICMPv6 type and code, echo identifier and sequence (-1 when absent). */
  icmpType = -1
  icmpCode = -1
  icmpId = -1
  icmpSeq = -1

  reset(): void {
    this.family = 0
    this.src0 = this.src1 = this.src2 = this.src3 = 0
    this.dst0 = this.dst1 = this.dst2 = this.dst3 = 0
    this.proto = this.sport = this.dport = -1
    this.portsFromFragment = false
    this.ipId = this.fragOffset = -1
    this.moreFragments = false
    this.l3Offset = this.l4Offset = -1
    this.l4Length = 0
    this.tcpFlags = -1
    this.tcpSeq = this.tcpAck = 0
    this.payloadLength = this.icmpType = this.icmpCode = this.icmpId = this.icmpSeq = -1
  }

  copyFrom(t: Tuple): this {
    Object.assign(this, t)
    return this
  }

  get hasPorts(): boolean {
    return this.sport >= 0
  }
  /** A non-first fragment: no transport header of its own. */
  get isLaterFragment(): boolean {
    return this.fragOffset > 0
  }
  srcAddress(): string {
    return formatAddress(this.family, this.src0, this.src1, this.src2, this.src3)
  }
  dstAddress(): string {
    return formatAddress(this.family, this.dst0, this.dst1, this.dst2, this.dst3)
  }
}

/** One interface of a capture: the classic pcap file itself, or a pcapng IDB. */
export interface CaptureInterface {
  readonly format: 'pcap' | 'pcapng'
  /** tshark's key: pcapng section number (from 1) and interface id inside the section; "1:0" for pcap. */
  readonly id: string
  readonly section: number
  readonly interfaceId: number
  readonly linktype: number
  readonly snaplen: number
  /** if_name (pcapng), e.g. `eth0`, `any`. */
  readonly name?: string
  readonly description?: string
  /** Whether natlens decodes this link type (packets on other link types are counted, not decoded). */
  readonly decoded: boolean
  packets: number
}

/** The file a packet came from, as the reader settled it from the header. */
export interface CaptureFileRef {
  readonly path: string
  readonly index: number
}

export class Packet {
  file!: CaptureFileRef
  interface!: CaptureInterface
  /** 1-based record number inside its file (tshark's frame.number for files without custom blocks). */
  recordNumber = 0
  /** Byte offset of the record (pcap record header or pcapng block) in the (decompressed) file. */
  offset = 0
  /** Seconds since the epoch and nanoseconds inside the second, both exact as numbers. */
  tsSec = 0
  tsNsec = 0
  /** Captured length (bytes present) and original length on the wire. */
  caplen = 0
  length = 0
  /** The record's bytes are bytes[start, start + caplen); the buffer is reused by the next record. */
  bytes: Buffer = Buffer.alloc(0)
  start = 0
  linktype = 0
  direction: DirectionValue = 0
  /** SLL/SLL2 packet type (0 host, 1 broadcast, 2 multicast, 3 other host, 4 outgoing); -1 without SLL. */
  sllPacketType = -1
  /** SLL2 interface index; -1 without SLL2. */
  ifindex = -1
  /** Layer bits (see Layer) of every header found, tunnel inner and ICMP-quoted headers included. */
  layers = 0
  /** Number of VLAN tags on the outermost Ethernet header. */
  vlanTags = 0
  /** Outermost VLAN id, -1 when untagged. */
  vlanId = -1
  /** IP layers from outermost to innermost; tuples[0 .. tupleCount) are valid. */
  readonly tuples: Tuple[] = [new Tuple(), new Tuple(), new Tuple(), new Tuple()]
  tupleCount = 0
  /** For ICMP/ICMPv6 errors: the quoted header, which names the flow the error belongs to. */
  readonly quoted = new Tuple()
  hasQuoted = false
  /** Why decoding stopped before the end of the headers, if it did. */
  problem: DecodeProblem | undefined = undefined

  /** The timestamp in integer nanoseconds since the epoch. */
  timestampNs(): bigint {
    return BigInt(this.tsSec) * 1_000_000_000n + BigInt(this.tsNsec)
  }
  /** A copy of the captured bytes that outlives the callback. */
  copyBytes(): Buffer {
    return Buffer.from(this.bytes.subarray(this.start, this.start + this.caplen))
  }
  /** The innermost IP layer, or undefined for non-IP packets. */
  get innermost(): Tuple | undefined {
    return this.tupleCount > 0 ? this.tuples[this.tupleCount - 1] : undefined
  }
  get outer(): Tuple | undefined {
    return this.tupleCount > 0 ? this.tuples[0] : undefined
  }
}

// ---------------------------------------------------------------------------------------------- addresses

export function formatIpv4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`
}

/**
 * RFC 5952 text, as tshark prints it: the longest run of two or more zero groups becomes `::` (the first
 * one on a tie), lower-case hex, and the IPv4-mapped form `::ffff:a.b.c.d`.
 */
export function formatIpv6(w0: number, w1: number, w2: number, w3: number): string {
  if (w0 === 0 && w1 === 0 && w2 === 0xffff) return `::ffff:${formatIpv4(w3)}`
  const g = [w0 >>> 16, w0 & 0xffff, w1 >>> 16, w1 & 0xffff, w2 >>> 16, w2 & 0xffff, w3 >>> 16, w3 & 0xffff]
  let bestStart = -1
  let bestLen = 0
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && g[j] === 0) j++
    if (j - i > bestLen) { bestStart = i; bestLen = j - i }
    i = j
  }
  if (bestLen < 2) return g.map((x) => x.toString(16)).join(':')
  const head = g.slice(0, bestStart).map((x) => x.toString(16)).join(':')
  const tail = g.slice(bestStart + bestLen).map((x) => x.toString(16)).join(':')
  return `${head}::${tail}`
}

export function formatAddress(family: number, w0: number, w1: number, w2: number, w3: number): string {
  if (family === 4) return formatIpv4(w0)
  if (family === 6) return formatIpv6(w0, w1, w2, w3)
  return ''
}
