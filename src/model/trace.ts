// A trace is data: the steps the kernel takes for one packet, each holding the rule or route that decided it.
// explain, analyze and report all render the same Trace (after Batfish's Trace/Hop/Step).
import type { IpAddress } from './ip.js'
import type { Flow } from './flow.js'
import type { Hook, Rule, Chain } from './netfilter.js'
import type { Route, RoutingRule } from './routing.js'
import type { ComponentName } from './node-state.js'
import type { SourceRef } from './evidence.js'

/** What a NAT or mark step changed in the packet (Batfish's FlowDiff). */
export interface FlowDiff {
  readonly field: 'src' | 'dst' | 'sport' | 'dport' | 'mark' | 'ctmark'
  readonly before: string
  readonly after: string
}

interface StepBase {
  /** One line a person reads next to the evidence. */
  readonly summary: string
}

export type Step =
  /** A netfilter rule that matched (or a chain policy) and what it did. */
  | (StepBase & { readonly kind: 'rule'; readonly hook: Hook; readonly table: string; readonly chain: string; readonly tableOrigin: string; readonly rule: Rule; readonly action: 'jump' | 'goto' | 'return' | 'accept' | 'drop' | 'reject' | 'mark' | 'connmark' | 'passive'; readonly changes: readonly FlowDiff[] })
  /** A rule that translated an address (SNAT, DNAT, MASQUERADE, REDIRECT). */
  | (StepBase & { readonly kind: 'nat'; readonly hook: Hook; readonly table: string; readonly chain: string; readonly tableOrigin: string; readonly rule: Rule; readonly nat: 'snat' | 'dnat' | 'masquerade' | 'redirect'; readonly changes: readonly FlowDiff[] })
  /** A chain's policy decided (fell off the end of a base chain). */
  | (StepBase & { readonly kind: 'policy'; readonly hook: Hook; readonly table: string; readonly chain: Chain; readonly policy: 'accept' | 'drop' })
  /** An ip rule that matched. */
  | (StepBase & { readonly kind: 'policy-route'; readonly rule: RoutingRule; readonly outcome: 'lookup' | 'goto' | 'unreachable' | 'prohibit' | 'blackhole' | 'nop' | 'no-route' | 'suppressed' })
  /** The route chosen in a table. */
  | (StepBase & { readonly kind: 'route'; readonly table: string; readonly route: Route; readonly egress?: string; readonly gateway?: IpAddress })
  /** The nat table is skipped for a packet that is not the first of its connection, or conntrack reversed a NAT. */
  | (StepBase & { readonly kind: 'conntrack'; readonly changes: readonly FlowDiff[]; readonly ref?: SourceRef })
  /** Reverse-path filtering (rp_filter): the route back to the source must leave through the arrival interface (strict) or exist (loose). */
  | (StepBase & { readonly kind: 'rp-filter'; readonly mode: 1 | 2; readonly iif: string; readonly passed: boolean; readonly reverseEgress?: string; readonly ref: SourceRef })
  /** The engine met something it does not model; the verdict becomes insufficient-info. */
  | (StepBase & { readonly kind: 'indeterminate'; readonly reason: string; readonly ref?: SourceRef })

export type StepKind = Step['kind']

export type Verdict =
  /** Leaves the node through `egressInterface`. */
  | 'forwarded'
  /** Delivered to a local address (the node itself, or a pod reached without leaving, INPUT). */
  | 'delivered'
  | 'dropped'
  | 'no-route'
  /** Something natlens does not model decided the outcome, or an input is missing. */
  | 'insufficient-info'

export interface Decision {
  readonly ref: SourceRef
  readonly owner: ComponentName
  readonly stepIndex: number
}

export interface Trace {
  readonly flow: Flow
  /** The packet as it leaves the node (or is delivered). */
  readonly finalFlow: Flow
  readonly verdict: Verdict
  readonly egressInterface: string | null
  /** Whether this packet is the first of its connection (the nat table runs only then). */
  readonly firstPacket: boolean
  readonly steps: readonly Step[]
  /** The rule that translated the source, or the one that exempted it; undefined when none was involved. */
  readonly decisive?: Decision
  /** Why nothing decided, when `decisive` is undefined (e.g. "no SNAT rule exists: EXTERNALSNAT=true"). */
  readonly undecidedReason?: string
  /** Probability of this trace among its siblings (kube-proxy endpoint choice); 1 when there was no choice. */
  readonly probability: number
  readonly warnings: readonly string[]
}

/** The result for one flow: the most likely path and every alternative. */
export interface Explanation {
  readonly flow: Flow
  /** The first branch; the one the top-level verdict describes. */
  readonly trace: Trace
  /** All alternatives when a rule is probabilistic; length 1 otherwise. */
  readonly branches: readonly Trace[]
  readonly warnings: readonly string[]
}

export function assertNever(x: never): never {
  throw new Error(`unhandled case: ${JSON.stringify(x)}`)
}
