// The node's packet path as a graph: interfaces → netfilter hooks → base chains (kernel priority order) → the chains
// and rules a flow went through → policy routing (ip rules → route tables → routes) → the interface it leaves by.
// A traced flow's path is marked on nodes and edges. The graph stays bounded on any node: kube-proxy's per-service
// and per-endpoint chains, the CNI's per-pod ip rules and the pods' host veths are collapsed into counted groups.
import { describeRoutingRule } from '../../model/steps.js'
import { formatCidr, formatIp, type Family } from '../../model/ip.js'
import { formatFlow } from '../../model/flow.js'
import { BUILTIN_CHAIN_HOOK, tableAppliesTo, type Chain, type Hook, type Rule, type Table } from '../../model/netfilter.js'
import type { RoutingRule, Route } from '../../model/routing.js'
import type { NodeState } from '../../model/node-state.js'
import type { Step, Trace } from '../../model/trace.js'
import { ownerOfChain } from '../../model/owner.js'
import { prepare } from '../../engine/explain.js'
import type { BaseChainRef } from '../../engine/netfilter.js'

export type Stage = 'ingress' | 'local' | 'prerouting' | 'routing' | 'input' | 'forward' | 'output' | 'postrouting' | 'egress'

export type GraphNodeKind =
  | 'interface' | 'interface-group' | 'local-process' | 'conntrack' | 'end'
  | 'hook' | 'base-chain' | 'chain' | 'chain-group' | 'rule'
  | 'routing' | 'ip-rule' | 'ip-rule-group' | 'route-table' | 'route'
  | 'more'

export interface GraphEvidence { readonly file: string; readonly line: number; readonly text: string }

export interface GraphNode {
  readonly id: string
  readonly kind: GraphNodeKind
  readonly stage: Stage
  readonly label: string
  /** A second line: priority, rule count, what a rule did. */
  readonly detail?: string
  readonly evidence?: GraphEvidence
  /** For groups and "more" nodes: how many chains, rules or interfaces the node stands for. */
  readonly count?: number
  onPath: boolean
}

export type GraphEdgeKind = 'flow' | 'jump' | 'goto' | 'next-rule' | 'lookup' | 'route'

export interface GraphEdge {
  readonly from: string
  readonly to: string
  readonly kind: GraphEdgeKind
  label?: string
  onPath: boolean
}

export interface PacketGraph {
  readonly family: Family
  /** The highlighted flow, as `tcp 10.0.9.88:40000 → 203.0.113.10:443`; null for the plain node graph. */
  readonly flow: string | null
  readonly verdict: string | null
  readonly nodes: GraphNode[]
  readonly edges: GraphEdge[]
  /** What was folded into groups or left out to keep the graph readable. */
  readonly collapsed: { readonly chains: number; readonly ipRules: number; readonly interfaces: number }
}

export interface GraphOptions {
  /** The flow to highlight (an explanation's first trace). */
  readonly trace?: Trace
  /** Address family of the plain node graph (default 4); a trace brings its own. */
  readonly family?: Family
  /** User chains followed from each base chain, off the traced path (default 2 jumps deep). */
  readonly depth?: number
  /** At most this many user chains and chain groups off the path (the rest become "… N more chains"). */
  readonly maxChains?: number
  /** At most this many ip rule nodes and groups off the path. */
  readonly maxIpRules?: number
}

const HOOKS: readonly Hook[] = ['prerouting', 'input', 'forward', 'output', 'postrouting']

/**
 * Chains that come one per Service, endpoint or pod: shown as one node with a count. kube-proxy iptables
 * (KUBE-SVC-/SEP-/FW-/XLB-/EXT-/SVL-), kube-proxy nftables (service-/endpoint-/external-/firewall-), the egress-cni
 * and portmap plugins (one chain per container).
 */
const FAN_OUT: readonly RegExp[] = [
  /^(KUBE-(?:SVC|SEP|FW|XLB|EXT|SVL)-)/,
  /^((?:service|endpoint|external|firewall)-)/,
  /^(CNI-E[46]-)/,
  /^(CNI-(?:DN|SN)-)/,
]

function fanOutGroup(chain: string): string | undefined {
  for (const re of FAN_OUT) {
    const m = re.exec(chain)
    if (m) return `${m[1]}*`
  }
  return undefined
}

const tableKey = (t: Table) => `${t.family}/${t.origin}/${t.name}`

/**
 * The table a netfilter step ran in. nft verdict maps run a synthetic copy of the rule (the map's verdict as its
 * target), which is not in the table's index: those are found by the step's table name and origin.
 */
function tableOfStep(state: NodeState, s: Extract<Step, { kind: 'rule' | 'nat' }>, family: Family): Table | undefined {
  return prepare(state).netfilter.tableOf(s.rule) ??
    state.tables.find((t) => t.name === s.table && t.origin === s.tableOrigin && tableAppliesTo(t.family, family) && t.chains.has(s.chain))
}

function evidenceOf(ref: { artifact: string; line: number; text: string }): GraphEvidence {
  return { file: ref.artifact, line: ref.line, text: ref.text.trim() }
}

function at(ref: { artifact: string; line: number }): string {
  return ref.line ? `${ref.artifact}:${ref.line}` : ref.artifact
}

/** The part of a step summary after `table chain: `, which the node's chain already says. */
function action(summary: string): string {
  const i = summary.indexOf(': ')
  return i >= 0 ? summary.slice(i + 2) : summary
}

function describeIpRule(r: RoutingRule): string {
  const a = r.action
  return `${describeRoutingRule(r)} ${a.kind === 'lookup' ? `lookup ${a.table}` : a.kind === 'goto' ? `goto ${a.priority}` : a.kind}`
}

/**
 * The CNI writes one `to <pod> lookup main` (512) and one `from <pod> lookup <eni table>` (1536) rule per pod:
 * rules alike but for the pod's address share a group.
 */
function ipRuleGroupKey(r: RoutingRule): string {
  const host = (c: { prefix: number; family: Family } | undefined) => c !== undefined && c.prefix === (c.family === 4 ? 32 : 128)
  const a = r.action
  return [r.priority, r.not, r.from ? (host(r.from) ? 'from-host' : formatCidr(r.from)) : '', r.to ? (host(r.to) ? 'to-host' : formatCidr(r.to)) : '',
    r.iif ?? '', r.fwmark ? `${r.fwmark.value}/${r.fwmark.mask}` : '', a.kind === 'lookup' ? `lookup ${a.table}` : a.kind === 'goto' ? `goto ${a.priority}` : a.kind].join('|')
}

function describeIpRuleGroup(r: RoutingRule): string {
  const host = (c: { prefix: number; family: Family } | undefined) => c !== undefined && c.prefix === (c.family === 4 ? 32 : 128)
  const parts: string[] = []
  if (r.not) parts.push('not')
  parts.push(r.from ? (host(r.from) ? 'from <pod>' : `from ${formatCidr(r.from)}`) : 'from all')
  if (r.to) parts.push(host(r.to) ? 'to <pod>' : `to ${formatCidr(r.to)}`)
  if (r.iif) parts.push(`iif ${r.iif}`)
  if (r.fwmark) parts.push(`fwmark 0x${r.fwmark.value.toString(16)}`)
  const a = r.action
  parts.push(a.kind === 'lookup' ? `lookup ${a.table}` : a.kind === 'goto' ? `goto ${a.priority}` : a.kind)
  return parts.join(' ')
}

function describeRoute(r: Route): string {
  const dev = r.dev ?? r.nexthops?.[0]?.dev
  const via = r.via ?? r.nexthops?.[0]?.via
  const dst = r.dst.prefix === 0 ? 'default' : formatCidr(r.dst)
  return `${r.type !== 'unicast' ? `${r.type} ` : ''}${dst}${via ? ` via ${formatIp(via)}` : ''}${dev ? ` dev ${dev}` : ''}`
}

class GraphBuilder {
  readonly nodes = new Map<string, GraphNode>()
  readonly edges = new Map<string, GraphEdge>()

  node(n: Omit<GraphNode, 'onPath'> & { onPath?: boolean }): string {
    const old = this.nodes.get(n.id)
    if (old) {
      if (n.onPath) old.onPath = true
      return n.id
    }
    this.nodes.set(n.id, { ...n, onPath: n.onPath ?? false })
    return n.id
  }

  edge(from: string, to: string, kind: GraphEdgeKind, label?: string, onPath = false): void {
    if (from === to) return
    const key = `${from}\u0000${to}`
    const old = this.edges.get(key)
    if (old) {
      // The first time the path takes an edge names it ("no route", "leaves as …"); a later pass does not rename it.
      if (label && !old.onPath) old.label = label
      if (onPath) old.onPath = true
      return
    }
    this.edges.set(key, { from, to, kind, ...(label ? { label } : {}), onPath })
  }

  /** Marks the path: both ends and the edge between them. */
  path(from: string, to: string, kind: GraphEdgeKind = 'flow', label?: string): void {
    this.edge(from, to, kind, label, true)
    this.nodes.get(from)!.onPath = true
    this.nodes.get(to)!.onPath = true
  }
}

export function buildPacketGraph(state: NodeState, options: GraphOptions = {}): PacketGraph {
  const trace = options.trace
  const family: Family = trace ? trace.flow.src.family : options.family ?? 4
  const depth = options.depth ?? 2
  const maxChains = options.maxChains ?? 40
  const maxIpRules = options.maxIpRules ?? 16
  const engine = prepare(state)
  const g = new GraphBuilder()
  const collapsed = { chains: 0, ipRules: 0, interfaces: 0 }

  // Chains on the traced path are always shown by name; everything else is subject to grouping and the caps.
  const pathChains = new Set<string>()
  const pathIpRules = new Set<RoutingRule>()
  if (trace) {
    for (const s of trace.steps) {
      if (s.kind === 'rule' || s.kind === 'nat') {
        const t = tableOfStep(state, s, family)
        if (t) {
          pathChains.add(`${tableKey(t)}/${s.chain}`)
          if (s.rule.target.kind === 'jump') pathChains.add(`${tableKey(t)}/${s.rule.target.chain}`)
        }
      }
      if (s.kind === 'policy-route') pathIpRules.add(s.rule)
    }
  }

  // --- Interfaces: pods' host veths folded into one node; ENIs and other interfaces by name. ---
  const vethPrefix = state.derived.vethPrefix ?? 'eni'
  const podVeths = new Set(state.derived.pods.map((p) => p.hostVeth).filter((v): v is string => !!v))
  for (const i of state.interfaces) if (i.kind === 'veth' && i.name.startsWith(vethPrefix)) podVeths.add(i.name)
  const named: string[] = []
  const addNamed = (n: string | undefined) => { if (n && n !== 'lo' && !podVeths.has(n) && !named.includes(n)) named.push(n) }
  for (const e of state.derived.enis) addNamed(e.interface)
  addNamed(state.derived.primaryInterface)
  for (const i of state.interfaces) if (i.kind !== 'veth' && i.name !== 'lo') addNamed(i.name)
  const MAX_INTERFACES = 12
  const shownInterfaces = named.slice(0, MAX_INTERFACES)
  collapsed.interfaces = Math.max(0, named.length - MAX_INTERFACES) + Math.max(0, podVeths.size - 1)
  const ingress = (name: string) => g.node({ id: `in:${name}`, kind: 'interface', stage: 'ingress', label: name, detail: describeInterface(state, name, 'in') })
  const egress = (name: string) => g.node({ id: `out:${name}`, kind: 'interface', stage: 'egress', label: name, detail: describeInterface(state, name, 'out') })
  const hookId = (h: Hook) => `hook:${h}`
  for (const h of HOOKS) g.node({ id: hookId(h), kind: 'hook', stage: h, label: h.toUpperCase() })
  const local = g.node({ id: 'local', kind: 'local-process', stage: 'local', label: 'local process', detail: 'the node itself, host-network pods' })
  if (podVeths.size > 0) {
    g.node({ id: 'in:veths', kind: 'interface-group', stage: 'ingress', label: `pod veths ${vethPrefix}*`, detail: `${podVeths.size} host veth${podVeths.size === 1 ? '' : 's'}`, count: podVeths.size })
    g.edge('in:veths', hookId('prerouting'), 'flow')
  }
  for (const n of shownInterfaces) {
    g.edge(ingress(n), hookId('prerouting'), 'flow')
    g.edge(hookId('postrouting'), egress(n), 'flow')
  }
  if (named.length > MAX_INTERFACES) {
    const more = named.length - MAX_INTERFACES
    g.node({ id: 'in:more', kind: 'more', stage: 'ingress', label: `… ${more} more interfaces`, count: more })
    g.edge('in:more', hookId('prerouting'), 'flow')
  }
  g.edge(local, hookId('output'), 'flow', 'route first')

  // --- Netfilter: each hook's base chains in the kernel's order, and the user chains they jump to. ---
  const baseId = (b: { table: Table; chain: Chain }) => `chain:${tableKey(b.table)}/${b.chain.name}`
  const hookExit: Record<Hook, string> = { prerouting: 'routing', input: local, forward: hookId('postrouting'), output: hookId('postrouting'), postrouting: '' }
  g.node({ id: 'routing', kind: 'routing', stage: 'routing', label: 'routing decision', detail: 'ip rules in priority order' })
  let chainBudget = maxChains
  for (const hook of HOOKS) {
    const bases = engine.netfilter.baseChains(family, hook)
    let prev = hookId(hook)
    for (const b of bases) {
      const id = g.node({ id: baseId(b), kind: 'base-chain', stage: hook, label: `${b.table.name} ${b.chain.name}`, detail: `${b.table.origin}, priority ${b.priority}${b.chain.policy === 'drop' ? ', policy DROP' : ''}`, evidence: evidenceOf(b.chain.ref) })
      g.edge(prev, id, 'flow')
      prev = id
    }
    if (hook === 'postrouting') {
      for (const n of shownInterfaces) g.edge(prev, egress(n), 'flow')
    } else if (hookExit[hook]) {
      g.edge(prev, hookExit[hook], 'flow')
    }
    // User chains, breadth first, grouped; the budget is shared by all hooks.
    for (const b of bases) chainBudget = addUserChains(g, b, hook, depth, pathChains, chainBudget)
  }

  // --- Policy routing: ip rules (grouped), the tables they look up, and where each table leads. ---
  const rules = state.routingRules.filter((r) => r.family === family)
  const groups = new Map<string, RoutingRule[]>()
  for (const r of rules) {
    if (pathIpRules.has(r)) continue
    const k = ipRuleGroupKey(r)
    let list = groups.get(k)
    if (!list) groups.set(k, (list = []))
    list.push(r)
  }
  type Item = { priority: number; id: string; tables: string[] }
  const items: Item[] = []
  for (const r of rules) if (pathIpRules.has(r)) items.push({ priority: r.priority, id: ipRuleNode(g, r), tables: r.action.kind === 'lookup' ? [r.action.table] : [] })
  let ruleBudget = maxIpRules
  let hiddenIpRules = 0
  for (const [key, list] of groups) {
    const first = list[0]!
    if (ruleBudget <= 0) { hiddenIpRules += list.length; continue }
    ruleBudget--
    const id = list.length === 1
      ? ipRuleNode(g, first)
      : g.node({ id: `iprules:${family}:${key}`, kind: 'ip-rule-group', stage: 'routing', label: `${first.priority}: ${describeIpRuleGroup(first)}`, detail: `${list.length} rules, one per pod`, count: list.length, evidence: evidenceOf(first.ref) })
    items.push({ priority: first.priority, id, tables: first.action.kind === 'lookup' ? [first.action.table] : [] })
  }
  items.sort((a, b) => a.priority - b.priority)
  let prevRule = 'routing'
  for (const it of items) {
    g.edge(prevRule, it.id, 'next-rule')
    prevRule = it.id
    for (const t of it.tables) g.edge(it.id, tableNode(g, state, family, t), 'lookup')
  }
  if (hiddenIpRules > 0) {
    const more = g.node({ id: 'iprules:more', kind: 'more', stage: 'routing', label: `… ${hiddenIpRules} more ip rules`, count: hiddenIpRules })
    g.edge(prevRule, more, 'next-rule')
  }
  for (const n of g.nodes.values()) {
    if (n.kind !== 'route-table') continue
    g.edge(n.id, n.label === 'table local' ? hookId('input') : hookId('forward'), 'route')
  }

  if (trace) markPath(g, state, trace, { ingress, egress, hookId, baseId })

  // What is not drawn by name: chains of the family's tables, ip rules of the family.
  const drawnChains = new Set([...g.nodes.values()].filter((n) => n.kind === 'chain' || n.kind === 'base-chain').map((n) => n.id.replace(/@[a-z]+$/, '')))
  let allChains = 0
  for (const t of state.tables) if (tableAppliesTo(t.family, family)) allChains += t.chains.size
  collapsed.chains = Math.max(0, allChains - drawnChains.size)
  collapsed.ipRules = Math.max(0, rules.length - [...g.nodes.values()].filter((n) => n.kind === 'ip-rule').length)

  return {
    family,
    flow: trace ? formatFlow(trace.flow) : null,
    verdict: trace ? trace.verdict : null,
    nodes: [...g.nodes.values()],
    edges: [...g.edges.values()],
    collapsed,
  }
}

function describeInterface(state: NodeState, name: string, way: 'in' | 'out'): string | undefined {
  const eni = state.derived.enis.find((e) => e.interface === name)
  const pod = state.derived.pods.find((p) => p.hostVeth === name)
  if (pod) return `host veth of pod ${pod.name ?? formatIp(pod.ip)}`
  if (eni) return `${eni.primary ? 'primary ENI' : 'ENI'}${eni.address ? ` ${formatIp(eni.address)}` : ''}${eni.table ? `, table ${eni.table}` : ''}${eni.trunk ? ', trunk' : ''}`
  const i = state.interfaces.find((x) => x.name === name)
  if (i?.kind === 'vlan') return `vlan${i.vlanId !== undefined ? ` ${i.vlanId}` : ''}${i.linkName ? ` on ${i.linkName}` : ''} (branch ENI)`
  if (i?.kind) return i.kind
  return way === 'in' ? 'arrives here' : undefined
}

function ipRuleNode(g: GraphBuilder, r: RoutingRule): string {
  return g.node({ id: `iprule:${r.family}:${r.priority}:${refKey(r.ref)}`, kind: 'ip-rule', stage: 'routing', label: `${r.priority}: ${describeIpRule(r)}`, evidence: evidenceOf(r.ref) })
}

function tableNode(g: GraphBuilder, state: NodeState, family: Family, name: string): string {
  const n = state.routes.filter((r) => r.family === family && r.table === name).length
  return g.node({ id: `table:${family}:${name}`, kind: 'route-table', stage: 'routing', label: `table ${name}`, detail: `${n} route${n === 1 ? '' : 's'}` })
}

function addUserChains(g: GraphBuilder, base: BaseChainRef, hook: Hook, depth: number, pathChains: Set<string>, budget: number): number {
  const t = base.table
  // A user chain is drawn once per hook that reaches it (KUBE-SERVICES from PREROUTING and from OUTPUT): each
  // hook's picture stays in its own column instead of edges crossing the whole graph.
  const chainId = (name: string) => (name === base.chain.name ? `chain:${tableKey(t)}/${name}` : `chain:${tableKey(t)}/${name}@${hook}`)
  const groupId = (group: string) => `group:${tableKey(t)}/${group}@${hook}`
  // Breadth first from the base chain. A group is followed one level only, group to group.
  let frontier: { chain: Chain; id: string }[] = [{ chain: base.chain, id: chainId(base.chain.name) }]
  const seen = new Set<string>([base.chain.name])
  for (let level = 0; level < depth && frontier.length > 0; level++) {
    const next: { chain: Chain; id: string }[] = []
    const reachedGroups = new Set<string>()
    for (const { chain, id } of frontier) {
      for (const rule of chain.rules) {
        for (const target of jumpTargets(rule)) {
          const tc = t.chains.get(target.name)
          if (!tc) continue
          const onPath = pathChains.has(`${tableKey(t)}/${target.name}`)
          const group = onPath ? undefined : fanOutGroup(target.name)
          if (group) {
            reachedGroups.add(group)
            const gid = groupId(group)
            if (g.nodes.has(gid) || budget > 0) {
              if (!g.nodes.has(gid)) budget--
              g.node({ id: gid, kind: 'chain-group', stage: hook, label: group, count: 0 })
              g.edge(id, gid, target.goto ? 'goto' : 'jump')
            }
            continue
          }
          const tid = chainId(target.name)
          if (!g.nodes.has(tid)) {
            if (budget <= 0 && !onPath) { seen.add(target.name); continue }
            if (!onPath) budget--
            g.node({ id: tid, kind: 'chain', stage: hook, label: target.name, detail: chainDetail(t, tc) })
          }
          g.edge(id, tid, target.goto ? 'goto' : 'jump')
          if (!seen.has(target.name)) {
            seen.add(target.name)
            next.push({ chain: tc, id: tid })
          }
        }
      }
    }
    for (const group of reachedGroups) {
      const gid = groupId(group)
      if (!g.nodes.has(gid)) continue
      countGroup(g, t, gid, group, pathChains)
      // One level further from a group, group to group: kube-proxy's KUBE-SVC-* → KUBE-SEP-* (and KUBE-MARK-MASQ).
      const { groups, plain } = groupTargets(t, group)
      for (const tg of groups) {
        const tgid = groupId(tg)
        if (!g.nodes.has(tgid)) {
          if (budget <= 0) continue
          budget--
          g.node({ id: tgid, kind: 'chain-group', stage: hook, label: tg })
          countGroup(g, t, tgid, tg, pathChains)
        }
        g.edge(gid, tgid, 'jump')
      }
      for (const name of plain) {
        if (pathChains.has(`${tableKey(t)}/${name}`)) continue
        const tid = chainId(name)
        if (!g.nodes.has(tid)) {
          if (budget <= 0) continue
          budget--
          g.node({ id: tid, kind: 'chain', stage: hook, label: name, detail: chainDetail(t, t.chains.get(name)!) })
        }
        g.edge(gid, tid, 'jump')
      }
    }
    frontier = next
  }
  return budget
}

/** The chains a rule can send the packet to: a jump or goto, or each branch of an nft numgen map. */
function jumpTargets(rule: Rule): { name: string; goto: boolean }[] {
  const t = rule.target
  return t.kind === 'jump' ? [{ name: t.chain, goto: t.goto }] : t.kind === 'numgen-vmap' ? t.choices.map((c) => ({ name: c.chain, goto: c.goto })) : []
}

/** A group's count is how many distinct chains of the table it stands for (all of them, not only the ones jumped to). */
function countGroup(g: GraphBuilder, t: Table, gid: string, group: string, pathChains: Set<string>): void {
  const node = g.nodes.get(gid)!
  let counts = groupSizes.get(t)
  if (!counts) {
    groupSizes.set(t, (counts = new Map()))
    for (const c of t.chains.keys()) {
      const k = fanOutGroup(c)
      if (k) counts.set(k, (counts.get(k) ?? 0) + 1)
    }
  }
  let onPath = 0
  for (const key of pathChains) if (key.startsWith(`${tableKey(t)}/`) && fanOutGroup(key.slice(tableKey(t).length + 1)) === group) onPath++
  const total = (counts.get(group) ?? 0) - onPath
  g.nodes.set(gid, { ...node, count: total, detail: `${total} chain${total === 1 ? '' : 's'} (${t.name})` })
}

/**
 * Where a group's chains jump: other groups, and plain chains. The same for every hook that reaches the group, so
 * computed once per table and group (kube-proxy's 5,000 KUBE-SVC chains hold 55,000 rules).
 */
function groupTargets(t: Table, group: string): { groups: Set<string>; plain: Set<string> } {
  let byGroup = groupJumps.get(t)
  if (!byGroup) groupJumps.set(t, (byGroup = new Map()))
  let hit = byGroup.get(group)
  if (!hit) {
    hit = { groups: new Set(), plain: new Set() }
    for (const chain of t.chains.values()) {
      if (fanOutGroup(chain.name) !== group) continue
      for (const rule of chain.rules) {
        for (const target of jumpTargets(rule)) {
          if (!t.chains.has(target.name)) continue
          const tg = fanOutGroup(target.name)
          if (tg) { if (tg !== group) hit.groups.add(tg) } else hit.plain.add(target.name)
        }
      }
    }
    byGroup.set(group, hit)
  }
  return hit
}

const groupJumps = new WeakMap<Table, Map<string, { groups: Set<string>; plain: Set<string> }>>()

/** Per table: how many chains each fan-out group has (a 160k-rule table has 55k chains; counted once). */
const groupSizes = new WeakMap<Table, Map<string, number>>()

function chainDetail(t: Table, c: Chain): string {
  const owner = ownerOfChain(c.name)
  return `${t.name}, ${c.rules.length} rule${c.rules.length === 1 ? '' : 's'}${owner ? `, ${owner}` : ''}`
}

interface PathHelpers {
  ingress(name: string): string
  egress(name: string): string
  hookId(h: Hook): string
  baseId(b: { table: Table; chain: Chain }): string
}

/** The hook of a netfilter step (rule, nat, policy); other steps carry none. */
function hookOf(s: Step): Hook | undefined {
  return 'hook' in s ? s.hook : undefined
}

/**
 * Marks the traced flow: ingress → each hook it crossed → every base chain of that hook in order (nat skipped for a
 * later packet) with excursions into the chains and rules that matched → policy routing (the ip rules that matched,
 * the table, the route) → the egress interface, the local process, or where it ended.
 */
function markPath(g: GraphBuilder, state: NodeState, trace: Trace, h: PathHelpers): void {
  const engine = prepare(state)
  const family = trace.flow.src.family
  const flow = trace.flow
  const host = flow.origin === 'host'
  const steps = trace.steps

  // Partition the steps: per hook (netfilter), routing segments (in order), conntrack steps before/after the hooks.
  const byHook = new Map<Hook, Step[]>()
  const routing: Step[][] = []
  const before: Step[] = []
  const after: Step[] = []
  let seenHook = false
  let lastWasRouting = false
  for (const s of steps) {
    const hook = hookOf(s)
    if (hook) {
      seenHook = true
      lastWasRouting = false
      let list = byHook.get(hook)
      if (!list) byHook.set(hook, (list = []))
      list.push(s)
    } else if (s.kind === 'conntrack') {
      (seenHook || routing.length > 0 ? after : before).push(s)
    } else if (s.kind === 'indeterminate') {
      // An indeterminate step without a hook: attach it to the hook that was running.
      const lastHook = [...byHook.keys()].at(-1)
      if (lastHook) byHook.get(lastHook)!.push(s)
      else before.push(s)
    } else {
      // ip rules, routes, and what the kernel checks while routing (reverse-path filtering).
      if (!lastWasRouting) routing.push([])
      routing.at(-1)!.push(s)
      lastWasRouting = true
    }
  }

  // The stages the packet crossed, in order.
  const delivered = trace.verdict === 'delivered'
  const routeSteps = routing.flat()
  const lastRoute = [...routeSteps].reverse().find((s) => s.kind === 'route')
  const egressDev = trace.egressInterface ?? (lastRoute && lastRoute.kind === 'route' ? lastRoute.egress : undefined) ?? null
  const lastDecision = [...steps].reverse().find((s) => s.kind !== 'conntrack')
  const blockedInRouting = trace.verdict === 'no-route' ||
    (trace.verdict === 'dropped' && lastDecision !== undefined && hookOf(lastDecision) === undefined && lastDecision.kind !== 'indeterminate')
  type StageStep = { stage: 'hook'; hook: Hook } | { stage: 'routing'; segment: Step[] }
  const stages: StageStep[] = []
  const localTable = lastRoute && lastRoute.kind === 'route' && lastRoute.route.type === 'local'
  if (host) {
    stages.push({ stage: 'routing', segment: routing[0] ?? [] })
    if (!blockedInRouting) {
      stages.push({ stage: 'hook', hook: 'output' })
      if (routing[1]) stages.push({ stage: 'routing', segment: routing[1] })
      stages.push({ stage: 'hook', hook: 'postrouting' })
      if (delivered || localTable) stages.push({ stage: 'hook', hook: 'input' })
    }
  } else {
    stages.push({ stage: 'hook', hook: 'prerouting' })
    stages.push({ stage: 'routing', segment: routeSteps })
    if (!blockedInRouting) {
      if (delivered || localTable) stages.push({ stage: 'hook', hook: 'input' })
      else stages.push({ stage: 'hook', hook: 'forward' }, { stage: 'hook', hook: 'postrouting' })
    }
  }

  const iif = flow.iif
  let cursor = host ? 'local' : iif ? h.ingress(iif) : g.node({ id: 'in:unknown', kind: 'interface', stage: 'ingress', label: '(arrival interface unknown)' })
  g.nodes.get(cursor)!.onPath = true
  for (const s of before) cursor = conntrackNode(g, s, cursor, 'ingress')

  let ended = false
  for (const st of stages) {
    if (ended) break
    if (st.stage === 'routing') {
      g.path(cursor, 'routing')
      cursor = 'routing'
      for (const s of st.segment) {
        if (s.kind === 'policy-route') {
          const rn = ipRuleNode(g, s.rule)
          g.path(cursor, rn, 'next-rule', cursor === 'routing' ? 'first match' : 'next match')
          cursor = rn
          const a = s.rule.action
          if (a.kind === 'lookup') {
            const tn = tableNode(g, state, family, a.table)
            if (s.outcome === 'no-route' || s.outcome === 'suppressed') {
              g.edge(rn, tn, 'lookup', s.outcome === 'no-route' ? 'no route' : 'suppressed', true)
              g.nodes.get(tn)!.onPath = true
            } else {
              g.path(rn, tn, 'lookup')
              cursor = tn
            }
          }
        } else if (s.kind === 'route') {
          const tn = tableNode(g, state, family, s.table)
          if (cursor !== tn) g.path(cursor, tn, 'lookup')
          const rid = g.node({ id: `route:${refKey(s.route.ref)}`, kind: 'route', stage: 'routing', label: describeRoute(s.route), detail: at(s.route.ref), evidence: evidenceOf(s.route.ref) })
          g.path(tn, rid, 'route')
          cursor = rid
        } else {
          // Another check made while routing (rp_filter): a node with the step's own words and evidence.
          const ref = 'ref' in s ? s.ref : undefined
          const id = g.node({ id: `check:${s.kind}:${s.summary}`, kind: 'route', stage: 'routing', label: s.summary, ...(ref ? { detail: at(ref), evidence: evidenceOf(ref) } : {}) })
          g.path(cursor, id)
          cursor = id
        }
      }
      if (blockedInRouting) {
        const end = g.node({ id: 'end:routing', kind: 'end', stage: 'routing', label: trace.verdict === 'no-route' ? 'no route: dropped' : 'dropped by routing' })
        g.path(cursor, end)
        ended = true
      }
      continue
    }
    const hook = st.hook
    g.path(cursor, h.hookId(hook))
    cursor = h.hookId(hook)
    const hookSteps = byHook.get(hook) ?? []
    const bases = engine.netfilter.baseChains(family, hook)
    // Which base chain each step ran under: a step in a base chain starts its run, user-chain steps follow it.
    const perBase = new Map<string, Step[]>()
    let current: string | undefined
    for (const s of hookSteps) {
      if (s.kind === 'rule' || s.kind === 'nat') {
        const t = tableOfStep(state, s, family)
        const chain = t?.chains.get(s.chain)
        if (t && chain && isBaseChain(t, chain, hook)) current = h.baseId({ table: t, chain })
      } else if (s.kind === 'policy') {
        const b = bases.find((x) => x.chain === s.chain)
        if (b) current = h.baseId(b)
      }
      if (current === undefined) continue
      let list = perBase.get(current)
      if (!list) perBase.set(current, (list = []))
      list.push(s)
    }
    for (const b of bases) {
      const isNat = b.table.origin === 'nft' ? b.chain.type === 'nat' : b.table.name === 'nat'
      if (isNat && !trace.firstPacket) continue
      const bid = h.baseId(b)
      g.path(cursor, bid)
      cursor = bid
      const run = perBase.get(bid) ?? []
      const stop = excursion(g, b, bid, run)
      if (stop) {
        const end = g.node({ id: `end:${hook}`, kind: 'end', stage: hook, label: 'dropped', detail: stop })
        g.path(stop === 'policy DROP' ? bid : lastRuleNodeOf(run, bid), end)
        ended = true
        break
      }
    }
    if (ended) break
  }
  if (ended) return
  for (const s of after) cursor = conntrackNode(g, s, cursor, 'egress')
  if (delivered || localTable) {
    g.path(cursor, 'local', 'flow', 'delivered')
  } else if (egressDev) {
    g.path(cursor, h.egress(egressDev), 'flow', trace.finalFlow.src.value !== flow.src.value ? `leaves as ${formatIp(trace.finalFlow.src)}` : `keeps ${formatIp(flow.src)}`)
  } else {
    const end = g.node({ id: 'end:unknown', kind: 'end', stage: 'egress', label: trace.verdict === 'insufficient-info' ? 'insufficient information' : trace.verdict })
    g.path(cursor, end)
  }
}

function lastRuleNodeOf(run: Step[], fallback: string): string {
  const last = [...run].reverse().find((s) => s.kind === 'rule' || s.kind === 'nat')
  return last && (last.kind === 'rule' || last.kind === 'nat') ? ruleNodeId(last.rule.ref) : fallback
}

function isBaseChain(t: Table, c: Chain, hook: Hook): boolean {
  if (c.hook) return c.hook === hook
  return t.origin !== 'nft' && BUILTIN_CHAIN_HOOK[c.name] === hook
}

/** file:line names a rule, ip rule or route; facts without a line (JSON, the kernel's defaults) add their text. */
function refKey(ref: { artifact: string; line: number; text: string }): string {
  return ref.line ? at(ref) : `${ref.artifact}:${ref.text}`
}

function ruleNodeId(ref: { artifact: string; line: number; text: string }): string {
  return `rule:${refKey(ref)}`
}

/**
 * The rules that matched under one base chain: base chain → rule → jumped-to chain → rule …; a RETURN goes back to a
 * chain already drawn without an edge back (the chain "continues"), which keeps the drawing acyclic.
 * Returns why the packet stopped here, when it did.
 */
function excursion(g: GraphBuilder, base: BaseChainRef, bid: string, run: readonly Step[]): string | undefined {
  const t = base.table
  const chainId = (name: string) => (name === base.chain.name ? bid : `chain:${tableKey(t)}/${name}@${base.hook}`)
  let at_ = bid
  let atChain = base.chain.name
  const drawn = new Set<string>([base.chain.name])
  for (const s of run) {
    if (s.kind === 'policy') {
      if (s.policy === 'drop') return 'policy DROP'
      continue
    }
    if (s.kind === 'indeterminate') {
      const id = g.node({ id: `indeterminate:${s.ref ? at(s.ref) : s.summary}`, kind: 'rule', stage: base.hook, label: s.ref ? at(s.ref) : 'cannot evaluate', detail: `cannot evaluate: ${s.reason}`.slice(0, 90), ...(s.ref ? { evidence: evidenceOf(s.ref) } : {}) })
      g.path(at_, id, 'flow', 'unknown')
      continue
    }
    if (s.kind !== 'rule' && s.kind !== 'nat') continue
    if (s.table !== t.name || s.tableOrigin !== t.origin) continue
    if (s.chain !== atChain) {
      const cid = chainId(s.chain)
      if (!g.nodes.has(cid)) {
        const c = t.chains.get(s.chain)
        g.node({ id: cid, kind: 'chain', stage: base.hook, label: s.chain, ...(c ? { detail: chainDetail(t, c) } : {}) })
      }
      if (!drawn.has(s.chain)) g.path(at_, cid, 'jump')
      at_ = cid
      atChain = s.chain
      drawn.add(s.chain)
    }
    const rid = g.node({ id: ruleNodeId(s.rule.ref), kind: 'rule', stage: base.hook, label: at(s.rule.ref), detail: action(s.summary), evidence: evidenceOf(s.rule.ref) })
    g.path(at_, rid, 'flow', `#${s.rule.index}`)
    at_ = rid
    if (s.kind === 'rule' && (s.action === 'jump' || s.action === 'goto') && s.rule.target.kind === 'jump') {
      const target = s.rule.target.chain
      const cid = chainId(target)
      const c = t.chains.get(target)
      if (!g.nodes.has(cid)) g.node({ id: cid, kind: 'chain', stage: base.hook, label: target, ...(c ? { detail: chainDetail(t, c) } : {}) })
      g.path(rid, cid, s.action)
      at_ = cid
      atChain = target
      drawn.add(target)
    }
    if (s.kind === 'rule' && (s.action === 'drop' || s.action === 'reject')) return s.action === 'drop' ? 'DROP' : 'REJECT'
  }
  return undefined
}

function conntrackNode(g: GraphBuilder, s: Step, cursor: string, stage: Stage): string {
  if (s.kind !== 'conntrack') return cursor
  const id = g.node({ id: `conntrack:${stage}:${s.summary}`, kind: 'conntrack', stage, label: 'conntrack', detail: action(s.summary), ...(s.ref ? { evidence: evidenceOf(s.ref) } : {}) })
  g.path(cursor, id)
  return id
}
