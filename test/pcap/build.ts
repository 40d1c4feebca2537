// Builders for capture files and frames in tests: classic pcap and pcapng in either byte order, and the
// few headers the reader tests need. Checksums are left zero: natlens does not verify them.

export interface PcapRecord {
  sec: number
  frac: number
  data: Buffer
  /** Original length; defaults to data.length. */
  length?: number
  /** Captured length written in the header (a lie when it differs from data.length). */
  caplen?: number
}

export function pcapFile(
  opts: { littleEndian: boolean; nano?: boolean; linktype?: number; linktypeField?: number; snaplen?: number; major?: number; minor?: number },
  records: PcapRecord[],
): Buffer {
  const le = opts.littleEndian
  const h = Buffer.alloc(24)
  const w32 = (b: Buffer, v: number, o: number): void => { le ? b.writeUInt32LE(v >>> 0, o) : b.writeUInt32BE(v >>> 0, o) }
  const w16 = (b: Buffer, v: number, o: number): void => { le ? b.writeUInt16LE(v, o) : b.writeUInt16BE(v, o) }
  w32(h, opts.nano ? 0xa1b23c4d : 0xa1b2c3d4, 0)
  w16(h, opts.major ?? 2, 4)
  w16(h, opts.minor ?? 4, 6)
  w32(h, opts.snaplen ?? 262144, 16)
  w32(h, opts.linktypeField ?? opts.linktype ?? 1, 20)
  const parts: Buffer[] = [h]
  for (const r of records) {
    const rh = Buffer.alloc(16)
    w32(rh, r.sec, 0)
    w32(rh, r.frac, 4)
    w32(rh, r.caplen ?? r.data.length, 8)
    w32(rh, r.length ?? r.data.length, 12)
    parts.push(rh, r.data)
  }
  return Buffer.concat(parts)
}

/** pcapng in one byte order per section; sections may differ. */
export class PcapngWriter {
  private readonly parts: Buffer[] = []
  private le = true

  private u32(v: number): Buffer {
    const b = Buffer.alloc(4)
    this.le ? b.writeUInt32LE(v >>> 0) : b.writeUInt32BE(v >>> 0)
    return b
  }
  private u16(v: number): Buffer {
    const b = Buffer.alloc(2)
    this.le ? b.writeUInt16LE(v) : b.writeUInt16BE(v)
    return b
  }
  private pad(b: Buffer): Buffer {
    return Buffer.concat([b, Buffer.alloc((4 - (b.length % 4)) % 4)])
  }
  /** An option list: [code, value] pairs, then opt_endofopt. */
  options(opts: [number, Buffer][]): Buffer {
    if (opts.length === 0) return Buffer.alloc(0)
    return Buffer.concat([...opts.flatMap(([code, v]) => [this.u16(code), this.u16(v.length), this.pad(v)]), this.u16(0), this.u16(0)])
  }
  block(type: number, body: Buffer, opts: { lengthOverride?: number; trailerOverride?: number } = {}): this {
    const len = 12 + body.length
    this.parts.push(this.u32(type), this.u32(opts.lengthOverride ?? len), body, this.u32(opts.trailerOverride ?? opts.lengthOverride ?? len))
    return this
  }
  shb(opts: { littleEndian: boolean; major?: number; minor?: number; options?: [number, Buffer][] }): this {
    this.le = opts.littleEndian
    const body = Buffer.concat([this.u32(0x1a2b3c4d), this.u16(opts.major ?? 1), this.u16(opts.minor ?? 0),
      Buffer.from('ffffffffffffffff', 'hex'), this.options(opts.options ?? [])])
    return this.block(0x0a0d0d0a, body)
  }
  idb(opts: { linktype: number; snaplen?: number; name?: string; tsresol?: number; tsoffset?: bigint }): this {
    const o: [number, Buffer][] = []
    if (opts.name !== undefined) o.push([2, Buffer.from(opts.name)])
    if (opts.tsresol !== undefined) o.push([9, Buffer.from([opts.tsresol])])
    if (opts.tsoffset !== undefined) {
      const b = Buffer.alloc(8)
      this.le ? b.writeBigInt64LE(opts.tsoffset) : b.writeBigInt64BE(opts.tsoffset)
      o.push([14, b])
    }
    return this.block(1, Buffer.concat([this.u16(opts.linktype), this.u16(0), this.u32(opts.snaplen ?? 0), this.options(o)]))
  }
  epb(opts: { iface: number; ticks: bigint; data: Buffer; length?: number; caplen?: number; flags?: number }): this {
    const o: [number, Buffer][] = opts.flags !== undefined ? [[2, this.u32(opts.flags)]] : []
    return this.block(6, Buffer.concat([this.u32(opts.iface), this.u32(Number(opts.ticks >> 32n)), this.u32(Number(opts.ticks & 0xffffffffn)),
      this.u32(opts.caplen ?? opts.data.length), this.u32(opts.length ?? opts.data.length), this.pad(opts.data), this.options(o)]))
  }
  spb(data: Buffer, length?: number): this {
    return this.block(3, Buffer.concat([this.u32(length ?? data.length), this.pad(data)]))
  }
  opb(opts: { iface: number; ticks: bigint; data: Buffer }): this {
    return this.block(2, Buffer.concat([this.u16(opts.iface), this.u16(0), this.u32(Number(opts.ticks >> 32n)), this.u32(Number(opts.ticks & 0xffffffffn)),
      this.u32(opts.data.length), this.u32(opts.data.length), this.pad(opts.data)]))
  }
  raw(b: Buffer): this {
    this.parts.push(b)
    return this
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts)
  }
}

// ------------------------------------------------------------------------------------------------- frames

export function ip4(text: string): Buffer {
  return Buffer.from(text.split('.').map(Number))
}
export function ip6(text: string): Buffer {
  const [head, tail] = text.split('::')
  const h = head ? head.split(':') : []
  const t = tail !== undefined && tail ? tail.split(':') : []
  const groups = tail !== undefined ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h
  return Buffer.from(groups.flatMap((g) => { const v = parseInt(g, 16); return [v >> 8, v & 255] }))
}

export function ether(type: number, payload: Buffer, vlans: number[] = []): Buffer {
  const tags = vlans.map((id, i) => Buffer.from([i === 0 && vlans.length > 1 ? 0x88 : 0x81, i === 0 && vlans.length > 1 ? 0xa8 : 0x00, id >> 8, id & 255]))
  const t = Buffer.from([type >> 8, type & 255])
  return Buffer.concat([Buffer.from('020000000002020000000001', 'hex'), ...tags.map((x) => x), t, payload])
}

export function ipv4(opts: { src: string; dst: string; proto: number; payload: Buffer; id?: number; mf?: boolean; fragOffset?: number; totalLength?: number; options?: Buffer }): Buffer {
  const optLen = opts.options?.length ?? 0
  const h = Buffer.alloc(20 + optLen)
  h[0] = 0x40 | ((20 + optLen) / 4)
  h.writeUInt16BE(opts.totalLength ?? 20 + optLen + opts.payload.length, 2)
  h.writeUInt16BE(opts.id ?? 1, 4)
  h.writeUInt16BE((opts.mf ? 0x2000 : 0) | ((opts.fragOffset ?? 0) / 8), 6)
  h[8] = 64
  h[9] = opts.proto
  ip4(opts.src).copy(h, 12)
  ip4(opts.dst).copy(h, 16)
  opts.options?.copy(h, 20)
  return Buffer.concat([h, opts.payload])
}

export function ipv6(opts: { src: string; dst: string; next: number; payload: Buffer; payloadLength?: number }): Buffer {
  const h = Buffer.alloc(40)
  h[0] = 0x60
  h.writeUInt16BE(opts.payloadLength ?? opts.payload.length, 4)
  h[6] = opts.next
  h[7] = 64
  ip6(opts.src).copy(h, 8)
  ip6(opts.dst).copy(h, 24)
  return Buffer.concat([h, opts.payload])
}

export function tcp(opts: { sport: number; dport: number; flags: number; seq?: number; ack?: number; payload?: Buffer }): Buffer {
  const h = Buffer.alloc(20)
  h.writeUInt16BE(opts.sport, 0)
  h.writeUInt16BE(opts.dport, 2)
  h.writeUInt32BE(opts.seq ?? 1000, 4)
  h.writeUInt32BE(opts.ack ?? 0, 8)
  h[12] = 5 << 4
  h[13] = opts.flags
  return Buffer.concat([h, opts.payload ?? Buffer.alloc(0)])
}

export function udp(sport: number, dport: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(8)
  h.writeUInt16BE(sport, 0)
  h.writeUInt16BE(dport, 2)
  h.writeUInt16BE(8 + payload.length, 4)
  return Buffer.concat([h, payload])
}

export function icmp(type: number, code: number, rest: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type, code, 0, 0]), rest])
}

export const SYN = 0x02
export const ACK = 0x10
export const FIN = 0x01
export const RST = 0x04

/** A canonical hexdump (like `xxd -g1`), for the comments above byte fixtures. */
export function hexdump(b: Buffer): string {
  const lines: string[] = []
  for (let o = 0; o < b.length; o += 16) {
    lines.push(`${o.toString(16).padStart(4, '0')}  ${[...b.subarray(o, o + 16)].map((x) => x.toString(16).padStart(2, '0')).join(' ')}`)
  }
  return lines.join('\n')
}
