// Human output of analyze: the summary by outcome, then one row a flow (observed vs predicted), then what disagrees.
import type { AnalysisJson } from '../analyze/analyze.js'
import { makeTable } from './table.js'

export function renderAnalysis(a: AnalysisJson): string {
  const out: string[] = []
  const packets = a.captures.reduce((n, c) => n + c.packets, 0)
  out.push(`Captures: ${a.captures.map((c) => `${c.file} (${c.packets} packets${c.truncated ? ', truncated' : ''})`).join(', ') || 'none'}; ${packets} packets`)
  const s = makeTable(['outcome', 'flows', 'bytes'])
  for (const r of a.summary) s.push([r.outcome, String(r.flows), String(r.bytes)])
  out.push(s.toString())
  const t = makeTable(['flow', 'observed', 'predicted', ''])
  for (const f of a.flows) {
    const ep = (h: string, p: number | null) => (p === null ? h : `${h}:${p}`)
    const flow = `${f.flow.proto} ${ep(f.flow.src, f.flow.sport)} → ${ep(f.flow.dst, f.flow.dport)}`
    const o = f.observed
    const p = f.predicted
    t.push([flow,
      `${o.snat ? 'SNAT' : 'kept'} ${o.sourceAfter}${o.destinationAfter !== f.flow.dst ? ` → ${o.destinationAfter}` : ''}${o.egressInterface ? ` out ${o.egressInterface}` : ''}`,
      `${p.snat === null ? '?' : p.snat ? 'SNAT' : 'kept'} ${p.sourceAfter ?? '?'}${p.egressInterface ? ` out ${p.egressInterface}` : ''}${p.decidedBy ? `\n${p.decidedBy.file}:${p.decidedBy.line}` : ''}`,
      f.agree ? 'agree' : `DISAGREE: ${f.diagnosis?.kind ?? ''}`])
  }
  if (a.flows.length) out.push(t.toString())
  for (const f of a.flows.filter((x) => !x.agree)) {
    out.push(`\n${f.flow.proto} ${f.flow.src} → ${f.flow.dst}: ${f.diagnosis?.text ?? ''}`)
    for (const e of f.diagnosis?.evidence ?? []) out.push(`    ${e.file}${e.line ? `:${e.line}` : e.record ? ` #${e.record}` : ''}  ${e.text}`)
  }
  if (a.unpaired.length) {
    out.push('\nUnpaired')
    for (const u of a.unpaired) out.push(`  ${u.flow.proto} ${u.flow.src} → ${u.flow.dst} on ${u.seenOn.join(', ')}: ${u.why}`)
  }
  for (const f of a.findings) out.push(`\n${f.kind}: ${f.text}`)
  out.push(`\n${a.agreeing} flows agree with the rules, ${a.disagreeing} disagree, ${a.unpaired.length} unpaired${a.notRouted ? ` (${a.notRouted} link-local or multicast conversations left out)` : ''}.`)
  return out.join('\n')
}
