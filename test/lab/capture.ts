// Captures: one `tcpdump -i any` per namespace that matters (the node, the VPC), read back with a small decoder of
// LINUX_SLL2 records (tcpdump 4.99's link type for `any`), which carry the interface index and the packet direction.
// The lab reads its captures itself, independently of natlens's pcap code, so the two can check each other.
import fs from 'node:fs'
import type { Background, LabRun } from './kernel.js'

export interface CapturedPacket {
  readonly index: number
  /** Microseconds since the epoch. */
  readonly ts: number
  readonly ifindex: number
  /** 0 to us, 1 broadcast, 2 multicast, 3 to another host, 4 outgoing (Linux PACKET_*). */
  readonly pktType: number
  readonly family: 4 | 6
  readonly proto: 'tcp' | 'udp' | 'icmp' | 'icmpv6' | 'other'
  readonly src: string
  readonly dst: string
  readonly sport: number | null
  readonly dport: number | null
  /** TCP flags byte (SYN 0x02, ACK 0x10, RST 0x04). */
  readonly tcpFlags: number | null
  readonly icmpType: number | null
  readonly icmpId: number | null
  readonly payload: string
}

export const PACKET_OUTGOING = 4
const LINKTYPE_LINUX_SLL2 = 276
const LINKTYPE_ETHERNET = 1

export interface Capture {
  readonly ns: string
  readonly file: string
  readonly process: Background
}

/** Starts `tcpdump -i any` in a namespace and waits until it is listening. */
export async function startCapture(lab: LabRun, ns: string, file: string, maxMs: number): Promise<Capture> {
  // --immediate-mode: hand each packet over at once (TPACKET_V3 otherwise holds a block back, and the tail of the
  // capture is lost when tcpdump is stopped); -U: write each packet at once; -s 256: headers and the flow tag only;
  // -Z root: keep writing into the lab's temp dir.
  const bg = lab.spawn(ns, `tcpdump ${ns}`, 'tcpdump', ['-i', 'any', '-n', '--immediate-mode', '-U', '-s', '256', '-Z', 'root', '-w', file], maxMs)
  const deadline = Date.now() + 5_000
  while (!/listening on/.test(bg.stderr())) {
    if (bg.process.exitCode !== null && bg.process.exitCode !== undefined) throw new Error(`lab: tcpdump in ${ns} exited: ${bg.stderr().trim()}`)
    if (Date.now() > deadline) throw new Error(`lab: tcpdump in ${ns} did not start within 5 s: ${bg.stderr().trim()}`)
    await new Promise((r) => setTimeout(r, 20))
  }
  return { ns, file, process: bg }
}

/** Stops tcpdump (it flushes on SIGTERM) and fails if the kernel dropped packets: the observations would be incomplete. */
export async function stopCapture(lab: LabRun, c: Capture): Promise<void> {
  await lab.stop(c.process, 3_000)
  const dropped = /(\d+) packets? dropped by kernel/.exec(c.process.stderr())
  if (dropped && Number(dropped[1]) > 0) throw new Error(`lab: tcpdump in ${c.ns} lost ${dropped[1]} packets: ${c.process.stderr().trim()}`)
}

function ipv4(b: Buffer, o: number): string {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`
}

function ipv6(b: Buffer, o: number): string {
  const groups: string[] = []
  for (let i = 0; i < 8; i++) groups.push(b.readUInt16BE(o + 2 * i).toString(16))
  // Compress the longest run of zero groups (RFC 5952), as `ip` and conntrack print addresses.
  let best = -1; let bestLen = 0
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') { i++; continue }
    let j = i
    while (j < 8 && groups[j] === '0') j++
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i }
    i = j
  }
  if (best < 0) return groups.join(':')
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`
}

function decodeL3(b: Buffer, o: number, end: number, base: { index: number; ts: number; ifindex: number; pktType: number }, etherType: number): CapturedPacket | null {
  let family: 4 | 6
  let protoNum: number
  let src: string
  let dst: string
  let l4: number
  if (etherType === 0x0800) {
    if (end - o < 20) return null
    const ihl = (b[o]! & 0x0f) * 4
    family = 4; protoNum = b[o + 9]!; src = ipv4(b, o + 12); dst = ipv4(b, o + 16); l4 = o + ihl
  } else if (etherType === 0x86dd) {
    if (end - o < 40) return null
    family = 6; protoNum = b[o + 6]!; src = ipv6(b, o + 8); dst = ipv6(b, o + 24); l4 = o + 40
  } else return null
  const p = { ...base, family, src, dst, sport: null as number | null, dport: null as number | null, tcpFlags: null as number | null, icmpType: null as number | null, icmpId: null as number | null, payload: '' }
  if (protoNum === 6 && end - l4 >= 20) {
    const dataOff = (b[l4 + 12]! >> 4) * 4
    return { ...p, proto: 'tcp', sport: b.readUInt16BE(l4), dport: b.readUInt16BE(l4 + 2), tcpFlags: b[l4 + 13]!, payload: b.subarray(Math.min(l4 + dataOff, end), end).toString('latin1') }
  }
  if (protoNum === 17 && end - l4 >= 8) {
    return { ...p, proto: 'udp', sport: b.readUInt16BE(l4), dport: b.readUInt16BE(l4 + 2), payload: b.subarray(l4 + 8, end).toString('latin1') }
  }
  if ((protoNum === 1 || protoNum === 58) && end - l4 >= 8) {
    return { ...p, proto: protoNum === 1 ? 'icmp' : 'icmpv6', icmpType: b[l4]!, icmpId: b.readUInt16BE(l4 + 4), payload: b.subarray(l4 + 8, end).toString('latin1') }
  }
  return { ...p, proto: 'other' }
}

/** Reads a classic pcap file (either byte order, µs or ns timestamps) of LINUX_SLL2 or Ethernet packets. */
export function readCapture(file: string): CapturedPacket[] {
  const b = fs.readFileSync(file)
  if (b.length < 24) return []
  const magicLE = b.readUInt32LE(0)
  let le: boolean
  let nanos: boolean
  if (magicLE === 0xa1b2c3d4 || magicLE === 0xa1b23c4d) { le = true; nanos = magicLE === 0xa1b23c4d } else {
    const magicBE = b.readUInt32BE(0)
    if (magicBE !== 0xa1b2c3d4 && magicBE !== 0xa1b23c4d) throw new Error(`lab: ${file} is not a pcap file`)
    le = false; nanos = magicBE === 0xa1b23c4d
  }
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o))
  const linkType = u32(20) & 0x0fffffff
  const packets: CapturedPacket[] = []
  let o = 24
  let index = 0
  while (o + 16 <= b.length) {
    const ts = u32(o) * 1_000_000 + (nanos ? Math.floor(u32(o + 4) / 1000) : u32(o + 4))
    const incl = u32(o + 8)
    const start = o + 16
    const end = Math.min(start + incl, b.length)
    index++
    if (linkType === LINKTYPE_LINUX_SLL2 && end - start >= 20) {
      const etherType = b.readUInt16BE(start)
      const ifindex = b.readUInt32BE(start + 4)
      const pktType = b[start + 10]!
      const p = decodeL3(b, start + 20, end, { index, ts, ifindex, pktType }, etherType)
      if (p) packets.push(p)
    } else if (linkType === LINKTYPE_ETHERNET && end - start >= 14) {
      const p = decodeL3(b, start + 14, end, { index, ts, ifindex: 0, pktType: 0 }, b.readUInt16BE(start + 12))
      if (p) packets.push(p)
    }
    o = start + incl
  }
  return packets
}

export function describePacket(p: CapturedPacket, ifname: string): string {
  const dir = p.pktType === PACKET_OUTGOING ? 'out' : 'in'
  const ep = (a: string, port: number | null) => (port === null ? a : p.family === 6 ? `[${a}]:${port}` : `${a}:${port}`)
  const flags = p.tcpFlags === null ? '' : ` [${p.tcpFlags & 0x02 ? 'S' : ''}${p.tcpFlags & 0x10 ? '.' : ''}${p.tcpFlags & 0x04 ? 'R' : ''}${p.tcpFlags & 0x01 ? 'F' : ''}]`
  const icmp = p.icmpType === null ? '' : ` type ${p.icmpType} id ${p.icmpId}`
  return `#${p.index} ${dir} ${ifname} ${p.proto} ${ep(p.src, p.sport)} > ${ep(p.dst, p.dport)}${flags}${icmp}`
}
