// `natlens doctor`: the known problems of EKS node networking, one small check each (src/doctor/checks/<id>.ts),
// run against one node state. Exit status (src/commands/doctor.ts): 1 when an error or a warning is found.
import type { NodeState } from '../model/node-state.js'
import type { Check, DoctorReport, Finding } from './model.js'
import { DoctorContext } from './model.js'
import { vpcCniIntent } from './checks/vpc-cni-intent.js'
import { iptablesBackends } from './checks/iptables-backends.js'
import { snatAddress } from './checks/snat-address.js'
import { duplicateSnat } from './checks/duplicate-snat.js'
import { podIpRules } from './checks/pod-ip-rules.js'
import { rpFilter } from './checks/rp-filter.js'
import { conntrackTable } from './checks/conntrack-table.js'
import { ephemeralPorts } from './checks/ephemeral-ports.js'
import { snatRandomFully } from './checks/snat-random-fully.js'
import { markConflict } from './checks/mark-conflict.js'

export type { Check, DoctorReport, Finding, FindingSeverity, EvidenceLine } from './model.js'
export { DoctorContext } from './model.js'

/** Every check, in the order the report lists them. */
export const CHECKS: readonly Check[] = [
  vpcCniIntent, podIpRules, iptablesBackends, snatAddress, duplicateSnat, markConflict, rpFilter, conntrackTable, ephemeralPorts, snatRandomFully,
]

const RANK = { error: 0, warning: 1, info: 2 } as const

export function runDoctor(state: NodeState, checks: readonly Check[] = CHECKS): DoctorReport {
  const ctx = new DoctorContext(state)
  const findings: Finding[] = []
  const checked: string[] = []
  const skipped: { id: string; reason: string }[] = []
  for (const check of checks) {
    const r = check.run(ctx)
    if ('skip' in r) { skipped.push({ id: check.id, reason: r.skip }); continue }
    checked.push(check.id)
    findings.push(...r)
  }
  // Stable: by severity, then in check order.
  const order = new Map(checks.map((c, i) => [c.id, i]))
  findings.sort((a, b) => RANK[a.severity] - RANK[b.severity] || (order.get(a.id) ?? 0) - (order.get(b.id) ?? 0))
  const count = (s: Finding['severity']) => findings.filter((f) => f.severity === s).length
  return { findings, checked, skipped, summary: { errors: count('error'), warnings: count('warning'), infos: count('info') } }
}

/** Whether the report should make the command exit 1: an error or a warning. */
export function hasProblems(report: DoctorReport): boolean {
  return report.summary.errors + report.summary.warnings > 0
}
