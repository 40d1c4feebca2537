// The VPC CNI's intent for a node: detect the era, read the inputs, generate the rules, compare with the node.
//   intentOf(state)            → { intent } or { none: reason }
//   diffIntent(state, intent)  → missing / unexpected / misordered rules with their evidence
import type { NodeState } from '../model/node-state.js'
import { detectEra } from './era.js'
import { readIntentInputs } from './inputs.js'
import { generateIntent } from './generate.js'
import type { Intent } from './model.js'

export { detectEra, vpcCniPresent } from './era.js'
export { readIntentInputs, parseCidrList, randomizeOf, parseMark } from './inputs.js'
export { generateIntent, describeInputs, INTENT_ARTIFACTS } from './generate.js'
export { diffIntent, where } from './diff.js'
export type * from './model.js'

export function intentOf(state: NodeState): { intent: Intent } | { none: string } {
  const era = detectEra(state)
  if ('none' in era) return { none: era.none }
  return { intent: generateIntent(readIntentInputs(state, era)) }
}
