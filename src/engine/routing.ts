// The routing decision as fib_lookup makes it: ip rules in priority order, longest-prefix match in the table a
// rule names, route types, throw and suppress_prefixlength falling through to the next rule.
import { cidrContains, type Family, type IpAddress } from '../model/ip.js'
import type { Route, RoutingRule } from '../model/routing.js'
import type { NodeState } from '../model/node-state.js'
import type { Step } from '../model/trace.js'
import { PolicyRouteStep, RouteStep } from '../model/steps.js'
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

interface RouteTableIndex {
  /** Host routes (/32, /128) by address; among several for one address, the first in longest-prefix order. */
  readonly hosts: Map<bigint, Route>
  /** The other routes, longest prefix first, then lowest metric. */
  readonly others: readonly Route[]
}

export class Router {
  private readonly rules: Record<Family, RoutingRule[]>
  /** Route tables per family by name: host routes (a node has one per pod) by address, the rest longest prefix first. */
  private readonly tables: Record<Family, Map<string, RouteTableIndex>> = { 4: new Map(), 6: new Map() }
  readonly rulesKnown: Record<Family, boolean>
  readonly routesKnown: Record<Family, boolean>

  constructor(state: NodeState) {
    const by = (f: Family) => state.routingRules.filter((r) => r.family === f).sort((a, b) => a.priority - b.priority)
    const r4 = by(4)
    const r6 = by(6)
    this.rulesKnown = { 4: r4.length > 0, 6: r6.length > 0 }
    this.rules = { 4: r4.length ? r4 : defaultRules(4), 6: r6.length ? r6 : defaultRules(6) }
    const lists: Record<Family, Map<string, Route[]>> = { 4: new Map(), 6: new Map() }
    for (const route of state.routes) {
      let list = lists[route.family].get(route.table)
      if (!list) lists[route.family].set(route.table, (list = []))
      list.push(route)
    }
    for (const family of [4, 6] as const) {
      for (const [name, list] of lists[family]) {
        // Longest prefix first; among equal prefixes the lowest metric (then the listing order) wins.
        list.sort((a, b) => b.dst.prefix - a.dst.prefix || a.metric - b.metric)
        const hosts = new Map<bigint, Route>()
        for (const r of list) if (r.dst.prefix === HOST[family] && !hosts.has(r.dst.network)) hosts.set(r.dst.network, r)
        this.tables[family].set(name, { hosts, others: list.filter((r) => r.dst.prefix !== HOST[family]) })
      }
    }
    this.routesKnown = { 4: state.routes.some((r) => r.family === 4), 6: state.routes.some((r) => r.family === 6) }
  }

  /** Longest-prefix match in one table. */
  lookupTable(family: Family, table: string, dst: IpAddress): Route | undefined {
    const t = this.tables[family].get(table)
    if (!t) return undefined
    const host = t.hosts.get(dst.value)
    if (host) return host
    for (const r of t.others) if (cidrContains(r.dst, dst)) return r
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
          steps.push(new PolicyRouteStep(rule, 'nop'))
          continue
        case 'goto': {
          steps.push(new PolicyRouteStep(rule, 'goto'))
          const next = rules.findIndex((r) => r.priority >= a.priority)
          if (next < 0) return NO_ROUTE
          i = next
          continue
        }
        case 'unreachable':
        case 'prohibit':
        case 'blackhole':
          steps.push(new PolicyRouteStep(rule, a.kind))
          return { kind: 'blocked', how: a.kind, ref: rule.ref }
        case 'lookup': {
          const route = this.lookupTable(q.family, a.table, q.dst)
          if (!route) {
            steps.push(new PolicyRouteStep(rule, 'no-route', { dst: q.dst }))
            continue
          }
          if (rule.suppressPrefixlength !== undefined && route.dst.prefix <= rule.suppressPrefixlength) {
            steps.push(new PolicyRouteStep(rule, 'suppressed', { found: route }))
            continue
          }
          if (route.type === 'throw') {
            steps.push(new PolicyRouteStep(rule, 'lookup', { throwRoute: true }))
            steps.push(new RouteStep(a.table, route, undefined, undefined, 'throw'))
            continue
          }
          steps.push(new PolicyRouteStep(rule, 'lookup'))
          return this.resolve(route, a.table, steps)
        }
      }
    }
    return NO_ROUTE
  }

  private resolve(route: Route, table: string, steps: Step[]): RouteResult {
    switch (route.type) {
      case 'local':
        steps.push(new RouteStep(table, route, undefined, undefined))
        return { kind: 'local', route, table }
      case 'unreachable':
      case 'prohibit':
      case 'blackhole':
        steps.push(new RouteStep(table, route, undefined, undefined))
        return { kind: 'blocked', how: route.type, ref: route.ref }
      default: {
        // Multipath: the kernel hashes the flow onto one nexthop; natlens reports the first and names the others.
        const hop = route.nexthops?.[0]
        const dev = route.dev ?? hop?.dev
        const gateway = route.via ?? hop?.via
        if (route.type === 'broadcast' || route.type === 'multicast') {
          steps.push(new RouteStep(table, route, undefined, undefined))
          return { kind: 'local', route, table }
        }
        if (!dev) {
          steps.push(new RouteStep(table, route, undefined, undefined, 'no-device'))
          return NO_ROUTE
        }
        steps.push(new RouteStep(table, route, dev, gateway))
        return gateway ? { kind: 'unicast', route, dev, table, gateway } : { kind: 'unicast', route, dev, table }
      }
    }
  }
}

const NO_ROUTE: RouteResult = { kind: 'no-route' }
const HOST: Record<Family, number> = { 4: 32, 6: 128 }

function normaliseProto(p: string): string {
  const map: Record<string, string> = { '6': 'tcp', '17': 'udp', '1': 'icmp', '58': 'icmpv6', 'ipv6-icmp': 'icmpv6', '132': 'sctp' }
  return map[p] ?? p
}
