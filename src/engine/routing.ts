// The routing decision as fib_lookup makes it: ip rules in priority order, longest-prefix match in the table a
// rule names, route types, throw and suppress_prefixlength falling through to the next rule.
import { cidrContains, formatCidr, formatIp, type Family, type IpAddress } from '../model/ip.js'
import type { Route, RoutingRule } from '../model/routing.js'
import type { NodeState } from '../model/node-state.js'
import type { Step } from '../model/trace.js'
import type { SourceRef } from '../model/evidence.js'

export interface RouteQuery {
  readonly family: Family
  readonly src: IpAddress
  readonly dst: IpAddress
  /** Arrival interface; `lo` for locally generated packets (that is what `ip rule iif` sees for them). */
  readonly iif: string
  readonly mark: number
  readonly proto: string
  readonly sport: number | null
  readonly dport: number | null
}

export type RouteResult =
  | { readonly kind: 'unicast'; readonly route: Route; readonly dev: string; readonly gateway?: IpAddress; readonly table: string }
  | { readonly kind: 'local'; readonly route: Route; readonly table: string }
  | { readonly kind: 'blocked'; readonly how: 'unreachable' | 'prohibit' | 'blackhole'; readonly ref: SourceRef }
  | { readonly kind: 'no-route' }

const SYNTHETIC: SourceRef = { artifact: '(kernel default)', line: 0, text: '' }

/** The kernel's default rules, used when `ip rule` was not collected. */
function defaultRules(family: Family): RoutingRule[] {
  const mk = (priority: number, table: string): RoutingRule => ({
    family, priority, not: false, l3mdev: false, action: { kind: 'lookup', table },
    ref: { ...SYNTHETIC, text: `${priority}:\tfrom all lookup ${table}` },
  })
  return [mk(0, 'local'), mk(32766, 'main'), mk(32767, 'default')]
}

export class Router {
  private readonly rules: Record<Family, RoutingRule[]>
  private readonly tables = new Map<string, Route[]>()
  readonly rulesKnown: Record<Family, boolean>
  readonly routesKnown: Record<Family, boolean>

  constructor(state: NodeState) {
    const by = (f: Family) => state.routingRules.filter((r) => r.family === f).sort((a, b) => a.priority - b.priority)
    const r4 = by(4)
    const r6 = by(6)
    this.rulesKnown = { 4: r4.length > 0, 6: r6.length > 0 }
    this.rules = { 4: r4.length ? r4 : defaultRules(4), 6: r6.length ? r6 : defaultRules(6) }
    for (const route of state.routes) {
      const key = `${route.family}/${route.table}`
      let list = this.tables.get(key)
      if (!list) this.tables.set(key, (list = []))
      list.push(route)
    }
    // Longest prefix first; among equal prefixes the lowest metric (then the listing order) wins.
    for (const list of this.tables.values()) list.sort((a, b) => b.dst.prefix - a.dst.prefix || a.metric - b.metric)
    this.routesKnown = { 4: state.routes.some((r) => r.family === 4), 6: state.routes.some((r) => r.family === 6) }
  }

  /** Longest-prefix match in one table. */
  lookupTable(family: Family, table: string, dst: IpAddress): Route | undefined {
    const list = this.tables.get(`${family}/${table}`)
    if (!list) return undefined
    for (const r of list) if (cidrContains(r.dst, dst)) return r
    return undefined
  }

  ruleMatches(rule: RoutingRule, q: RouteQuery): boolean {
    let m = true
    if (rule.from && !cidrContains(rule.from, q.src)) m = false
    else if (rule.to && !cidrContains(rule.to, q.dst)) m = false
    else if (rule.iif !== undefined && rule.iif !== q.iif) m = false
    // oif rules match only sockets bound to a device (or VRF); the packets natlens explains are not.
    else if (rule.oif !== undefined) m = false
    else if (rule.fwmark && ((q.mark & rule.fwmark.mask) >>> 0) !== rule.fwmark.value) m = false
    else if (rule.ipproto !== undefined && normaliseProto(rule.ipproto) !== normaliseProto(q.proto)) m = false
    else if (rule.sport && (q.sport === null || q.sport < rule.sport.from || q.sport > rule.sport.to)) m = false
    else if (rule.dport && (q.dport === null || q.dport < rule.dport.from || q.dport > rule.dport.to)) m = false
    // uid ranges match only locally generated packets of those users; l3mdev only inside a VRF.
    else if (rule.uidrange && q.iif !== 'lo') m = false
    else if (rule.l3mdev) m = false
    return rule.not ? !m : m
  }

  /** Runs the policy routing decision, appending one step per rule that matched and the route chosen. */
  decide(q: RouteQuery, steps: Step[]): RouteResult {
    const rules = this.rules[q.family]
    let i = 0
    while (i < rules.length) {
      const rule = rules[i]!
      i++
      if (!this.ruleMatches(rule, q)) continue
      const a = rule.action
      switch (a.kind) {
        case 'nop':
          steps.push({ kind: 'policy-route', rule, outcome: 'nop', summary: `ip rule ${rule.priority}: nop` })
          continue
        case 'goto': {
          steps.push({ kind: 'policy-route', rule, outcome: 'goto', summary: `ip rule ${rule.priority}: goto ${a.priority}` })
          const next = rules.findIndex((r) => r.priority >= a.priority)
          if (next < 0) return { kind: 'no-route' }
          i = next
          continue
        }
        case 'unreachable':
        case 'prohibit':
        case 'blackhole':
          steps.push({ kind: 'policy-route', rule, outcome: a.kind, summary: `ip rule ${rule.priority}: ${a.kind}` })
          return { kind: 'blocked', how: a.kind, ref: rule.ref }
        case 'lookup': {
          const route = this.lookupTable(q.family, a.table, q.dst)
          if (!route) {
            steps.push({ kind: 'policy-route', rule, outcome: 'no-route', summary: `ip rule ${rule.priority}: lookup ${a.table}: no route to ${formatIp(q.dst)}, next rule` })
            continue
          }
          if (rule.suppressPrefixlength !== undefined && route.dst.prefix <= rule.suppressPrefixlength) {
            steps.push({ kind: 'policy-route', rule, outcome: 'suppressed', summary: `ip rule ${rule.priority}: lookup ${a.table} found ${formatCidr(route.dst)}, suppressed (prefix ≤ ${rule.suppressPrefixlength}), next rule` })
            continue
          }
          if (route.type === 'throw') {
            steps.push({ kind: 'policy-route', rule, outcome: 'lookup', summary: `ip rule ${rule.priority}: lookup ${a.table}` })
            steps.push({ kind: 'route', table: a.table, route, summary: `table ${a.table}: throw ${formatCidr(route.dst)}, next rule` })
            continue
          }
          steps.push({ kind: 'policy-route', rule, outcome: 'lookup', summary: `ip rule ${rule.priority}: ${describeRule(rule)} → table ${a.table}` })
          return this.resolve(route, a.table, steps)
        }
      }
    }
    return { kind: 'no-route' }
  }

  private resolve(route: Route, table: string, steps: Step[]): RouteResult {
    switch (route.type) {
      case 'local':
        steps.push({ kind: 'route', table, route, summary: `table ${table}: local ${formatCidr(route.dst)}: delivered to this node` })
        return { kind: 'local', route, table }
      case 'unreachable':
      case 'prohibit':
      case 'blackhole':
        steps.push({ kind: 'route', table, route, summary: `table ${table}: ${route.type} ${formatCidr(route.dst)}` })
        return { kind: 'blocked', how: route.type, ref: route.ref }
      default: {
        // Multipath: the kernel hashes the flow onto one nexthop; natlens reports the first and names the others.
        const hop = route.nexthops?.[0]
        const dev = route.dev ?? hop?.dev
        const gateway = route.via ?? hop?.via
        if (route.type === 'broadcast' || route.type === 'multicast') {
          steps.push({ kind: 'route', table, route, summary: `table ${table}: ${route.type} ${formatCidr(route.dst)} dev ${dev ?? '?'}` })
          return { kind: 'local', route, table }
        }
        if (!dev) {
          steps.push({ kind: 'route', table, route, summary: `table ${table}: ${formatCidr(route.dst)} has no device` })
          return { kind: 'no-route' }
        }
        const via = gateway ? ` via ${formatIp(gateway)}` : ''
        steps.push({ kind: 'route', table, route, egress: dev, ...(gateway ? { gateway } : {}), summary: `table ${table}: ${formatCidr(route.dst)}${via} dev ${dev}` })
        return { kind: 'unicast', route, dev, table, ...(gateway ? { gateway } : {}) }
      }
    }
  }
}

function normaliseProto(p: string): string {
  const map: Record<string, string> = { '6': 'tcp', '17': 'udp', '1': 'icmp', '58': 'icmpv6', 'ipv6-icmp': 'icmpv6', '132': 'sctp' }
  return map[p] ?? p
}

export function describeRule(rule: RoutingRule): string {
  const parts: string[] = []
  if (rule.not) parts.push('not')
  parts.push(rule.from ? `from ${formatCidr(rule.from)}` : 'from all')
  if (rule.to) parts.push(`to ${formatCidr(rule.to)}`)
  if (rule.iif) parts.push(`iif ${rule.iif}`)
  if (rule.fwmark) parts.push(`fwmark 0x${rule.fwmark.value.toString(16)}/0x${rule.fwmark.mask.toString(16)}`)
  return parts.join(' ')
}
