// The netfilter part of a node: iptables tables (legacy or nft backend) and native nft tables in one shape,
// so the engine walks every base chain on a hook in the kernel's priority order whatever wrote it.
import type { Cidr, Family, IpAddress } from './ip.js'
import type { SourceRef } from './evidence.js'

export type Hook = 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting'

/** Where the table came from. `iptables` when the dump does not say which backend wrote it. */
export type TableOrigin = 'iptables-legacy' | 'iptables-nft' | 'iptables' | 'nft'

/** nft families; iptables tables are `ip` (iptables) or `ip6` (ip6tables). */
export type TableFamily = 'ip' | 'ip6' | 'inet' | 'arp' | 'bridge' | 'netdev'

export interface Counters {
  readonly packets: bigint
  readonly bytes: bigint
}

/** An inclusive range of ports. */
export interface PortRange {
  readonly from: number
  readonly to: number
}

/** `--to-source 10.0.3.45`, `--to-destination 10.0.20.15:5432`, `--to-source 10.0.0.1-10.0.0.4:1024-2048`. */
export interface NatRange {
  readonly minAddr?: IpAddress
  readonly maxAddr?: IpAddress
  readonly ports?: PortRange
}

export type AddrType =
  | 'UNSPEC' | 'UNICAST' | 'LOCAL' | 'BROADCAST' | 'ANYCAST' | 'MULTICAST' | 'BLACKHOLE' | 'UNREACHABLE' | 'PROHIBIT'
  | 'THROW' | 'NAT' | 'XRESOLVE'

export type CtState = 'NEW' | 'ESTABLISHED' | 'RELATED' | 'INVALID' | 'UNTRACKED' | 'SNAT' | 'DNAT'

/**
 * One condition of a rule. Every variant has `negated` where iptables allows `!`.
 * `opaque` is a match natlens does not model: the engine answers "indeterminate" when it has to evaluate one.
 */
export type Match =
  | { readonly kind: 'src' | 'dst'; readonly negated: boolean; readonly cidr: Cidr }
  /** Address ranges (`-m iprange --src-range a-b`). */
  | { readonly kind: 'src-range' | 'dst-range'; readonly negated: boolean; readonly from: IpAddress; readonly to: IpAddress }
  /** `-i eni+` is `{name: 'eni', wildcard: true}`; nft `iifname "eni*"` the same. */
  | { readonly kind: 'in-iface' | 'out-iface'; readonly negated: boolean; readonly name: string; readonly wildcard: boolean }
  /** `-p tcp`; `protocol` is the lower-case name or the number as text (`all` matches everything). */
  | { readonly kind: 'protocol'; readonly negated: boolean; readonly protocol: string }
  /** `--sport`/`--dport` of -m tcp/udp/sctp, `-m multiport --dports/--sports/--ports`. */
  | { readonly kind: 'port'; readonly which: 'src' | 'dst' | 'either'; readonly negated: boolean; readonly ranges: readonly PortRange[] }
  | { readonly kind: 'addrtype'; readonly which: 'src' | 'dst'; readonly negated: boolean; readonly types: readonly AddrType[]; readonly limitIfaceIn?: boolean; readonly limitIfaceOut?: boolean }
  /** `-m mark --mark v/m`, nft `meta mark & m == v`. */
  | { readonly kind: 'mark'; readonly negated: boolean; readonly value: number; readonly mask: number }
  | { readonly kind: 'connmark'; readonly negated: boolean; readonly value: number; readonly mask: number }
  /** `-m conntrack --ctstate`, `-m state --state`, nft `ct state`. */
  | { readonly kind: 'ctstate'; readonly negated: boolean; readonly states: readonly CtState[] }
  /** `-m conntrack --ctorigsrc/--ctorigdst/--ctreplsrc/--ctrepldst`. */
  | { readonly kind: 'ctaddr'; readonly which: 'origsrc' | 'origdst' | 'replsrc' | 'repldst'; readonly negated: boolean; readonly cidr: Cidr }
  /** `-m conntrack --ctorigsrcport/--ctorigdstport/...` */
  | { readonly kind: 'ctport'; readonly which: 'origsrc' | 'origdst' | 'replsrc' | 'repldst'; readonly negated: boolean; readonly ranges: readonly PortRange[] }
  /** `-m conntrack --ctstatus`, `--ctdir` and other conntrack details the engine does not decide on. */
  | { readonly kind: 'ctstatus'; readonly negated: boolean; readonly text: string }
  /** kube-proxy's endpoint choice: `-m statistic --mode random --probability p`, nft `numgen random mod n`. */
  | { readonly kind: 'statistic-random'; readonly negated: boolean; readonly probability: number }
  | { readonly kind: 'statistic-nth'; readonly negated: boolean; readonly every: number; readonly packet: number }
  /** Kept for display and component detection; always matches. */
  | { readonly kind: 'comment'; readonly text: string }
  /** `-m set --match-set NAME src,dst`: ipset membership is not in the dump; the engine treats it as unknown. */
  | { readonly kind: 'ipset'; readonly negated: boolean; readonly set: string; readonly flags: string }
  /** `-m recent`: state the dump does not hold. `--rcheck`/`--update` behave as "no earlier packet" (no match). */
  | { readonly kind: 'recent'; readonly negated: boolean; readonly name: string; readonly mode: 'set' | 'rcheck' | 'update' | 'remove'; readonly text: string }
  /** `-m icmp --icmp-type`, `-m icmp6 --icmpv6-type`. `type` is the name or number as written. */
  | { readonly kind: 'icmp-type'; readonly negated: boolean; readonly type: string }
  /** `-m tcp --tcp-flags mask comp`, `--syn`. */
  | { readonly kind: 'tcp-flags'; readonly negated: boolean; readonly mask: readonly string[]; readonly comp: readonly string[] }
  /** `-f` / `! -f`. */
  | { readonly kind: 'fragment'; readonly negated: boolean }
  /**
   * nft set membership: `ip daddr @cluster-ips`, `ip daddr . meta l4proto . th dport @svc`, `ip saddr != { a, b }`.
   * `keys` are the nft selectors as written (`ip daddr`, `meta l4proto`, `th dport`); the elements are in the table's
   * `sets` under `set` (anonymous sets are stored there too, under a name with spaces that nft never uses).
   */
  | { readonly kind: 'nft-set'; readonly negated: boolean; readonly keys: readonly string[]; readonly set: string }
  /** Matches whose outcome depends on things a node dump does not hold (owner, socket, mac, physdev, …). */
  | { readonly kind: 'opaque'; readonly negated: boolean; readonly module: string; readonly text: string }

export type Target =
  /** `-j CHAIN` (jump, returns) or `-g CHAIN` (goto, does not return to this chain). */
  | { readonly kind: 'jump'; readonly chain: string; readonly goto: boolean }
  | { readonly kind: 'accept' }
  | { readonly kind: 'drop' }
  | { readonly kind: 'return' }
  | { readonly kind: 'reject'; readonly with?: string }
  | { readonly kind: 'snat'; readonly to: readonly NatRange[]; readonly random: boolean; readonly randomFully: boolean; readonly persistent: boolean }
  | { readonly kind: 'dnat'; readonly to: readonly NatRange[]; readonly random: boolean; readonly persistent: boolean }
  | { readonly kind: 'masquerade'; readonly ports?: PortRange; readonly random: boolean; readonly randomFully: boolean }
  | { readonly kind: 'redirect'; readonly ports?: PortRange; readonly random: boolean }
  /**
   * Packet mark: `mark = (mark & ~mask) ^ value`, the kernel's xt_MARK. iptables `--set-xmark v/m` is stored as is;
   * `--set-mark v/m` as v/(m|v) (libxt_MARK does the same), `--or-mark v` as v/v, `--and-mark v` as 0/~v, `--xor-mark v` as v/0.
   */
  | { readonly kind: 'mark'; readonly value: number; readonly mask: number }
  /** Connection mark: `ctmark = (ctmark & ~mask) ^ value`. */
  | { readonly kind: 'connmark-set'; readonly value: number; readonly mask: number }
  /** `--save-mark`: `ctmark = (ctmark & ~ctmask) ^ (mark & nfmask)`. */
  | { readonly kind: 'connmark-save'; readonly nfmask: number; readonly ctmask: number }
  /** `--restore-mark`: `mark = (mark & ~nfmask) ^ (ctmark & ctmask)`. */
  | { readonly kind: 'connmark-restore'; readonly nfmask: number; readonly ctmask: number }
  /** nft `meta mark set ct mark & m` (a whole new mark, not a masked restore). */
  | { readonly kind: 'mark-from-ct'; readonly and: number; readonly or: number; readonly xor: number }
  /** nft `ct mark set ct mark | v` and similar expressions over the connection mark itself. */
  | { readonly kind: 'ctmark-expr'; readonly and: number; readonly or: number; readonly xor: number }
  /** LOG, NFLOG, TRACE, NOTRACK, CT, counters, AUDIT, … : no effect on the verdict or the addresses. */
  | { readonly kind: 'passive'; readonly name: string }
  /** A rule with no target only counts. */
  | { readonly kind: 'none' }
  /** nft verdict maps: `ip daddr . meta l4proto . th dport vmap @service-ips`; resolved by the engine through `sets`. */
  | { readonly kind: 'vmap'; readonly keys: readonly string[]; readonly map: string }
  /** nft `numgen random mod N vmap { 0 : goto a, 1 : goto b }`: kube-proxy's endpoint choice. */
  | { readonly kind: 'numgen-vmap'; readonly modulus: number; readonly choices: readonly { readonly index: number; readonly chain: string; readonly goto: boolean }[] }
  /** A target natlens does not model. */
  | { readonly kind: 'opaque'; readonly name: string; readonly text: string }

export interface Rule {
  readonly table: string
  readonly chain: string
  /** 1-based position in its chain. */
  readonly index: number
  readonly matches: readonly Match[]
  readonly target: Target
  readonly counters?: Counters
  /** The first comment match's text, for quick display. */
  readonly comment?: string
  readonly ref: SourceRef
}

export interface Chain {
  readonly name: string
  /** Set for base chains: iptables built-in chains, nft chains with `type … hook … priority …`. */
  readonly hook?: Hook
  readonly priority?: number
  readonly type?: 'filter' | 'nat' | 'route'
  readonly policy?: 'accept' | 'drop'
  readonly counters?: Counters
  readonly rules: Rule[]
  readonly ref: SourceRef
}

/** An nft set or map (kube-proxy nftables mode keeps its service lookups in them). */
export interface NftSet {
  readonly name: string
  readonly kind: 'set' | 'map'
  /** `ipv4_addr . inet_proto . inet_service` */
  readonly keyType: string
  readonly dataType?: string
  /** Elements as written: `10.96.0.10 . tcp . 53 : goto service-XYZ`, split into key parts and value. */
  readonly elements: readonly { readonly key: readonly string[]; readonly value?: string; readonly ref: SourceRef }[]
  /** An anonymous set or map written inline in a rule (`{ 53, 5353 }`, `vmap { 0 : goto a }`). */
  readonly anonymous?: boolean
  /** `flags interval,timeout,dynamic` as written. */
  readonly flags?: readonly string[]
  readonly ref: SourceRef
}

export interface Table {
  readonly name: string
  readonly family: TableFamily
  readonly origin: TableOrigin
  readonly chains: Map<string, Chain>
  readonly sets: Map<string, NftSet>
  readonly ref: SourceRef
}

/** The kernel's priorities for the iptables tables (include/uapi/linux/netfilter_ipv4.h). */
export const IPTABLES_PRIORITY: Record<string, Partial<Record<Hook, number>>> = {
  raw: { prerouting: -300, output: -300 },
  mangle: { prerouting: -150, input: -150, forward: -150, output: -150, postrouting: -150 },
  nat: { prerouting: -100, output: -100, input: 100, postrouting: 100 },
  filter: { input: 0, forward: 0, output: 0 },
  security: { input: 50, forward: 50, output: 50 },
}

export const BUILTIN_CHAIN_HOOK: Record<string, Hook> = {
  PREROUTING: 'prerouting',
  INPUT: 'input',
  FORWARD: 'forward',
  OUTPUT: 'output',
  POSTROUTING: 'postrouting',
}

/** nft's symbolic priorities (`priority dstnat`, `srcnat - 10`, …) for the ip/ip6/inet families. */
export const NFT_NAMED_PRIORITY: Record<string, number> = {
  raw: -300,
  mangle: -150,
  dstnat: -100,
  filter: 0,
  security: 50,
  srcnat: 100,
}

export function familyOfTable(family: TableFamily): Family | undefined {
  return family === 'ip' ? 4 : family === 'ip6' ? 6 : undefined
}

export function tableAppliesTo(family: TableFamily, f: Family): boolean {
  return family === 'inet' || familyOfTable(family) === f
}
