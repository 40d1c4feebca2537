// The packet graph as a Mermaid flowchart (GitHub and GitLab render it in a Markdown ticket): subgraphs per stage,
// the traced flow's edges and nodes in the path colour.
import type { PacketGraph, Stage } from './model.js'
import { PATH_COLOUR, nodeLabel } from './dot.js'

const STAGE_TITLES: readonly [Stage, string][] = [
  ['ingress', 'arrives on'], ['local', 'local'], ['prerouting', 'PREROUTING'], ['output', 'OUTPUT'], ['routing', 'policy routing'],
  ['input', 'INPUT'], ['forward', 'FORWARD'], ['postrouting', 'POSTROUTING'], ['egress', 'leaves by'],
]

/** Mermaid label text: quotes and angle brackets as entity codes, lines joined with <br/>. */
function text(s: string): string {
  return s.replace(/&/g, '#amp;').replace(/"/g, '#quot;').replace(/</g, '#lt;').replace(/>/g, '#gt;').replace(/\|/g, '#124;')
}

export function toMermaid(graph: PacketGraph): string {
  const ids = new Map<string, string>()
  graph.nodes.forEach((n, i) => ids.set(n.id, `n${i}`))
  const out: string[] = ['flowchart TB']
  for (const [stage, title] of STAGE_TITLES) {
    const nodes = graph.nodes.filter((n) => n.stage === stage)
    if (nodes.length === 0) continue
    out.push(`  subgraph s_${stage} ["${text(title)}"]`)
    for (const n of nodes) {
      const label = nodeLabel(n).split('\n').map(text).join('<br/>')
      const [open, close] = n.kind === 'route-table' ? ['[(', ')]'] : n.kind === 'routing' ? ['{', '}'] : n.kind === 'hook' ? ['[/', '/]'] : n.kind === 'end' ? ['{{', '}}'] : n.kind === 'rule' ? ['>', ']'] : ['[', ']']
      out.push(`    ${ids.get(n.id)}${open}"${label}"${close}`)
    }
    out.push('  end')
  }
  // linkStyle counts the links in the order they are written.
  const pathLinks: number[] = []
  let link = 0
  for (const e of graph.edges) {
    const from = ids.get(e.from)
    const to = ids.get(e.to)
    if (!from || !to) continue
    const arrow = e.kind === 'goto' || (e.kind === 'lookup' && !e.onPath) ? '-.->' : e.kind === 'next-rule' && !e.onPath ? '---' : e.onPath ? '==>' : '-->'
    out.push(`  ${from} ${arrow}${e.label ? `|"${text(e.label)}"|` : ''} ${to}`)
    if (e.onPath) pathLinks.push(link)
    link++
  }
  out.push(`  classDef path fill:#fde4ee,stroke:${PATH_COLOUR},stroke-width:2px`)
  const onPath = graph.nodes.filter((n) => n.onPath).map((n) => ids.get(n.id)!)
  if (onPath.length) out.push(`  class ${onPath.join(',')} path`)
  if (pathLinks.length) out.push(`  linkStyle ${pathLinks.join(',')} stroke:${PATH_COLOUR},stroke-width:3px`)
  return `${out.join('\n')}\n`
}
