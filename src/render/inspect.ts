// `natlens inspect`: what was found on the node. The JSON shape is a contract (README "JSON shapes").
import { formatCidr, formatIp } from '../model/ip.js'
import type { Diagnostic, SourceRef } from '../model/evidence.js'
import type { NodeState } from '../model/node-state.js'
import { makeTable } from './table.js'

export interface InspectJson {
  node: { primaryInterface: string | null; primaryAddress: string | null; evidence: EvidenceRef | null }
  components: { name: string; era: string | null; detail: string | null; evidence: EvidenceRef[] }[]
  interfaces: { name: string; ifindex: number | null; kind: string | null; mac: string | null; addresses: string[] }[]
  enis: { interface: string; primary: boolean; table: string | null; address: string | null; trunk: boolean }[]
  pods: { ip: string; hostVeth: string | null; eni: string | null; table: string | null; kind: string; name: string | null }[]
  vpcCidrs: { cidr: string; source: string; evidence: EvidenceRef }[]
  excludeCidrs: { cidr: string; source: string; evidence: EvidenceRef }[]
  snatPolicy: string | null
  settings: Record<string, string>
  counts: { routingRules: number; routes: number; interfaces: number; netfilterRules: number; conntrackEntries: number; tables: Record<string, number> }
  artifacts: { file: string; kind: string | null; used: boolean; reason: string | null; bytes: number }[]
  diagnostics: { severity: string; code: string; file: string; line: number | null; message: string; text: string | null }[]
  inconsistencies: { severity: string; code: string; file: string; line: number | null; message: string; text: string | null }[]
}

interface EvidenceRef { file: string; line: number; text: string }

const ev = (r: SourceRef): EvidenceRef => ({ file: r.artifact, line: r.line, text: r.text })
const diag = (d: Diagnostic) => ({ severity: d.severity, code: d.code, file: d.artifact, line: d.line ?? null, message: d.message, text: d.text ?? null })

export function toInspectJson(state: NodeState): InspectJson {
  const d = state.derived
  const tables: Record<string, number> = {}
  let netfilterRules = 0
  for (const t of state.tables) {
    const n = [...t.chains.values()].reduce((s, c) => s + c.rules.length, 0)
    tables[`${t.family} ${t.name} (${t.origin})`] = n
    netfilterRules += n
  }
  return {
    node: { primaryInterface: d.primaryInterface ?? null, primaryAddress: d.primaryAddress ? formatIp(d.primaryAddress) : null, evidence: d.primaryRef ? ev(d.primaryRef) : null },
    components: d.components.map((c) => ({ name: c.name, era: c.era ?? null, detail: c.detail ?? null, evidence: c.evidence.map(ev) })),
    interfaces: state.interfaces.map((i) => ({ name: i.name, ifindex: i.ifindex ?? null, kind: i.kind ?? null, mac: i.mac ?? null, addresses: i.addresses.map((a) => `${formatIp(a.address)}/${a.prefix}`) })),
    enis: d.enis.map((e) => ({ interface: e.interface, primary: e.primary, table: e.table ?? null, address: e.address ? formatIp(e.address) : null, trunk: e.trunk })),
    pods: d.pods.map((p) => ({ ip: formatIp(p.ip), hostVeth: p.hostVeth ?? null, eni: p.eni ?? null, table: p.table ?? null, kind: p.kind, name: p.name ?? null })),
    vpcCidrs: d.vpcCidrs.map((c) => ({ cidr: formatCidr(c.cidr), source: c.source, evidence: ev(c.ref) })),
    excludeCidrs: d.excludeCidrs.map((c) => ({ cidr: formatCidr(c.cidr), source: c.source, evidence: ev(c.ref) })),
    snatPolicy: d.snatPolicy ?? null,
    settings: Object.fromEntries([...state.settings].map(([k, s]) => [k, s.value])),
    counts: { routingRules: state.routingRules.length, routes: state.routes.length, interfaces: state.interfaces.length, netfilterRules, conntrackEntries: state.conntrack.length, tables },
    artifacts: state.artifacts.map((a) => ({ file: a.artifact, kind: a.kind ?? null, used: a.used, reason: a.reason ?? null, bytes: a.bytes })),
    diagnostics: state.diagnostics.map(diag),
    inconsistencies: d.inconsistencies.map(diag),
  }
}

export function renderInspect(j: InspectJson): string {
  const out: string[] = []
  out.push(`Node: ${j.node.primaryAddress ?? '?'} on ${j.node.primaryInterface ?? '?'}${j.node.evidence ? `  (${j.node.evidence.file}${j.node.evidence.line ? `:${j.node.evidence.line}` : ''})` : ''}`)
  if (j.snatPolicy) out.push(`SNAT policy: ${j.snatPolicy}`)
  if (j.components.length) {
    out.push('\nComponents')
    for (const c of j.components) out.push(`  ${c.name}${c.era ? `: ${c.era}` : ''}${c.detail ? ` — ${c.detail}` : ''}`)
  }
  if (j.vpcCidrs.length || j.excludeCidrs.length) {
    out.push(`\nVPC CIDRs: ${j.vpcCidrs.map((c) => `${c.cidr} (${c.source})`).join(', ') || 'none found'}`)
    if (j.excludeCidrs.length) out.push(`Excluded from SNAT: ${j.excludeCidrs.map((c) => c.cidr).join(', ')}`)
  }
  if (j.enis.length) {
    const t = makeTable(['ENI', 'address', 'table', ''])
    for (const e of j.enis) t.push([e.interface, e.address ?? '?', e.table ?? '?', [e.primary ? 'primary' : '', e.trunk ? 'trunk' : ''].filter(Boolean).join(', ')])
    out.push('\nENIs', t.toString())
  }
  if (j.pods.length) {
    const t = makeTable(['pod', 'host veth', 'ENI', 'table', 'kind'])
    for (const p of j.pods) t.push([p.name ? `${p.name} ${p.ip}` : p.ip, p.hostVeth ?? '?', p.eni ?? '?', p.table ?? 'main', p.kind])
    out.push('\nPods', t.toString())
  }
  const c = j.counts
  out.push(`\nRead: ${c.routingRules} ip rules, ${c.routes} routes, ${c.interfaces} interfaces, ${c.netfilterRules} netfilter rules, ${c.conntrackEntries} conntrack entries`)
  for (const [k, n] of Object.entries(c.tables)) out.push(`  ${k}: ${n} rules`)
  const ignored = j.artifacts.filter((a) => !a.used)
  if (ignored.length) {
    out.push('\nNot used')
    for (const a of ignored) out.push(`  ${a.file}: ${a.reason ?? 'not used'}`)
  }
  const problems = [...j.inconsistencies, ...j.diagnostics.filter((x) => x.severity !== 'info')]
  if (problems.length) {
    out.push('\nDiagnostics')
    for (const p of problems.slice(0, 50)) out.push(`  ${p.severity}: ${p.file}${p.line ? `:${p.line}` : ''}: ${p.message}`)
    if (problems.length > 50) out.push(`  … ${problems.length - 50} more (use --json)`)
  }
  return out.join('\n')
}
