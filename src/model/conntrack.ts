import type { IpAddress } from './ip.js'
import type { SourceRef } from './evidence.js'

export interface ConntrackTuple {
  readonly src: IpAddress
  readonly dst: IpAddress
  /** null for protocols without ports. */
  readonly sport: number | null
  readonly dport: number | null
  /** ICMP id, type and code when the protocol is ICMP. */
  readonly icmp?: { readonly type: number; readonly code: number; readonly id: number }
}

export interface ConntrackEntry {
  readonly family: 4 | 6
  /** `tcp`, `udp`, `icmp`, `icmpv6`, `sctp`, or the number as text. */
  readonly proto: string
  readonly timeout?: number
  /** TCP state (`ESTABLISHED`, `SYN_SENT`, …) */
  readonly state?: string
  readonly orig: ConntrackTuple
  readonly reply: ConntrackTuple
  readonly flags: readonly string[]
  readonly mark?: number
  readonly zone?: number
  readonly use?: number
  readonly counters?: { readonly origPackets: number; readonly origBytes: number; readonly replyPackets: number; readonly replyBytes: number }
  readonly ref: SourceRef
}

/** One `conntrack -S` line: `cpu=0 found=0 invalid=12 insert=0 insert_failed=0 drop=0 early_drop=0 …`. */
export interface ConntrackCpuStats {
  readonly cpu: number
  readonly counters: Readonly<Record<string, number>>
  readonly ref: SourceRef
}
