// `--flows FILE`: a CSV (header src,dst,proto,sport,dport[,iif,origin]) or a JSON list of flow objects.
import { readFile } from 'node:fs/promises'
import { NatlensError } from '../errors.js'
import { parseFlow, type Flow, type FlowInput } from '../model/flow.js'

export async function readFlowList(path: string): Promise<Flow[]> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (e) {
    throw new NatlensError(`${path}: cannot read: ${(e as Error).message}`, 'flows.unreadable', 2)
  }
  return parseFlowList(text, path)
}

export function parseFlowList(text: string, name: string): Flow[] {
  const flows: Flow[] = []
  const trimmed = text.trim()
  if (trimmed.startsWith('[') || trimmed.startsWith('{')) {
    let data: unknown
    try {
      data = JSON.parse(trimmed)
    } catch (e) {
      throw new NatlensError(`${name}: not valid JSON: ${(e as Error).message}`, 'flows.bad-json', 2)
    }
    const list = Array.isArray(data) ? data : (data as { flows?: unknown[] }).flows
    if (!Array.isArray(list)) throw new NatlensError(`${name}: expected a JSON array of flows (or {"flows": [...]})`, 'flows.bad-shape', 2)
    list.forEach((item, i) => {
      const f = parseFlow((item as { flow?: FlowInput }).flow ?? (item as FlowInput))
      if (typeof f === 'string') throw new NatlensError(`${name}: flow ${i + 1}: ${f}`, 'flows.bad-flow', 2)
      flows.push(f)
    })
    return flows
  }
  const rows = text.split(/\r?\n/).map((l, i) => ({ line: i + 1, text: l })).filter((r) => r.text.trim() && !r.text.trim().startsWith('#'))
  if (rows.length === 0) return flows
  const header = rows[0]!.text.split(',').map((h) => h.trim().toLowerCase())
  const hasHeader = header.includes('src') && header.includes('dst')
  const cols = hasHeader ? header : ['src', 'dst', 'proto', 'sport', 'dport', 'iif', 'origin']
  for (const row of hasHeader ? rows.slice(1) : rows) {
    const cells = row.text.split(',').map((c) => c.trim())
    const input: Record<string, string> = {}
    cols.forEach((c, i) => { if (cells[i] !== undefined && cells[i] !== '') input[c] = cells[i]! })
    const f = parseFlow(input as unknown as FlowInput)
    if (typeof f === 'string') throw new NatlensError(`${name}:${row.line}: ${f}`, 'flows.bad-flow', 2)
    flows.push(f)
  }
  return flows
}
