// natlens against the kernel: for every flow, `explain` on the bundle dumped from the node namespace must predict what
// the kernel did (source seen at the destination, egress interface, DNAT target, whether the source was rewritten).
import Table from 'cli-table3'
import { loadNodeState } from '../../src/sources/load.js'
import { explain } from '../../src/engine/explain.js'
import { toVerdictJson, type VerdictJson } from '../../src/render/verdict-json.js'
import { parseFlow } from '../../src/model/flow.js'
import type { FlowRecord, Observation, ScenarioRun } from './model.js'

export interface Prediction {
  readonly verdict: string
  readonly snat: boolean | null
  readonly sourceAfter: string | null
  readonly destinationAfter: string | null
  readonly egressInterface: string | null
  readonly probability?: number
}

export interface FlowComparison {
  readonly scenario: string
  readonly flow: string
  readonly origin: string
  /** The branch natlens predicts for what the kernel did (the one with the observed destination, when it chose randomly). */
  readonly predicted: Prediction | null
  readonly observed: Observation
  readonly agree: boolean
  readonly mismatches: readonly string[]
  readonly verdictJson?: VerdictJson
  readonly error?: string
}

const DROP_VERDICTS = new Set(['dropped', 'no-route'])

function branchesOf(v: VerdictJson): Prediction[] {
  if (v.branches.length === 0) return [{ verdict: v.verdict, snat: v.snat, sourceAfter: v.sourceAfter, destinationAfter: v.destinationAfter, egressInterface: v.egressInterface }]
  return (v.branches as VerdictJson['branches'] & { verdict: string; snat: boolean | null; sourceAfter: string | null; destinationAfter: string | null; egressInterface: string | null; probability: number }[])
    .map((b) => ({ verdict: b.verdict, snat: b.snat, sourceAfter: b.sourceAfter, destinationAfter: b.destinationAfter, egressInterface: b.egressInterface, probability: b.probability }))
}

/** The agreement rules of the lab (README "Kernel lab"). */
export function judge(v: VerdictJson, o: Observation): { predicted: Prediction | null; mismatches: string[] } {
  const branches = branchesOf(v)
  if (!o.delivered) {
    const top = branches[0] ?? null
    const m: string[] = []
    if (!top || !DROP_VERDICTS.has(top.verdict)) m.push(`kernel dropped it; natlens says ${top?.verdict ?? 'nothing'}`)
    if (top && top.egressInterface !== null) m.push(`kernel sent it nowhere; natlens says out ${top.egressInterface}`)
    return { predicted: top, mismatches: m }
  }
  const chosen = branches.find((b) => b.destinationAfter === o.arrivedAt)
  if (!chosen) {
    return { predicted: branches[0] ?? null, mismatches: [`arrived at ${o.arrivedAt}; natlens predicts ${branches.map((b) => b.destinationAfter ?? `(${b.verdict})`).join(' or ')}`] }
  }
  const m: string[] = []
  // The kernel delivered it: natlens must say so, not that it cannot tell (insufficient-info) or that it is dropped.
  if (chosen.verdict !== 'forwarded' && chosen.verdict !== 'delivered') m.push(`kernel delivered it; natlens says ${chosen.verdict}`)
  if (chosen.egressInterface !== o.egressInterface) m.push(`egress: natlens ${chosen.egressInterface}, kernel ${o.egressInterface}`)
  if (chosen.sourceAfter !== o.sourceSeen) m.push(`source: natlens ${chosen.sourceAfter}, kernel ${o.sourceSeen}`)
  if (chosen.snat !== o.snat) m.push(`snat: natlens ${chosen.snat}, kernel ${o.snat} (seen ${o.sourceSeen}:${o.sportSeen ?? ''})`)
  return { predicted: chosen, mismatches: m }
}

/** Runs natlens on a scenario's bundle and compares every flow. */
export async function compareScenario(run: ScenarioRun): Promise<FlowComparison[]> {
  const state = await loadNodeState([run.bundleDir])
  return run.flows.map((r) => compareFlow(run.scenario, r, state))
}

function compareFlow(scenario: string, r: FlowRecord, state: Awaited<ReturnType<typeof loadNodeState>>): FlowComparison {
  const base = { scenario, flow: r.name, origin: r.flow.origin, observed: r.observed }
  const flow = parseFlow({ src: r.flow.src, dst: r.flow.dst, proto: r.flow.proto, sport: r.flow.sport, dport: r.flow.dport, origin: r.flow.origin, ...(r.flow.iif ? { iif: r.flow.iif } : {}) })
  if (typeof flow === 'string') return { ...base, predicted: null, agree: false, mismatches: [`natlens rejected the flow: ${flow}`], error: flow }
  try {
    // A reply carries its connection's mark; conntrack in the bundle has it too, but the lab says it explicitly.
    const ctmark = r.flow.origin === 'reply' ? r.observed.conntrack?.mark : undefined
    const v = toVerdictJson(explain(state, flow, ctmark !== undefined ? { ctmark } : {}), state)
    const { predicted, mismatches } = judge(v, r.observed)
    return { ...base, predicted, agree: mismatches.length === 0, mismatches, verdictJson: v }
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e)
    return { ...base, predicted: null, agree: false, mismatches: [`natlens threw: ${msg}`], error: msg }
  }
}

/** A table of flow / predicted / observed for people. */
export function comparisonTable(rows: readonly FlowComparison[]): string {
  const t = new Table({ head: ['scenario', 'flow', 'natlens: out / source / dest / snat', 'kernel: out / source / dest / snat', ''], style: { head: [], border: [] }, wordWrap: true, colWidths: [10, 34, 44, 44, 40] })
  const show = (out: string | null, src: string | null, dst: string | null, snat: boolean | null, delivered = true) =>
    delivered ? `${out ?? '-'} / ${src ?? '-'} / ${dst ?? '-'} / ${snat === null ? '?' : snat ? 'SNAT' : 'kept'}` : 'dropped'
  for (const r of rows) {
    const p = r.predicted
    t.push([
      r.scenario, r.flow,
      p ? (DROP_VERDICTS.has(p.verdict) ? p.verdict : show(p.egressInterface, p.sourceAfter, p.destinationAfter, p.snat)) : `error: ${r.error ?? ''}`,
      show(r.observed.egressInterface, r.observed.sourceSeen, r.observed.arrivedAt, r.observed.snat, r.observed.delivered),
      r.agree ? 'agree' : r.mismatches.join('; '),
    ])
  }
  return t.toString()
}
