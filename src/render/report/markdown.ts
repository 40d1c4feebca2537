// The report as Markdown to paste into a ticket (GitHub/GitLab flavour: tables, <details>, a Mermaid graph).
import type { VerdictJson } from '../verdict-json.js'
import { toMermaid } from '../graph/mermaid.js'
import type { EvidenceRef } from './input.js'
import { destinationWords, evidenceAt, observedWords, outcomeWords, predictedWords, tupleWords, type ReportFlowJson, type ReportJson } from './build.js'
import { manifestWords, redactionWords } from './manifest.js'

/** A table cell: pipes escaped, line breaks as <br>. */
function cell(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, '<br>')
}

/** Inline code that survives backticks in the text, and pipes inside a table. */
function code(s: string, inTable = false): string {
  if (s === '') return '*(empty)*'
  const text = inTable ? s.replace(/\|/g, '\\|') : s
  const runs = text.match(/`+/g) ?? []
  const fence = '`'.repeat(Math.max(0, ...runs.map((r) => r.length)) + 1)
  const pad = text.startsWith('`') || text.endsWith('`') ? ' ' : ''
  return `${fence}${pad}${text}${pad}${fence}`
}

/** A fenced block whose fence is longer than any backtick run inside. */
function block(s: string, lang = ''): string {
  const runs = s.match(/`{3,}/g) ?? []
  const fence = '`'.repeat(Math.max(3, ...runs.map((r) => r.length + 1)))
  return `${fence}${lang}\n${s}\n${fence}`
}

const at = (e: { file: string; line: number }) => (e.line ? `${e.file}:${e.line}` : e.file)

function evidenceLines(ev: readonly EvidenceRef[]): string[] {
  return ev.map((e) => `  - ${code(at(e))} ${e.text ? code(e.text) : ''}`.trimEnd())
}

function snatWord(v: VerdictJson): string {
  return v.snat === null ? 'unknown' : v.snat ? 'yes' : 'no'
}

function flowTitle(f: ReportFlowJson): string {
  return `#${f.index + 1} ${f.label}`
}

function flowDetails(f: ReportFlowJson): string[] {
  const v = f.verdict
  const out: string[] = []
  out.push(`<details><summary>${escapeHtml(flowTitle(f))}: ${escapeHtml(outcomeWords(v))}</summary>`, '')
  const port = (p: number | null) => (p === null ? '' : `:${p}`)
  out.push(`${code(`${v.flow.proto} ${v.flow.src}${port(v.flow.sport)} → ${v.flow.dst}${port(v.flow.dport)}`)} (${v.flow.origin}${v.flow.iif ? ` via ${v.flow.iif}` : ''}) · **${v.verdict}**${v.egressInterface ? ` out ${code(v.egressInterface)}` : ''} · SNAT: **${snatWord(v)}**${v.sourceAfter ? ` · leaves as ${code(v.sourceAfter)}` : ''}${v.destinationAfter && v.destinationAfter !== v.flow.dst ? ` · DNAT to ${code(v.destinationAfter)}` : ''}`, '')
  out.push(v.reason, '')
  if (v.decidedBy) out.push(`Decided by ${code(`${v.decidedBy.file}:${v.decidedBy.line}`)}${v.owner ? ` (${v.owner})` : ''}:`, '', block(v.decidedBy.rule), '')
  if (v.setting) out.push(`To change it: ${v.setting}`, '')
  for (const w of v.warnings) out.push(`> **Warning:** ${w}`, '')
  if (v.branches.length > 1) {
    out.push('| probability | verdict | destination after | SNAT | source after | egress |', '|---|---|---|---|---|---|')
    for (const b of v.branches) out.push(`| ${b.probability} | ${b.verdict} | ${b.destinationAfter ?? '?'} | ${b.snat === null ? 'unknown' : b.snat ? 'yes' : 'no'} | ${b.sourceAfter ?? '?'} | ${b.egressInterface ?? '–'} |`)
    out.push('')
  }
  if (v.steps.length) {
    out.push('| # | step | evidence |', '|---|---|---|')
    v.steps.forEach((s, i) => {
      const evd = s.evidence ? `${code(at(s.evidence), true)}<br>${s.evidence.text ? code(s.evidence.text.trim(), true) : ''}` : ''
      out.push(`| ${i + 1} | ${cell(s.summary)} | ${evd} |`)
    })
    out.push('')
  }
  out.push('</details>', '')
  return out
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

export function renderReportMarkdown(r: ReportJson): string {
  const n = r.node
  const s = r.summary
  const out: string[] = []
  out.push(`# natlens report: node ${s.nodeAddress ?? '(address unknown)'}${s.primaryInterface ? ` (${s.primaryInterface})` : ''}`, '')

  out.push('## Summary', '')
  out.push('**SNAT policy**', '')
  for (const st of r.snatPolicy.statements) {
    out.push(`- ${st.text}`)
    out.push(...evidenceLines(st.evidence))
  }
  out.push('')
  out.push('| | |', '|---|---|')
  out.push(`| node | ${cell(`${s.nodeAddress ?? '?'} on ${s.primaryInterface ?? '?'}`)}${n.node.evidence ? ` (${code(at(n.node.evidence), true)})` : ''} |`)
  out.push(`| components | ${cell(n.components.map((c) => `${c.name}${c.era ? `: ${c.era}` : ''}`).join('; ') || 'none recognised')} |`)
  out.push(`| flows explained | ${s.flows}: ${s.snat} SNATed, ${s.keptAddress} keep their address, ${s.undecided} undecided, ${s.dropped} dropped or without a route |`)
  out.push(`| problems found | ${r.problems.status === 'checked' ? `${r.problems.findings.length} (${r.problems.checked.length} checks ran)` : cell(r.problems.reason)} |`)
  out.push(`| observed vs predicted | ${r.observed.status === 'compared' ? `${r.observed.agree} agree, ${r.observed.disagree} disagree` : cell(r.observed.reason)} |`)
  out.push('')

  out.push('## The node', '')
  if (n.components.length) {
    out.push('**Components**', '')
    for (const c of n.components) out.push(`- ${c.name}${c.era ? `: ${c.era}` : ''}${c.detail ? ` — ${c.detail}` : ''}${c.evidence[0] ? ` (${code(at(c.evidence[0]))})` : ''}`)
    out.push('')
  }
  out.push(`**VPC CIDRs:** ${n.vpcCidrs.map((c) => `${code(c.cidr)} (${c.source}, ${code(at(c.evidence))})`).join(', ') || 'none found'}`, '')
  if (n.excludeCidrs.length) out.push(`**Excluded from SNAT:** ${n.excludeCidrs.map((c) => `${code(c.cidr)} (${c.source}, ${code(at(c.evidence))})`).join(', ')}`, '')
  if (n.enis.length) {
    out.push('| ENI | address | route table | |', '|---|---|---|---|')
    for (const e of n.enis) out.push(`| ${e.interface} | ${e.address ?? '?'} | ${e.table ?? '?'} | ${[e.primary ? 'primary' : '', e.trunk ? 'trunk' : ''].filter(Boolean).join(', ')} |`)
    out.push('')
  }
  if (r.pods.length) {
    out.push('| pod | host veth | ENI | route table | kind |', '|---|---|---|---|---|')
    for (const p of r.pods) out.push(`| ${cell(p.name ? `${p.name} ${p.ip}` : p.ip)} | ${p.hostVeth ?? '?'} | ${p.eni ?? '?'} | ${p.table ?? 'main'} | ${p.kind} |`)
    out.push('')
  }
  const settings = Object.entries(n.settings)
  if (settings.length) {
    out.push('<details><summary>CNI settings</summary>', '', '| setting | value |', '|---|---|')
    for (const [k, v] of settings) out.push(`| ${cell(k)} | ${code(v, true)} |`)
    out.push('', '</details>', '')
  }

  out.push('## Verdicts', '')
  if (r.flows.length === 0) out.push('No flows were explained: give one with `--src` and `--dst`, or `--flows FILE`.', '')
  else {
    out.push('| # | flow | verdict | SNAT | leaves as | egress | decided by |', '|---|---|---|---|---|---|---|')
    for (const f of r.flows) {
      const v = f.verdict
      out.push(`| ${f.index + 1} | ${cell(f.label)} | ${v.verdict} | ${snatWord(v)} | ${v.sourceAfter ?? '?'} | ${v.egressInterface ?? '–'} | ${v.decidedBy ? `${v.owner ?? ''} ${code(`${v.decidedBy.file}:${v.decidedBy.line}`, true)}` : cell(v.reason.replace(/^.*?: /, ''))} |`)
    }
    out.push('')
  }

  out.push('## Per pod', '')
  for (const p of r.pods) {
    out.push(`### Pod ${p.name ? `${p.name} ` : ''}${p.ip}`, '')
    out.push(`Host veth ${p.hostVeth ? code(p.hostVeth) : 'unknown'}, ENI ${p.eni ?? '?'}, route table ${p.table ?? 'main'}${p.kind !== 'pod' ? `, ${p.kind}` : ''}. It ${p.summary}.`, '')
    for (const i of p.flows) out.push(...flowDetails(r.flows[i]!))
  }
  if (r.otherFlows.length) {
    out.push('### Other flows', '')
    for (const i of r.otherFlows) out.push(...flowDetails(r.flows[i]!))
  }

  out.push('## Packet path', '')
  const hl = r.graph.highlightedFlow
  out.push(hl !== null ? `Highlighted: flow #${hl + 1} (${r.flows[hl]!.label}), ${destinationWords(r.flows[hl]!)}.` : 'No flow highlighted.', '')
  const c = r.graph.model.collapsed
  if (c.chains || c.ipRules || c.interfaces) out.push(`Not drawn by name: ${c.chains} chains, ${c.ipRules} ip rules, ${c.interfaces} interfaces (grouped or left out to keep the graph readable; \`natlens graph\` draws any flow).`, '')
  out.push(block(toMermaid(r.graph.model).trimEnd(), 'mermaid'), '')

  out.push('## Observed vs predicted', '')
  if (r.observed.status === 'compared') {
    const o = r.observed
    out.push(`Captures: ${o.captures.map((x) => `${code(x.file)}${x.packets !== undefined ? ` (${x.packets} packets${x.truncated ? ', cut short' : ''})` : ''}`).join(', ')}. ${o.agree} agree with the prediction, ${o.disagree} disagree.`, '')
    if (o.flows.length) {
      out.push('| connection (as sent) | predicted (natlens explain) | observed (capture, conntrack) | agree | evidence |', '|---|---|---|---|---|')
      for (const f of o.flows) {
        const p = f.predicted
        const ev = f.observed.evidence[0]
        out.push(`| ${cell(tupleWords(f.flow))} | ${cell(predictedWords(p, f.observed))} | ${cell(observedWords(f.observed, f.flow.dst))} | ${f.agree ? 'yes' : `**no**${f.diagnosis ? `: ${cell(`${f.diagnosis.kind}: ${f.diagnosis.text}`)}` : ''}`} | ${ev ? `${code(evidenceAt(ev), true)} ${cell(ev.text)}` : ''} |`)
      }
      out.push('')
    }
    if (o.unpaired.length) {
      out.push(`Seen on one side only (${o.unpaired.length}):`, '')
      for (const u of o.unpaired.slice(0, 50)) out.push(`- ${code(tupleWords(u.flow))} on ${u.seenOn.join(', ') || '?'}: ${u.why}`)
      out.push('')
    }
    for (const f of o.findings) out.push(`> **${f.kind}:** ${f.text}`, '')
  } else {
    out.push(r.observed.reason, '')
  }

  out.push('## Problems found', '')
  const pr = r.problems
  if (pr.status === 'checked') {
    if (pr.findings.length === 0) out.push(`No problems: ${pr.checked.length} checks ran (${pr.checked.join(', ')}).`, '')
    for (const f of pr.findings) {
      // A finding's detail and fix run over several lines: kept as one paragraph of the list item, lines broken.
      const lines = (s: string) => s.trim().split(/\r?\n/).map((l) => l.trim()).filter(Boolean).join('<br>')
      out.push(`- **${f.severity}** ${code(f.id)}: ${f.title}`, '')
      if (f.detail) out.push(`  ${lines(f.detail)}`, '')
      if (f.fix) out.push(`  **Fix:** ${lines(f.fix)}`, '')
      if (f.evidence.length) out.push(...evidenceLines(f.evidence), '')
    }
    if (pr.skipped.length) out.push(`Not checked: ${pr.skipped.map((x) => `${x.id} (${x.reason})`).join('; ')}.`, '')
  } else {
    out.push(`${pr.reason}.`, '')
  }
  if (pr.flowWarnings.length) {
    out.push('Warnings from the explained flows:', '')
    for (const w of pr.flowWarnings) out.push(`- ${w.text} (flow${w.flows.length > 1 ? 's' : ''} ${w.flows.map((i) => `#${i + 1}`).join(', ')})`)
    out.push('')
  }
  if (n.inconsistencies.length) {
    out.push('Inconsistencies between the sources:', '')
    for (const d of n.inconsistencies) out.push(`- ${d.severity}: ${code(d.line ? `${d.file}:${d.line}` : d.file)} ${d.message}`)
    out.push('')
  }

  out.push('## Inputs', '')
  out.push(`Built from ${r.inputs.given.map((g) => code(g)).join(', ') || '(nothing named)'}${r.inputs.captures.length ? `; captures ${r.inputs.captures.map((g) => code(g)).join(', ')}` : ''}.`, '')
  out.push(`Manifest: ${manifestWords(r.inputs.manifest)}.`, '')
  out.push(`Redaction: ${redactionWords(r.inputs.redaction)}.`, '')
  const m = r.inputs.manifest
  if (m) for (const x of [...m.failed.map((f) => `${code(f.id)} (${code(f.file)}) failed: ${f.why}`), ...m.skipped.map((k) => `${code(k.id)} skipped: ${k.reason}`)]) out.push(`- ${x}`)
  if (m && (m.failed.length || m.skipped.length)) out.push('')
  out.push('| file | recognised as | used | why not |', '|---|---|---|---|')
  for (const a of n.artifacts) out.push(`| ${cell(a.file)} | ${a.kind ?? '–'} | ${a.used ? 'yes' : 'no'} | ${cell(a.reason ?? '')} |`)
  out.push('')
  const diags = n.diagnostics.filter((d) => d.severity !== 'info')
  if (diags.length) {
    out.push(`Lines natlens could not use (${diags.length}):`, '')
    for (const d of diags.slice(0, 50)) out.push(`- ${d.severity} ${code(d.line ? `${d.file}:${d.line}` : d.file)} ${d.message}`)
    if (diags.length > 50) out.push(`- … ${diags.length - 50} more (see \`natlens inspect --json\`)`)
    out.push('')
  }
  out.push(`<sub>natlens${r.report.version ? ` ${r.report.version}` : ''} report, schema ${r.report.schema}</sub>`, '')
  return out.join('\n')
}
