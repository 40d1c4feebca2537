import { Flags } from '@oclif/core'
import { NatlensCommand, bundleArgs, bundleFlags, flowFlags, writeOutput } from './base.js'
import { loadNodeState } from '../sources/load.js'
import { makeGraph, type PacketGraph } from '../render/graph/index.js'
import { givenFlow } from '../render/report/flows.js'

export default class Graph extends NatlensCommand {
  static override summary = 'Draw the node\'s packet path: hooks → chains → rules → ip rules → route tables → interfaces, with a traced flow highlighted.'
  static override description = `Each netfilter hook with its base chains in the kernel's priority order (iptables and nft), the user chains they jump to, policy routing (ip rules in priority order, the tables they look up) and the interfaces. With --src and --dst the flow's path is highlighted: every rule that matched (file:line), the ip rule and route chosen, the interface it leaves by.

The graph stays readable on a node of any size: kube-proxy's KUBE-SVC-*/KUBE-SEP-* chains, the CNI's per-pod ip rules and the pods' host veths are drawn as one node each with a count. dot and mermaid are text; svg is drawn by Graphviz compiled to WebAssembly, inside natlens (no Graphviz install, no network).`
  static override examples = [
    { description: 'The path of a secondary-ENI pod to the internet, as Graphviz dot', command: '<%= config.bin %> <%= command.id %> fixtures/example-node --src 10.0.9.88 --dst 203.0.113.10' },
    { description: 'The node\'s whole packet path as a Mermaid flowchart (paste into GitHub)', command: '<%= config.bin %> <%= command.id %> fixtures/example-node --format mermaid' },
    { description: 'As SVG, drawn without Graphviz installed (-o path.svg writes it to a file)', command: '<%= config.bin %> <%= command.id %> fixtures/example-node --src 10.0.7.201 --dst 172.20.0.1 --format svg' },
  ]
  static override enableJsonFlag = false
  static override strict = false
  static override args = bundleArgs
  static override flags = {
    ...bundleFlags,
    ...flowFlags,
    format: Flags.option({ options: ['dot', 'mermaid', 'svg', 'json'] as const, default: 'dot', summary: 'dot (Graphviz), mermaid, svg, or json (the graph model: nodes and edges).' })(),
    family: Flags.option({ options: ['4', '6'] as const, default: '4', summary: 'Address family of the graph when no flow is given.' })(),
    output: Flags.string({ char: 'o', summary: 'Write the graph to this file instead of standard output.' }),
  }

  async run(): Promise<PacketGraph> {
    const { argv, flags } = await this.parse(Graph)
    const state = await loadNodeState(argv as string[], { prefer: flags.file ?? [] })
    const flow = givenFlow(flags, 'natlens graph BUNDLE --src 10.0.9.88 --dst 203.0.113.10')
    const { graph, text } = await makeGraph(state, { format: flags.format, family: flags.family === '6' ? 6 : 4, ...(flow ? { flow } : {}) })
    if (!(await writeOutput(flags.output, text))) return graph
    this.log(`wrote ${flags.output} (${flags.format}): ${graph.nodes.length} nodes, ${graph.edges.length} edges${graph.flow ? `, ${graph.flow} highlighted (${graph.verdict})` : ''}`)
    return graph
  }
}
