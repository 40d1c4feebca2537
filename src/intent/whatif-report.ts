// The JSON contract of `natlens whatif --json` (schemas/whatif.schema.json) and its rendering for people. Fields may
// be added, never renamed.
import { makeTable } from '../render/table.js'
import { formatIp } from '../model/ip.js'
import type { VerdictJson, BranchJson } from '../render/verdict-json.js'
import { ERA_LABEL } from './model.js'
import type { WhatIfResult } from './whatif-run.js'

export interface EvidenceJson { file: string; line: number; text: string }

export interface OutcomeJson {
  verdict: string
  snat: boolean | null
  sourceAfter: string | null
  destinationAfter: string | null
  egressInterface: string | null
  decidedBy: VerdictJson['decidedBy']
  /** One entry per alternative when kube-proxy picks an endpoint at random; empty otherwise. */
  branches: BranchJson[]
}

export interface WhatIfJson {
  changes: { setting: string; before: string; after: string; evidence: EvidenceJson | null }[]
  era: string
  rules: {
    removed: (EvidenceJson & { layer: string })[]
    added: { table: string; text: string; layer: string }[]
  }
  /** The changed backend's tables as iptables-restore input, table ip aws-cni as nft input, and ip rules/routes to add. */
  restore: { backend: string; iptables: string; nft: string | null; ipRules: string[]; routes: string[] }
  flowSource: 'capture' | 'all-pods' | 'given'
  flows: {
    label: string | null
    flow: { src: string; sport: number | null; dst: string; dport: number | null; proto: string; origin: string }
    changed: string[]
    before: OutcomeJson
    after: OutcomeJson
  }[]
  summary: { flows: number; changed: number }
  warnings: string[]
}

const outcome = (v: VerdictJson): OutcomeJson => ({
  verdict: v.verdict, snat: v.snat, sourceAfter: v.sourceAfter, destinationAfter: v.destinationAfter, egressInterface: v.egressInterface, decidedBy: v.decidedBy, branches: v.branches,
})

export function toWhatIfJson(r: WhatIfResult): WhatIfJson {
  const w = r.whatif
  return {
    changes: w.settings.map((s) => ({ setting: s.setting, before: s.before, after: s.after, evidence: s.ref ? { file: s.ref.artifact, line: s.ref.line, text: s.ref.text } : null })),
    era: ERA_LABEL[w.before.inputs.era.era],
    rules: {
      removed: w.removed.map((x) => ({ file: x.ref.artifact, line: x.ref.line, text: x.text, layer: x.layer })),
      added: w.added.map((x) => ({ table: x.table, text: x.text, layer: x.layer })),
    },
    restore: { backend: w.restore.backend, iptables: w.restore.iptables, nft: w.restore.nft, ipRules: [...w.restore.ipRules], routes: [...w.restore.routes] },
    flowSource: r.flowSource,
    flows: r.flows.map((f) => ({
      label: f.label ?? null,
      flow: { src: formatIp(f.flow.src), sport: f.flow.sport, dst: formatIp(f.flow.dst), dport: f.flow.dport, proto: f.flow.proto, origin: f.before.flow.origin },
      changed: [...f.changed], before: outcome(f.before), after: outcome(f.after),
    })),
    summary: { flows: r.flows.length, changed: r.flows.filter((f) => f.changed.length > 0).length },
    warnings: [...w.warnings],
  }
}

function show(o: OutcomeJson): string {
  const list = o.branches.length ? o.branches : [o]
  return list.map((b) => b.verdict === 'forwarded' || b.verdict === 'delivered'
    ? `${b.sourceAfter ?? '?'} out ${b.egressInterface ?? (b.verdict === 'delivered' ? '(local)' : '?')}${o.branches.length ? ` → ${b.destinationAfter ?? '?'}` : ''}`
    : b.verdict).join('\n')
}

export function renderWhatIf(j: WhatIfJson, options: { all?: boolean; rules?: boolean } = {}): string {
  const out: string[] = []
  out.push(`What if (${j.era}):`)
  for (const c of j.changes) out.push(`  ${c.setting}: ${c.before || '(empty)'} → ${c.after || '(empty)'}${c.evidence && c.evidence.line ? `   (now: ${c.evidence.file}:${c.evidence.line})` : ''}`)
  if (j.rules.removed.length || j.rules.added.length) {
    out.push('', 'Rules:')
    for (const r of j.rules.removed) out.push(`  - ${r.text}   (${r.file}${r.line ? `:${r.line}` : ''})`)
    for (const r of j.rules.added) out.push(`  + ${r.text}`)
  } else {
    out.push('', 'Rules: no rule changes.')
  }
  const rows = j.flows.filter((f) => options.all || f.changed.length > 0)
  out.push('', `Flows (${j.flowSource === 'capture' ? 'from the capture' : j.flowSource === 'all-pods' ? 'every pod to representative destinations' : 'given'}): ${j.summary.changed} of ${j.summary.flows} change their source address or egress interface.`)
  if (rows.length) {
    const t = makeTable(['flow', 'now: source / out', 'after: source / out', 'changes'])
    for (const f of rows) t.push([f.label ?? `${f.flow.proto} ${f.flow.src} → ${f.flow.dst}${f.flow.dport !== null ? `:${f.flow.dport}` : ''}`, show(f.before), show(f.after), f.changed.join(', ') || '-'])
    out.push(t.toString())
  }
  if (options.rules) {
    out.push('', `iptables-restore input (${j.restore.backend}):`, j.restore.iptables.trimEnd())
    if (j.restore.nft) out.push('', 'nft -f input:', j.restore.nft.trimEnd())
    for (const r of j.restore.ipRules) out.push(`ip rule: ${r}`)
    for (const r of j.restore.routes) out.push(`ip route: ${r}`)
  }
  if (j.warnings.length) out.push('', ...j.warnings.map((w) => `note: ${w}`))
  return out.join('\n')
}
