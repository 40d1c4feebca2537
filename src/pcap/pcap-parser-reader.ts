// `--reader pcap-parser`: classic pcap read by the npm package the design first named, kept as an
// independent cross-check of the built-in reader (the tests compare both on every classic pcap of the
// corpus) and as a fallback. It reads microsecond pcap only; we add the checks it lacks: the version, the
// link-type field, and lengths that lie (it would buffer a record of any claimed size).
import { Readable } from 'node:stream'
import pcapParser, { type GlobalHeader, type PacketHeader } from 'pcap-parser'
import { CaptureError, type RecordSink } from './capture.js'
import { isDecodedLinktype } from './decode.js'
import type { OpenedInput } from './input.js'
import type { CaptureInterface } from './packet.js'
import { badCaplenMessage, MAX_RECORD_LENGTH, recordLimit } from './pcap.js'

function asReadable(opened: OpenedInput): Readable {
  const input = opened.input
  async function* chunks(): AsyncGenerator<Buffer> {
    for (;;) {
      const buf = Buffer.allocUnsafe(1 << 20)
      const n = await input.read(buf, 0, buf.length)
      if (n === 0) return
      yield buf.subarray(0, n)
    }
  }
  return Readable.from(chunks(), { objectMode: false })
}

export function readWithPcapParser(path: string, opened: OpenedInput, sink: RecordSink): Promise<void> {
  const s = sink.summary
  const p = sink.packet
  const stream = asReadable(opened)
  const parser = pcapParser.parse(stream)
  let offset = 24
  let maxCaplen = MAX_RECORD_LENGTH
  let snaplen = 0
  let record = 0
  return new Promise<void>((resolve, reject) => {
    let settled = false
    const fail = (e: CaptureError): void => {
      if (settled) return
      settled = true
      parser.removeAllListeners()
      stream.destroy()
      reject(e)
    }
    parser.on('globalHeader', (h: GlobalHeader) => {
      s.format = 'pcap'
      s.byteOrder = parser.endianness === 'BE' ? 'big' : 'little'
      s.tsResolution = 'microsecond'
      s.version = `${h.majorVersion}.${h.minorVersion}`
      // pcap-parser's own check (major != 2 && minor != 4) lets 1.4 through
      if (h.majorVersion !== 2) {
        fail(new CaptureError(path, 4, `pcap version ${s.version} is not supported (only 2.x, as written since libpcap 0.4)`, 'pcap.bad-version'))
        return
      }
      if (h.linkLayerType & 0x03ff0000) {
        fail(new CaptureError(path, 20, `the link-type field 0x${(h.linkLayerType >>> 0).toString(16).padStart(8, '0')} has reserved bits 16-25 set`, 'pcap.bad-linktype-field'))
        return
      }
      snaplen = h.snapshotLength
      maxCaplen = recordLimit(snaplen)
      const linktype = h.linkLayerType & 0xffff
      const iface: CaptureInterface = {
        format: 'pcap', id: '1:0', section: 1, interfaceId: 0, linktype, snaplen, decoded: isDecodedLinktype(linktype), packets: 0,
      }
      s.interfaces.push(iface)
      p.interface = iface
      p.linktype = linktype
    })
    parser.on('packetHeader', (h: PacketHeader) => {
      record++
      if (h.capturedLength > maxCaplen) {
        fail(new CaptureError(path, offset, badCaplenMessage(record, h.capturedLength, snaplen), 'pcap.bad-caplen'))
      } else if (h.capturedLength > snaplen) {
        sink.warn(offset, 'pcap.caplen-over-snaplen', `record ${record}: captured length ${h.capturedLength} is larger than the file's snaplen ${snaplen} (read anyway, as libpcap and tshark do)`)
      }
    })
    parser.on('packet', (pkt: { header: PacketHeader; data: Buffer }) => {
      if (settled) return
      const h = pkt.header
      p.offset = offset
      p.tsSec = h.timestampSeconds
      p.tsNsec = h.timestampMicroseconds * 1000
      if (p.tsNsec >= 1_000_000_000) {
        p.tsSec += Math.floor(p.tsNsec / 1_000_000_000)
        p.tsNsec %= 1_000_000_000
      }
      p.caplen = h.capturedLength
      p.length = h.originalLength
      p.bytes = pkt.data
      p.start = 0
      p.direction = 0
      offset += 16 + h.capturedLength
      sink.deliver(p)
    })
    parser.on('error', (e: Error) => {
      const what = /unknown magic number/.test(e.message)
        ? 'pcap-parser reads only microsecond classic pcap (wrong magic number); use the built-in reader'
        : e.message
      fail(new CaptureError(path, 0, what, 'pcap.bad-magic'))
    })
    stream.on('error', (e: Error) => fail(new CaptureError(path, offset, e.message, 'capture.read-error', true)))
    parser.on('end', () => {
      if (settled) return
      const left = parser.buffer?.length ?? 0
      if (s.format === undefined) {
        fail(new CaptureError(path, 0, `the file is ${left} bytes long, shorter than the 24-byte pcap file header`, 'pcap.truncated-header', true))
        return
      }
      if (left > 0) {
        fail(new CaptureError(path, offset, `record ${record}: the file ends inside the record (${left} bytes left)`, 'pcap.truncated-record', true))
        return
      }
      settled = true
      resolve()
    })
  })
}
