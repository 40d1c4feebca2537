// The JSON contract of `natlens explain --json` (README "JSON shapes"): fields may be added, never renamed.
import type { Explanation } from '../model/trace.js'
import type { NodeState } from '../model/node-state.js'

export interface VerdictJson {
  flow: { src: string; sport: number | null; dst: string; dport: number | null; proto: string; origin: string }
  snat: boolean | null
  sourceAfter: string | null
  destinationAfter: string | null
  egressInterface: string | null
  owner: string | null
  decidedBy: { file: string; line: number; rule: string } | null
  reason: string
  steps: unknown[]
  branches: unknown[]
  warnings: string[]
}

export function toVerdictJson(explanation: Explanation, state: NodeState): VerdictJson {
  void explanation; void state
  throw new Error('toVerdictJson: not implemented yet')
}
