// Policy routing (ip rule) and route tables (ip route), IPv4 and IPv6.
import type { Cidr, Family, IpAddress } from './ip.js'
import type { SourceRef } from './evidence.js'

export type RuleAction =
  | { readonly kind: 'lookup'; readonly table: string }
  | { readonly kind: 'goto'; readonly priority: number }
  | { readonly kind: 'unreachable' | 'prohibit' | 'blackhole' | 'nop' }

/** One `ip rule`. Table names are normalised: `main`, `local`, `default`, or the number as text. */
export interface RoutingRule {
  readonly family: Family
  readonly priority: number
  /** `not from … lookup …`: every selector is inverted as a whole. */
  readonly not: boolean
  /** Absent means `from all`. */
  readonly from?: Cidr
  readonly to?: Cidr
  readonly iif?: string
  readonly oif?: string
  /** `iif eth9 [detached]`: the interface does not exist now, so the selector matches nothing until it appears. */
  readonly iifDetached?: boolean
  readonly oifDetached?: boolean
  readonly fwmark?: { readonly value: number; readonly mask: number }
  readonly tos?: number
  readonly ipproto?: string
  readonly sport?: { readonly from: number; readonly to: number }
  readonly dport?: { readonly from: number; readonly to: number }
  readonly uidrange?: { readonly from: number; readonly to: number }
  readonly l3mdev: boolean
  readonly action: RuleAction
  /** `suppress_prefixlength N`: a route found with a prefix of N bits or fewer is ignored. */
  readonly suppressPrefixlength?: number
  readonly suppressIfgroup?: string
  readonly proto?: string
  readonly ref: SourceRef
}

export type RouteType =
  | 'unicast' | 'local' | 'broadcast' | 'anycast' | 'multicast' | 'unreachable' | 'blackhole' | 'prohibit' | 'throw' | 'nat'

export interface Nexthop {
  readonly via?: IpAddress
  readonly dev?: string
  readonly weight: number
  readonly onlink: boolean
  readonly dead: boolean
  readonly linkdown: boolean
}

export interface Route {
  readonly family: Family
  readonly table: string
  readonly type: RouteType
  /** `default` is 0.0.0.0/0 or ::/0. */
  readonly dst: Cidr
  readonly dev?: string
  readonly via?: IpAddress
  readonly src?: IpAddress
  readonly scope?: string
  readonly proto?: string
  readonly metric: number
  readonly onlink: boolean
  readonly linkdown: boolean
  readonly nexthops?: readonly Nexthop[]
  readonly tos?: number
  readonly ref: SourceRef
}

export interface RouteTable {
  readonly name: string
  readonly routes: Route[]
}

/** Numeric ids of the tables ip(8) names (rt_tables). */
export const TABLE_IDS: Record<string, number> = { unspec: 0, default: 253, main: 254, local: 255 }

export function normaliseTableName(t: string): string {
  if (/^\d+$/.test(t)) {
    const n = Number(t)
    for (const [name, id] of Object.entries(TABLE_IDS)) if (id === n && name !== 'unspec') return name
    return String(n)
  }
  return t
}
