// analyze: what the capture and conntrack show, set against what the node's rules predict.
// The legs of one connection across NAT are paired by what NAT leaves alone (TCP initial sequence number, IPv4 ID,
// ICMP echo sequence, the first payload bytes) within a time window; each pair gives the observed translation.
// conntrack entries are observations too: their reply tuple is the translation the kernel applied.
import { formatIp, isMulticast, parseIp, sameIp, type IpAddress } from '../model/ip.js'
import type { NodeState } from '../model/node-state.js'
import type { ConntrackEntry } from '../model/conntrack.js'
import type { Flow } from '../model/flow.js'
import { explain, prepare } from '../engine/explain.js'
import { toVerdictJson, type VerdictJson } from '../render/verdict-json.js'
import { PROTO_NAME, readConnections, type CaptureRead, type Connection } from './connections.js'

export interface EvidenceItem { file: string; line?: number; record?: number; text: string }

export interface ObservedJson {
  snat: boolean
  sourceAfter: string
  destinationAfter: string
  egressInterface: string | null
  /** Added field: the interface the pre-NAT leg arrived on, when the capture saw it. */
  ingressInterface: string | null
  evidence: EvidenceItem[]
}

export interface DiagnosisJson {
  kind: 'rules-changed' | 'foreign-nat' | 'capture-gap' | 'asymmetric-routing' | 'insufficient-state' | 'unexplained'
  text: string
  evidence: EvidenceItem[]
}

export interface AnalyzedFlowJson {
  flow: { src: string; sport: number | null; dst: string; dport: number | null; proto: string }
  observed: ObservedJson
  predicted: VerdictJson
  agree: boolean
  diagnosis: DiagnosisJson | null
  /** Added fields. */
  outcome: Outcome
  packets: number
  bytes: number
}

export type Outcome = 'snat-node' | 'snat-other' | 'pod-address' | 'dnat' | 'not-translated'

export interface UnpairedJson {
  flow: { src: string; sport: number | null; dst: string; dport: number | null; proto: string }
  seenOn: string[]
  why: string
  packets: number
  evidence: EvidenceItem[]
}

export interface FindingJson { kind: string; text: string; evidence: EvidenceItem[] }

export interface AnalysisJson {
  flows: AnalyzedFlowJson[]
  unpaired: UnpairedJson[]
  /** Added fields. */
  summary: { outcome: string; flows: number; bytes: number }[]
  findings: FindingJson[]
  captures: { file: string; packets: number; truncated: boolean }[]
  agreeing: number
  disagreeing: number
  /** Conversations left out: link-local or multicast (neighbour discovery, router solicitation), never routed. */
  notRouted: number
}

const WINDOW_NS = 2_000_000_000n

/** Per analysis: connection key → the note written on its packets by --write-pcapng. */
export const packetNotes = new WeakMap<AnalysisJson, Map<string, string>>()

function isLinkScoped(a: IpAddress): boolean {
  // fe80::/10; IPv4 link-local 169.254/16 except the egress plugin's 169.254.172.0/22, which pods route from.
  if (a.family === 6) return (a.value >> 118n) === 0x3fan
  return (a.value >> 16n) === 0xa9fen && (a.value >> 10n) !== (0xa9feac00n >> 10n)
}

function signature(c: Connection): string | undefined {
  if (c.proto === 6) return c.isn !== undefined ? `t:${c.isn}` : undefined
  if (c.proto === 1 || c.proto === 58) return c.icmpSeq !== undefined ? `i:${c.family === 4 ? c.ipId : ''}:${c.icmpSeq}:${c.digest ?? ''}` : undefined
  if (c.proto === 17 || c.proto === 132) return c.digest || c.ipId !== undefined ? `u:${c.family === 4 ? c.ipId : ''}:${c.payloadLength}:${c.digest ?? ''}` : undefined
  return undefined
}

function flowOf(c: Connection) {
  return { src: formatIp(c.src), sport: c.sport, dst: formatIp(c.dst), dport: c.dport, proto: PROTO_NAME[c.proto] ?? String(c.proto) }
}

function seen(c: Connection, dir: 'in' | 'out'): string | null {
  for (const [name, d] of c.fwd.interfaces) if (d === dir) return name
  return null
}

function ifaceList(c: Connection): string[] {
  return [...c.fwd.interfaces].map(([n, d]) => `${n} (${d})`)
}

function capEvidence(c: Connection, what: string): EvidenceItem {
  return { file: c.first.file, record: c.first.record, text: `${what}: ${PROTO_NAME[c.proto] ?? c.proto} ${formatIp(c.src)}${c.sport !== null ? `:${c.sport}` : ''} → ${formatIp(c.dst)}${c.dport !== null ? `:${c.dport}` : ''} on ${ifaceList(c).join(', ') || 'an unnamed interface'}, ${c.fwd.packets}+${c.rev.packets} packets` }
}

function ctEvidence(e: ConntrackEntry): EvidenceItem {
  return { file: e.ref.artifact, line: e.ref.line, text: e.ref.text.trim() }
}

interface ConntrackIndex {
  /** proto|src|dst of the original tuple → entries */
  readonly orig: Map<string, ConntrackEntry[]>
  /** proto|src|dst of the reply tuple turned around (what left the node) → entries */
  readonly reply: Map<string, ConntrackEntry[]>
}

const conntrackIndexes = new WeakMap<NodeState, ConntrackIndex>()

function addrKey(a: IpAddress): string {
  return `${a.family}:${a.value}`
}

/** conntrack entries by address pair, built once per state: every leg looks up its entry without a scan. */
function conntrackIndex(state: NodeState): ConntrackIndex {
  let idx = conntrackIndexes.get(state)
  if (idx) return idx
  idx = { orig: new Map(), reply: new Map() }
  const push = (m: Map<string, ConntrackEntry[]>, k: string, e: ConntrackEntry) => { const l = m.get(k); if (l) l.push(e); else m.set(k, [e]) }
  for (const e of state.conntrack) {
    push(idx.orig, `${e.proto}|${addrKey(e.orig.src)}|${addrKey(e.orig.dst)}`, e)
    push(idx.reply, `${e.proto}|${addrKey(e.reply.dst)}|${addrKey(e.reply.src)}`, e)
  }
  conntrackIndexes.set(state, idx)
  return idx
}

/** The conntrack entry whose original tuple is this leg, or whose reply tuple answers it. */
function entryFor(state: NodeState, c: Connection): { entry: ConntrackEntry; as: 'orig' | 'reply' } | undefined {
  const idx = conntrackIndex(state)
  const key = `${PROTO_NAME[c.proto]}|${addrKey(c.src)}|${addrKey(c.dst)}`
  for (const e of idx.orig.get(key) ?? []) {
    if ((c.sport === null || e.orig.sport === c.sport) && (c.dport === null || e.orig.dport === c.dport)) return { entry: e, as: 'orig' }
  }
  // A post-NAT leg: the reply tuple, turned around, is what left the node.
  for (const e of idx.reply.get(key) ?? []) {
    if ((c.sport === null || e.reply.dport === c.sport) && (c.dport === null || e.reply.sport === c.dport)) return { entry: e, as: 'reply' }
  }
  return undefined
}

interface Pairing {
  pre: Connection
  post?: Connection
  /** The translated addresses when only conntrack shows them. */
  after?: { src: IpAddress; dst: IpAddress; sport: number | null; dport: number | null }
  evidence: EvidenceItem[]
}

/** Orders the legs of a group: the leg that arrived (or came first) is before NAT, the one that left is after. */
function orderLegs(group: Connection[], state: NodeState): Connection[] {
  const podIps = new Set(state.derived.pods.map((p) => `${p.ip.family}:${p.ip.value}`))
  const score = (c: Connection) =>
    (seen(c, 'in') ? -2 : 0) + (seen(c, 'out') && !seen(c, 'in') ? 2 : 0) + (podIps.has(`${c.src.family}:${c.src.value}`) ? -1 : 0)
  return [...group].sort((a, b) => score(a) - score(b) || (a.firstNs < b.firstNs ? -1 : a.firstNs > b.firstNs ? 1 : 0))
}

export async function analyze(state: NodeState, capturePaths: readonly string[]): Promise<AnalysisJson> {
  const ifnames = new Map<number, string>()
  for (const i of state.interfaces) if (i.ifindex !== undefined) ifnames.set(i.ifindex, i.name)
  const read: CaptureRead = capturePaths.length ? await readConnections(capturePaths, ifnames) : { connections: [], result: { files: [], packets: 0, truncated: false, problems: [], warnings: [], unreadable: false }, sawAllInterfaces: false }
  const pairings: Pairing[] = []
  const unpaired: UnpairedJson[] = []
  const used = new Set<Connection>()

  // Link-local and multicast traffic (neighbour discovery, router solicitations) is never routed or NATed.
  let notRouted = 0
  const routed = read.connections.filter((c) => {
    const keep = !isLinkScoped(c.src) && !isLinkScoped(c.dst) && !isMulticast(c.dst) && !(c.dst.family === 4 && c.dst.value === 0xffffffffn)
    if (!keep) notRouted++
    return keep
  })
  // 1. Legs with the same signature, close in time, are one connection before and after NAT.
  const groups = new Map<string, Connection[]>()
  for (const c of routed) {
    const sig = signature(c)
    if (!sig) continue
    let g = groups.get(sig)
    if (!g) groups.set(sig, (g = []))
    g.push(c)
  }
  for (const g of groups.values()) {
    if (g.length < 2) continue
    g.sort((a, b) => (a.firstNs < b.firstNs ? -1 : 1))
    const cluster: Connection[] = []
    const flush = () => {
      if (cluster.length >= 2) {
        const [pre, ...rest] = orderLegs(cluster, state)
        const post = rest[rest.length - 1]!
        pairings.push({ pre: pre!, post, evidence: [capEvidence(pre!, 'before NAT'), capEvidence(post, 'after NAT')] })
        for (const c of cluster) used.add(c)
      }
      cluster.length = 0
    }
    for (const c of g) {
      if (cluster.length && c.firstNs - cluster[0]!.firstNs > WINDOW_NS) flush()
      if (!cluster.length || cluster.every((x) => x.proto === c.proto)) cluster.push(c)
    }
    flush()
  }

  // 2. Single legs: conntrack may show the other side; otherwise the leg speaks for itself.
  const localAddrs = new Set<string>()
  for (const r of state.routes) if (r.table === 'local' && r.type === 'local') localAddrs.add(`${r.family}:${r.dst.network}`)
  for (const i of state.interfaces) for (const a of i.addresses) localAddrs.add(`${a.address.family}:${a.address.value}`)
  const podIps = new Set(state.derived.pods.map((p) => `${p.ip.family}:${p.ip.value}`))
  for (const c of routed) {
    if (used.has(c)) continue
    const ct = entryFor(state, c)
    if (ct && ct.as === 'orig') {
      const e = ct.entry
      pairings.push({ pre: c, after: { src: e.reply.dst, dst: e.reply.src, sport: e.reply.dport, dport: e.reply.sport }, evidence: [capEvidence(c, 'seen'), ctEvidence(e)] })
      continue
    }
    if (ct && ct.as === 'reply') {
      const e = ct.entry
      // Only the post-NAT leg was captured: the flow as sent is conntrack's original tuple.
      const pre: Connection = { ...c, src: e.orig.src, dst: e.orig.dst, sport: e.orig.sport, dport: e.orig.dport, fwd: { packets: 0, bytes: 0, interfaces: new Map() } }
      pairings.push({ pre, post: c, evidence: [ctEvidence(e), capEvidence(c, 'after NAT')] })
      continue
    }
    const fromPod = podIps.has(`${c.src.family}:${c.src.value}`)
    const inOnly = seen(c, 'in') && !seen(c, 'out')
    const toNode = localAddrs.has(`${c.dst.family}:${c.dst.value}`)
    if (fromPod && inOnly && !toNode && read.sawAllInterfaces && c.fwd.packets > 0) {
      unpaired.push({ flow: flowOf(c), seenOn: ifaceList(c), packets: c.fwd.packets + c.rev.packets, evidence: [capEvidence(c, 'before NAT')],
        why: 'seen arriving from the pod, never leaving the node although the capture saw every interface: dropped on the node (or delivered locally)' })
      continue
    }
    pairings.push({ pre: c, evidence: [capEvidence(c, 'seen')] })
  }

  // 3. Each connection: the flow as sent, what was observed, what the rules predict.
  const flows: AnalyzedFlowJson[] = []
  const notes = new Map<string, string>()
  for (const p of pairings) {
    const pre = p.pre
    const proto = PROTO_NAME[pre.proto]
    if (!proto) continue
    const after = p.post ? { src: p.post.src, dst: p.post.dst } : p.after ?? { src: pre.src, dst: pre.dst }
    const egress = p.post ? seen(p.post, 'out') ?? (p.post.fwd.interfaces.size === 1 ? [...p.post.fwd.interfaces.keys()][0]! : null) : seen(pre, 'out')
    const ingress = seen(pre, 'in')
    const observed: ObservedJson = {
      snat: !sameIp(after.src, pre.src), sourceAfter: formatIp(after.src), destinationAfter: formatIp(after.dst),
      egressInterface: egress, ingressInterface: ingress, evidence: p.evidence,
    }
    const flow: Flow = { src: pre.src, dst: pre.dst, proto, sport: pre.sport, dport: pre.dport, ...(ingress ? { iif: ingress } : {}) }
    // Connections from one pod to one service differ in the source port: one walk serves them all.
    const predicted = toVerdictJson(explain(state, flow, { reuse: true }), state)
    const agreement = compare(predicted, observed)
    const note = `natlens: ${PROTO_NAME[pre.proto]} ${formatIp(pre.src)}${pre.sport !== null ? `:${pre.sport}` : ''} → ${formatIp(pre.dst)}${pre.dport !== null ? `:${pre.dport}` : ''}; observed ${observed.snat ? `SNAT to ${observed.sourceAfter}` : 'no SNAT'}${observed.egressInterface ? ` out ${observed.egressInterface}` : ''}; predicted ${predicted.snat ? `SNAT to ${predicted.sourceAfter}` : 'no SNAT'}${predicted.decidedBy ? ` (${predicted.decidedBy.file}:${predicted.decidedBy.line})` : ''}; ${agreement.agree ? 'agree' : 'DISAGREE'}`
    notes.set(pre.key, note)
    if (p.post) notes.set(p.post.key, note)
    flows.push({
      flow: flowOf(pre), observed, predicted, agree: agreement.agree,
      diagnosis: agreement.agree ? null : diagnose(state, predicted, observed, agreement.mismatch, p, read),
      outcome: outcomeOf(state, observed), packets: pre.fwd.packets + pre.rev.packets + (p.post ? p.post.fwd.packets + p.post.rev.packets : 0),
      bytes: pre.fwd.bytes + pre.rev.bytes + (p.post ? p.post.fwd.bytes + p.post.rev.bytes : 0),
    })
  }

  for (const u of unpaired) notes.set(`unpaired:${u.flow.src}`, '')
  const summary = summarise(flows, unpaired, read)
  const analysis: AnalysisJson = {
    flows, unpaired, summary, findings: findings(state, read),
    captures: read.result.files.map((f) => ({ file: f.path, packets: f.packets, truncated: f.truncated })),
    agreeing: flows.filter((f) => f.agree).length, disagreeing: flows.filter((f) => !f.agree).length, notRouted,
  }
  packetNotes.set(analysis, notes)
  return analysis
}

function compare(pred: VerdictJson, obs: ObservedJson): { agree: boolean; mismatch: string[] } {
  const mismatch: string[] = []
  // With kube-proxy's random endpoint choice, the branch that went where the packet went is the prediction.
  const candidates = pred.branches.length > 1 ? pred.branches : [pred]
  const branch = candidates.find((b) => b.destinationAfter === obs.destinationAfter) ?? candidates[0]!
  if (pred.snat === null) mismatch.push('the bundle lacks the nat table: natlens cannot predict SNAT')
  if (branch.destinationAfter !== null && branch.destinationAfter !== obs.destinationAfter) mismatch.push(`destination: predicted ${branch.destinationAfter}, observed ${obs.destinationAfter}`)
  if (branch.sourceAfter !== null && branch.sourceAfter !== obs.sourceAfter) mismatch.push(`source: predicted ${branch.sourceAfter}, observed ${obs.sourceAfter}`)
  if (branch.snat !== null && branch.snat !== obs.snat) mismatch.push(`snat: predicted ${branch.snat}, observed ${obs.snat}`)
  if (obs.egressInterface && branch.egressInterface && branch.egressInterface !== obs.egressInterface) mismatch.push(`egress: predicted ${branch.egressInterface}, observed ${obs.egressInterface}`)
  return { agree: mismatch.length === 0, mismatch }
}

function outcomeOf(state: NodeState, o: ObservedJson): Outcome {
  if (o.snat) return state.derived.primaryAddress && formatIp(state.derived.primaryAddress) === o.sourceAfter ? 'snat-node' : 'snat-other'
  if (o.destinationAfter !== undefined && o.evidence.length && o.destinationAfter !== o.evidence[0]!.text.split(' → ')[1]?.split(':')[0]) return 'dnat'
  return state.derived.pods.some((p) => formatIp(p.ip) === o.sourceAfter) ? 'pod-address' : 'not-translated'
}

const OUTCOME_TEXT: Record<Outcome, string> = {
  'snat-node': 'SNATed to the node address',
  'snat-other': 'SNATed to another address',
  'pod-address': 'left with the pod address',
  dnat: 'DNATed',
  'not-translated': 'not translated (host or external)',
}

function summarise(flows: AnalyzedFlowJson[], unpaired: UnpairedJson[], read: CaptureRead) {
  const rows = new Map<string, { flows: number; bytes: number }>()
  for (const f of flows) {
    const k = OUTCOME_TEXT[f.outcome]
    const r = rows.get(k) ?? { flows: 0, bytes: 0 }
    r.flows++; r.bytes += f.bytes
    rows.set(k, r)
  }
  if (unpaired.length) rows.set('unpaired (no post-NAT leg)', { flows: unpaired.length, bytes: 0 })
  void read
  return [...rows].map(([outcome, r]) => ({ outcome, ...r }))
}

function diagnose(state: NodeState, pred: VerdictJson, obs: ObservedJson, mismatch: string[], p: Pairing, read: CaptureRead): DiagnosisJson {
  const detail = mismatch.join('; ')
  if (pred.snat === null || pred.verdict === 'insufficient-info') {
    return { kind: 'insufficient-state', text: `${detail}. The bundle lacks what the prediction needs: ${pred.warnings.join(' ') || 'see the prediction\'s warnings'}`, evidence: [] }
  }
  // Another writer of NAT rules: an nft table no known component owns, with a nat chain; or a translation that no
  // rule in the bundle can produce while the bundle has no nft listing (the EKS log collector does not take one).
  const foreign = state.tables.filter((t) => t.origin === 'nft' && !['aws-cni', 'kube-proxy', 'nat', 'filter', 'mangle', 'raw'].includes(t.name) && [...t.chains.values()].some((c) => c.type === 'nat'))
  const unexplainedSource = obs.snat && !producible(state, obs.sourceAfter, obs.egressInterface)
  if ((foreign.length && (obs.snat !== pred.snat || obs.sourceAfter !== pred.sourceAfter)) || (unexplainedSource && !state.present.has('nft-ruleset'))) {
    const rules = foreign.flatMap((t) => [...t.chains.values()].flatMap((c) => c.rules.filter((r) => r.target.kind === 'snat' || r.target.kind === 'masquerade' || r.target.kind === 'dnat')))
    const where = foreign.length
      ? `nft table ${foreign.map((t) => `${t.family} ${t.name}`).join(', ')} has NAT rules that natlens does not attribute to the VPC CNI or kube-proxy; check which agent installed it`
      : `no rule in the bundle translates to ${obs.sourceAfter}, and the bundle has no nft listing: a native nft table (or another CNI) most likely did it; collect \`nft list ruleset\` (natlens collect does)`
    return {
      kind: 'foreign-nat', text: `${detail}. Another component rewrote the packet: ${where}.`,
      evidence: [...rules.slice(0, 5).map((r) => ({ file: r.ref.artifact, line: r.ref.line, text: r.ref.text.trim() })), ...p.evidence],
    }
  }
  const ct = p.evidence.find((e) => e.line !== undefined)
  const observedFromKernel = ct || p.post
  if (observedFromKernel && (obs.sourceAfter !== pred.sourceAfter || obs.snat !== pred.snat)) {
    return {
      kind: 'rules-changed',
      text: `${detail}. The kernel translated this connection differently from what the rules in the bundle predict. The nat table decides only the first packet of a connection and conntrack keeps that decision, so the rules most likely changed after the connection started (an ipamd restart, a setting change, another agent rewriting iptables): collect the state again while the flow is new (\`natlens collect --capture 30s\`).`,
      evidence: p.evidence,
    }
  }
  if (obs.egressInterface && pred.egressInterface && obs.egressInterface !== pred.egressInterface) {
    const rp = [...state.sysctls.values()].filter((s) => /rp_filter$/.test(s.name) && s.value.trim() === '1')
    return {
      kind: 'asymmetric-routing',
      text: `${detail}. The packet left through another interface than the routing rules choose: policy routing changed (ip rules, connmark) or the route was different when it was sent${rp.length ? `; strict rp_filter on ${rp.map((s) => s.name).join(', ')} drops replies that come back on the other interface` : ''}.`,
      evidence: [...p.evidence, ...rp.map((s) => ({ file: s.ref.artifact, line: s.ref.line, text: s.ref.text }))],
    }
  }
  if (!obs.egressInterface && !read.sawAllInterfaces) {
    return { kind: 'capture-gap', text: `${detail}. The capture did not see the packet leave (it was not taken on every interface): capture with \`-i any\` to see both legs.`, evidence: p.evidence }
  }
  return { kind: 'unexplained', text: detail, evidence: p.evidence }
}

/**
 * Whether some rule in the bundle can give a packet this source address: SNAT to it, or MASQUERADE out of an
 * interface whose preferred address it is (MASQUERADE never picks a secondary address).
 */
function producible(state: NodeState, address: string, egress: string | null): boolean {
  let masquerade = false
  for (const t of state.tables) for (const c of t.chains.values()) for (const r of c.rules) {
    if (r.target.kind === 'snat' && r.target.to.some((x) => x.minAddr && formatIp(x.minAddr) === address)) return true
    if (r.target.kind === 'masquerade') masquerade = true
  }
  if (!masquerade) return false
  const a = parseIp(address)
  if (!a) return false
  const book = prepare(state).addresses
  if (egress) return sameIp(book.preferredSource(egress, a.family), a)
  return state.interfaces.some((i) => sameIp(book.preferredSource(i.name, a.family), a))
}

function findings(state: NodeState, read: CaptureRead): FindingJson[] {
  const out: FindingJson[] = []
  // SNAT port exhaustion: many connection attempts to one destination that never got an answer.
  const stalled = new Map<string, Connection[]>()
  for (const c of read.connections) {
    if (c.proto !== 6 || !c.synSeen || c.synAckSeen) continue
    const k = `${formatIp(c.dst)}:${c.dport}`
    const l = stalled.get(k) ?? []
    l.push(c)
    stalled.set(k, l)
  }
  const insertFailed = state.conntrackStats.reduce((n, s) => n + (s.counters['insert_failed'] ?? 0), 0)
  for (const [dst, all] of stalled) {
    // Both legs of a NATed connection show the same SYN: count connections by their initial sequence number.
    const seenIsn = new Set<number | undefined>()
    const list = all.filter((c) => (c.isn === undefined ? true : !seenIsn.has(c.isn) && !!seenIsn.add(c.isn)))
    if (list.length < 20) continue
    out.push({
      kind: 'snat-port-exhaustion',
      text: `${list.length} TCP connections to ${dst} sent SYN and got no SYN-ACK${insertFailed ? `, and conntrack reports insert_failed=${insertFailed}` : ''}: signs of SNAT port exhaustion (too many connections from one source address to one destination); spread them over more destinations or addresses, or check --random-fully on the SNAT rule.`,
      evidence: [capEvidence(list[0]!, 'first stalled connection'), ...state.conntrackStats.filter((s) => (s.counters['insert_failed'] ?? 0) > 0).map((s) => ({ file: s.ref.artifact, line: s.ref.line, text: s.ref.text }))],
    })
  }
  if (insertFailed > 0 && !out.length) {
    out.push({ kind: 'conntrack-insert-failed', text: `conntrack reports insert_failed=${insertFailed}: connections were dropped because their NAT tuple clashed (SNAT port collisions)`, evidence: state.conntrackStats.filter((s) => (s.counters['insert_failed'] ?? 0) > 0).map((s) => ({ file: s.ref.artifact, line: s.ref.line, text: s.ref.text })) })
  }
  for (const p of read.result.problems) out.push({ kind: 'capture-damaged', text: `${p.artifact}: ${p.message}`, evidence: [] })
  return out
}

export { readConnections }
