// explain(state, flow): walks the packet through the node's netfilter hooks and policy routing as Linux does.
import type { NodeState } from '../model/node-state.js'
import type { Flow } from '../model/flow.js'
import type { Explanation } from '../model/trace.js'

export interface ExplainOptions {
  /** Connection mark of an established connection (origin `reply`), when known from conntrack or given. */
  readonly ctmark?: number
}

export function explain(state: NodeState, flow: Flow, options: ExplainOptions = {}): Explanation {
  void state; void flow; void options
  throw new Error('explain: not implemented yet')
}
