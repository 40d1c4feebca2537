// explain(state, flow): walks the packet through the node's netfilter hooks and policy routing as Linux does,
// and says whether it was SNATed, to which source, out of which interface, and which rule decided.
import { formatIp, sameIp, type IpAddress } from '../model/ip.js'
import type { NodeState, Pod } from '../model/node-state.js'
import type { ConntrackEntry } from '../model/conntrack.js'
import type { Flow, FlowOrigin } from '../model/flow.js'
import { assertNever, type Decision, type Explanation, type Step, type Trace, type Verdict } from '../model/trace.js'
import type { Hook, Match } from '../model/netfilter.js'
import { NatStep, RpFilterStep } from '../model/steps.js'
import { AddressBook } from './addresses.js'
import { ChoiceScript, Netfilter, type Exemption, type Packet, type WalkContext } from './netfilter.js'
import { Router, type RouteResult } from './routing.js'
import { ownerOfRule } from '../model/owner.js'

export interface ExplainOptions {
  /** Connection mark of an established connection (origin `reply`), when known from conntrack or given. */
  readonly ctmark?: number
  /** At most this many alternatives are explored for probabilistic rules. */
  readonly maxBranches?: number
  /**
   * Reuse the walk of an earlier flow (explained with `reuse`) that differed from this one only in the source port,
   * when no rule or ip rule of the node reads source ports. For batches of connections: a capture's connections from
   * one pod to one service differ in little else (analyze).
   */
  readonly reuse?: boolean
}

/** Everything prepared once per node state: indexes over rules, routes and addresses. */
export interface Engine {
  readonly state: NodeState
  readonly netfilter: Netfilter
  readonly router: Router
  readonly addresses: AddressBook
  readonly podsByIp: Map<string, Pod>
  /** Conntrack entries by their reply direction's addresses, built on the first reply explained. */
  repliesByAddress?: Map<string, ConntrackEntry[]>
  /** Whether no rule of the node reads a packet's source port (decided on first use; see `sourcePortBlind`). */
  sourcePortBlind?: boolean
  /** Explanations by everything but the source port, when the node's rules never read it (`reuse`). */
  readonly explanations: Map<string, Reusable>
  /** How many branches the cached explanations hold. */
  cachedPaths: number
}

interface Reusable {
  readonly explanation: Explanation
  /** Whether a branch has a SNAT or MASQUERADE step, which records the source port. */
  readonly recordsPort: boolean
}

/** At most this many paths (explanations' branches) are kept per node state; the cache starts again when full. */
const MAX_CACHED_PATHS = 262144

const engines = new WeakMap<NodeState, Engine>()

export function prepare(state: NodeState): Engine {
  let e = engines.get(state)
  if (!e) {
    const podsByIp = new Map<string, Pod>()
    for (const p of state.derived.pods) podsByIp.set(`${p.ip.family}:${p.ip.value}`, p)
    e = { state, netfilter: new Netfilter(state.tables), router: new Router(state), addresses: new AddressBook(state), podsByIp, explanations: new Map(), cachedPaths: 0 }
    engines.set(state, e)
  }
  return e
}

export function explain(state: NodeState, flow: Flow, options: ExplainOptions = {}): Explanation {
  const engine = prepare(state)
  // Connections differ mostly in their ephemeral source port. When no rule or ip rule of the node reads the source
  // port, two flows that differ only in it take the same path: the second is the first with its port written in.
  const key = options.reuse ? cacheKey(engine, flow, options) : undefined
  if (key === undefined) return walkFlow(engine, flow, options)
  const seen = engine.explanations.get(key)
  if (seen) return withSourcePort(seen, flow.sport)
  const e = walkFlow(engine, flow, options)
  if (engine.cachedPaths + e.branches.length > MAX_CACHED_PATHS) { engine.explanations.clear(); engine.cachedPaths = 0 }
  const recordsPort = e.branches.some((t) => t.steps.some((s) => s.kind === 'nat' && (s.nat === 'snat' || s.nat === 'masquerade')))
  engine.explanations.set(key, { explanation: e, recordsPort })
  engine.cachedPaths += e.branches.length
  return e
}

/** The cache key of a flow: everything the walk may read (the source port excepted); undefined when not cacheable. */
function cacheKey(engine: Engine, flow: Flow, options: ExplainOptions): string | undefined {
  // A reply is matched to its conntrack entry by both ports.
  if (flow.origin === 'reply') return undefined
  if (!(engine.sourcePortBlind ??= sourcePortBlind(engine))) return undefined
  return `${flow.origin ?? ''}|${flow.iif ?? ''}|${flow.src.family}|${flow.src.value}|${flow.dst.value}|${flow.proto}|${flow.dport}|${flow.sport === null ? 'none' : 'port'}|${options.ctmark ?? ''}|${options.maxBranches ?? ''}`
}

/**
 * Whether nothing on the node decides by the source port: no iptables or nft match on it (`--sport`, `th sport`,
 * a set or map keyed by it, `--ctorigsrcport`), and no ip rule with a port selector (rp_filter's reverse lookup swaps
 * the ports, so a `dport` selector would read the source port too).
 */
function sourcePortBlind(engine: Engine): boolean {
  for (const table of engine.state.tables) {
    for (const chain of table.chains.values()) {
      for (const rule of chain.rules) {
        if (rule.matches.some(readsSourcePort)) return false
        if (rule.target.kind === 'vmap' && keysReadSourcePort(rule.target.keys)) return false
      }
    }
  }
  return !engine.state.routingRules.some((r) => r.sport || r.dport)
}

/** Whether a match's outcome can depend on the packet's source port (every kind is named: a new one must be decided). */
function readsSourcePort(m: Match): boolean {
  switch (m.kind) {
    case 'port': return m.which !== 'dst'
    case 'ctport': return m.which === 'origsrc'
    case 'nft-set': return keysReadSourcePort(m.keys)
    case 'src': case 'dst': case 'src-range': case 'dst-range': case 'in-iface': case 'out-iface': case 'protocol': case 'addrtype':
    case 'mark': case 'connmark': case 'ctstate': case 'ctaddr': case 'ctstatus': case 'statistic-random': case 'statistic-nth':
    case 'comment': case 'ipset': case 'recent': case 'icmp-type': case 'tcp-flags': case 'fragment':
      return false
    // Evaluated as unknown whatever the packet (xt_socket reads addresses and the connection's state only).
    case 'opaque': return false
    default: return assertNever(m)
  }
}

function keysReadSourcePort(keys: readonly string[]): boolean {
  return keys.some((k) => /\bsport\b/.test(k))
}

/**
 * An explanation made for another source port, with this one written in. Steps are shared (they are immutable);
 * a SNAT or MASQUERADE step records the port it found, so it is made again.
 */
function withSourcePort(r: Reusable, sport: number | null): Explanation {
  const e = r.explanation
  const before = e.flow.sport
  if (before === sport) return e
  const flow: Flow = { ...e.flow, sport }
  const branches = e.branches.map((t): Trace => {
    if (!r.recordsPort) return { ...t, flow, finalFlow: { ...t.finalFlow, sport } }
    let steps = t.steps
    let rewritten = false
    for (let i = 0; i < steps.length; i++) {
      const s = steps[i]!
      if (s.kind !== 'nat' || !(s instanceof NatStep)) continue
      if (s.rewritesSourcePort) rewritten = true
      const again = s.withSourcePort(before, sport)
      if (again !== s) {
        if (steps === t.steps) steps = steps.slice()
        ;(steps as Step[])[i] = again
      }
    }
    return { ...t, flow, finalFlow: rewritten ? t.finalFlow : { ...t.finalFlow, sport }, steps }
  })
  return { flow, trace: branches[0]!, branches, warnings: e.warnings }
}

function walkFlow(engine: Engine, flow: Flow, options: ExplainOptions): Explanation {
  const { origin, iif, notes } = placeFlow(engine, flow)
  // Built field by field: spreading the caller's object costs more than the rest of a single-path walk.
  const placed: Flow = { src: flow.src, dst: flow.dst, proto: flow.proto, sport: flow.sport, dport: flow.dport, origin, ...(iif ? { iif } : {}) }
  const max = options.maxBranches ?? 64
  const conn = placed.origin === 'reply' ? findReplyEntry(engine, placed) : undefined
  const ctmark = options.ctmark ?? conn?.mark
  const walkOptions: WalkOptions = { ctmark, conn }
  // Every probabilistic choice (kube-proxy's endpoint rules) is explored: the walk is run again with a script
  // that takes each untried option of each choice point it met, depth first.
  const traces: Trace[] = []
  const queue: number[][] = [[]]
  let next = 0
  let truncated = false
  while (next < queue.length) {
    if (traces.length >= max) { truncated = true; break }
    const script = queue[next++]!
    const choices = new ChoiceScript(script)
    const trace = walk(engine, placed, choices, walkOptions)
    traces.push(trace)
    const points = choices.points
    if (points.length > script.length) {
      const taken = choices.taken
      for (let j = script.length; j < points.length; j++) {
        const opts = points[j]!
        for (let alt = 1; alt < opts.length; alt++) if ((opts[alt] ?? 0) > 0) { const s2 = taken.slice(0, j); s2.push(alt); queue.push(s2) }
      }
    }
  }
  // Paths with probability 0 (a `--probability 1` rule's other side) never happen.
  const possible = traces.length === 1 ? traces : traces.filter((t) => t.probability > 0)
  const branches = possible.length ? possible : traces
  if (branches.length > 1) branches.sort((a, b) => b.probability - a.probability)
  const warnings = notes
  if (placed.origin === 'reply' && !conn) warnings.push(`no conntrack entry in the bundle has this reply tuple: natlens cannot undo the connection's NAT${options.ctmark === undefined ? ' and assumed connmark 0 (give --ctmark)' : ''}`)
  if (truncated) warnings.push(`more than ${max} alternative paths; natlens explored the first ${max}`)
  return { flow: placed, trace: branches[0]!, branches, warnings }
}

/** Decides where the packet enters: a pod's host veth, a host process, or an ENI. */
function placeFlow(engine: Engine, flow: Flow): { origin: FlowOrigin; iif?: string; notes: string[] } {
  const notes: string[] = []
  const pod = engine.podsByIp.get(`${flow.src.family}:${flow.src.value}`)
  let origin: FlowOrigin = flow.origin ?? (pod ? 'pod' : engine.addresses.isLocal(flow.src) ? 'host' : 'external')
  if (!flow.origin && !pod && !engine.addresses.known) {
    notes.push(`${formatIp(flow.src)} is not a known pod and the node's addresses are not in the bundle: assumed to come from a pod`)
    origin = 'pod'
  }
  if (origin === 'host') return { origin, iif: flow.iif ?? 'lo', notes }
  if (flow.iif) return { origin, iif: flow.iif, notes }
  if (origin === 'pod' || (origin === 'reply' && pod)) {
    if (pod?.hostVeth) return { origin, iif: pod.hostVeth, notes }
    const back = engine.router.lookupTable(flow.src.family, pod?.table ?? 'main', flow.src)
    if (back?.dev && back.dst.prefix === (flow.src.family === 4 ? 32 : 128)) return { origin, iif: back.dev, notes }
    const prefix = engine.state.derived.vethPrefix ?? 'eni'
    notes.push(`the host veth of ${formatIp(flow.src)} is not in the bundle: assumed to be named ${prefix}… like the CNI's`)
    return { origin, iif: `${prefix}(unknown)`, notes }
  }
  // From outside: it arrives on the interface the node would use to reach the sender.
  const back = engine.router.lookupTable(flow.src.family, 'main', flow.src)
  const iif = back?.dev ?? back?.nexthops?.[0]?.dev ?? engine.state.derived.primaryInterface
  if (!iif) notes.push('the arrival interface is unknown (no routes and no primary interface in the bundle); give it with --iif')
  return { origin, ...(iif ? { iif } : {}), notes }
}

interface WalkOptions {
  /** The connection's mark: given, or from the conntrack entry of a reply. */
  readonly ctmark: number | undefined
  /** The conntrack entry of the connection a reply belongs to. */
  readonly conn: ConntrackEntry | undefined
}

/** The connection a reply packet belongs to: the entry whose reply tuple is the packet. */
function findReplyEntry(engine: Engine, flow: Flow): ConntrackEntry | undefined {
  if (!engine.repliesByAddress) {
    // Indexed once: a flow list of replies against a node's 100k-entry conntrack table is not a scan per flow.
    const index = new Map<string, ConntrackEntry[]>()
    for (const e of engine.state.conntrack) {
      const key = `${e.reply.src.family}:${e.reply.src.value}>${e.reply.dst.value}`
      const list = index.get(key)
      if (list) list.push(e)
      else index.set(key, [e])
    }
    engine.repliesByAddress = index
  }
  const candidates = engine.repliesByAddress.get(`${flow.src.family}:${flow.src.value}>${flow.dst.value}`)
  return candidates?.find((e) => e.proto === flow.proto && sameIp(e.reply.src, flow.src) && sameIp(e.reply.dst, flow.dst) &&
    (flow.sport === null || e.reply.sport === flow.sport) && (flow.dport === null || e.reply.dport === flow.dport))
}

function walk(engine: Engine, flow: Flow, choices: ChoiceScript, options: WalkOptions): Trace {
  const { state, netfilter, router, addresses } = engine
  const family = flow.src.family
  const firstPacket = flow.origin !== 'reply'
  const steps: Step[] = []
  const warnings: string[] = []
  const pkt: Packet = { src: flow.src, dst: flow.dst, sport: flow.sport, dport: flow.dport, proto: flow.proto, mark: 0, ctmark: options.ctmark ?? 0, iif: flow.iif, oif: undefined }
  let gateway: IpAddress | undefined
  const ctx: WalkContext = {
    family, firstPacket, addresses, choices, steps, warnings, indeterminate: false, exemptions: [],
    original: { src: flow.src, dst: flow.dst, sport: flow.sport, dport: flow.dport },
    masqueradeSource: (oif) => addresses.preferredSource(oif, family, gateway),
  }
  if (!firstPacket) steps.push({ kind: 'conntrack', changes: [], summary: 'a later packet of an established connection: the nat table is not consulted, conntrack keeps the first packet\'s translation' })
  const conn = options.conn
  if (conn && !sameIp(conn.orig.src, conn.reply.dst)) {
    // The connection was SNATed: conntrack gives the reply its original destination back before routing.
    const changes = [{ field: 'dst' as const, before: formatIp(pkt.dst), after: formatIp(conn.orig.src) }]
    pkt.dst = conn.orig.src
    if (conn.orig.sport !== null && pkt.dport !== null) pkt.dport = conn.orig.sport
    steps.push({ kind: 'conntrack', changes, ref: conn.ref, summary: `conntrack: reply to a SNATed connection, destination back to ${formatIp(conn.orig.src)}` })
  }

  const finish = (verdict: Verdict, egress: string | null): Trace => {
    if (conn && (verdict === 'forwarded' || verdict === 'delivered') && !sameIp(conn.orig.dst, conn.reply.src)) {
      // The connection was DNATed (a Service, NodePort): the reply leaves with the address the client sent to.
      const changes = [{ field: 'src' as const, before: formatIp(pkt.src), after: formatIp(conn.orig.dst) }]
      pkt.src = conn.orig.dst
      if (conn.orig.dport !== null && pkt.sport !== null) pkt.sport = conn.orig.dport
      steps.push({ kind: 'conntrack', changes, ref: conn.ref, summary: `conntrack: reply of a DNATed connection leaves as ${formatIp(conn.orig.dst)}` })
    }
    return makeTrace(engine, flow, pkt, ctx, verdict, egress)
  }
  const route = (iif: string): RouteResult => {
    const r = router.decide({ family, src: pkt.src, dst: pkt.dst, iif, mark: pkt.mark, proto: pkt.proto, sport: pkt.sport, dport: pkt.dport }, steps)
    if (r.kind === 'unicast') {
      pkt.oif = r.dev
      gateway = r.gateway
      const hops = r.route.nexthops
      if (hops && hops.length > 1) warnings.push(`${r.route.ref.artifact}:${r.route.ref.line}: a multipath route; the kernel hashes each flow onto one of ${hops.map((h) => h.dev ?? '?').join(', ')}; natlens shows the first`)
    }
    return r
  }
  const runHook = (hook: Hook) => netfilter.runHook(hook, pkt, ctx)

  if (flow.origin === 'host') {
    // Locally generated: the route is chosen first, then OUTPUT may mark or DNAT, which makes the kernel route again.
    let r = route('lo')
    const before = { dst: pkt.dst, mark: pkt.mark }
    if (runHook('output').kind === 'drop') return finish('dropped', null)
    if (!sameIp(before.dst, pkt.dst) || before.mark !== pkt.mark) r = route('lo')
    if (r.kind === 'blocked') return finish('dropped', null)
    if (r.kind === 'no-route') return finish(router.routesKnown[family] ? 'no-route' : 'insufficient-info', null)
    if (runHook('postrouting').kind === 'drop') return finish('dropped', null)
    if (r.kind === 'local') {
      runHook('input')
      return finish('delivered', null)
    }
    return finish('forwarded', r.dev)
  }

  if (runHook('prerouting').kind === 'drop') return finish('dropped', null)
  const r = route(pkt.iif ?? 'lo')
  if (r.kind === 'blocked') return finish('dropped', null)
  if (r.kind === 'no-route' && !router.routesKnown[family] && !addresses.isLocal(pkt.dst)) {
    // No routes in the bundle: the packet is taken to be forwarded out an unknown interface, so the nat rules that
    // decide SNAT still run (a rule that tests the egress interface sees none); the egress interface stays null.
    if (runHook('forward').kind === 'drop') return finish('dropped', null)
    if (runHook('postrouting').kind === 'drop') return finish('dropped', null)
    return finish('forwarded', null)
  }
  if (r.kind === 'no-route') return finish(router.routesKnown[family] ? 'no-route' : 'insufficient-info', null)
  if (family === 4 && pkt.iif && !reversePathOk(engine, pkt, r.kind === 'unicast' ? r.dev : 'lo', steps)) return finish('dropped', null)
  if (r.kind === 'local') {
    if (runHook('input').kind === 'drop') return finish('dropped', null)
    return finish('delivered', null)
  }
  if (state.sysctls.size > 0 && family === 4) {
    const fwd = state.sysctls.get('net.ipv4.ip_forward')
    if (fwd && fwd.value.trim() === '0') {
      warnings.push(`net.ipv4.ip_forward = 0 (${fwd.ref.artifact}:${fwd.ref.line}): the node does not forward`)
      return finish('dropped', null)
    }
  }
  if (runHook('forward').kind === 'drop') return finish('dropped', null)
  if (runHook('postrouting').kind === 'drop') return finish('dropped', null)
  return finish('forwarded', r.dev)
}

/**
 * rp_filter as fib_validate_source checks it: the stricter of conf.all and conf.<iif> applies; the reverse lookup is
 * made as if sending to the source from the destination, with the forward route's egress device as iif (lo for local
 * delivery: __mkroute_input passes FIB_RES_OIF) and the packet's mark only when src_valid_mark is set.
 * Strict (1): the route back must leave through the arrival interface; loose (2): a route back must exist.
 */
function reversePathOk(engine: Engine, pkt: Packet, lookupIif: string, steps: Step[]): boolean {
  const sys = engine.state.sysctls
  if (sys.size === 0 || !pkt.iif) return true
  const all = sys.get('net.ipv4.conf.all.rp_filter')
  const own = sys.get(`net.ipv4.conf.${pkt.iif}.rp_filter`)
  if (!own && !all) return true
  const mode = Math.max(Number(all?.value ?? 0), Number(own?.value ?? 0))
  if (mode !== 1 && mode !== 2) return true
  const ref = (Number(own?.value ?? 0) >= Number(all?.value ?? 0) ? own : all) ?? all!
  const validMark = sys.get(`net.ipv4.conf.${pkt.iif}.src_valid_mark`)?.value.trim() === '1' || sys.get('net.ipv4.conf.all.src_valid_mark')?.value.trim() === '1'
  const scratch: Step[] = []
  const back = engine.router.decide({ family: 4, src: pkt.dst, dst: pkt.src, iif: lookupIif, mark: validMark ? pkt.mark : 0, proto: pkt.proto, sport: pkt.dport, dport: pkt.sport }, scratch)
  const backDev = back.kind === 'unicast' ? back.dev : back.kind === 'local' ? back.route.dev : undefined
  const passed = mode === 2 ? back.kind === 'unicast' || back.kind === 'local' : backDev === pkt.iif
  steps.push(new RpFilterStep(mode as 1 | 2, pkt.iif, passed, backDev, ref.ref, pkt.src))
  return passed
}

function makeTrace(engine: Engine, flow: Flow, pkt: Packet, ctx: WalkContext, verdict: Verdict, egress: string | null): Trace {
  const { state, netfilter } = engine
  const family = flow.src.family
  const warnings = ctx.warnings
  const finalFlow: Flow = { src: pkt.src, dst: pkt.dst, proto: flow.proto, sport: pkt.sport, dport: pkt.dport, iif: flow.iif, origin: flow.origin }
  let decisive: Decision | undefined
  let undecidedReason: string | undefined

  // The last step that translated the source decides.
  let srcNat: { s: Extract<Step, { kind: 'nat' }>; i: number } | undefined
  for (let i = ctx.steps.length - 1; i >= 0; i--) {
    const s = ctx.steps[i]!
    if (s.kind === 'nat' && (s.nat === 'snat' || s.nat === 'masquerade')) { srcNat = { s, i }; break }
  }
  if (srcNat) {
    decisive = { ref: srcNat.s.rule.ref, owner: ownerOfRule(srcNat.s.rule, netfilter.tableOf(srcNat.s.rule)), stepIndex: srcNat.i }
    const holders = engine.addresses.devicesOf(pkt.src)
    if (egress && holders.length > 0 && !holders.includes(egress) && !holders.includes('lo')) {
      warnings.push(`SNATed to ${formatIp(pkt.src)} (${holders.join(', ')}'s address) but sent out ${egress}: the VPC drops a packet whose source is not an address of the ENI it leaves through. ` +
        `On a VPC CNI node this is the missing 0x80 connmark: off-VPC traffic of pods on secondary ENIs must be marked in PREROUTING so rule 1024 sends it out the primary ENI.`)
    }
  } else if (verdict === 'forwarded' || verdict === 'delivered') {
    if (!ctx.firstPacket) {
      undecidedReason = 'a later packet of the connection: the nat table runs only for the first packet'
    } else {
      const exemption = findExemption(engine, ctx)
      if (exemption) {
        decisive = { ref: exemption.rule.ref, owner: ownerOfRule(exemption.rule, exemption.table), stepIndex: exemption.stepIndex }
      } else if (!netfilter.present.nat[family]) {
        undecidedReason = 'no nat table was collected, so natlens cannot tell whether the flow is SNATed'
      } else {
        const ext = state.settings.get('AWS_VPC_K8S_CNI_EXTERNALSNAT')
        const vpcCniSnat = netfilter.hasSnatRule(family, (r, t) => ownerOfRule(r, t) === 'vpc-cni', 'vpc-cni')
        if (!vpcCniSnat && family === 4 && (ext?.value === 'true' || state.derived.components.some((c) => c.name === 'vpc-cni'))) {
          undecidedReason = ext?.value === 'true'
            ? `no SNAT rule exists: AWS_VPC_K8S_CNI_EXTERNALSNAT=true (${ext.ref.artifact}${ext.ref.line ? `:${ext.ref.line}` : ''}), so the VPC CNI leaves translation to a NAT gateway`
            : 'no SNAT rule exists in the nat table (the VPC CNI installs none when AWS_VPC_K8S_CNI_EXTERNALSNAT=true)'
        } else {
          undecidedReason = 'no SNAT or MASQUERADE rule applies to this flow'
        }
      }
    }
  }
  if (!engine.router.rulesKnown[family] && engine.router.routesKnown[family]) warnings.push(`no ip rule${family === 6 ? ' (IPv6)' : ''} output in the bundle: natlens assumed the kernel's default rules (local, main, default)`)
  if (!engine.router.routesKnown[family]) warnings.push(`no ${family === 6 ? 'IPv6 ' : ''}routes in the bundle: the egress interface is unknown`)
  if (!netfilter.present.any[family]) warnings.push(`no ${family === 6 ? 'ip6tables' : 'iptables'} or nft rules in the bundle: NAT and marks are unknown`)
  if (ctx.indeterminate) warnings.push('a rule natlens cannot evaluate was reached; the verdict may not hold (see the indeterminate steps)')
  const finalVerdict: Verdict = ctx.indeterminate && verdict !== 'dropped' ? 'insufficient-info' : verdict
  return {
    flow, finalFlow, verdict: finalVerdict, egressInterface: verdict === 'forwarded' ? egress : null, firstPacket: ctx.firstPacket,
    steps: ctx.steps, ...(decisive ? { decisive } : {}), ...(undecidedReason ? { undecidedReason } : {}),
    probability: ctx.choices.probability, warnings,
  }
}

/**
 * Why nothing translated the source: the last thing the packet met that kept it from a SNAT — the RETURN that left a
 * chain able to SNAT (the VPC CIDR exemption), or the SNAT-capable rule whose condition failed (`! -o vlan+`,
 * `! -d <VPC>`, addrtype LOCAL). A mark gate (kube-proxy's `! --mark 0x4000` RETURN) explains only when nothing else does.
 */
function findExemption(engine: Engine, ctx: WalkContext): Exemption | undefined {
  const { netfilter, state } = engine
  const candidates = ctx.exemptions
  let pick: Exemption | undefined
  for (let i = candidates.length - 1; i >= 0 && !pick; i--) if (!candidates[i]!.gate) pick = candidates[i]
  pick ??= candidates.at(-1)
  if (!pick) return undefined
  // A mark gate alone explains nothing when the VPC CNI owns no SNAT rule at all (EXTERNALSNAT=true).
  if (pick.gate && !netfilter.hasSnatRule(ctx.family, (r, t) => ownerOfRule(r, t) === 'vpc-cni', 'vpc-cni') && state.derived.components.some((c) => c.name === 'vpc-cni')) return undefined
  return pick
}
