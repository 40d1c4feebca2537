// The report as data (`natlens report --format json`, schemas/report.schema.json): the node summary is inspect's
// JSON, each flow's verdict is explain's JSON for the same Explanation, so the report never re-derives a verdict.
// The HTML and Markdown renderings are built from this object alone.
import { formatCidr, formatIp, sameIp } from '../../model/ip.js'
import type { NodeState } from '../../model/node-state.js'
import type { Rule } from '../../model/netfilter.js'
import { tableAppliesTo } from '../../model/netfilter.js'
import { toInspectJson, type InspectJson } from '../inspect.js'
import { toVerdictJson, type VerdictJson } from '../verdict-json.js'
import { buildPacketGraph, type PacketGraph } from '../graph/model.js'
import type { CaptureComparison, EvidenceRef, Finding, ObservedFlow, ReportInput } from './input.js'
import { manifestSummary, type ManifestSummary, type RedactionSummary } from './manifest.js'

export const REPORT_SCHEMA_VERSION = 1

export interface ReportFlowJson {
  readonly index: number
  readonly label: string
  /** The pod the flow comes from (its address), when the source is a known pod. */
  readonly pod: string | null
  readonly verdict: VerdictJson
}

export interface PodSectionJson {
  readonly ip: string
  readonly name: string | null
  readonly hostVeth: string | null
  readonly eni: string | null
  readonly table: string | null
  readonly kind: string
  /** One sentence over the pod's flows: where it leaves as which address. */
  readonly summary: string
  /** Indices into `flows`. */
  readonly flows: number[]
}

export type ObservedSectionJson =
  | {
    readonly status: 'compared'; readonly captures: CaptureComparison['captures']; readonly flows: readonly ObservedFlow[]
    readonly unpaired: NonNullable<CaptureComparison['unpaired']>; readonly findings: NonNullable<CaptureComparison['findings']>
    readonly agree: number; readonly disagree: number
  }
  | { readonly status: 'not-compared'; readonly captures: readonly string[]; readonly reason: string }

export type ProblemsSectionJson = (
  | { readonly status: 'checked'; readonly checked: readonly string[]; readonly skipped: readonly { readonly id: string; readonly reason: string }[]; readonly findings: readonly Finding[] }
  | { readonly status: 'not-checked'; readonly reason: string }
) & {
  /** Warnings explain gave for the flows (the same text), each with the flows that gave it. */
  readonly flowWarnings: readonly { readonly text: string; readonly flows: number[] }[]
}

export interface ReportJson {
  readonly report: { readonly tool: 'natlens'; readonly kind: 'report'; readonly schema: number; readonly version: string | null }
  readonly summary: {
    readonly nodeAddress: string | null
    readonly primaryInterface: string | null
    readonly flows: number
    /** Flows whose source is translated. */
    readonly snat: number
    /** Flows that leave or are delivered with their own source. */
    readonly keptAddress: number
    /** Flows natlens cannot decide (SNAT unknown, or a rule it cannot evaluate). */
    readonly undecided: number
    /** Flows dropped or without a route. */
    readonly dropped: number
    /** Findings of the checks; null when no checks ran. */
    readonly problems: number | null
    /** Captured connections that disagree with the prediction; null when nothing was compared. */
    readonly disagreements: number | null
  }
  readonly snatPolicy: { readonly statements: readonly { readonly text: string; readonly evidence: readonly EvidenceRef[] }[] }
  readonly node: InspectJson
  readonly flows: readonly ReportFlowJson[]
  readonly pods: readonly PodSectionJson[]
  /** Flows whose source is not a pod of this node (host processes, outside clients). */
  readonly otherFlows: number[]
  readonly graph: { readonly highlightedFlow: number | null; readonly model: PacketGraph }
  readonly observed: ObservedSectionJson
  readonly problems: ProblemsSectionJson
  readonly inputs: {
    readonly given: readonly string[]
    readonly captures: readonly string[]
    /** The bundle's manifest.json (natlens collect), read into what a reader needs; null without one. */
    readonly manifest: ManifestSummary | null
    /** What the collector redacted; null when the bundle does not say. */
    readonly redaction: RedactionSummary | null
  }
}

export function buildReport(input: ReportInput): ReportJson {
  const { state } = input
  const node = toInspectJson(state)
  const flows: ReportFlowJson[] = input.flows.map((f, index) => {
    const verdict = toVerdictJson(f.explanation, state)
    const pod = state.derived.pods.find((p) => sameIp(p.ip, f.explanation.flow.src))
    return { index, label: f.label ?? defaultLabel(verdict), pod: pod ? formatIp(pod.ip) : null, verdict }
  })
  const pods: PodSectionJson[] = state.derived.pods.map((p) => {
    const ip = formatIp(p.ip)
    const mine = flows.filter((f) => f.pod === ip)
    return {
      ip, name: p.name ?? null, hostVeth: p.hostVeth ?? null, eni: p.eni ?? null, table: p.table ?? null, kind: p.kind,
      summary: podSummary(mine), flows: mine.map((f) => f.index),
    }
  })
  const otherFlows = flows.filter((f) => f.pod === null).map((f) => f.index)

  const highlighted = input.flows.length === 0 ? null
    : input.graphFlow !== undefined && input.graphFlow >= 0 && input.graphFlow < input.flows.length ? input.graphFlow
      : Math.max(0, flows.findIndex((f) => f.verdict.snat === true))
  const trace = highlighted !== null ? input.flows[highlighted]!.explanation.trace : undefined
  const model = buildPacketGraph(state, trace ? { trace } : {})

  const bundleCaptures = (state.captures ?? []).map((c) => c.artifact)
  const captures = [...(input.captures ?? []), ...bundleCaptures]
  const observed: ObservedSectionJson = input.analysis
    ? {
      status: 'compared', captures: input.analysis.captures, flows: input.analysis.flows, unpaired: input.analysis.unpaired ?? [], findings: input.analysis.findings ?? [],
      agree: input.analysis.flows.filter((f) => f.agree).length, disagree: input.analysis.flows.filter((f) => !f.agree).length,
    }
    : {
      status: 'not-compared', captures,
      reason: captures.length
        ? `The captures (${captures.join(', ')}) were not compared with the predictions: they are inside a tarball; extract them and give them with --pcap`
        : 'Not available: run with --pcap FILE (a capture taken on the node while the flow was active)',
    }

  const warnings = new Map<string, number[]>()
  for (const f of flows) for (const w of f.verdict.warnings) {
    let list = warnings.get(w)
    if (!list) warnings.set(w, (list = []))
    list.push(f.index)
  }
  const flowWarnings = [...warnings].map(([text, idx]) => ({ text, flows: idx }))
  const problems: ProblemsSectionJson = input.checks
    ? { status: 'checked', checked: input.checks.checked, skipped: input.checks.skipped ?? [], findings: input.checks.findings, flowWarnings }
    : { status: 'not-checked', reason: 'No checks ran (natlens doctor)', flowWarnings }

  const count = (p: (v: VerdictJson) => boolean) => flows.filter((f) => p(f.verdict)).length
  const dropped = (v: VerdictJson) => v.verdict === 'dropped' || v.verdict === 'no-route'
  const manifest = state.manifest ? manifestSummary(state.manifest) : null
  return {
    report: { tool: 'natlens', kind: 'report', schema: REPORT_SCHEMA_VERSION, version: input.version ?? null },
    summary: {
      nodeAddress: node.node.primaryAddress,
      primaryInterface: node.node.primaryInterface,
      flows: flows.length,
      // The four counts partition the flows: an insufficient-info flow is undecided whatever its tentative SNAT says.
      snat: count((v) => v.snat === true && !dropped(v) && v.verdict !== 'insufficient-info'),
      keptAddress: count((v) => v.snat === false && !dropped(v) && v.verdict !== 'insufficient-info'),
      undecided: count((v) => !dropped(v) && (v.snat === null || v.verdict === 'insufficient-info')),
      dropped: count(dropped),
      problems: problems.status === 'checked' ? problems.findings.length : null,
      disagreements: observed.status === 'compared' ? observed.disagree : null,
    },
    snatPolicy: { statements: snatPolicyStatements(state) },
    node, flows, pods, otherFlows,
    graph: { highlightedFlow: highlighted, model },
    observed, problems,
    inputs: { given: [...input.inputs], captures, manifest: manifest?.summary ?? null, redaction: manifest?.redaction ?? null },
  }
}

export function tupleWords(f: { proto: string; src: string; sport: number | null; dst: string; dport: number | null }): string {
  const port = (p: number | null) => (p === null ? '' : `:${p}`)
  return `${f.proto} ${f.src}${port(f.sport)} → ${f.dst}${port(f.dport)}`
}

/** "as 10.0.3.45 out eth0, to 10.0.20.15" for what a capture showed. */
export function observedWords(o: ObservedFlow['observed'], sentTo: string): string {
  return `as ${o.sourceAfter}${o.egressInterface ? ` out ${o.egressInterface}` : ''}${o.destinationAfter !== sentTo ? `, to ${o.destinationAfter}` : ''}`
}

/**
 * The prediction for a captured connection: for a Service with several endpoints, the branch that went where the
 * capture saw the packet go (the branch analyze compared), with its probability.
 */
export function predictedWords(p: VerdictJson, o: ObservedFlow['observed']): string {
  const b = p.branches.length > 1 ? p.branches.find((x) => x.destinationAfter === o.destinationAfter) : undefined
  const v = b ?? p
  const as = v.snat ? ` as ${v.sourceAfter}` : v.snat === false ? ' keeping its address' : ''
  const to = v.destinationAfter && v.destinationAfter !== p.flow.dst ? `, to ${v.destinationAfter}` : ''
  return `${v.verdict}${as}${v.egressInterface ? ` out ${v.egressInterface}` : ''}${to}${b ? ` (one of ${p.branches.length} endpoints, p=${b.probability})` : ''}`
}

export function evidenceAt(e: { file: string; line?: number; record?: number }): string {
  return e.line ? `${e.file}:${e.line}` : e.record !== undefined ? `${e.file}#${e.record}` : e.file
}

function defaultLabel(v: VerdictJson): string {
  const port = (p: number | null) => (p === null ? '' : `:${p}`)
  return `${v.flow.proto} ${v.flow.src}${port(v.flow.sport)} → ${v.flow.dst}${port(v.flow.dport)}`
}

/** "the internet" from `10.0.9.88 (eth1) → 203.0.113.10 (the internet)`; the address otherwise. */
export function destinationWords(f: ReportFlowJson): string {
  const m = /→\s*(\S+)\s*\(([^()]*)\)\s*$/.exec(f.label)
  return m ? `${m[2]} (${m[1]})` : f.verdict.flow.dst
}

export function outcomeWords(v: VerdictJson): string {
  if (v.verdict === 'dropped') return 'is dropped'
  if (v.verdict === 'no-route') return 'has no route'
  const out = v.egressInterface ? ` out ${v.egressInterface}` : v.verdict === 'delivered' ? ' (delivered on the node)' : ''
  if (v.snat === null || v.verdict === 'insufficient-info') return `cannot be decided${out}`
  return v.snat ? `leaves as ${v.sourceAfter}${out}` : `keeps its address${out}`
}

function podSummary(flows: readonly ReportFlowJson[]): string {
  if (flows.length === 0) return 'no flows explained'
  const groups = new Map<string, string[]>()
  for (const f of flows) {
    const k = outcomeWords(f.verdict)
    let list = groups.get(k)
    if (!list) groups.set(k, (list = []))
    list.push(destinationWords(f))
  }
  return [...groups].map(([outcome, dests]) => `${outcome} to ${dests.join(', ')}`).join('; ')
}

const ev = (r: { artifact: string; line: number; text: string }): EvidenceRef => ({ file: r.artifact, line: r.line, text: r.text.trim() })

function ruleAt(state: NodeState, file: string, line: number): Rule | undefined {
  for (const t of state.tables) for (const c of t.chains.values()) for (const r of c.rules) if (r.ref.artifact === file && r.ref.line === line) return r
  return undefined
}

/**
 * The SNAT policy in plain words with its evidence. The IPv4 sentence is the one `inspect` gives (derived from the VPC
 * CNI's SNAT chain); nodes with IPv6 pods add what the egress-cni plugin does for their IPv4 traffic and that IPv6
 * itself is not translated.
 */
export function snatPolicyStatements(state: NodeState): { text: string; evidence: EvidenceRef[] }[] {
  const out: { text: string; evidence: EvidenceRef[] }[] = []
  const d = state.derived
  if (d.snatPolicy) {
    const evidence: EvidenceRef[] = []
    const cited = /: rule (.+):(\d+)$/.exec(d.snatPolicy)
    const rule = cited ? ruleAt(state, cited[1]!, Number(cited[2])) : undefined
    if (rule) evidence.push(ev(rule.ref))
    for (const c of [...d.vpcCidrs, ...d.excludeCidrs]) if (!evidence.some((e) => e.file === c.ref.artifact && e.line === c.ref.line)) evidence.push(ev(c.ref))
    const ext = state.settings.get('AWS_VPC_K8S_CNI_EXTERNALSNAT')
    if (!rule && ext) evidence.push(ev(ext.ref))
    out.push({ text: d.snatPolicy, evidence })
  }
  // egress-cni: one CNI-E4-<id> chain per IPv6 pod, ending in SNAT to the node's IPv4 address; with ENABLE_V6_EGRESS,
  // one CNI-E6-<id> chain per IPv4 pod, ending in SNAT to the node's IPv6 address (vpc-cni.md §6.2, §6.3).
  for (const [family, prefix, legKind, what] of [[4, 'CNI-E4-', 'egress-v4', 'IPv4 traffic from IPv6 pods'], [6, 'CNI-E6-', 'egress-v6', 'IPv6 traffic from IPv4 pods']] as const) {
    const egress: Rule[] = []
    for (const t of state.tables) {
      if (t.name !== 'nat' || !tableAppliesTo(t.family, family)) continue
      for (const c of t.chains.values()) if (c.name.startsWith(prefix)) for (const r of c.rules) if (r.target.kind === 'snat' || r.target.kind === 'masquerade') egress.push(r)
    }
    if (egress.length === 0) continue
    const first = egress[0]!
    const to = first.target.kind === 'snat' && first.target.to[0]?.minAddr ? formatIp(first.target.to[0].minAddr) : 'the address of the interface it leaves by'
    const legs = d.pods.filter((p) => p.kind === legKind).map((p) => formatIp(p.ip))
    out.push({
      text: `${what} (through the egress-cni plugin${legs.length ? `, pod side ${legs.join(', ')}` : ''}) leaves as ${to}: rule ${first.ref.artifact}:${first.ref.line}${egress.length > 1 ? ` (and ${egress.length - 1} more, one chain per pod)` : ''}`,
      evidence: egress.slice(0, 4).map((r) => ev(r.ref)),
    })
  }
  const v6pods = d.pods.filter((p) => p.ip.family === 6 && p.kind !== 'egress-v6')
  if (v6pods.length) {
    const v6Snat = state.tables.some((t) => tableAppliesTo(t.family, 6) && [...t.chains.values()].some((c) => c.rules.some((r) => (r.target.kind === 'snat' || r.target.kind === 'masquerade') && /^AWS-/.test(r.chain))))
    if (!v6Snat) out.push({ text: `IPv6 traffic from pods (${v6pods.map((p) => formatIp(p.ip)).slice(0, 3).join(', ')}${v6pods.length > 3 ? ', …' : ''}) keeps the pod's address: the VPC CNI has no IPv6 SNAT rule`, evidence: [] })
  }
  if (out.length === 0) {
    const hasNat = state.tables.some((t) => t.name === 'nat' || [...t.chains.values()].some((c) => c.type === 'nat'))
    out.push({
      text: hasNat
        ? `no SNAT policy of the VPC CNI found: the nat table has no AWS SNAT rule${d.vpcCidrs.length ? ` (VPC CIDRs ${d.vpcCidrs.map((c) => formatCidr(c.cidr)).join(', ')})` : ''}`
        : 'no SNAT policy can be read: the bundle has no nat table (collect `iptables-save -t nat`)',
      evidence: [],
    })
  }
  return out
}
