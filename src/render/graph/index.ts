// The node's packet path as a graph model, and its dot, Mermaid and SVG renderings (`natlens graph`, the report).
import type { Family } from '../../model/ip.js'
import type { Flow } from '../../model/flow.js'
import type { NodeState } from '../../model/node-state.js'
import { explain } from '../../engine/explain.js'
import { buildPacketGraph, type PacketGraph } from './model.js'
import { toDot } from './dot.js'
import { toMermaid } from './mermaid.js'
import { dotToSvg } from './svg.js'

export { buildPacketGraph, type GraphEdge, type GraphEdgeKind, type GraphEvidence, type GraphNode, type GraphNodeKind, type GraphOptions, type PacketGraph, type Stage } from './model.js'
export { toDot, toMermaid, dotToSvg }

export type GraphFormat = 'dot' | 'mermaid' | 'svg' | 'json'

/** `natlens graph`: the node's graph, with the flow's first trace highlighted when a flow is given. */
export async function makeGraph(state: NodeState, options: { format: GraphFormat; flow?: Flow; family?: Family }): Promise<{ graph: PacketGraph; text: string }> {
  const trace = options.flow ? explain(state, options.flow).trace : undefined
  const graph = buildPacketGraph(state, trace ? { trace } : { family: options.family ?? 4 })
  switch (options.format) {
    case 'dot': return { graph, text: toDot(graph) }
    case 'mermaid': return { graph, text: toMermaid(graph) }
    case 'svg': return { graph, text: `${await dotToSvg(toDot(graph))}\n` }
    case 'json': return { graph, text: `${JSON.stringify(graph, null, 2)}\n` }
  }
}
