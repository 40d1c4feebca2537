// The packet graph as Graphviz dot: one cluster per stage (top to bottom in the order the kernel runs them), the
// traced flow in a strong colour, everything else grey.
import type { GraphEdge, GraphNode, GraphNodeKind, PacketGraph, Stage } from './model.js'

export const PATH_COLOUR = '#c2185b'
const PATH_FILL = '#fde4ee'
const GREY = '#9e9e9e'

const STAGES: readonly { stage: Stage; label: string }[] = [
  { stage: 'ingress', label: 'arrives on' },
  { stage: 'local', label: '' },
  { stage: 'prerouting', label: 'PREROUTING' },
  { stage: 'output', label: 'OUTPUT' },
  { stage: 'routing', label: 'policy routing' },
  { stage: 'input', label: 'INPUT' },
  { stage: 'forward', label: 'FORWARD' },
  { stage: 'postrouting', label: 'POSTROUTING' },
  { stage: 'egress', label: 'leaves by' },
]

interface Look { shape: string; style?: string[]; fill?: string; font?: string }

const LOOK: Record<GraphNodeKind, Look> = {
  'interface': { shape: 'box', style: ['rounded', 'filled'], fill: '#e8f5e9' },
  'interface-group': { shape: 'box3d', style: ['filled'], fill: '#e8f5e9' },
  'local-process': { shape: 'house', style: ['filled'], fill: '#fff8e1' },
  'conntrack': { shape: 'box', style: ['rounded', 'dashed'] },
  'end': { shape: 'octagon', style: ['filled'], fill: '#ffebee' },
  'hook': { shape: 'cds', style: ['filled'], fill: '#37474f', font: 'white' },
  'base-chain': { shape: 'box', style: ['rounded', 'filled'], fill: '#e3f2fd' },
  'chain': { shape: 'box', style: ['rounded'] },
  'chain-group': { shape: 'folder' },
  'rule': { shape: 'note' },
  'routing': { shape: 'diamond', style: ['filled'], fill: '#fff8e1' },
  'ip-rule': { shape: 'box' },
  'ip-rule-group': { shape: 'box3d' },
  'route-table': { shape: 'cylinder' },
  'route': { shape: 'box', style: ['rounded'] },
  'more': { shape: 'plaintext' },
}

/** A dot string literal. */
function q(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`
}

function clip(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s
}

export function nodeLabel(n: GraphNode): string {
  const lines = [n.label]
  if (n.detail) lines.push(clip(n.detail, 64))
  return lines.join('\n')
}

function nodeLine(n: GraphNode): string {
  const look = LOOK[n.kind]
  const style = new Set(look.style ?? [])
  let fill = look.fill
  // A path node keeps its shape and gets the path's outline; plain nodes of the path are filled to stand out.
  if (n.onPath && n.kind !== 'hook' && n.kind !== 'end') { style.add('filled'); fill = PATH_FILL }
  const attrs = [`label=${q(nodeLabel(n))}`, `shape=${look.shape}`]
  if (style.size) attrs.push(`style=${q([...style].join(','))}`)
  if (fill) attrs.push(`fillcolor=${q(fill)}`)
  if (look.font) attrs.push(`fontcolor=${q(look.font)}`)
  attrs.push(n.onPath ? `color=${q(PATH_COLOUR)}, penwidth=2.5` : `color=${q(n.kind === 'hook' ? '#37474f' : GREY)}`)
  if (n.evidence) attrs.push(`tooltip=${q(`${n.evidence.file}${n.evidence.line ? `:${n.evidence.line}` : ''}  ${n.evidence.text}`)}`)
  return `    ${q(n.id)} [${attrs.join(', ')}];`
}

function edgeLine(e: GraphEdge): string {
  const attrs: string[] = []
  if (e.label) attrs.push(`label=${q(e.label)}`)
  if (e.onPath) attrs.push(`color=${q(PATH_COLOUR)}`, 'penwidth=2.5', `fontcolor=${q(PATH_COLOUR)}`)
  else attrs.push(`color=${q(GREY)}`, `fontcolor=${q(GREY)}`)
  if (e.kind === 'goto' || e.kind === 'lookup' && !e.onPath) attrs.push('style=dashed')
  if (e.kind === 'next-rule' && !e.onPath) attrs.push('style=dotted', 'arrowhead=none')
  return `  ${q(e.from)} -> ${q(e.to)}${attrs.length ? ` [${attrs.join(', ')}]` : ''};`
}

export function toDot(graph: PacketGraph, options: { rankdir?: 'LR' | 'TB' } = {}): string {
  const out: string[] = []
  const title = graph.flow ? `${graph.flow}: ${graph.verdict}` : `packet path (IPv${graph.family})`
  out.push('digraph natlens {')
  out.push(`  graph [rankdir=${options.rankdir ?? 'TB'}, fontname="Helvetica", fontsize=12, labelloc=t, label=${q(title)}, nodesep=0.25, ranksep=0.45, newrank=true];`)
  out.push('  node [fontname="Helvetica", fontsize=10, margin="0.15,0.06"];')
  out.push('  edge [fontname="Helvetica", fontsize=9, arrowsize=0.7];')
  for (const { stage, label } of STAGES) {
    const nodes = graph.nodes.filter((n) => n.stage === stage)
    if (nodes.length === 0) continue
    out.push(`  subgraph ${q(`cluster_${stage}`)} {`)
    out.push(`    label=${q(label)}; style="rounded,filled"; color="#cfd8dc"; fillcolor="#fafafa"; fontcolor="#546e7a";`)
    for (const n of nodes) out.push(nodeLine(n))
    out.push('  }')
  }
  for (const e of graph.edges) out.push(edgeLine(e))
  out.push('}')
  return `${out.join('\n')}\n`
}
