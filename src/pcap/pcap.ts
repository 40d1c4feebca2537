// Classic libpcap files (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcap-04.html): a 24-byte file
// header, then records of a 16-byte header and the packet bytes. Byte order and timestamp unit are settled
// once from the magic number; every record length is checked before the bytes are touched.
import { CaptureError, type RecordSink } from './capture.js'
import { isDecodedLinktype } from './decode.js'
import type { ByteWindow } from './input.js'
import type { CaptureInterface } from './packet.js'

export const PCAP_MAGIC_US = 0xa1b2c3d4
export const PCAP_MAGIC_NS = 0xa1b23c4d
const HEADER_LENGTH = 24
const RECORD_HEADER_LENGTH = 16
/**
 * libpcap and Wireshark refuse records longer than this (MAXIMUM_SNAPLEN / WTAP_MAX_PACKET_SIZE_STANDARD)
 * unless the file's snaplen is larger; it also bounds what a lying length field can make us allocate.
 */
export const MAX_RECORD_LENGTH = 262144
/**
 * A file's snaplen raises that limit, up to 16 MiB (the largest block Wireshark reads in pcapng): a corrupt snaplen
 * must not let a corrupt length field make us allocate gigabytes.
 */
export const MAX_SNAPLEN_RECORD_LENGTH = 16 * 1024 * 1024

/** The largest captured length a record of a file with this snaplen may claim. */
export function recordLimit(snaplen: number): number {
  return Math.min(Math.max(snaplen, MAX_RECORD_LENGTH), MAX_SNAPLEN_RECORD_LENGTH)
}

/** Why a record's captured length is taken to be corrupt. */
export function badCaplenMessage(record: number, caplen: number, snaplen: number): string {
  const limit = recordLimit(snaplen)
  return `record ${record}: captured length ${caplen} is larger than ${limit > MAX_RECORD_LENGTH ? `the snaplen ${snaplen} allows (at most ${limit} bytes)` : `the snaplen ${snaplen} and the ${MAX_RECORD_LENGTH}-byte limit`}; the length field is corrupt`
}
/** The link-type field's bits 16-25 are reserved and must be zero (libpcap LT_RESERVED1). */
const LINKTYPE_RESERVED_BITS = 0x03ff0000

/** Which classic pcap magic the first four bytes are, if any. */
export function pcapMagic(b: Buffer, o: number): { littleEndian: boolean; nanosecond: boolean } | undefined {
  const le = (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0
  const be = ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0
  if (le === PCAP_MAGIC_US) return { littleEndian: true, nanosecond: false }
  if (le === PCAP_MAGIC_NS) return { littleEndian: true, nanosecond: true }
  if (be === PCAP_MAGIC_US) return { littleEndian: false, nanosecond: false }
  if (be === PCAP_MAGIC_NS) return { littleEndian: false, nanosecond: true }
  return undefined
}

export async function readPcap(w: ByteWindow, sink: RecordSink): Promise<void> {
  const s = sink.summary
  const path = s.path
  if (!(await w.fill(HEADER_LENGTH))) {
    throw new CaptureError(path, 0, `the file is ${w.available} bytes long, shorter than the 24-byte pcap file header`, 'pcap.truncated-header', true)
  }
  let b = w.buf
  const magic = pcapMagic(b, w.pos)
  if (!magic) throw new CaptureError(path, 0, 'not a pcap file (wrong magic number)', 'pcap.bad-magic')
  const le = magic.littleEndian
  const rd16 = (o: number): number => le ? b[o] | (b[o + 1] << 8) : (b[o] << 8) | b[o + 1]
  const rd32 = (o: number): number => le
    ? (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0
    : ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0
  const h = w.pos
  const major = rd16(h + 4)
  const minor = rd16(h + 6)
  s.format = 'pcap'
  s.byteOrder = le ? 'little' : 'big'
  s.tsResolution = magic.nanosecond ? 'nanosecond' : 'microsecond'
  s.version = `${major}.${minor}`
  if (major !== 2) {
    throw new CaptureError(path, 4, `pcap version ${major}.${minor} is not supported (only 2.x, as written since libpcap 0.4)`, 'pcap.bad-version')
  }
  const snaplen = rd32(h + 16)
  const linktypeField = rd32(h + 20)
  if (linktypeField & LINKTYPE_RESERVED_BITS) {
    throw new CaptureError(path, 20, `the link-type field 0x${linktypeField.toString(16).padStart(8, '0')} has reserved bits 16-25 set`, 'pcap.bad-linktype-field')
  }
  // Bits 26-31 say whether and how long an FCS is (tshark ignores them when bit 26 is clear, as we do).
  const linktype = linktypeField & 0xffff
  const iface: CaptureInterface = {
    format: 'pcap', id: '1:0', section: 1, interfaceId: 0, linktype, snaplen, decoded: isDecodedLinktype(linktype), packets: 0,
  }
  s.interfaces.push(iface)
  w.pos += HEADER_LENGTH

  const maxCaplen = recordLimit(snaplen)
  const nsMultiplier = magic.nanosecond ? 1 : 1000
  const p = sink.packet
  p.interface = iface
  p.linktype = linktype
  let record = 0
  for (;;) {
    if (w.end - w.pos < RECORD_HEADER_LENGTH) {
      if (!(await w.fill(RECORD_HEADER_LENGTH))) {
        if (w.available === 0) return
        throw new CaptureError(path, w.offset, `record ${record + 1}: the file ends inside the record header (${w.available} of 16 bytes)`, 'pcap.truncated-record', true)
      }
      b = w.buf
    }
    const o = w.pos
    const caplen = rd32(o + 8)
    const length = rd32(o + 12)
    record++
    if (caplen > maxCaplen) {
      throw new CaptureError(path, w.offset, badCaplenMessage(record, caplen, snaplen), 'pcap.bad-caplen')
    }
    if (caplen > snaplen) {
      sink.warn(w.offset, 'pcap.caplen-over-snaplen', `record ${record}: captured length ${caplen} is larger than the file's snaplen ${snaplen} (read anyway, as libpcap and tshark do)`)
    }
    const need = RECORD_HEADER_LENGTH + caplen
    if (w.end - o < need) {
      if (!(await w.fill(need))) {
        throw new CaptureError(path, w.offset, `record ${record}: wants ${caplen} bytes of packet data, the file ends after ${w.available - RECORD_HEADER_LENGTH}`, 'pcap.truncated-record', true)
      }
      b = w.buf
    }
    const r = w.pos
    let sec = rd32(r)
    let frac = rd32(r + 4) * nsMultiplier
    // A fraction of a second that is a whole second or more (seen in fuzzed files) carries into the seconds.
    if (frac >= 1_000_000_000) {
      sec += Math.floor(frac / 1_000_000_000)
      frac %= 1_000_000_000
    }
    p.offset = w.base + r
    p.tsSec = sec
    p.tsNsec = frac
    p.caplen = caplen
    p.length = length
    p.bytes = b
    p.start = r + RECORD_HEADER_LENGTH
    p.direction = 0
    w.pos = r + need
    sink.deliver(p)
  }
}
