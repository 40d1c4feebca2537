// pcapng (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-02.html), as dumpcap, Wireshark and
// Inspektor Gadget write it. Byte order is settled per section (SHB), timestamp unit and offset per
// interface (IDB if_tsresol, if_tsoffset); block lengths are checked before a block is read, and blocks
// that carry no packet (ISB, NRB, DSB, custom, …) are skipped by their length.
import { CaptureError, type RecordSink } from './capture.js'
import { isDecodedLinktype } from './decode.js'
import type { ByteWindow } from './input.js'
import { Direction, type CaptureInterface } from './packet.js'

export const PCAPNG_SHB = 0x0a0d0d0a
const BYTE_ORDER_MAGIC = 0x1a2b3c4d
const BLOCK_IDB = 1
const BLOCK_OPB = 2
const BLOCK_SPB = 3
const BLOCK_EPB = 6
const SKIPPED_BLOCK_NAMES: Record<number, string> = {
  4: 'NRB', 5: 'ISB', 7: 'IRIG timestamp', 8: 'AFDX info', 9: 'systemd journal export', 10: 'DSB',
  0xbad: 'custom', 0x40000bad: 'custom', 0x80000001: 'Sysdig event',
}
/** Wireshark's limit for one block (MAX_BLOCK_SIZE); beyond it a length field is taken to be corrupt. */
export const MAX_BLOCK_LENGTH = 16 * 1024 * 1024

/** An IDB with the timestamp conversion settled once. */
interface PcapngInterface extends CaptureInterface {
  /** Ticks per second = 10^decimalExponent, or 2^binaryExponent. */
  readonly decimalExponent: number
  readonly binaryExponent: number
  readonly tsOffsetSec: number
  readonly tsResolution: string
}

/**
 * 64-bit tick counts to (seconds, nanoseconds) without BigInt: long division in base 2^16, exact for every
 * divisor below 2^37 (all decimal resolutions down to 1 ns, binary ones down to 2^-36 s).
 */
export class TickConverter {
  sec = 0
  nsec = 0
  convert(hi: number, lo: number, iface: PcapngInterface): void {
    const e = iface.decimalExponent
    let d: number
    if (e >= 0) {
      if (e > 9) {
        const ticks = (BigInt(hi) << 32n) | BigInt(lo)
        const div = 10n ** BigInt(e)
        this.sec = Number(ticks / div) + iface.tsOffsetSec
        this.nsec = Number(((ticks % div) * 1_000_000_000n) / div)
        return
      }
      d = 10 ** e
    } else {
      d = 2 ** iface.binaryExponent
    }
    let q: number
    let r: number
    if (hi < 0x200000) {
      // Fits in 53 bits (µs since the epoch does): plain division, corrected for rounding.
      const ticks = hi * 4294967296 + lo
      q = Math.floor(ticks / d)
      r = ticks - q * d
      if (r < 0) { q--; r += d } else if (r >= d) { q++; r -= d }
    } else {
      q = 0
      r = 0
      let cur = r * 65536 + (hi >>> 16)
      let qd = Math.floor(cur / d); r = cur - qd * d; q = q * 65536 + qd
      cur = r * 65536 + (hi & 0xffff)
      qd = Math.floor(cur / d); r = cur - qd * d; q = q * 65536 + qd
      cur = r * 65536 + (lo >>> 16)
      qd = Math.floor(cur / d); r = cur - qd * d; q = q * 65536 + qd
      cur = r * 65536 + (lo & 0xffff)
      qd = Math.floor(cur / d); r = cur - qd * d; q = q * 65536 + qd
    }
    this.sec = q + iface.tsOffsetSec
    this.nsec = e >= 0 ? r * 10 ** (9 - e) : Math.floor((r / d) * 1e9)
  }
}

export async function readPcapng(w: ByteWindow, sink: RecordSink, captureSize: number | undefined): Promise<void> {
  const s = sink.summary
  const path = s.path
  s.format = 'pcapng'
  const p = sink.packet
  const ticks = new TickConverter()
  let b = w.buf
  let le = true
  let section = 0
  let sectionInterfaces: PcapngInterface[] = []
  const rd16 = (o: number): number => le ? b[o] | (b[o + 1] << 8) : (b[o] << 8) | b[o + 1]
  const rd32 = (o: number): number => le
    ? (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0
    : ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0

  for (;;) {
    if (w.end - w.pos < 12) {
      if (!(await w.fill(12))) {
        if (w.available === 0) {
          if (section === 0) throw new CaptureError(path, 0, 'the file is empty', 'pcapng.empty', true)
          return
        }
        throw new CaptureError(path, w.offset, `the file ends inside a block header (${w.available} of 12 bytes)`, 'pcapng.truncated-block', true)
      }
      b = w.buf
    }
    const blockOffset = w.offset
    let o = w.pos
    const rawType = (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0
    if (rawType === PCAPNG_SHB) {
      // The SHB's byte-order magic decides how this section's numbers are read (its type is a palindrome).
      const bomLe = (b[o + 8] | (b[o + 9] << 8) | (b[o + 10] << 16) | (b[o + 11] << 24)) >>> 0
      const bomBe = ((b[o + 8] << 24) | (b[o + 9] << 16) | (b[o + 10] << 8) | b[o + 11]) >>> 0
      if (bomLe === BYTE_ORDER_MAGIC) le = true
      else if (bomBe === BYTE_ORDER_MAGIC) le = false
      else throw new CaptureError(path, blockOffset + 8, 'section header block with an unknown byte-order magic', 'pcapng.bad-byte-order')
    } else if (section === 0) {
      throw new CaptureError(path, 0, 'not a pcapng file (the first block is not a section header block)', 'pcapng.bad-magic')
    }
    const type = rd32(o)
    const blockLength = rd32(o + 4)
    if (blockLength < 12 || blockLength % 4 !== 0) {
      throw new CaptureError(path, blockOffset, `block of type 0x${type.toString(16)} has length ${blockLength}, not a multiple of 4 of at least 12`, 'pcapng.bad-block-length')
    }
    if (blockLength > MAX_BLOCK_LENGTH) {
      throw new CaptureError(path, blockOffset, `block of type 0x${type.toString(16)} claims ${blockLength} bytes, more than the ${MAX_BLOCK_LENGTH}-byte limit; the length field is corrupt`, 'pcapng.bad-block-length')
    }
    if (captureSize !== undefined && blockOffset + blockLength > captureSize) {
      throw new CaptureError(path, blockOffset, `block of type 0x${type.toString(16)} wants ${blockLength} bytes, the file ends after ${captureSize - blockOffset}`, 'pcapng.truncated-block', true)
    }
    if (w.end - o < blockLength) {
      if (!(await w.fill(blockLength))) {
        throw new CaptureError(path, blockOffset, `block of type 0x${type.toString(16)} wants ${blockLength} bytes, the file ends after ${w.available}`, 'pcapng.truncated-block', true)
      }
      b = w.buf
      o = w.pos
    }
    const blockEnd = o + blockLength
    // A header block's contents are checked first: a bad option explains a bad trailer better than the trailer.
    if (type !== PCAPNG_SHB && type !== BLOCK_IDB) checkTrailer(blockEnd, blockLength, rd32, path, blockOffset, type)

    if (type === BLOCK_EPB || type === BLOCK_SPB || type === BLOCK_OPB) {
      let ifaceId: number
      let dataStart: number
      let caplen: number
      let length: number
      let flags = 0
      if (type === BLOCK_EPB) {
        if (blockLength < 32) throw new CaptureError(path, blockOffset, `enhanced packet block of ${blockLength} bytes is shorter than its 32-byte minimum`, 'pcapng.bad-block-length')
        ifaceId = rd32(o + 8)
        caplen = rd32(o + 20)
        length = rd32(o + 24)
        dataStart = o + 28
      } else if (type === BLOCK_OPB) {
        if (blockLength < 32) throw new CaptureError(path, blockOffset, `packet block of ${blockLength} bytes is shorter than its 32-byte minimum`, 'pcapng.bad-block-length')
        ifaceId = rd16(o + 8)
        caplen = rd32(o + 20)
        length = rd32(o + 24)
        dataStart = o + 28
      } else {
        if (blockLength < 16) throw new CaptureError(path, blockOffset, `simple packet block of ${blockLength} bytes is shorter than its 16-byte minimum`, 'pcapng.bad-block-length')
        ifaceId = 0
        length = rd32(o + 8)
        dataStart = o + 12
        // An SPB has no captured length: it is the original length, cut by the block and the snaplen.
        caplen = Math.min(length, blockLength - 16)
        if (sectionInterfaces.length > 0 && sectionInterfaces[0].snaplen > 0) caplen = Math.min(caplen, sectionInterfaces[0].snaplen)
      }
      if (ifaceId >= sectionInterfaces.length) {
        throw new CaptureError(path, blockOffset, `packet block refers to interface ${ifaceId}, but section ${section} describes ${sectionInterfaces.length}`, 'pcapng.unknown-interface')
      }
      if (dataStart + caplen > blockEnd - 4) {
        throw new CaptureError(path, blockOffset, `packet block claims ${caplen} captured bytes, more than its ${blockLength}-byte block holds`, 'pcapng.bad-caplen')
      }
      const iface = sectionInterfaces[ifaceId]
      if (type !== BLOCK_SPB) {
        ticks.convert(rd32(o + 12), rd32(o + 16), iface)
        const optStart = dataStart + ((caplen + 3) & ~3)
        if (optStart < blockEnd - 4) flags = epbFlags(optStart, blockEnd - 4, rd16, rd32)
      }
      // An SPB has no timestamp: it keeps the previous packet's (ticks is left as it was), so flow times stay sane.
      p.interface = iface
      p.linktype = iface.linktype
      p.offset = blockOffset
      p.tsSec = ticks.sec
      p.tsNsec = ticks.nsec
      p.caplen = caplen
      p.length = length
      p.bytes = b
      p.start = dataStart
      // epb_flags bits 0-1: 01 inbound, 10 outbound
      p.direction = (flags & 3) === 1 ? Direction.incoming : (flags & 3) === 2 ? Direction.outgoing : Direction.unknown
      w.pos = blockEnd
      sink.deliver(p)
      continue
    }

    if (type === PCAPNG_SHB) {
      if (blockLength < 28) throw new CaptureError(path, blockOffset, `section header block of ${blockLength} bytes is shorter than its 28-byte minimum`, 'pcapng.bad-block-length')
      const major = rd16(o + 12)
      const minor = rd16(o + 14)
      // Wireshark and libpcap read 1.0 and the 1.2 some writers put there; nothing else has been defined.
      if (major !== 1 || (minor !== 0 && minor !== 2)) {
        throw new CaptureError(path, blockOffset + 12, `pcapng version ${major}.${minor} is not supported (only 1.0)`, 'pcapng.bad-version')
      }
      section++
      sectionInterfaces = []
      if (section === 1) {
        s.byteOrder = le ? 'little' : 'big'
        s.version = `${major}.${minor}`
      }
      checkOptions(o + 24, blockEnd - 4, rd16, path, blockOffset, 'section header block')
      checkTrailer(blockEnd, blockLength, rd32, path, blockOffset, type)
    } else if (type === BLOCK_IDB) {
      if (blockLength < 20) throw new CaptureError(path, blockOffset, `interface description block of ${blockLength} bytes is shorter than its 20-byte minimum`, 'pcapng.bad-block-length')
      const linktype = rd16(o + 8)
      const snaplen = rd32(o + 12)
      const opts = checkOptions(o + 16, blockEnd - 4, rd16, path, blockOffset, 'interface description block')
      checkTrailer(blockEnd, blockLength, rd32, path, blockOffset, type)
      let name: string | undefined
      let description: string | undefined
      let decimalExponent = 6
      let binaryExponent = 0
      let tsOffsetSec = 0
      for (const [code, start, len] of opts) {
        if (code === 2) name = b.toString('utf8', start, start + len).replace(/\0+$/, '')
        else if (code === 3) description = b.toString('utf8', start, start + len).replace(/\0+$/, '')
        else if (code === 9 && len >= 1) {
          const v = b[start]
          if (v & 0x80) { decimalExponent = -1; binaryExponent = v & 0x7f } else decimalExponent = v
        } else if (code === 14 && len >= 8) {
          // if_tsoffset: signed 64-bit seconds added to every timestamp of the interface
          const lo = rd32(start + (le ? 0 : 4))
          const hi = rd32(start + (le ? 4 : 0))
          tsOffsetSec = (hi | 0) * 4294967296 + lo
        }
      }
      if (decimalExponent < 0 && binaryExponent > 36) {
        throw new CaptureError(path, blockOffset, `if_tsresol 2^-${binaryExponent} is finer than natlens reads (2^-36)`, 'pcapng.bad-tsresol')
      }
      const iface: PcapngInterface = {
        format: 'pcapng', id: `${section}:${sectionInterfaces.length}`, section, interfaceId: sectionInterfaces.length, linktype, snaplen,
        ...(name !== undefined ? { name } : {}), ...(description !== undefined ? { description } : {}),
        decoded: isDecodedLinktype(linktype), packets: 0, decimalExponent, binaryExponent, tsOffsetSec,
        tsResolution: decimalExponent >= 0 ? `10^-${decimalExponent} s` : `2^-${binaryExponent} s`,
      }
      sectionInterfaces.push(iface)
      s.interfaces.push(iface)
    } else {
      const name = SKIPPED_BLOCK_NAMES[type] ?? `0x${type.toString(16)}`
      s.skippedBlocks[name] = (s.skippedBlocks[name] ?? 0) + 1
    }
    w.pos = blockEnd
  }
}

function checkTrailer(
  blockEnd: number, blockLength: number, rd32: (o: number) => number, path: string, blockOffset: number, type: number,
): void {
  const trailer = rd32(blockEnd - 4)
  if (trailer !== blockLength) {
    throw new CaptureError(path, blockOffset, `block of type 0x${type.toString(16)}: trailing length ${trailer} differs from the leading ${blockLength}`, 'pcapng.bad-block-length')
  }
}

/** Walks an option list, checking every length; returns [code, valueStart, valueLength] triples. */
function checkOptions(
  start: number, end: number, rd16: (o: number) => number, path: string, blockOffset: number, what: string,
): [number, number, number][] {
  const out: [number, number, number][] = []
  let o = start
  while (o + 4 <= end) {
    const code = rd16(o)
    const len = rd16(o + 2)
    if (code === 0) break // opt_endofopt
    const padded = (len + 3) & ~3
    if (o + 4 + padded > end) {
      throw new CaptureError(path, blockOffset, `${what}: option ${code} of ${len} bytes runs past the end of the block`, 'pcapng.bad-option')
    }
    out.push([code, o + 4, len])
    o += 4 + padded
  }
  return out
}

/** epb_flags (option 2) of an EPB, 0 when absent; a malformed option list is ignored here, not fatal. */
function epbFlags(start: number, end: number, rd16: (o: number) => number, rd32: (o: number) => number): number {
  let o = start
  while (o + 4 <= end) {
    const code = rd16(o)
    const len = rd16(o + 2)
    if (code === 0) return 0
    if (o + 4 + len > end) return 0
    if (code === 2 && len === 4) return rd32(o + 4)
    o += 4 + ((len + 3) & ~3)
  }
  return 0
}
