// Human output of explain: a short paragraph, the setting that would change it, and the step table.
import { formatFlow } from '../model/flow.js'
import type { VerdictJson } from './verdict-json.js'
import { makeTable } from './table.js'

export function renderExplanation(v: VerdictJson, options: { steps?: boolean } = {}): string {
  const lines: string[] = []
  const flow = `${v.flow.proto} ${v.flow.src}${v.flow.sport !== null ? `:${v.flow.sport}` : ''} → ${v.flow.dst}${v.flow.dport !== null ? `:${v.flow.dport}` : ''} (${v.flow.origin}${v.flow.iif ? ` via ${v.flow.iif}` : ''})`
  lines.push(flow)
  const head = v.snat === null ? 'SNAT unknown' : v.snat ? `SNAT → ${v.sourceAfter}` : 'no SNAT'
  lines.push(`  ${head} · ${v.verdict}${v.egressInterface ? ` out ${v.egressInterface}` : ''}${v.destinationAfter && v.destinationAfter !== v.flow.dst ? ` · DNAT → ${v.destinationAfter}` : ''}${v.owner ? ` · decided by ${v.owner}` : ''}`)
  lines.push(`  ${v.reason}`)
  if (v.decidedBy) lines.push(`  rule: ${v.decidedBy.file}:${v.decidedBy.line}  ${v.decidedBy.rule}`)
  if (v.setting) lines.push(`  to change it: ${v.setting}`)
  for (const w of v.warnings) lines.push(`  warning: ${w}`)
  if (v.branches.length > 1) {
    const t = makeTable(['p', 'destination after', 'SNAT', 'source after', 'egress'])
    for (const b of v.branches) t.push([b.probability.toFixed(3), b.destinationAfter ?? '?', b.snat === null ? '?' : b.snat ? 'yes' : 'no', b.sourceAfter ?? '?', b.egressInterface ?? b.verdict])
    lines.push(t.toString())
  }
  if (options.steps !== false && v.steps.length) {
    const t = makeTable(['#', 'step', 'evidence'])
    v.steps.forEach((s, i) => t.push([String(i + 1), s.summary, s.evidence ? `${s.evidence.file}${s.evidence.line ? `:${s.evidence.line}` : ''}\n${s.evidence.text.trim()}` : '']))
    lines.push(t.toString())
  }
  return lines.join('\n')
}

/** One row a flow, for --all-pods and --flows. */
export function renderVerdictTable(rows: { label?: string; verdict: VerdictJson }[]): string {
  const t = makeTable(['flow', 'SNAT', 'leaves as', 'egress', 'decided by'])
  for (const { label, verdict: v } of rows) {
    const dnat = v.destinationAfter && v.destinationAfter !== v.flow.dst ? `\n  DNAT → ${v.branches.length > 1 ? v.branches.map((b) => b.destinationAfter).join(' | ') : v.destinationAfter}` : ''
    const flow = (label ?? `${v.flow.src} → ${v.flow.dst}${v.flow.dport !== null ? `:${v.flow.dport}` : ''}`) + dnat
    t.push([flow, v.snat === null ? '?' : v.snat ? 'yes' : 'no', v.sourceAfter ?? '?', v.egressInterface ?? v.verdict,
      v.decidedBy ? `${v.owner ?? ''} ${v.decidedBy.file}:${v.decidedBy.line}` : v.reason.replace(/^.*?: /, '').slice(0, 60)])
  }
  return t.toString()
}

export { formatFlow }
