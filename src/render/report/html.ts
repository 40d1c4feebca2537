// The report as one self-contained HTML page: inline CSS, the packet graph as inline SVG, no script, no font, no
// image or style fetched from anywhere (a Content-Security-Policy of default-src 'none' says so to the browser too).
// Laid out for a support engineer: the summary first, then the verdict table, then each flow's steps and evidence
// in <details> that open on click.
import type { VerdictJson } from '../verdict-json.js'
import type { EvidenceRef } from './input.js'
import { destinationWords, evidenceAt, observedWords, outcomeWords, predictedWords, tupleWords, type ReportFlowJson, type ReportJson } from './build.js'
import { manifestWords, redactionWords } from './manifest.js'

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;')
}
const h = escapeHtml

const at = (e: { file: string; line: number | null }) => (e.line ? `${e.file}:${e.line}` : e.file)

const CSS = `
:root { --ink:#1f2933; --muted:#5f6b7a; --line:#d9dee5; --bg:#ffffff; --panel:#f6f8fa; --path:#c2185b;
  --snat:#8a4b00; --snat-bg:#fff1d6; --kept:#1b5e20; --kept-bg:#e3f4e4; --unknown:#4a5563; --unknown-bg:#e9edf2;
  --drop:#9b1c1c; --drop-bg:#fde2e2; }
* { box-sizing: border-box; }
body { margin:0; color:var(--ink); background:var(--bg); font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { padding:18px 28px 10px; border-bottom:1px solid var(--line); background:var(--panel); }
header h1 { margin:0 0 4px; font-size:22px; }
header h1 small { font-weight:normal; color:var(--muted); font-size:15px; }
nav a { color:var(--muted); margin-right:14px; text-decoration:none; font-size:13px; }
nav a:hover { color:var(--ink); text-decoration:underline; }
main { padding:8px 28px 40px; max-width:1400px; }
h2 { font-size:18px; margin:28px 0 10px; padding-bottom:4px; border-bottom:1px solid var(--line); }
h3 { font-size:15px; margin:20px 0 6px; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", "Liberation Mono", monospace; font-size:12.5px; }
pre { background:var(--panel); border:1px solid var(--line); border-radius:6px; padding:8px 10px; margin:6px 0; white-space:pre-wrap; overflow-wrap:anywhere; }
table { border-collapse:collapse; margin:6px 0 12px; width:100%; }
th, td { border:1px solid var(--line); padding:5px 8px; text-align:left; vertical-align:top; }
th { background:var(--panel); font-weight:600; font-size:13px; }
td.num { text-align:right; white-space:nowrap; }
.policy { border-left:4px solid var(--path); background:#fff7fa; padding:10px 14px; margin:10px 0; border-radius:0 6px 6px 0; }
.policy p { margin:0 0 4px; font-size:15px; }
.policy .ev { color:var(--muted); }
.facts { display:grid; grid-template-columns: max-content 1fr; gap:4px 18px; margin:10px 0; }
.facts dt { color:var(--muted); }
.facts dd { margin:0; }
.badge { display:inline-block; border-radius:10px; padding:0 8px; font-size:12px; font-weight:600; white-space:nowrap; }
.b-snat { color:var(--snat); background:var(--snat-bg); }
.b-kept { color:var(--kept); background:var(--kept-bg); }
.b-unknown { color:var(--unknown); background:var(--unknown-bg); }
.b-drop { color:var(--drop); background:var(--drop-bg); }
details.flow { border:1px solid var(--line); border-radius:6px; margin:6px 0; background:#fff; }
details.flow > summary { cursor:pointer; padding:6px 10px; list-style-position:inside; }
details.flow[open] > summary { border-bottom:1px solid var(--line); background:var(--panel); }
details.flow .body { padding:6px 12px 10px; }
.reason { font-size:14.5px; margin:6px 0; }
.warn { border-left:4px solid #d97706; background:#fff8eb; padding:6px 10px; margin:6px 0; }
.muted { color:var(--muted); }
.detail { white-space:pre-wrap; margin:4px 0; }
.steps td:first-child { width:2.5em; text-align:right; color:var(--muted); }
.steps td.evidence { width:55%; }
.steps .raw { display:block; color:#334155; overflow-wrap:anywhere; }
figure.graph { margin:8px 0; border:1px solid var(--line); border-radius:6px; overflow:auto; background:#fff; padding:4px; }
figure.graph svg { display:block; margin:0 auto; max-width:100%; height:auto; }
/* Graphviz measured the labels in Helvetica's metrics: keep the text in Helvetica or a font with the same widths. */
figure.graph svg text { font-family: Helvetica, Arial, "Liberation Sans", Arimo, sans-serif; }
figcaption { color:var(--muted); font-size:13px; margin:4px 0 0; }
footer { color:var(--muted); font-size:12px; padding:12px 28px; border-top:1px solid var(--line); }
@media print { details.flow { break-inside:avoid; } figure.graph { overflow:visible; } }
`

function verdictBadge(v: VerdictJson): string {
  if (v.verdict === 'dropped' || v.verdict === 'no-route') return `<span class="badge b-drop">${h(v.verdict)}</span>`
  if (v.snat === null || v.verdict === 'insufficient-info') return '<span class="badge b-unknown">SNAT unknown</span>'
  return v.snat ? `<span class="badge b-snat">SNAT → ${h(v.sourceAfter ?? '?')}</span>` : '<span class="badge b-kept">no SNAT</span>'
}

function evidenceList(ev: readonly EvidenceRef[]): string {
  if (ev.length === 0) return ''
  return `<div class="ev">${ev.map((e) => `<div><code>${h(at(e))}</code> <code>${h(e.text)}</code></div>`).join('')}</div>`
}

function flowDetails(f: ReportFlowJson, open: boolean): string {
  const v = f.verdict
  const port = (p: number | null) => (p === null ? '' : `:${p}`)
  const parts: string[] = []
  parts.push(`<details class="flow" id="flow-${f.index + 1}"${open ? ' open' : ''}><summary><b>#${f.index + 1}</b> ${h(f.label)} ${verdictBadge(v)} <span class="muted">${h(outcomeWords(v))}</span></summary><div class="body">`)
  parts.push(`<div class="mono muted">${h(`${v.flow.proto} ${v.flow.src}${port(v.flow.sport)} → ${v.flow.dst}${port(v.flow.dport)}`)} · ${h(v.flow.origin)}${v.flow.iif ? ` via ${h(v.flow.iif)}` : ''} · ${h(v.verdict)}${v.egressInterface ? ` out ${h(v.egressInterface)}` : ''}${v.destinationAfter && v.destinationAfter !== v.flow.dst ? ` · DNAT to ${h(v.destinationAfter)}` : ''}${v.firstPacket ? '' : ' · a later packet of the connection'}</div>`)
  parts.push(`<p class="reason">${h(v.reason)}</p>`)
  if (v.decidedBy) parts.push(`<div>Decided by <code>${h(`${v.decidedBy.file}:${v.decidedBy.line}`)}</code>${v.owner ? ` (${h(v.owner)})` : ''}</div><pre>${h(v.decidedBy.rule)}</pre>`)
  if (v.setting) parts.push(`<div><b>To change it:</b> ${h(v.setting)}</div>`)
  for (const w of v.warnings) parts.push(`<div class="warn"><b>Warning:</b> ${h(w)}</div>`)
  if (v.branches.length > 1) {
    parts.push('<table><thead><tr><th>probability</th><th>verdict</th><th>destination after</th><th>SNAT</th><th>source after</th><th>egress</th></tr></thead><tbody>')
    for (const b of v.branches) parts.push(`<tr><td class="num">${b.probability}</td><td>${h(b.verdict)}</td><td>${h(b.destinationAfter ?? '?')}</td><td>${b.snat === null ? 'unknown' : b.snat ? 'yes' : 'no'}</td><td>${h(b.sourceAfter ?? '?')}</td><td>${h(b.egressInterface ?? '–')}</td></tr>`)
    parts.push('</tbody></table>')
  }
  if (v.steps.length) {
    parts.push('<table class="steps"><thead><tr><th>#</th><th>step</th><th>evidence</th></tr></thead><tbody>')
    v.steps.forEach((s, i) => {
      const where = [s.hook, s.table, s.chain].filter(Boolean).join(' · ')
      parts.push(`<tr><td>${i + 1}</td><td>${h(s.summary)}${where ? `<div class="muted">${h(where)}</div>` : ''}</td><td class="evidence">${s.evidence ? `<code>${h(at(s.evidence))}</code><code class="raw">${h(s.evidence.text.trim())}</code>` : ''}</td></tr>`)
    })
    parts.push('</tbody></table>')
  }
  parts.push('</div></details>')
  return parts.join('\n')
}

export interface HtmlOptions {
  /** The packet graph drawn by Graphviz (dotToSvg(toDot(report.graph.model))), inlined as is. */
  readonly svg?: string
}

export function renderReportHtml(r: ReportJson, options: HtmlOptions = {}): string {
  const n = r.node
  const s = r.summary
  const title = `natlens report: node ${s.nodeAddress ?? '(address unknown)'}`
  const out: string[] = []
  out.push('<!doctype html>', '<html lang="en"><head><meta charset="utf-8">')
  out.push('<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; img-src data:">')
  out.push('<meta name="viewport" content="width=device-width, initial-scale=1">')
  out.push(`<title>${h(title)}</title>`, `<style>${CSS}</style></head><body>`)
  out.push(`<header><h1>natlens report <small>node ${h(s.nodeAddress ?? '(address unknown)')}${s.primaryInterface ? ` on ${h(s.primaryInterface)}` : ''}</small></h1>`)
  out.push('<nav><a href="#summary">Summary</a><a href="#verdicts">Verdicts</a><a href="#pods">Per pod</a><a href="#graph">Packet path</a><a href="#node">Node</a><a href="#observed">Observed vs predicted</a><a href="#problems">Problems</a><a href="#inputs">Inputs</a></nav></header><main>')

  // Summary
  out.push('<section id="summary"><h2>Summary</h2><div class="policy">')
  for (const st of r.snatPolicy.statements) out.push(`<p><b>SNAT policy:</b> ${h(st.text)}</p>${evidenceList(st.evidence)}`)
  out.push('</div><dl class="facts">')
  out.push(`<dt>node</dt><dd>${h(s.nodeAddress ?? '?')} on ${h(s.primaryInterface ?? '?')}${n.node.evidence ? ` <span class="muted">(<code>${h(at(n.node.evidence))}</code>)</span>` : ''}</dd>`)
  out.push(`<dt>components</dt><dd>${n.components.map((c) => `<b>${h(c.name)}</b>${c.era ? ` ${h(c.era)}` : ''}${c.detail ? ` <span class="muted">— ${h(c.detail)}</span>` : ''}`).join('<br>') || 'none recognised'}</dd>`)
  out.push(`<dt>VPC CIDRs</dt><dd>${n.vpcCidrs.map((c) => `<code>${h(c.cidr)}</code>`).join(', ') || 'none found'}${n.excludeCidrs.length ? `; excluded from SNAT: ${n.excludeCidrs.map((c) => `<code>${h(c.cidr)}</code>`).join(', ')}` : ''}</dd>`)
  out.push(`<dt>ENIs, pods</dt><dd>${n.enis.length} ENI${n.enis.length === 1 ? '' : 's'} (${n.enis.map((e) => h(`${e.interface}${e.table ? ` → table ${e.table}` : ''}`)).join(', ') || 'none'}), ${r.pods.length} pod${r.pods.length === 1 ? '' : 's'}</dd>`)
  out.push(`<dt>flows explained</dt><dd>${s.flows}: <span class="badge b-snat">${s.snat} SNATed</span> <span class="badge b-kept">${s.keptAddress} keep their address</span> <span class="badge b-unknown">${s.undecided} undecided</span> <span class="badge b-drop">${s.dropped} dropped</span></dd>`)
  out.push(`<dt>problems found</dt><dd>${r.problems.status === 'checked' ? `${r.problems.findings.length} (${r.problems.checked.length} checks ran)` : h(r.problems.reason)}</dd>`)
  out.push(`<dt>observed vs predicted</dt><dd>${r.observed.status === 'compared' ? `${r.observed.agree} agree, ${r.observed.disagree} disagree` : h(r.observed.reason)}</dd>`)
  out.push('</dl></section>')

  // Verdicts
  out.push('<section id="verdicts"><h2>Verdicts</h2>')
  if (r.flows.length === 0) out.push('<p>No flows were explained: give one with <code>--src</code> and <code>--dst</code>, or <code>--flows FILE</code>.</p>')
  else {
    out.push('<table><thead><tr><th>#</th><th>flow</th><th>verdict</th><th>leaves as</th><th>egress</th><th>decided by</th></tr></thead><tbody>')
    for (const f of r.flows) {
      const v = f.verdict
      out.push(`<tr><td class="num"><a href="#flow-${f.index + 1}">${f.index + 1}</a></td><td>${h(f.label)}</td><td>${verdictBadge(v)} <span class="muted">${h(v.verdict)}</span></td><td><code>${h(v.sourceAfter ?? '?')}</code></td><td>${h(v.egressInterface ?? '–')}</td><td>${v.decidedBy ? `${h(v.owner ?? '')} <code>${h(`${v.decidedBy.file}:${v.decidedBy.line}`)}</code>` : `<span class="muted">${h(v.reason.replace(/^.*?: /, ''))}</span>`}</td></tr>`)
    }
    out.push('</tbody></table>')
  }
  out.push('</section>')

  // Per pod
  out.push('<section id="pods"><h2>Per pod</h2>')
  // The flow the graph highlights is open; the others open on click.
  for (const p of r.pods) {
    out.push(`<h3>Pod ${h(p.name ? `${p.name} ` : '')}<code>${h(p.ip)}</code></h3>`)
    out.push(`<p>Host veth ${p.hostVeth ? `<code>${h(p.hostVeth)}</code>` : 'unknown'}, ENI ${h(p.eni ?? '?')}, route table ${h(p.table ?? 'main')}${p.kind !== 'pod' ? `, ${h(p.kind)}` : ''}. It ${h(p.summary)}.</p>`)
    for (const i of p.flows) out.push(flowDetails(r.flows[i]!, i === r.graph.highlightedFlow))
  }
  if (r.otherFlows.length) {
    out.push('<h3>Other flows</h3>')
    for (const i of r.otherFlows) out.push(flowDetails(r.flows[i]!, i === r.graph.highlightedFlow))
  }
  out.push('</section>')

  // Graph
  out.push('<section id="graph"><h2>Packet path</h2>')
  const hl = r.graph.highlightedFlow
  const c = r.graph.model.collapsed
  out.push(`<figure class="graph">${options.svg ?? '<p class="muted">(graph not drawn)</p>'}</figure>`)
  out.push(`<figcaption>${hl !== null ? `Highlighted: <a href="#flow-${hl + 1}">flow #${hl + 1}</a> ${h(r.flows[hl]!.label)} — ${h(destinationWords(r.flows[hl]!))}, ${h(outcomeWords(r.flows[hl]!.verdict))}.` : 'No flow highlighted.'} Hooks run top to bottom in the kernel's order; each hook's base chains in priority order.${c.chains || c.ipRules || c.interfaces ? ` Not drawn by name: ${c.chains} chains, ${c.ipRules} ip rules, ${c.interfaces} interfaces (grouped with a count).` : ''} Hover a node for its file, line and rule.</figcaption>`)
  out.push('</section>')

  // Node
  out.push('<section id="node"><h2>The node</h2>')
  if (n.components.length) {
    out.push('<table><thead><tr><th>component</th><th>era</th><th>evidence</th></tr></thead><tbody>')
    for (const x of n.components) out.push(`<tr><td><b>${h(x.name)}</b>${x.detail ? `<div class="muted">${h(x.detail)}</div>` : ''}</td><td>${h(x.era ?? '–')}</td><td>${x.evidence.map((e) => `<code>${h(at(e))}</code>`).join('<br>')}</td></tr>`)
    out.push('</tbody></table>')
  }
  if (n.enis.length) {
    out.push('<table><thead><tr><th>ENI</th><th>address</th><th>route table</th><th></th></tr></thead><tbody>')
    for (const e of n.enis) out.push(`<tr><td>${h(e.interface)}</td><td><code>${h(e.address ?? '?')}</code></td><td>${h(e.table ?? '?')}</td><td>${[e.primary ? 'primary' : '', e.trunk ? 'trunk' : ''].filter(Boolean).join(', ')}</td></tr>`)
    out.push('</tbody></table>')
  }
  if (r.pods.length) {
    out.push('<table><thead><tr><th>pod</th><th>host veth</th><th>ENI</th><th>route table</th><th>kind</th></tr></thead><tbody>')
    for (const p of r.pods) out.push(`<tr><td><code>${h(p.ip)}</code>${p.name ? ` ${h(p.name)}` : ''}</td><td>${h(p.hostVeth ?? '?')}</td><td>${h(p.eni ?? '?')}</td><td>${h(p.table ?? 'main')}</td><td>${h(p.kind)}</td></tr>`)
    out.push('</tbody></table>')
  }
  if (n.vpcCidrs.length || n.excludeCidrs.length) {
    out.push('<table><thead><tr><th>CIDR</th><th>role</th><th>read from</th></tr></thead><tbody>')
    for (const x of n.vpcCidrs) out.push(`<tr><td><code>${h(x.cidr)}</code></td><td>VPC CIDR (${h(x.source)})</td><td><code>${h(at(x.evidence))}</code> <code class="muted">${h(x.evidence.text)}</code></td></tr>`)
    for (const x of n.excludeCidrs) out.push(`<tr><td><code>${h(x.cidr)}</code></td><td>excluded from SNAT (${h(x.source)})</td><td><code>${h(at(x.evidence))}</code> <code class="muted">${h(x.evidence.text)}</code></td></tr>`)
    out.push('</tbody></table>')
  }
  const settings = Object.entries(n.settings)
  if (settings.length) {
    out.push('<details class="flow"><summary>CNI settings</summary><div class="body"><table><tbody>')
    for (const [k, v] of settings) out.push(`<tr><td><code>${h(k)}</code></td><td><code>${h(v)}</code></td></tr>`)
    out.push('</tbody></table></div></details>')
  }
  const cnt = n.counts
  out.push(`<p class="muted">Read: ${cnt.routingRules} ip rules, ${cnt.routes} routes, ${cnt.interfaces} interfaces, ${cnt.netfilterRules} netfilter rules (${Object.entries(cnt.tables).map(([k, v]) => h(`${k}: ${v}`)).join(', ') || 'no tables'}), ${cnt.conntrackEntries} conntrack entries.</p>`)
  out.push('</section>')

  // Observed vs predicted
  out.push('<section id="observed"><h2>Observed vs predicted</h2>')
  if (r.observed.status === 'compared') {
    const o = r.observed
    out.push(`<p>Captures: ${o.captures.map((x) => `<code>${h(x.file)}</code>${x.packets !== undefined ? ` (${x.packets} packets${x.truncated ? ', cut short' : ''})` : ''}`).join(', ')}. ${o.agree} connection${o.agree === 1 ? '' : 's'} agree with the prediction, ${o.disagree} disagree.</p>`)
    if (o.flows.length) {
      out.push('<table><thead><tr><th>connection (as sent)</th><th>predicted (natlens explain)</th><th>observed (capture, conntrack)</th><th>agree</th><th>evidence</th></tr></thead><tbody>')
      for (const f of o.flows) {
        const p = f.predicted
        const ev = f.observed.evidence[0]
        out.push(`<tr><td class="mono">${h(tupleWords(f.flow))}</td><td>${h(predictedWords(p, f.observed))}</td><td>${h(observedWords(f.observed, f.flow.dst))}</td><td>${f.agree ? '<span class="badge b-kept">yes</span>' : `<span class="badge b-drop">no</span> ${f.diagnosis ? `<b>${h(f.diagnosis.kind)}</b>: ${h(f.diagnosis.text)}` : ''}`}</td><td>${ev ? `<code>${h(evidenceAt(ev))}</code> <span class="muted">${h(ev.text)}</span>` : ''}</td></tr>`)
      }
      out.push('</tbody></table>')
    }
    if (o.unpaired.length) {
      out.push(`<h3>Connections seen on one side only (${o.unpaired.length})</h3><ul>`)
      for (const u of o.unpaired.slice(0, 50)) out.push(`<li><code>${h(tupleWords(u.flow))}</code> on ${h(u.seenOn.join(', ') || '?')}: ${h(u.why)}</li>`)
      out.push('</ul>')
    }
    for (const f of o.findings) out.push(`<div class="warn"><b>${h(f.kind)}</b>: ${h(f.text)}</div>`)
  } else {
    out.push(`<p class="muted">${h(r.observed.reason)}</p>`)
  }
  out.push('</section>')

  // Problems
  out.push('<section id="problems"><h2>Problems found</h2>')
  const pr = r.problems
  if (pr.status === 'checked') {
    if (pr.findings.length === 0) out.push(`<p>No problems: ${pr.checked.length} checks ran (${h(pr.checked.join(', '))}).</p>`)
    else out.push(`<p>${pr.findings.length} finding${pr.findings.length === 1 ? '' : 's'} from ${pr.checked.length} checks.</p>`)
    for (const f of pr.findings) {
      const cls = f.severity === 'error' ? 'b-drop' : f.severity === 'warning' ? 'b-snat' : 'b-unknown'
      out.push(`<div class="warn"><span class="badge ${cls}">${h(f.severity)}</span> <code>${h(f.id)}</code> <b>${h(f.title)}</b>${f.detail ? `<div class="detail">${h(f.detail.trim())}</div>` : ''}${f.fix ? `<div class="detail"><b>Fix:</b> ${h(f.fix.trim())}</div>` : ''}${evidenceList(f.evidence)}</div>`)
    }
    if (pr.skipped.length) out.push(`<p class="muted">Not checked: ${pr.skipped.map((x) => `${h(x.id)} (${h(x.reason)})`).join('; ')}.</p>`)
  } else {
    out.push(`<p class="muted">${h(pr.reason)}.</p>`)
  }
  if (pr.flowWarnings.length) {
    out.push('<h3>Warnings from the explained flows</h3>')
    for (const w of pr.flowWarnings) out.push(`<div class="warn">${h(w.text)} <span class="muted">(${w.flows.map((i) => `<a href="#flow-${i + 1}">#${i + 1}</a>`).join(', ')})</span></div>`)
  }
  if (n.inconsistencies.length) {
    out.push('<h3>Inconsistencies between the sources</h3><ul>')
    for (const d of n.inconsistencies) out.push(`<li>${h(d.severity)}: <code>${h(d.line ? `${d.file}:${d.line}` : d.file)}</code> ${h(d.message)}</li>`)
    out.push('</ul>')
  }
  out.push('</section>')

  // Inputs
  out.push('<section id="inputs"><h2>Inputs</h2>')
  out.push(`<p>Built from ${r.inputs.given.map((g) => `<code>${h(g)}</code>`).join(', ') || '(nothing named)'}${r.inputs.captures.length ? `; captures ${r.inputs.captures.map((g) => `<code>${h(g)}</code>`).join(', ')}` : ''}.</p>`)
  out.push(`<dl class="facts"><dt>manifest</dt><dd>${h(manifestWords(r.inputs.manifest))}</dd><dt>redaction</dt><dd>${h(redactionWords(r.inputs.redaction))}</dd></dl>`)
  const m = r.inputs.manifest
  if (m && (m.failed.length || m.skipped.length)) {
    out.push('<table><thead><tr><th>collected item</th><th>file</th><th>what happened</th></tr></thead><tbody>')
    for (const x of m.failed) out.push(`<tr><td><code>${h(x.id)}</code></td><td><code>${h(x.file)}</code></td><td>failed: ${h(x.why)}</td></tr>`)
    for (const x of m.skipped) out.push(`<tr><td><code>${h(x.id)}</code></td><td></td><td>skipped: ${h(x.reason)}</td></tr>`)
    out.push('</tbody></table>')
  }
  if (r.inputs.redaction?.notes.length) out.push(`<ul>${r.inputs.redaction.notes.map((x) => `<li class="muted">${h(x)}</li>`).join('')}</ul>`)
  out.push('<table><thead><tr><th>file</th><th>recognised as</th><th>used</th><th>why not</th><th>bytes</th></tr></thead><tbody>')
  for (const a of n.artifacts) out.push(`<tr><td><code>${h(a.file)}</code></td><td>${h(a.kind ?? '–')}</td><td>${a.used ? 'yes' : '<b>no</b>'}</td><td>${h(a.reason ?? '')}</td><td class="num">${a.bytes}</td></tr>`)
  out.push('</tbody></table>')
  const diags = n.diagnostics.filter((d) => d.severity !== 'info')
  if (diags.length) {
    out.push(`<h3>Lines natlens could not use (${diags.length})</h3><ul>`)
    for (const d of diags.slice(0, 100)) out.push(`<li>${h(d.severity)} <code>${h(d.line ? `${d.file}:${d.line}` : d.file)}</code> ${h(d.message)}${d.text ? ` <code class="muted">${h(d.text)}</code>` : ''}</li>`)
    if (diags.length > 100) out.push(`<li>… ${diags.length - 100} more (natlens inspect --json)</li>`)
    out.push('</ul>')
  }
  out.push('</section></main>')
  out.push(`<footer>natlens${r.report.version ? ` ${h(r.report.version)}` : ''} report · schema ${r.report.schema} · this page loads nothing from the network</footer>`)
  out.push('</body></html>')
  return `${out.join('\n')}\n`
}
