// Which flows a report or a graph is about: one given with --src/--dst, a --flows file, or every pod against the
// representative destinations (explain --all-pods's choice, so the verdicts can be compared one for one).
import { parseFlow, type Flow } from '../../model/flow.js'
import type { NodeState } from '../../model/node-state.js'
import { representativeFlows, type LabelledFlow } from '../../engine/representative.js'
import { readFlowList } from '../../sources/flow-list.js'
import { NatlensError } from '../../errors.js'

export interface FlowSelection {
  readonly src?: string
  readonly dst?: string
  readonly proto?: string
  readonly sport?: number
  readonly dport?: number
  readonly iif?: string
  readonly origin?: string
  /** A CSV or JSON file of flows (`--flows`). */
  readonly flowsFile?: string
  /** Every pod against representative destinations (`--all-pods`). */
  readonly allPods?: boolean
}

/** The flow given with --src/--dst, or undefined when neither was given. */
export function givenFlow(sel: FlowSelection, example: string): Flow | undefined {
  if (!sel.src && !sel.dst) return undefined
  if (!sel.src || !sel.dst) throw new NatlensError('--src and --dst go together', 'usage.flow', 2, example)
  const f = parseFlow({ src: sel.src, dst: sel.dst, ...(sel.proto ? { proto: sel.proto } : {}), ...(sel.sport !== undefined ? { sport: sel.sport } : {}), ...(sel.dport !== undefined ? { dport: sel.dport } : {}), ...(sel.iif ? { iif: sel.iif } : {}), ...(sel.origin ? { origin: sel.origin } : {}) })
  if (typeof f === 'string') throw new NatlensError(f, 'usage.flow', 2)
  return f
}

/** The flows of a report, in order: --all-pods's, then the file's, then the one given; --all-pods when none is given. */
export async function selectFlows(state: NodeState, sel: FlowSelection): Promise<LabelledFlow[]> {
  const given = givenFlow(sel, 'natlens report BUNDLE --src 10.0.7.201 --dst 203.0.113.10')
  const fromFile = sel.flowsFile ? await readFlowList(sel.flowsFile) : []
  const out: { label?: string; flow: Flow }[] = []
  if (sel.allPods || (!given && fromFile.length === 0)) out.push(...representativeFlows(state))
  out.push(...fromFile.map((flow) => ({ flow })))
  if (given) out.push({ flow: given })
  return out as LabelledFlow[]
}
