// --write-pcapng: the capture again, each packet carrying a comment (pcapng opt_comment) that names its flow and
// verdict, so Wireshark shows natlens's reading next to the packet (Edit → Packet Comments, or `pkt_comment`).
import { closeSync, openSync, writeSync } from 'node:fs'
import { PacketSource, type Packet } from '../pcap/index.js'
import type { NodeState } from '../model/node-state.js'
import { connectionKey } from './connections.js'
import { packetNotes, type AnalysisJson } from './analyze.js'

function pad4(n: number): number {
  return (n + 3) & ~3
}

function option(code: number, value: Buffer): Buffer {
  const b = Buffer.alloc(4 + pad4(value.length))
  b.writeUInt16LE(code, 0)
  b.writeUInt16LE(value.length, 2)
  value.copy(b, 4)
  return b
}

function block(type: number, body: Buffer): Buffer {
  const total = 12 + body.length
  const b = Buffer.alloc(total)
  b.writeUInt32LE(type, 0)
  b.writeUInt32LE(total, 4)
  body.copy(b, 8)
  b.writeUInt32LE(total, total - 4)
  return b
}

export async function writeAnnotatedPcapng(paths: readonly string[], analysis: AnalysisJson, out: string, state: NodeState): Promise<number> {
  const notes = packetNotes.get(analysis) ?? new Map<string, string>()
  const fd = openSync(out, 'w', 0o600)
  const endOpt = Buffer.alloc(4)
  try {
    // Section header: byte-order magic, version 1.0, section length unknown (-1).
    const shb = Buffer.alloc(16)
    shb.writeUInt32LE(0x1a2b3c4d, 0)
    shb.writeUInt16LE(1, 4)
    shb.writeUInt16LE(0, 6)
    shb.writeBigInt64LE(-1n, 8)
    writeSync(fd, block(0x0a0d0d0a, Buffer.concat([shb, option(4, Buffer.from('natlens analyze')), endOpt])))
    const ifaces = new Map<string, number>()
    const ifnames = new Map<number, string>()
    for (const i of state.interfaces) if (i.ifindex !== undefined) ifnames.set(i.ifindex, i.name)
    let written = 0
    await new PacketSource(paths).forEach((p: Packet) => {
      const ifKey = `${p.file.index}/${p.interface.id}`
      let id = ifaces.get(ifKey)
      if (id === undefined) {
        id = ifaces.size
        ifaces.set(ifKey, id)
        const idb = Buffer.alloc(8)
        idb.writeUInt16LE(p.linktype, 0)
        idb.writeUInt32LE(p.interface.snaplen || 262144, 4)
        // if_tsresol 9: nanoseconds.
        const opts = [option(9, Buffer.from([9])), ...(p.interface.name ? [option(2, Buffer.from(p.interface.name))] : []), endOpt]
        writeSync(fd, block(1, Buffer.concat([idb, ...opts])))
      }
      const t = p.outer
      const note = t && t.family !== 0 ? notes.get(connectionKey(t).key) : undefined
      const iface = p.ifindex >= 0 ? ifnames.get(p.ifindex) : undefined
      const text = note ?? (t && t.family !== 0 ? 'natlens: not part of an analyzed flow' : undefined)
      const head = Buffer.alloc(20)
      const ns = p.timestampNs()
      head.writeUInt32LE(id, 0)
      head.writeUInt32LE(Number(ns >> 32n), 4)
      head.writeUInt32LE(Number(ns & 0xffffffffn), 8)
      head.writeUInt32LE(p.caplen, 12)
      head.writeUInt32LE(p.length, 16)
      const data = Buffer.alloc(pad4(p.caplen))
      p.bytes.copy(data, 0, p.start, p.start + p.caplen)
      const opts = text ? [option(1, Buffer.from(iface ? `${text} [${iface}]` : text)), endOpt] : []
      writeSync(fd, block(6, Buffer.concat([head, data, ...opts])))
      written++
    })
    return written
  } finally {
    closeSync(fd)
  }
}
