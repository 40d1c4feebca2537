// Link layer → IP → transport decoding into a reused Packet. Every read is preceded by a length check against
// the captured end of the packet; a header that is cut short stops decoding with Packet.problem set, it
// never throws. Byte-indexed reads (b[o] << 8 | b[o + 1]) instead of DataView/readUInt16BE keep the hot
// path free of bounds-check exceptions and allocations.
import { Direction, IPPROTO, Layer, type Packet, type Tuple } from './packet.js'

export const LINKTYPE = {
  null: 0,
  ethernet: 1,
  rawOpenBsd: 12,
  rawBsdOs: 14,
  raw: 101,
  loop: 108,
  linuxSll: 113,
  ipv4: 228,
  ipv6: 229,
  linuxSll2: 276,
} as const

const DECODED_LINKTYPES = new Set<number>(Object.values(LINKTYPE))
export function isDecodedLinktype(linktype: number): boolean {
  return DECODED_LINKTYPES.has(linktype)
}

const LINKTYPE_NAMES: Record<number, string> = {
  0: 'NULL', 1: 'ETHERNET', 12: 'RAW', 14: 'RAW', 101: 'RAW', 108: 'LOOP', 113: 'LINUX_SLL', 228: 'IPV4',
  229: 'IPV6', 276: 'LINUX_SLL2', 274: 'NETANALYZER_NG', 127: 'IEEE802_11_RADIOTAP', 105: 'IEEE802_11',
}
export function linktypeName(linktype: number): string {
  return LINKTYPE_NAMES[linktype] ?? `LINKTYPE ${linktype}`
}

const ETHERTYPE_IPV4 = 0x0800
const ETHERTYPE_IPV6 = 0x86dd
const ETHERTYPE_ARP = 0x0806
const ETHERTYPE_RARP = 0x8035
const ETHERTYPE_CISCO_METADATA = 0x8909
const ETHERTYPE_VLAN = 0x8100
const ETHERTYPE_QINQ = 0x88a8
const ETHERTYPE_QINQ_OLD = 0x9100
const ETHERTYPE_PPPOE_SESSION = 0x8864
const ETHERTYPE_MPLS = 0x8847
const ETHERTYPE_MPLS_MULTICAST = 0x8848
const ETHERTYPE_TEB = 0x6558 // transparent Ethernet bridging: an Ethernet frame follows (GRE, Geneve)
const ETHERTYPE_ERSPAN_II = 0x88be
const ETHERTYPE_ERSPAN_III = 0x22eb
const ETHERTYPE_PPP = 0x880b

/** UDP ports at which tshark 4.0 decodes tunnels by default. */
export const VXLAN_PORT = 4789
export const GENEVE_PORT = 6081

const MAX_TUPLES = 4
const MAX_DEPTH = 8
/** Each extension header is at least 8 bytes, so the packet bounds the chain; this only bounds the work. */
const MAX_IPV6_EXT_HEADERS = 1024
const MAX_VLAN_TAGS = 8
const MAX_MPLS_LABELS = 8

function u16(b: Buffer, o: number): number {
  return (b[o] << 8) | b[o + 1]
}
function u32(b: Buffer, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0
}

/**
 * Remembers the ports of first fragments so that later fragments of the same datagram join its flow
 * (the kernel's conntrack does the same after defragmenting). Bounded: the oldest entries are dropped.
 */
export class FragmentPorts {
  private readonly ports = new Map<string, number>()
  constructor(private readonly limit = 16384) {}

  private key(t: Tuple): string {
    return t.family === 4
      ? `4 ${t.src0} ${t.dst0} ${t.proto} ${t.ipId}`
      : `6 ${t.src0} ${t.src1} ${t.src2} ${t.src3} ${t.dst0} ${t.dst1} ${t.dst2} ${t.dst3} ${t.proto} ${t.ipId}`
  }
  remember(t: Tuple): void {
    if (this.ports.size >= this.limit) {
      const oldest = this.ports.keys().next().value
      if (oldest !== undefined) this.ports.delete(oldest)
    }
    this.ports.set(this.key(t), t.sport * 65536 + t.dport)
  }
  /** Fills in sport/dport of a later fragment, when its first fragment was seen. */
  resolve(t: Tuple): void {
    const v = this.ports.get(this.key(t))
    if (v === undefined) return
    t.sport = Math.floor(v / 65536)
    t.dport = v % 65536
    t.portsFromFragment = true
  }
}

/**
 * Decodes packets of every link type natlens knows. Stateful only in its fragment table, so one decoder is
 * used per read (files of a rotated set share it: a datagram's fragments may straddle two files).
 */
export class PacketDecoder {
  readonly fragments = new FragmentPorts()

  /** Decodes p.bytes[p.start, p.start + p.caplen) according to p.linktype. */
  decode(p: Packet): void {
    p.layers = 0
    p.tupleCount = 0
    p.hasQuoted = false
    p.problem = undefined
    p.sllPacketType = -1
    p.ifindex = -1
    p.vlanTags = 0
    p.vlanId = -1
    const b = p.bytes
    const off = p.start
    const end = p.start + p.caplen
    switch (p.linktype) {
      case LINKTYPE.ethernet:
        this.ethernet(p, b, off, end, 0)
        return
      case LINKTYPE.linuxSll:
        this.sll(p, b, off, end)
        return
      case LINKTYPE.linuxSll2:
        this.sll2(p, b, off, end)
        return
      case LINKTYPE.raw:
      case LINKTYPE.rawOpenBsd:
      case LINKTYPE.rawBsdOs:
        p.layers |= Layer.raw
        this.ipByVersion(p, b, off, end, 0)
        return
      case LINKTYPE.ipv4:
      case LINKTYPE.ipv6:
        this.ipByVersion(p, b, off, end, 0)
        return
      case LINKTYPE.null:
      case LINKTYPE.loop:
        this.bsdLoopback(p, b, off, end)
        return
      default:
        p.problem = 'unknown-linktype'
    }
  }

  // ------------------------------------------------------------------------------------------ link layers

  private ethernet(p: Packet, b: Buffer, off: number, end: number, depth: number): void {
    if (off >= end) return
    p.layers |= Layer.eth
    if (end - off < 14) {
      p.problem = 'link-truncated'
      return
    }
    this.ethertype(p, b, off + 14, end, u16(b, off + 12), depth)
  }

  private ethertype(p: Packet, b: Buffer, off: number, end: number, type: number, depth: number): void {
    for (let tags = 0; type === ETHERTYPE_VLAN || type === ETHERTYPE_QINQ || type === ETHERTYPE_QINQ_OLD; tags++) {
      p.layers |= Layer.vlan
      if (end - off < 4 || tags >= MAX_VLAN_TAGS) {
        p.problem = 'link-truncated'
        return
      }
      if (depth === 0) {
        if (p.vlanId < 0) p.vlanId = u16(b, off) & 0x0fff
        p.vlanTags++
      }
      type = u16(b, off + 2)
      off += 4
    }
    switch (type) {
      case ETHERTYPE_IPV4:
        this.ipv4(p, b, off, end, depth)
        return
      case ETHERTYPE_IPV6:
        this.ipv6(p, b, off, end, depth)
        return
      case ETHERTYPE_ARP:
      case ETHERTYPE_RARP:
        p.layers |= Layer.arp
        return
      case ETHERTYPE_CISCO_METADATA:
        // Cisco MetaData (SGT tag): version, length (4-byte units), options, then the next Ethertype
        if (end - off < 8) return
        this.ethertype(p, b, off + 4 + b[off + 1] * 4 + 2, end, u16(b, off + 4 + b[off + 1] * 4), depth)
        return
      case ETHERTYPE_PPPOE_SESSION:
        // 6-byte PPPoE header, then the 2-byte PPP protocol: 0x0021 IPv4, 0x0057 IPv6
        if (end - off < 8) return
        this.pppProtocol(p, b, off + 8, end, u16(b, off + 6), depth)
        return
      case ETHERTYPE_MPLS:
      case ETHERTYPE_MPLS_MULTICAST:
        this.mpls(p, b, off, end, depth)
        return
      case ETHERTYPE_TEB:
        if (depth < MAX_DEPTH) this.ethernet(p, b, off, end, depth + 1)
        return
      default:
        if (type <= 1500 && end - off >= 8 && b[off] === 0xaa && b[off + 1] === 0xaa && b[off + 2] === 0x03 &&
          b[off + 3] === 0 && b[off + 4] === 0 && b[off + 5] === 0) {
          // 802.3 length field with an LLC/SNAP header carrying an Ethertype (RFC 1042)
          this.ethertype(p, b, off + 8, end, u16(b, off + 6), depth)
        }
    }
  }

  private pppProtocol(p: Packet, b: Buffer, off: number, end: number, proto: number, depth: number): void {
    if (proto === 0x0021) this.ipv4(p, b, off, end, depth)
    else if (proto === 0x0057) this.ipv6(p, b, off, end, depth)
  }

  private mpls(p: Packet, b: Buffer, off: number, end: number, depth: number): void {
    for (let i = 0; i < MAX_MPLS_LABELS; i++) {
      if (end - off < 4) return
      const bottom = b[off + 2] & 1
      off += 4
      if (bottom) {
        if (off < end) this.ipByVersion(p, b, off, end, depth)
        return
      }
    }
  }

  /** Linux cooked capture v1 (`tcpdump -i any -y LINUX_SLL`): 16 bytes, packet type and protocol. */
  private sll(p: Packet, b: Buffer, off: number, end: number): void {
    p.layers |= Layer.sll
    if (end - off < 16) {
      p.problem = 'link-truncated'
      return
    }
    this.sllPacketType(p, u16(b, off))
    this.sllProtocol(p, b, off + 16, end, u16(b, off + 14), u16(b, off + 2))
  }

  /** Linux cooked capture v2 (`tcpdump -i any`, libpcap ≥ 1.10): 20 bytes with the interface index. */
  private sll2(p: Packet, b: Buffer, off: number, end: number): void {
    p.layers |= Layer.sll
    if (end - off < 20) {
      p.problem = 'link-truncated'
      return
    }
    p.ifindex = u32(b, off + 4)
    this.sllPacketType(p, b[off + 10])
    this.sllProtocol(p, b, off + 20, end, u16(b, off), u16(b, off + 8))
  }

  private sllPacketType(p: Packet, type: number): void {
    p.sllPacketType = type
    // 0 to us, 1 broadcast, 2 multicast, 3 to another host (promiscuous), 4 sent by us (PACKET_OUTGOING)
    if (type === 4) p.direction = Direction.outgoing
    else if (type <= 3) p.direction = Direction.incoming
  }

  private sllProtocol(p: Packet, b: Buffer, off: number, end: number, protocol: number, hatype: number): void {
    // ARPHRD_NETLINK (824) carries netlink messages, not Ethernet types
    if (hatype === 824) return
    this.ethertype(p, b, off, end, protocol, 0)
  }

  /** LINKTYPE_NULL: an address family in the capturing host's byte order; LINKTYPE_LOOP: network order. */
  private bsdLoopback(p: Packet, b: Buffer, off: number, end: number): void {
    p.layers |= Layer.null
    if (end - off < 4) {
      p.problem = 'link-truncated'
      return
    }
    let af = p.linktype === LINKTYPE.loop ? u32(b, off) : (b[off] | (b[off + 1] << 8) | (b[off + 2] << 16) | (b[off + 3] << 24)) >>> 0
    if (af > 0xffff) af = ((af & 0xff) << 24 | (af & 0xff00) << 8 | (af >>> 8) & 0xff00 | af >>> 24) >>> 0
    off += 4
    // AF_INET is 2 everywhere; AF_INET6 is 10 (Linux), 23 (Windows), 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (Darwin)
    if (af === 2) this.ipv4(p, b, off, end, 0)
    else if (af === 10 || af === 23 || af === 24 || af === 28 || af === 30) this.ipv6(p, b, off, end, 0)
  }

  private ipByVersion(p: Packet, b: Buffer, off: number, end: number, depth: number): void {
    if (off >= end) return
    const version = b[off] >> 4
    if (version === 4) this.ipv4(p, b, off, end, depth)
    else if (version === 6) this.ipv6(p, b, off, end, depth)
    else p.problem = 'version-mismatch'
  }

  // ----------------------------------------------------------------------------------------------- IP

  private nextTuple(p: Packet): Tuple | undefined {
    if (p.tupleCount >= MAX_TUPLES) {
      p.problem = 'tunnel-too-deep'
      return undefined
    }
    const t = p.tuples[p.tupleCount++]
    t.reset()
    return t
  }

  private ipv4(p: Packet, b: Buffer, off: number, end: number, depth: number): void {
    if (off >= end) return
    p.layers |= Layer.ip
    if (b[off] >> 4 !== 4) {
      p.problem = 'version-mismatch'
      return
    }
    if (end - off < 20) {
      p.problem = 'ipv4-truncated'
      return
    }
    const ihl = (b[off] & 15) * 4
    if (ihl < 20) {
      p.problem = 'ipv4-bad-header'
      return
    }
    const t = this.nextTuple(p)
    if (!t) return
    t.family = 4
    t.l3Offset = off
    t.src0 = u32(b, off + 12)
    t.dst0 = u32(b, off + 16)
    t.proto = b[off + 9]
    t.ipId = u16(b, off + 4)
    const frag = u16(b, off + 6)
    if (frag & 0x3fff) {
      t.fragOffset = (frag & 0x1fff) * 8
      t.moreFragments = (frag & 0x2000) !== 0
    }
    const totalLength = u16(b, off + 2)
    // Total length 0 is what TSO/GSO and BIG TCP hand to the capture point: the frame length is the truth.
    const claimed = totalLength === 0 ? p.length - (off - p.start) : totalLength
    if (claimed < ihl) {
      p.problem = 'ipv4-bad-header'
      return
    }
    if (end - off < ihl) {
      p.problem = 'ipv4-truncated'
      return
    }
    t.l4Length = claimed - ihl
    // Ethernet pads short frames: the IP total length, not the frame, ends the datagram.
    const ipEnd = off + claimed < end ? off + claimed : end
    if (t.fragOffset > 0) {
      if (t.proto === IPPROTO.tcp || t.proto === IPPROTO.udp || t.proto === IPPROTO.sctp) this.fragments.resolve(t)
      return
    }
    this.transport(p, t, b, off + ihl, ipEnd, depth)
    if (t.moreFragments && t.sport >= 0) this.fragments.remember(t)
  }

  private ipv6(p: Packet, b: Buffer, off: number, end: number, depth: number): void {
    if (off >= end) return
    p.layers |= Layer.ipv6
    if (b[off] >> 4 !== 6) {
      p.problem = 'version-mismatch'
      return
    }
    if (end - off < 40) {
      p.problem = 'ipv6-truncated'
      return
    }
    const t = this.nextTuple(p)
    if (!t) return
    t.family = 6
    t.l3Offset = off
    t.src0 = u32(b, off + 8); t.src1 = u32(b, off + 12); t.src2 = u32(b, off + 16); t.src3 = u32(b, off + 20)
    t.dst0 = u32(b, off + 24); t.dst1 = u32(b, off + 28); t.dst2 = u32(b, off + 32); t.dst3 = u32(b, off + 36)
    const payloadLength = u16(b, off + 4)
    let next = b[off + 6]
    const hdrEnd = off + 40
    // Payload length 0 with a hop-by-hop jumbo option (RFC 2675), or from GSO: the frame length is the truth.
    const claimedEnd = payloadLength === 0 ? off + (p.length - (off - p.start)) : hdrEnd + payloadLength
    const ipEnd = claimedEnd < end ? claimedEnd : end
    let o = hdrEnd
    for (let n = 0; n < MAX_IPV6_EXT_HEADERS; n++) {
      if (next === IPPROTO.hopopts || next === IPPROTO.dstopts || next === IPPROTO.routing || next === IPPROTO.mobility) {
        if (ipEnd - o < 2) {
          p.problem = 'ipv6-ext-truncated'
          t.proto = -1
          return
        }
        p.layers |= next === IPPROTO.hopopts ? Layer.hopopts : next === IPPROTO.dstopts ? Layer.dstopts
          : next === IPPROTO.routing ? Layer.routing : Layer.mipv6
        const len = (b[o + 1] + 1) * 8
        if (ipEnd - o < len) {
          p.problem = 'ipv6-ext-truncated'
          t.proto = -1
          return
        }
        if (next === IPPROTO.routing) this.routingHeader(t, b, o, len)
        else if (next === IPPROTO.dstopts) this.homeAddressOption(t, b, o, len)
        else if (next === IPPROTO.mobility) {
          // The mobility header ends the chain for conversation purposes (RFC 6275 says payload proto 59).
          t.proto = next
          t.l4Offset = o
          return
        }
        next = b[o]
        o += len
      } else if (next === IPPROTO.fragment) {
        if (ipEnd - o < 2) {
          p.problem = 'ipv6-ext-truncated'
          t.proto = -1
          return
        }
        p.layers |= Layer.fraghdr
        if (ipEnd - o < 8) {
          p.problem = 'ipv6-ext-truncated'
          t.proto = -1
          return
        }
        const fo = u16(b, o + 2)
        t.ipId = u32(b, o + 4)
        // An atomic fragment (offset 0, M clear, RFC 6946) is a whole datagram; it stays unfragmented here.
        if ((fo & 0xfff8) !== 0 || (fo & 1) !== 0) {
          t.fragOffset = fo & 0xfff8
          t.moreFragments = (fo & 1) !== 0
        }
        next = b[o]
        o += 8
        if (t.fragOffset > 0) {
          t.proto = next
          t.l4Length = claimedEnd - o
          if (next === IPPROTO.tcp || next === IPPROTO.udp || next === IPPROTO.sctp) this.fragments.resolve(t)
          return
        }
      } else if (next === IPPROTO.ah) {
        if (ipEnd - o < 2) {
          p.problem = 'ipv6-ext-truncated'
          t.proto = -1
          return
        }
        p.layers |= Layer.ah
        const len = (b[o + 1] + 2) * 4
        if (ipEnd - o < len) {
          p.problem = 'ipv6-ext-truncated'
          t.proto = -1
          return
        }
        next = b[o]
        o += len
      } else {
        break
      }
    }
    t.proto = next
    t.l4Length = claimedEnd - o
    if (t.l4Length < 0) t.l4Length = 0
    this.transport(p, t, b, o, ipEnd, depth)
    if (t.moreFragments && t.sport >= 0) this.fragments.remember(t)
  }

  /**
   * The transport layer's destination is the final one: the last address of a type 0 routing header, the
   * home address of a type 2, segment 0 of a segment routing header (type 4), as long as segments are left.
   * This is also what the TCP/UDP checksum covers and what tshark's conversations use.
   */
  private routingHeader(t: Tuple, b: Buffer, o: number, len: number): void {
    const type = b[o + 2]
    const segmentsLeft = b[o + 3]
    if (segmentsLeft === 0) return
    let a = -1
    if (type === 0 && len >= 24) a = o + 8 + 16 * Math.floor((len - 8) / 16) - 16
    else if (type === 2 && len >= 24) a = o + 8
    else if (type === 4 && len >= 24) a = o + 8
    if (a < 0) return
    t.dst0 = u32(b, a); t.dst1 = u32(b, a + 4); t.dst2 = u32(b, a + 8); t.dst3 = u32(b, a + 12)
  }

  /** Mobile IPv6 home address option (type 0xC9) in a destination options header: the real source. */
  private homeAddressOption(t: Tuple, b: Buffer, o: number, len: number): void {
    let i = o + 2
    const end = o + len
    while (i < end) {
      const type = b[i]
      if (type === 0) { i++; continue } // Pad1
      if (end - i < 2) return
      const optLen = b[i + 1]
      if (type === 0xc9 && optLen === 16 && end - i >= 18) {
        const a = i + 2
        t.src0 = u32(b, a); t.src1 = u32(b, a + 4); t.src2 = u32(b, a + 8); t.src3 = u32(b, a + 12)
        return
      }
      i += 2 + optLen
    }
  }

  // ---------------------------------------------------------------------------------------- transport

  private transport(p: Packet, t: Tuple, b: Buffer, off: number, end: number, depth: number): void {
    t.l4Offset = off
    const avail = end - off
    switch (t.proto) {
      case IPPROTO.tcp: {
        p.layers |= Layer.tcp
        if (avail < 4) {
          p.problem = 'tcp-truncated'
          return
        }
        t.sport = u16(b, off)
        t.dport = u16(b, off + 2)
        if (avail < 14) {
          p.problem = 'tcp-truncated'
          return
        }
        t.tcpSeq = u32(b, off + 4)
        t.tcpAck = u32(b, off + 8)
        t.tcpFlags = b[off + 13]
        const dataOffset = (b[off + 12] >> 4) * 4
        if (dataOffset >= 20 && t.l4Length >= dataOffset) t.payloadLength = t.l4Length - dataOffset
        return
      }
      case IPPROTO.udp: {
        p.layers |= Layer.udp
        if (avail < 4) {
          p.problem = 'udp-truncated'
          return
        }
        t.sport = u16(b, off)
        t.dport = u16(b, off + 2)
        if (avail < 8) {
          p.problem = 'udp-truncated'
          return
        }
        if (t.l4Length >= 8) t.payloadLength = t.l4Length - 8
        if (t.fragOffset < 0 && depth < MAX_DEPTH) {
          if (t.dport === VXLAN_PORT || t.sport === VXLAN_PORT) this.vxlan(p, b, off + 8, end, depth)
          else if (t.dport === GENEVE_PORT || t.sport === GENEVE_PORT) this.geneve(p, b, off + 8, end, depth)
        }
        return
      }
      case IPPROTO.sctp:
        p.layers |= Layer.sctp
        if (avail < 4) {
          p.problem = 'sctp-truncated'
          return
        }
        t.sport = u16(b, off)
        t.dport = u16(b, off + 2)
        return
      case IPPROTO.icmp:
        p.layers |= Layer.icmp
        this.icmp(p, t, b, off, end, false)
        return
      case IPPROTO.icmpv6:
        p.layers |= Layer.icmpv6
        this.icmp(p, t, b, off, end, true)
        return
      case IPPROTO.igmp:
        p.layers |= Layer.igmp
        return
      case IPPROTO.esp:
        p.layers |= Layer.esp
        return
      case IPPROTO.ah:
        p.layers |= Layer.ah
        return
      case IPPROTO.gre:
        if (depth < MAX_DEPTH) this.gre(p, b, off, end, depth)
        return
      case IPPROTO.ipip:
        if (depth < MAX_DEPTH) this.ipv4(p, b, off, end, depth + 1)
        return
      case IPPROTO.ipv6:
        if (depth < MAX_DEPTH) this.ipv6(p, b, off, end, depth + 1)
        return
    }
  }

  private icmp(p: Packet, t: Tuple, b: Buffer, off: number, end: number, v6: boolean): void {
    const avail = end - off
    if (avail < 4) {
      p.problem = 'icmp-truncated'
      return
    }
    const type = b[off]
    t.icmpType = type
    t.icmpCode = b[off + 1]
    if (avail < 8) return
    const isEcho = v6 ? type === 128 || type === 129 : type === 0 || type === 8 || type === 13 || type === 14
    if (isEcho) {
      t.icmpId = u16(b, off + 4)
      t.icmpSeq = u16(b, off + 6)
      return
    }
    // Errors quote the offending packet's IP header and at least 8 bytes after it (RFC 792, RFC 4443):
    // ICMPv4 destination unreachable 3, source quench 4, redirect 5, time exceeded 11, parameter problem 12;
    // ICMPv6 1 to 4.
    const isError = v6 ? type >= 1 && type <= 4 : type === 3 || type === 4 || type === 5 || type === 11 || type === 12
    if (isError && off + 8 < end) this.quotedIp(p, b, off + 8, end)
  }

  /** The header quoted by an ICMP error: addresses, protocol and ports of the packet that caused it. */
  private quotedIp(p: Packet, b: Buffer, off: number, end: number): void {
    const q = p.quoted
    q.reset()
    const version = b[off] >> 4
    if (version === 4) {
      p.layers |= Layer.ip
      if (end - off < 20) return
      const ihl = (b[off] & 15) * 4
      if (ihl < 20) return
      q.family = 4
      q.l3Offset = off
      q.src0 = u32(b, off + 12)
      q.dst0 = u32(b, off + 16)
      q.proto = b[off + 9]
      q.ipId = u16(b, off + 4)
      const frag = u16(b, off + 6)
      if (frag & 0x3fff) {
        q.fragOffset = (frag & 0x1fff) * 8
        q.moreFragments = (frag & 0x2000) !== 0
      }
      p.hasQuoted = true
      if (q.fragOffset <= 0) this.quotedPorts(p, q, b, off + ihl, end)
    } else if (version === 6) {
      p.layers |= Layer.ipv6
      if (end - off < 40) return
      q.family = 6
      q.l3Offset = off
      q.src0 = u32(b, off + 8); q.src1 = u32(b, off + 12); q.src2 = u32(b, off + 16); q.src3 = u32(b, off + 20)
      q.dst0 = u32(b, off + 24); q.dst1 = u32(b, off + 28); q.dst2 = u32(b, off + 32); q.dst3 = u32(b, off + 36)
      let next = b[off + 6]
      let o = off + 40
      for (let n = 0; n < MAX_IPV6_EXT_HEADERS; n++) {
        if (next === IPPROTO.hopopts || next === IPPROTO.dstopts || next === IPPROTO.routing) {
          p.layers |= next === IPPROTO.hopopts ? Layer.hopopts : next === IPPROTO.dstopts ? Layer.dstopts : Layer.routing
          if (end - o < 2) break
          const len = (b[o + 1] + 1) * 8
          if (end - o < len) break
          if (next === IPPROTO.routing) this.routingHeader(q, b, o, len)
          next = b[o]
          o += len
        } else if (next === IPPROTO.fragment) {
          p.layers |= Layer.fraghdr
          if (end - o < 8) break
          const fo = u16(b, o + 2)
          q.ipId = u32(b, o + 4)
          if ((fo & 0xfff9) !== 0) {
            q.fragOffset = fo & 0xfff8
            q.moreFragments = (fo & 1) !== 0
          }
          next = b[o]
          o += 8
        } else {
          break
        }
      }
      q.proto = next
      p.hasQuoted = true
      if (q.fragOffset <= 0) this.quotedPorts(p, q, b, o, end)
    }
  }

  private quotedPorts(p: Packet, q: Tuple, b: Buffer, off: number, end: number): void {
    q.l4Offset = off
    const proto = q.proto
    if (proto === IPPROTO.tcp) p.layers |= Layer.tcp
    else if (proto === IPPROTO.udp) p.layers |= Layer.udp
    else if (proto === IPPROTO.sctp) p.layers |= Layer.sctp
    else if (proto === IPPROTO.icmp || proto === IPPROTO.icmpv6) {
      if (end - off >= 8) {
        q.icmpType = b[off]
        q.icmpCode = b[off + 1]
        q.icmpId = u16(b, off + 4)
        q.icmpSeq = u16(b, off + 6)
      }
      return
    } else return
    if (end - off < 4) return
    q.sport = u16(b, off)
    q.dport = u16(b, off + 2)
    if (proto === IPPROTO.tcp && end - off >= 14) {
      q.tcpSeq = u32(b, off + 4)
      q.tcpFlags = b[off + 13]
    }
  }

  // ------------------------------------------------------------------------------------------ tunnels

  /** GRE (RFC 2784/2890) and PPTP's enhanced GRE (RFC 2637, version 1). */
  private gre(p: Packet, b: Buffer, off: number, end: number, depth: number): void {
    p.layers |= Layer.gre
    if (end - off < 4) {
      p.problem = 'gre-truncated'
      return
    }
    const flags = u16(b, off)
    const ptype = u16(b, off + 2)
    const version = flags & 7
    let o = off + 4
    if (flags & 0x8000) o += 4 // checksum + reserved
    if (version === 0 && (flags & 0x4000)) return // RFC 1701 source routing: not decoded
    if (flags & 0x2000) o += 4 // key (PPTP: payload length + call id)
    if (flags & 0x1000) o += 4 // sequence number
    if (version === 1 && (flags & 0x0080)) o += 4 // PPTP acknowledgment number
    if (o > end) {
      p.problem = 'gre-truncated'
      return
    }
    if (ptype === ETHERTYPE_ERSPAN_II) {
      // ERSPAN type I has no header and no sequence number; type II has an 8-byte header (and the S bit)
      if (flags & 0x1000) o += 8
      if (o > end) return
      this.ethernet(p, b, o, end, depth + 1)
    } else if (ptype === ETHERTYPE_ERSPAN_III) {
      if (end - o < 12) return
      const optional = b[o + 11] & 1
      o += 12 + (optional ? 8 : 0)
      if (o > end) return
      this.ethernet(p, b, o, end, depth + 1)
    } else if (ptype === ETHERTYPE_CISCO_METADATA) {
      // Inside GRE the CMD header starts with the next Ethertype, then version, length, options (Wireshark's reading)
      if (end - o < 4) return
      this.ethertype(p, b, o + 4 + b[o + 3] * 4, end, u16(b, o), depth + 1)
    } else if (ptype === ETHERTYPE_PPP) {
      // PPP inside PPTP: optional address/control (ff 03), then a 1- or 2-byte protocol field
      if (end - o >= 2 && b[o] === 0xff && b[o + 1] === 0x03) o += 2
      if (end - o < 1) return
      if (b[o] & 1) this.pppProtocol(p, b, o + 1, end, b[o], depth + 1)
      else if (end - o >= 2) this.pppProtocol(p, b, o + 2, end, u16(b, o), depth + 1)
    } else {
      this.ethertype(p, b, o, end, ptype, depth + 1)
    }
  }

  /** VXLAN (RFC 7348): 8 bytes, then an Ethernet frame. */
  private vxlan(p: Packet, b: Buffer, off: number, end: number, depth: number): void {
    p.layers |= Layer.vxlan
    if (end - off < 8) {
      p.problem = 'tunnel-truncated'
      return
    }
    this.ethernet(p, b, off + 8, end, depth + 1)
  }

  /** Geneve (RFC 8926): 8 bytes plus options, then what the protocol type says. */
  private geneve(p: Packet, b: Buffer, off: number, end: number, depth: number): void {
    p.layers |= Layer.geneve
    if (end - off < 8) {
      p.problem = 'tunnel-truncated'
      return
    }
    const o = off + 8 + (b[off] & 0x3f) * 4
    if (o > end) {
      p.problem = 'tunnel-truncated'
      return
    }
    this.ethertype(p, b, o, end, u16(b, off + 2), depth + 1)
  }
}
