// --redact on the capture: the same pseudonyms as in the text files, applied to the packets. Link-layer addresses
// (Ethernet, Linux SLL/SLL2 as `tcpdump -i any` writes, ARP) always; IPv4/IPv6 source and destination (and the
// header an ICMP error quotes) under --redact-ips, with the IPv4 header, TCP, UDP, ICMP and ICMPv6 checksums adjusted
// incrementally (RFC 1624) so the packets stay valid. Payload bytes after the transport header are zeroed (DNS
// names, HTTP hosts), checksums adjusted for that too. A link type natlens does not know is not kept.
import type { Redactor } from './redact.js'

export interface PcapRedaction {
  /** The redacted capture; undefined when it could not be redacted and was left out. */
  readonly bytes?: Buffer
  readonly note: string
}

/** Ones-complement sum of the 16-bit words of b[start, end) counted from `base` (odd lengths padded). */
function sum16(b: Buffer, start: number, end: number, base: number): number {
  let s = 0
  for (let i = start; i < end; i++) s += ((i - base) % 2 === 0 ? b[i]! << 8 : b[i]!)
  return s
}

function fold(s: number): number {
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16)
  return s
}

/**
 * Adjusts the checksum at `at` (if inside the captured bytes) for a region whose words changed from `oldSum` to
 * `newSum` (RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')).
 */
function adjust(b: Buffer, at: number, end: number, oldSum: number, newSum: number, udp = false): void {
  if (at < 0 || at + 2 > end) return
  const hc = b.readUInt16BE(at)
  if (udp && hc === 0) return // UDP over IPv4 without a checksum
  const s = (~hc & 0xffff) + (~fold(oldSum) & 0xffff) + fold(newSum)
  let r = ~fold(s) & 0xffff
  if (udp && r === 0) r = 0xffff
  b.writeUInt16BE(r, at)
}

/** Rewrites `len` bytes at `off` through `change`, and adjusts the given checksums (offsets and their region base). */
function rewrite(b: Buffer, off: number, len: number, end: number, change: () => void, sums: readonly { at: number; base: number; udp?: boolean }[]): void {
  if (off + len > end) return
  const before = sums.map((s) => sum16(b, off, off + len, s.base))
  change()
  sums.forEach((s, i) => adjust(b, s.at, end, before[i]!, sum16(b, off, off + len, s.base), s.udp))
}

function mapAddr(b: Buffer, off: number, size: 4 | 16, r: Redactor): void {
  let v = 0n
  for (let i = 0; i < size; i++) v = (v << 8n) | BigInt(b[off + i]!)
  const m = r.mapIpValue(size === 4 ? 4 : 6, v)
  if (m === v) return
  let x = m
  for (let i = size - 1; i >= 0; i--) { b[off + i] = Number(x & 0xffn); x >>= 8n }
}

/** L4 checksum offset within the transport header, for the protocols whose checksum natlens adjusts. */
function l4Checksum(proto: number): number | undefined {
  return proto === 6 ? 16 : proto === 17 ? 6 : proto === 1 || proto === 58 ? 2 : undefined
}

function l4HeaderLength(b: Buffer, l4: number, end: number, proto: number): number | undefined {
  if (proto === 6) return l4 + 13 <= end ? (b[l4 + 12]! >> 4) * 4 : undefined
  if (proto === 17) return 8
  if (proto === 1 || proto === 58) return 8
  return undefined
}

const ICMP_ERRORS_4 = new Set([3, 4, 5, 11, 12])
const ICMP_ERRORS_6 = new Set([1, 2, 3, 4])

/** One IP packet at `off`; `end` is the end of the captured bytes. `depth` > 0 for the header inside an ICMP error. */
function redactIp(b: Buffer, off: number, end: number, r: Redactor, depth = 0): void {
  if (off + 1 > end) return
  const version = b[off]! >> 4
  if (version === 4) {
    if (off + 20 > end) return
    const ihl = (b[off]! & 15) * 4
    const proto = b[off + 9]!
    const fragOffset = b.readUInt16BE(off + 6) & 0x1fff
    const l4 = off + ihl
    const ck = l4Checksum(proto)
    const l4Sum = ck !== undefined && proto !== 1 && fragOffset === 0 ? [{ at: l4 + ck, base: l4, udp: proto === 17 }] : []
    // The addresses sit in the IPv4 header (its checksum) and in the TCP/UDP pseudo-header (their checksum).
    if (r.mapsIps) rewrite(b, off + 12, 8, end, () => { mapAddr(b, off + 12, 4, r); mapAddr(b, off + 16, 4, r) }, [{ at: off + 10, base: off }, ...l4Sum])
    if (fragOffset !== 0) return
    transport(b, l4, end, proto, r, ck, depth)
  } else if (version === 6) {
    if (off + 40 > end) return
    let next = b[off + 6]!
    let l4 = off + 40
    let fragment = false
    // Extension headers: hop-by-hop, routing, destination options, fragment.
    while ([0, 43, 60, 44].includes(next) && l4 + 8 <= end) {
      if (next === 44) { fragment = (b.readUInt16BE(l4 + 2) & 0xfff8) !== 0; next = b[l4]!; l4 += 8; continue }
      const len = (b[l4 + 1]! + 1) * 8
      next = b[l4]!
      l4 += len
    }
    const ck = l4Checksum(next)
    const l4Sum = ck !== undefined && next !== 1 && !fragment ? [{ at: l4 + ck, base: l4, udp: false }] : []
    if (r.mapsIps) rewrite(b, off + 8, 32, end, () => { mapAddr(b, off + 8, 16, r); mapAddr(b, off + 24, 16, r) }, l4Sum)
    if (fragment) return
    transport(b, l4, end, next, r, ck, depth)
  }
}

function transport(b: Buffer, l4: number, end: number, proto: number, r: Redactor, ck: number | undefined, depth: number): void {
  const hl = l4HeaderLength(b, l4, end, proto)
  if (hl === undefined || l4 + hl > end) return
  const own = ck !== undefined ? [{ at: l4 + ck, base: l4, udp: proto === 17 }] : []
  const isError = (proto === 1 && ICMP_ERRORS_4.has(b[l4]!)) || (proto === 58 && ICMP_ERRORS_6.has(b[l4]!))
  if (isError && depth === 0) {
    // The quoted packet's header stays readable (it is what the error is about); its addresses are mapped. The ICMP
    // checksum covers all of it (its addresses, and its own checksums that change with them): summed before and after.
    const before = sum16(b, l4 + 8, end, l4)
    redactIp(b, l4 + 8, end, r, depth + 1)
    if (own[0]) adjust(b, own[0].at, end, before, sum16(b, l4 + 8, end, l4))
    return
  }
  if (depth > 0) return
  // Payload: zeroed, with the transport checksum adjusted.
  const start = l4 + hl
  if (start < end) rewrite(b, start, end - start, end, () => b.fill(0, start, end), own)
}

function redactArp(b: Buffer, off: number, end: number, r: Redactor): void {
  if (off + 28 > end || b.readUInt16BE(off) !== 1 || b.readUInt16BE(off + 2) !== 0x0800 || b[off + 4] !== 6 || b[off + 5] !== 4) return
  r.mapMacBytes(b, off + 8)
  r.mapMacBytes(b, off + 18)
  if (r.mapsIps) { mapAddr(b, off + 14, 4, r); mapAddr(b, off + 24, 4, r) }
}

function network(b: Buffer, ethertype: number, off: number, end: number, r: Redactor): void {
  if (ethertype === 0x0800 || ethertype === 0x86dd) redactIp(b, off, end, r)
  else if (ethertype === 0x0806) redactArp(b, off, end, r)
  else if (off < end) b.fill(0, off, end)
}

const LINKTYPE_ETHERNET = 1
const LINKTYPE_RAW = 101
const LINKTYPE_LINUX_SLL = 113
const LINKTYPE_IPV4 = 228
const LINKTYPE_IPV6 = 229
const LINKTYPE_LINUX_SLL2 = 276

/** Redacts a classic pcap as tcpdump writes it (either byte order, µs or ns). */
export function redactPcap(pcap: Buffer, r: Redactor): PcapRedaction {
  if (pcap.length < 24) return { bytes: pcap, note: 'empty capture' }
  const magic = pcap.readUInt32LE(0)
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d
  const be = pcap.readUInt32BE(0) === 0xa1b2c3d4 || pcap.readUInt32BE(0) === 0xa1b23c4d
  if (!le && !be) return { note: 'not a classic pcap; the capture was left out of the redacted bundle' }
  const u32 = (o: number) => (le ? pcap.readUInt32LE(o) : pcap.readUInt32BE(o))
  const linktype = u32(20) & 0xffff
  if (![LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LINUX_SLL, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL2].includes(linktype)) {
    return { note: `link type ${linktype} is not one natlens can redact; the capture was left out of the redacted bundle` }
  }
  const b = Buffer.from(pcap)
  let o = 24
  let packets = 0
  while (o + 16 <= b.length) {
    const incl = u32(o + 8)
    const start = o + 16
    const end = Math.min(start + incl, b.length)
    packets++
    if (linktype === LINKTYPE_ETHERNET) {
      if (start + 14 <= end) {
        r.mapMacBytes(b, start)
        r.mapMacBytes(b, start + 6)
        let et = b.readUInt16BE(start + 12)
        let off = start + 14
        while ((et === 0x8100 || et === 0x88a8) && off + 4 <= end) { et = b.readUInt16BE(off + 2); off += 4 }
        network(b, et, off, end, r)
      }
    } else if (linktype === LINKTYPE_LINUX_SLL) {
      if (start + 16 <= end) {
        if (b.readUInt16BE(start + 4) === 6) r.mapMacBytes(b, start + 6)
        network(b, b.readUInt16BE(start + 14), start + 16, end, r)
      }
    } else if (linktype === LINKTYPE_LINUX_SLL2) {
      if (start + 20 <= end) {
        if (b[start + 11] === 6) r.mapMacBytes(b, start + 12)
        network(b, b.readUInt16BE(start), start + 20, end, r)
      }
    } else if (start < end) {
      redactIp(b, start, end, r)
    }
    o = start + incl
  }
  return {
    bytes: b,
    note: `${packets} packets: link-layer addresses mapped${r.mapsIps ? ', IP addresses mapped (prefix-preserving, also in quoted ICMP headers), checksums adjusted' : ''}, payload after the transport headers zeroed; other protocols' bytes after the link header zeroed`,
  }
}
