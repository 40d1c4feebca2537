// The Steps the engine records, as classes whose one-line summary and FlowDiffs are worded only when a renderer
// reads them. The engine records numbers and references (a walk through the 160k-rule kube-proxy node records a
// dozen steps per endpoint branch); the words are built for the few traces a person or a JSON document shows.
import { formatCidr, formatIp, type IpAddress } from './ip.js'
import type { Chain, Hook, Rule } from './netfilter.js'
import type { Route, RoutingRule } from './routing.js'
import type { SourceRef } from './evidence.js'
import type { FlowDiff } from './trace.js'

const NO_CHANGES: readonly FlowDiff[] = Object.freeze([])

function hex(n: number): string {
  return `0x${(n >>> 0).toString(16)}`
}

/** What a matched rule did, with the values its summary needs. */
export type RuleEffect =
  | { readonly op: 'jump' | 'goto'; readonly chain: string }
  | { readonly op: 'return' | 'accept' | 'drop' }
  | { readonly op: 'reject'; readonly with?: string }
  /** MARK, CONNMARK --set-xmark/--save-mark/--restore-mark, nft `meta mark set ct mark`: the mark changed, and the connmark. */
  | { readonly op: 'mark' | 'connmark' | 'save' | 'restore' | 'mark-from-ct'; readonly before: number; readonly after: number; readonly ctmark: number }

/** Where a netfilter rule that matched stands: hook, table and chain, and the rule with its evidence. */
abstract class NetfilterStep {
  protected diffs?: readonly FlowDiff[]
  constructor(
    readonly hook: Hook,
    readonly table: string,
    readonly chain: string,
    readonly tableOrigin: string,
    readonly rule: Rule,
  ) {}
}

export class RuleStep extends NetfilterStep {
  readonly kind = 'rule' as const
  constructor(
    hook: Hook, table: string, chain: string, tableOrigin: string, rule: Rule,
    readonly action: 'jump' | 'goto' | 'return' | 'accept' | 'drop' | 'reject' | 'mark' | 'connmark' | 'passive',
    private readonly effect: RuleEffect,
  ) {
    super(hook, table, chain, tableOrigin, rule)
  }

  get changes(): readonly FlowDiff[] {
    if (this.diffs) return this.diffs
    const e = this.effect
    let d: readonly FlowDiff[] = NO_CHANGES
    if ('before' in e && e.before !== e.after) {
      const field = e.op === 'connmark' || e.op === 'save' ? 'ctmark' : 'mark'
      d = [{ field, before: hex(e.before), after: hex(e.after) }]
    }
    return (this.diffs = d)
  }

  get summary(): string {
    const where = `${this.table} ${this.chain}`
    const e = this.effect
    switch (e.op) {
      case 'jump': case 'goto': return `${where}: ${e.op} ${e.chain}`
      case 'return': return `${where}: RETURN`
      case 'accept': return `${where}: ACCEPT`
      case 'drop': return `${where}: DROP`
      case 'reject': return `${where}: REJECT${e.with ? ` (${e.with})` : ''}`
      case 'mark': return `${where}: mark ${hex(e.before)} → ${hex(e.after)}`
      case 'connmark': return `${where}: connmark ${hex(e.before)} → ${hex(e.after)}`
      case 'save': return `${where}: save mark to connmark ${hex(e.before)} → ${hex(e.after)}`
      case 'restore': return `${where}: restore connmark ${hex(e.ctmark)} to mark ${hex(e.before)} → ${hex(e.after)}`
      case 'mark-from-ct': return `${where}: mark set from connmark ${hex(e.ctmark)} → ${hex(e.after)}`
    }
  }
}

/** The packet's addresses and ports a NAT step read and wrote. */
export interface NatEffect {
  readonly addrBefore: IpAddress
  /** The new address; undefined for MASQUERADE on an interface without a known address, and for REDIRECT. */
  readonly addrAfter?: IpAddress
  readonly portBefore: number | null
  /** The new port (DNAT/REDIRECT) or the first of the SNAT range. */
  readonly portAfter?: number
  readonly portTo?: number
  readonly oif?: string
  readonly flags?: string
}

export class NatStep extends NetfilterStep {
  readonly kind = 'nat' as const
  constructor(
    hook: Hook, table: string, chain: string, tableOrigin: string, rule: Rule,
    readonly nat: 'snat' | 'dnat' | 'masquerade' | 'redirect',
    private readonly effect: NatEffect,
  ) {
    super(hook, table, chain, tableOrigin, rule)
  }

  get changes(): readonly FlowDiff[] {
    if (this.diffs) return this.diffs
    const e = this.effect
    const d: FlowDiff[] = []
    switch (this.nat) {
      case 'snat':
        d.push({ field: 'src', before: formatIp(e.addrBefore), after: formatIp(e.addrAfter!) })
        if (e.portAfter !== undefined && e.portBefore !== null) d.push({ field: 'sport', before: String(e.portBefore), after: `${e.portAfter}-${e.portTo}` })
        break
      case 'masquerade':
        d.push({ field: 'src', before: formatIp(e.addrBefore), after: e.addrAfter ? formatIp(e.addrAfter) : `(address of ${e.oif ?? '?'})` })
        break
      case 'dnat':
        if (e.addrAfter) d.push({ field: 'dst', before: formatIp(e.addrBefore), after: formatIp(e.addrAfter) })
        if (e.portAfter !== undefined && e.portBefore !== null) d.push({ field: 'dport', before: String(e.portBefore), after: String(e.portAfter) })
        break
      case 'redirect':
        if (e.portAfter !== undefined && e.portBefore !== null) d.push({ field: 'dport', before: String(e.portBefore), after: String(e.portAfter) })
        break
    }
    return (this.diffs = d)
  }

  /** The same step for a packet with another source port (a SNAT or MASQUERADE records the port it found). */
  withSourcePort(before: number | null, after: number | null): NatStep {
    if ((this.nat !== 'snat' && this.nat !== 'masquerade') || this.effect.portBefore !== before) return this
    return new NatStep(this.hook, this.table, this.chain, this.tableOrigin, this.rule, this.nat, { ...this.effect, portBefore: after })
  }

  /** Whether the step rewrote the source port (a SNAT to a port range). */
  get rewritesSourcePort(): boolean {
    return this.nat === 'snat' && this.effect.portAfter !== undefined
  }

  get summary(): string {
    const where = `${this.table} ${this.chain}`
    const e = this.effect
    switch (this.nat) {
      case 'snat': return `${where}: SNAT to ${formatIp(e.addrAfter!)}${e.flags ? ` (${e.flags})` : ''}`
      case 'masquerade': return e.addrAfter ? `${where}: MASQUERADE to ${formatIp(e.addrAfter)} (${e.oif})` : `${where}: MASQUERADE to the address of ${e.oif ?? '?'}`
      case 'dnat': return `${where}: DNAT to ${e.addrAfter ? formatIp(e.addrAfter) : ''}${e.portAfter !== undefined ? `:${e.portAfter}` : ''}`
      case 'redirect': return `${where}: REDIRECT to this node${e.portAfter !== undefined ? ` port ${e.portAfter}` : ''}`
    }
  }
}

export class PolicyStep {
  readonly kind = 'policy' as const
  constructor(readonly hook: Hook, readonly table: string, readonly chain: Chain, readonly policy: 'accept' | 'drop') {}
  get summary(): string {
    return `${this.table} ${this.chain.name}: policy ${this.policy.toUpperCase()}`
  }
}

export type PolicyRouteOutcome = 'lookup' | 'goto' | 'unreachable' | 'prohibit' | 'blackhole' | 'nop' | 'no-route' | 'suppressed'

export class PolicyRouteStep {
  readonly kind = 'policy-route' as const
  constructor(
    readonly rule: RoutingRule,
    readonly outcome: PolicyRouteOutcome,
    /** no-route: the destination looked up; suppressed: the route found; lookup: whether it found a throw route. */
    private readonly detail?: { readonly dst?: IpAddress; readonly found?: Route; readonly throwRoute?: boolean },
  ) {}

  get summary(): string {
    const r = this.rule
    const a = r.action
    const table = a.kind === 'lookup' ? a.table : ''
    switch (this.outcome) {
      case 'nop': return `ip rule ${r.priority}: nop`
      case 'goto': return `ip rule ${r.priority}: goto ${a.kind === 'goto' ? a.priority : '?'}`
      case 'unreachable': case 'prohibit': case 'blackhole': return `ip rule ${r.priority}: ${this.outcome}`
      case 'no-route': return `ip rule ${r.priority}: lookup ${table}: no route to ${formatIp(this.detail!.dst!)}, next rule`
      case 'suppressed': return `ip rule ${r.priority}: lookup ${table} found ${formatCidr(this.detail!.found!.dst)}, suppressed (prefix ≤ ${r.suppressPrefixlength}), next rule`
      case 'lookup': return this.detail?.throwRoute ? `ip rule ${r.priority}: lookup ${table}` : `ip rule ${r.priority}: ${describeRoutingRule(r)} → table ${table}`
    }
  }
}

/** `from 10.0.9.88/32 fwmark 0x80/0x80`: the selector of an ip rule, as a summary shows it. */
export function describeRoutingRule(rule: RoutingRule): string {
  const parts: string[] = []
  if (rule.not) parts.push('not')
  parts.push(rule.from ? `from ${formatCidr(rule.from)}` : 'from all')
  if (rule.to) parts.push(`to ${formatCidr(rule.to)}`)
  if (rule.iif) parts.push(`iif ${rule.iif}`)
  if (rule.fwmark) parts.push(`fwmark 0x${rule.fwmark.value.toString(16)}/0x${rule.fwmark.mask.toString(16)}`)
  return parts.join(' ')
}

export class RouteStep {
  readonly kind = 'route' as const
  constructor(
    readonly table: string,
    readonly route: Route,
    readonly egress: string | undefined,
    readonly gateway: IpAddress | undefined,
    /** How the route ended the lookup when it did not send the packet out `egress`. */
    private readonly note?: 'throw' | 'no-device',
  ) {}

  get summary(): string {
    const t = this.table
    const r = this.route
    if (this.note === 'throw') return `table ${t}: throw ${formatCidr(r.dst)}, next rule`
    if (this.note === 'no-device') return `table ${t}: ${formatCidr(r.dst)} has no device`
    switch (r.type) {
      case 'local': return `table ${t}: local ${formatCidr(r.dst)}: delivered to this node`
      case 'unreachable': case 'prohibit': case 'blackhole': return `table ${t}: ${r.type} ${formatCidr(r.dst)}`
      case 'broadcast': case 'multicast': return `table ${t}: ${r.type} ${formatCidr(r.dst)} dev ${r.dev ?? r.nexthops?.[0]?.dev ?? '?'}`
      default: return `table ${t}: ${formatCidr(r.dst)}${this.gateway ? ` via ${formatIp(this.gateway)}` : ''} dev ${this.egress}`
    }
  }
}

export class RpFilterStep {
  readonly kind = 'rp-filter' as const
  constructor(
    readonly mode: 1 | 2,
    readonly iif: string,
    readonly passed: boolean,
    readonly reverseEgress: string | undefined,
    readonly ref: SourceRef,
    /** The packet's source: the address the reverse lookup routes back to. */
    private readonly source: IpAddress,
  ) {}

  get summary(): string {
    const { mode, iif, reverseEgress: back } = this
    const to = formatIp(this.source)
    return this.passed
      ? `rp_filter=${mode} on ${iif}: the route back to ${to} ${mode === 1 ? `leaves through ${iif}` : 'exists'}`
      : `rp_filter=${mode} on ${iif}: the route back to ${to} ${back ? `leaves through ${back}, not ${iif}` : 'does not exist'}: dropped as a martian source`
  }
}
