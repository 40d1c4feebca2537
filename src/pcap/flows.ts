// FlowTable: packets aggregated into bidirectional conversations. The key is direction-free (the two
// endpoints in a canonical order) and numeric: protocol, family, both addresses as 32-bit words and both
// ports, kept in typed-array columns with an open-addressing index, so adding a packet allocates nothing.
// A flow's "src" is the endpoint that sent the first packet seen, as tshark's side A.
import { IPPROTO, formatAddress, protoName, type CaptureInterface, type Packet, type Tuple } from './packet.js'

export interface FlowTableOptions {
  /** Count tunnel inner conversations too (VXLAN, Geneve, GRE, IP-in-IP), not only the outer one. */
  readonly decap?: boolean
}

/** Where a flow was seen: a pcapng interface name, an SLL2 ifindex, or both. */
export interface InterfaceRef {
  readonly name?: string
  readonly ifindex?: number
  /** pcapng section:interface id, when the IDB has no name. */
  readonly idb?: string
}

export const TCP_FLAG_NAMES = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR'] as const
const FLAG_NAME_LISTS: readonly string[][] = Array.from({ length: 256 }, (_, bits) => TCP_FLAG_NAMES.filter((_, i) => bits & (1 << i)))
/** Names of the TCP flags set in `bits`; the array is shared between callers, do not modify it. */
export function tcpFlagNames(bits: number): string[] {
  return FLAG_NAME_LISTS[bits & 255]
}

export interface Flow {
  readonly proto: string
  readonly protoNumber: number
  readonly family: 4 | 6
  readonly src: string
  readonly sport: number | null
  readonly dst: string
  readonly dport: number | null
  readonly packets: number
  /** Original frame lengths, link-layer header included (as tshark's conversation tables count bytes). */
  readonly bytes: number
  readonly srcPackets: number
  readonly srcBytes: number
  readonly dstPackets: number
  readonly dstBytes: number
  readonly firstNs: bigint
  readonly lastNs: bigint
  /** OR of the TCP flags each side sent; null for other protocols. */
  readonly srcTcpFlags: number | null
  readonly dstTcpFlags: number | null
  /** ICMP/ICMPv6 errors whose quoted header names this flow (not counted in packets/bytes). */
  readonly icmpErrors: number
  readonly interfaces: InterfaceRef[]
  /** True when the flow was only seen inside a tunnel (counted with decap). */
  readonly inner: boolean
}

/** Words per flow key: meta, a0..a3, b0..b3, ports. */
const KEY_WORDS = 10
/** Float64 stats per flow. */
const ST_SRC_PKTS = 0
const ST_SRC_BYTES = 1
const ST_DST_PKTS = 2
const ST_DST_BYTES = 3
const ST_FIRST_SEC = 4
const ST_FIRST_NSEC = 5
const ST_LAST_SEC = 6
const ST_LAST_NSEC = 7
const ST_ICMP_ERRORS = 8
const STATS = 9

/** Per-read registry of interface identities, each with a bit for the flows' interface masks. */
class InterfaceRegistry {
  readonly refs: InterfaceRef[] = []
  private readonly byKey = new Map<string, number>()
  private lastIface: CaptureInterface | undefined
  private lastIfindex = -2
  private lastBit = -1

  /** Index of the (interface, ifindex) identity, cached for the common run of packets on one interface. */
  indexOf(iface: CaptureInterface, ifindex: number): number {
    if (iface === this.lastIface && ifindex === this.lastIfindex) return this.lastBit
    let ref: InterfaceRef | undefined
    if (iface.name !== undefined) ref = ifindex >= 0 ? { name: iface.name, ifindex } : { name: iface.name }
    else if (ifindex >= 0) ref = { ifindex }
    else if (iface.format === 'pcapng') ref = { idb: iface.id }
    let idx = -1
    if (ref) {
      const key = `${ref.name ?? ''}\0${ref.ifindex ?? ''}\0${ref.idb ?? ''}`
      idx = this.byKey.get(key) ?? -1
      if (idx < 0) {
        idx = this.refs.length
        this.refs.push(ref)
        this.byKey.set(key, idx)
      }
    }
    this.lastIface = iface
    this.lastIfindex = ifindex
    this.lastBit = idx
    return idx
  }
}

export class FlowTable {
  private readonly decap: boolean
  private capacity = 0
  private count = 0
  private keys = new Uint32Array(0)
  private hashes = new Uint32Array(0)
  private stats = new Float64Array(0)
  /** 1 when the flow's src is the canonical endpoint A. */
  private srcIsA = new Uint8Array(0)
  private srcFlags = new Int16Array(0)
  private dstFlags = new Int16Array(0)
  private innerOnly = new Uint8Array(0)
  /** Interface identities 0..30 as bits; more go to overflow. */
  private ifaceMask = new Uint32Array(0)
  private readonly ifaceOverflow = new Map<number, Set<number>>()
  private readonly interfaces = new InterfaceRegistry()
  /** Open-addressing slots: flow index + 1, 0 = empty. */
  private slots = new Int32Array(0)
  private slotMask = 0
  /** Scratch key of the packet being added. */
  private readonly k = new Uint32Array(KEY_WORDS)

  constructor(options: FlowTableOptions = {}) {
    this.decap = options.decap ?? false
    this.grow(1024)
  }

  get size(): number {
    return this.count
  }

  /** Adds one packet: its outer conversation, and with decap its inner ones too. */
  add(p: Packet): void {
    const n = this.decap ? p.tupleCount : p.tupleCount > 0 ? 1 : 0
    for (let i = 0; i < n; i++) {
      const t = p.tuples[i]
      // An ICMP error belongs to the flow its quoted header names (only the innermost IP layer carries it).
      if (p.hasQuoted && i === p.tupleCount - 1 && p.quoted.family !== 0) {
        this.addIcmpError(p, p.quoted, i > 0)
      } else {
        this.addTuple(p, t, i > 0)
      }
    }
  }

  private keyOf(t: Tuple): boolean {
    const k = this.k
    const hasPorts = t.sport >= 0
    const sp = hasPorts ? t.sport : 0
    const dp = hasPorts ? t.dport : 0
    // meta: family (3 bits), protocol + 1 (9 bits, so -1 "unknown" fits), has-ports (1 bit)
    const meta = t.family | ((t.proto + 1) << 3) | (hasPorts ? 1 << 12 : 0)
    // Canonical order: the endpoint with the smaller (address, port) is A.
    let srcFirst: boolean
    if (t.src0 !== t.dst0) srcFirst = t.src0 < t.dst0
    else if (t.src1 !== t.dst1) srcFirst = t.src1 < t.dst1
    else if (t.src2 !== t.dst2) srcFirst = t.src2 < t.dst2
    else if (t.src3 !== t.dst3) srcFirst = t.src3 < t.dst3
    else srcFirst = sp <= dp
    k[0] = meta
    if (srcFirst) {
      k[1] = t.src0; k[2] = t.src1; k[3] = t.src2; k[4] = t.src3
      k[5] = t.dst0; k[6] = t.dst1; k[7] = t.dst2; k[8] = t.dst3
      k[9] = (sp << 16) | dp
    } else {
      k[1] = t.dst0; k[2] = t.dst1; k[3] = t.dst2; k[4] = t.dst3
      k[5] = t.src0; k[6] = t.src1; k[7] = t.src2; k[8] = t.src3
      k[9] = (dp << 16) | sp
    }
    return srcFirst
  }

  /** Finds or creates the flow of the key in this.k; returns its index, or -(index + 1) when new. */
  private lookup(): number {
    const k = this.k
    let h = 0x811c9dc5
    for (let i = 0; i < KEY_WORDS; i++) h = Math.imul(h ^ k[i], 0x01000193)
    h ^= h >>> 15
    h = Math.imul(h, 0x2c1b3c6d)
    h ^= h >>> 12
    h >>>= 0
    const keys = this.keys
    let slot = h & this.slotMask
    for (;;) {
      const v = this.slots[slot]
      if (v === 0) break
      const f = v - 1
      if (this.hashes[f] === h) {
        const base = f * KEY_WORDS
        if (keys[base] === k[0] && keys[base + 1] === k[1] && keys[base + 5] === k[5] && keys[base + 9] === k[9] &&
          keys[base + 2] === k[2] && keys[base + 3] === k[3] && keys[base + 4] === k[4] &&
          keys[base + 6] === k[6] && keys[base + 7] === k[7] && keys[base + 8] === k[8]) return f
      }
      slot = (slot + 1) & this.slotMask
    }
    if (this.count === this.capacity) {
      this.grow(this.capacity * 2)
      return this.lookup()
    }
    const f = this.count++
    this.keys.set(k, f * KEY_WORDS)
    this.hashes[f] = h
    this.slots[slot] = f + 1
    return -(f + 1)
  }

  private grow(capacity: number): void {
    const old = this.capacity
    const keys = new Uint32Array(capacity * KEY_WORDS)
    keys.set(this.keys)
    this.keys = keys
    const hashes = new Uint32Array(capacity)
    hashes.set(this.hashes)
    this.hashes = hashes
    const stats = new Float64Array(capacity * STATS)
    stats.set(this.stats)
    this.stats = stats
    const srcIsA = new Uint8Array(capacity)
    srcIsA.set(this.srcIsA)
    this.srcIsA = srcIsA
    const srcFlags = new Int16Array(capacity)
    srcFlags.set(this.srcFlags)
    this.srcFlags = srcFlags
    const dstFlags = new Int16Array(capacity)
    dstFlags.set(this.dstFlags)
    this.dstFlags = dstFlags
    const innerOnly = new Uint8Array(capacity)
    innerOnly.set(this.innerOnly)
    this.innerOnly = innerOnly
    const ifaceMask = new Uint32Array(capacity)
    ifaceMask.set(this.ifaceMask)
    this.ifaceMask = ifaceMask
    this.capacity = capacity
    // Slots at load factor ≤ 0.5.
    const slotCount = capacity * 2
    this.slots = new Int32Array(slotCount)
    this.slotMask = slotCount - 1
    for (let f = 0; f < Math.min(old, this.count); f++) {
      let slot = this.hashes[f] & this.slotMask
      while (this.slots[slot] !== 0) slot = (slot + 1) & this.slotMask
      this.slots[slot] = f + 1
    }
  }

  private begin(f: number, p: Packet, srcFirst: boolean, inner: boolean): void {
    const s = f * STATS
    this.srcIsA[f] = srcFirst ? 1 : 0
    this.stats[s + ST_FIRST_SEC] = this.stats[s + ST_LAST_SEC] = p.tsSec
    this.stats[s + ST_FIRST_NSEC] = this.stats[s + ST_LAST_NSEC] = p.tsNsec
    this.srcFlags[f] = this.dstFlags[f] = -1
    this.innerOnly[f] = inner ? 1 : 0
  }

  private addTuple(p: Packet, t: Tuple, inner: boolean): void {
    if (t.family === 0) return
    const srcFirst = this.keyOf(t)
    let f = this.lookup()
    if (f < 0) {
      f = -f - 1
      this.begin(f, p, srcFirst, inner)
    } else if (!inner) {
      this.innerOnly[f] = 0
    }
    const s = f * STATS
    const stats = this.stats
    const fromSrc = (this.srcIsA[f] === 1) === srcFirst
    if (fromSrc) {
      stats[s + ST_SRC_PKTS]++
      stats[s + ST_SRC_BYTES] += p.length
    } else {
      stats[s + ST_DST_PKTS]++
      stats[s + ST_DST_BYTES] += p.length
    }
    // Captures are not always in time order (merged interfaces, reordering): keep the min and the max.
    const sec = p.tsSec
    const nsec = p.tsNsec
    if (sec < stats[s + ST_FIRST_SEC] || (sec === stats[s + ST_FIRST_SEC] && nsec < stats[s + ST_FIRST_NSEC])) {
      stats[s + ST_FIRST_SEC] = sec
      stats[s + ST_FIRST_NSEC] = nsec
    }
    if (sec > stats[s + ST_LAST_SEC] || (sec === stats[s + ST_LAST_SEC] && nsec > stats[s + ST_LAST_NSEC])) {
      stats[s + ST_LAST_SEC] = sec
      stats[s + ST_LAST_NSEC] = nsec
    }
    if (t.proto === IPPROTO.tcp && t.tcpFlags >= 0) {
      if (fromSrc) this.srcFlags[f] = (this.srcFlags[f] < 0 ? 0 : this.srcFlags[f]) | t.tcpFlags
      else this.dstFlags[f] = (this.dstFlags[f] < 0 ? 0 : this.dstFlags[f]) | t.tcpFlags
    }
    this.noteInterface(f, p)
  }

  private addIcmpError(p: Packet, q: Tuple, inner: boolean): void {
    const srcFirst = this.keyOf(q)
    let f = this.lookup()
    if (f < 0) {
      f = -f - 1
      // Known only from the error: the quoted packet's sender is the flow's src.
      this.begin(f, p, srcFirst, inner)
    }
    this.stats[f * STATS + ST_ICMP_ERRORS]++
    this.noteInterface(f, p)
  }

  private noteInterface(f: number, p: Packet): void {
    const idx = this.interfaces.indexOf(p.interface, p.ifindex)
    if (idx < 0) return
    if (idx < 31) this.ifaceMask[f] |= 1 << idx
    else {
      let set = this.ifaceOverflow.get(f)
      if (!set) this.ifaceOverflow.set(f, (set = new Set()))
      set.add(idx)
    }
  }

  /**
   * The first n flows in the order sortFlows gives for a numeric key, materializing only those n: the
   * table view of a capture with a million flows builds twenty Flow objects, not a million.
   */
  top(key: 'bytes' | 'packets' | 'first' | 'last' | 'duration', n: number): Flow[] {
    const st = this.stats
    const count = this.count
    const order = new Int32Array(count)
    for (let f = 0; f < count; f++) order[f] = f
    const bytes = (f: number): number => st[f * STATS + ST_SRC_BYTES] + st[f * STATS + ST_DST_BYTES]
    const packets = (f: number): number => st[f * STATS + ST_SRC_PKTS] + st[f * STATS + ST_DST_PKTS]
    const cmpTime = (f: number, g: number, sec: number, nsec: number): number =>
      st[f * STATS + sec] - st[g * STATS + sec] || st[f * STATS + nsec] - st[g * STATS + nsec]
    const first = (f: number, g: number): number => cmpTime(f, g, ST_FIRST_SEC, ST_FIRST_NSEC)
    const duration = (f: number): number =>
      (st[f * STATS + ST_LAST_SEC] - st[f * STATS + ST_FIRST_SEC]) * 1e9 + (st[f * STATS + ST_LAST_NSEC] - st[f * STATS + ST_FIRST_NSEC])
    const cmp: Record<typeof key, (f: number, g: number) => number> = {
      bytes: (f, g) => bytes(g) - bytes(f) || packets(g) - packets(f) || first(f, g),
      packets: (f, g) => packets(g) - packets(f) || bytes(g) - bytes(f) || first(f, g),
      first,
      last: (f, g) => cmpTime(f, g, ST_LAST_SEC, ST_LAST_NSEC),
      duration: (f, g) => duration(g) - duration(f) || bytes(g) - bytes(f),
    }
    // Ties keep first-seen order, as the stable sort of sortFlows does.
    const c = cmp[key]
    order.sort((f, g) => c(f, g) || f - g)
    const out: Flow[] = []
    for (let i = 0; i < Math.min(n, count); i++) out.push(this.flowAt(order[i]))
    return out
  }

  /** Every flow in first-seen order, built one at a time (for streaming them out). */
  *each(): Generator<Flow> {
    for (let f = 0; f < this.count; f++) yield this.flowAt(f)
  }

  /** Every flow, in the order they were first seen. */
  flows(): Flow[] {
    const out: Flow[] = []
    for (let f = 0; f < this.count; f++) out.push(this.flowAt(f))
    return out
  }

  /** Flows seen on the same interfaces share one array (a million flows on one interface: one array). */
  private readonly listsByMask = new Map<number, InterfaceRef[]>()
  private interfaceList(f: number): InterfaceRef[] {
    const refs = this.interfaces.refs
    const mask = this.ifaceMask[f]
    const overflow = this.ifaceOverflow.get(f)
    if (!overflow) {
      const cached = this.listsByMask.get(mask)
      if (cached && cached.length === countBits(mask)) return cached
    }
    const list: InterfaceRef[] = []
    for (let i = 0; i < 31 && i < refs.length; i++) if (mask & (1 << i)) list.push(refs[i])
    if (overflow) for (const i of [...overflow].sort((x, y) => x - y)) list.push(refs[i])
    else this.listsByMask.set(mask, list)
    return list
  }

  private flowAt(f: number): Flow {
    const k = this.keys
    const base = f * KEY_WORDS
    const meta = k[base]
    const family = (meta & 7) as 4 | 6
    const protoNumber = ((meta >>> 3) & 0x1ff) - 1
    const hasPorts = (meta & (1 << 12)) !== 0
    const a = formatAddress(family, k[base + 1], k[base + 2], k[base + 3], k[base + 4])
    const b = formatAddress(family, k[base + 5], k[base + 6], k[base + 7], k[base + 8])
    const ap = k[base + 9] >>> 16
    const bp = k[base + 9] & 0xffff
    const aIsSrc = this.srcIsA[f] === 1
    const s = f * STATS
    const st = this.stats
    const srcPackets = st[s + ST_SRC_PKTS]
    const dstPackets = st[s + ST_DST_PKTS]
    const srcBytes = st[s + ST_SRC_BYTES]
    const dstBytes = st[s + ST_DST_BYTES]
    const isTcp = protoNumber === IPPROTO.tcp
    const interfaces = this.interfaceList(f)
    return {
      proto: protoNumber < 0 ? 'unknown' : protoName(protoNumber),
      protoNumber,
      family,
      src: aIsSrc ? a : b,
      sport: hasPorts ? (aIsSrc ? ap : bp) : null,
      dst: aIsSrc ? b : a,
      dport: hasPorts ? (aIsSrc ? bp : ap) : null,
      packets: srcPackets + dstPackets,
      bytes: srcBytes + dstBytes,
      srcPackets,
      srcBytes,
      dstPackets,
      dstBytes,
      firstNs: BigInt(st[s + ST_FIRST_SEC]) * 1_000_000_000n + BigInt(st[s + ST_FIRST_NSEC]),
      lastNs: BigInt(st[s + ST_LAST_SEC]) * 1_000_000_000n + BigInt(st[s + ST_LAST_NSEC]),
      srcTcpFlags: isTcp ? Math.max(0, this.srcFlags[f]) : null,
      dstTcpFlags: isTcp ? Math.max(0, this.dstFlags[f]) : null,
      icmpErrors: st[s + ST_ICMP_ERRORS],
      interfaces,
      inner: this.innerOnly[f] === 1,
    }
  }

  /**
   * Removes and returns the flows that are over: a TCP flow whose both sides sent FIN, or either side RST,
   * and that has been quiet for `closedQuietSec`; any flow quiet for `idleSec`. Times are capture time
   * (`nowSec`, the latest packet's second). A later packet of the same tuple starts a new flow, as in
   * NetFlow/IPFIX exporters. Used to stream NDJSON with a flow table that stays small.
   */
  evict(nowSec: number, closedQuietSec: number, idleSec: number): Flow[] {
    const out: Flow[] = []
    const keep: number[] = []
    for (let f = 0; f < this.count; f++) {
      const quiet = nowSec - this.stats[f * STATS + ST_LAST_SEC]
      const sf = this.srcFlags[f]
      const df = this.dstFlags[f]
      const closed = (sf > 0 && df > 0 && (sf & 1) !== 0 && (df & 1) !== 0) || (sf > 0 && (sf & 4) !== 0) || (df > 0 && (df & 4) !== 0)
      if ((closed && quiet >= closedQuietSec) || quiet >= idleSec) out.push(this.flowAt(f))
      else keep.push(f)
    }
    if (out.length > 0) this.compact(keep)
    return out
  }

  /** Keeps only the given flows (ascending indexes), renumbered from 0. */
  private compact(keep: number[]): void {
    const overflow = new Map(this.ifaceOverflow)
    this.ifaceOverflow.clear()
    keep.forEach((from, to) => {
      if (from !== to) {
        this.keys.copyWithin(to * KEY_WORDS, from * KEY_WORDS, (from + 1) * KEY_WORDS)
        this.stats.copyWithin(to * STATS, from * STATS, (from + 1) * STATS)
        this.hashes[to] = this.hashes[from]
        this.srcIsA[to] = this.srcIsA[from]
        this.srcFlags[to] = this.srcFlags[from]
        this.dstFlags[to] = this.dstFlags[from]
        this.innerOnly[to] = this.innerOnly[from]
        this.ifaceMask[to] = this.ifaceMask[from]
      }
      const o = overflow.get(from)
      if (o) this.ifaceOverflow.set(to, o)
    })
    const n = keep.length
    this.keys.fill(0, n * KEY_WORDS, this.count * KEY_WORDS)
    this.stats.fill(0, n * STATS, this.count * STATS)
    this.ifaceMask.fill(0, n, this.count)
    this.count = n
    this.slots.fill(0)
    for (let f = 0; f < n; f++) {
      let slot = this.hashes[f] & this.slotMask
      while (this.slots[slot] !== 0) slot = (slot + 1) & this.slotMask
      this.slots[slot] = f + 1
    }
  }
}

function countBits(v: number): number {
  let n = 0
  for (let x = v >>> 0; x; x &= x - 1) n++
  return n
}
