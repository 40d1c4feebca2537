// With `reuse`, explain answers a flow from the walk of the same flow from another source port when no rule or ip rule
// of the node reads source ports (analyze explains every connection of a capture: most differ from another only in
// that port).
// What a reused answer must still get right: a SNAT to a port range, whose step records the port it found, and a
// node whose rules do read the source port, where every flow is walked.
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadNodeState } from '../../src/sources/load.js'
import { explain, prepare } from '../../src/engine/explain.js'
import { parseFlow, type Flow, type FlowInput } from '../../src/model/flow.js'
import { toVerdictJson } from '../../src/render/verdict-json.js'
import { EXAMPLES } from '../helpers.js'

const FILES = ['ip-rule.txt', 'ip-route-all.txt', 'iptables-save-mangle.txt', 'iptables-save-nat.txt', 'ip-addr.txt', 'networkutils-env-settings.json']

/** The default example node with its nat table edited. */
async function nodeWith(edit: (nat: string) => string) {
  const dir = await mkdtemp(join(tmpdir(), 'natlens-reuse-'))
  for (const f of FILES) {
    const text = await readFile(join(EXAMPLES, 'default-ipv4', f), 'utf8').catch(() => undefined)
    if (text !== undefined) await writeFile(join(dir, f), f === 'iptables-save-nat.txt' ? edit(text) : text)
  }
  return loadNodeState([dir])
}

function flow(input: FlowInput): Flow {
  const f = parseFlow(input)
  if (typeof f === 'string') throw new Error(f)
  return f
}

const toInternet = (sport: number) => flow({ src: '10.0.7.201', dst: '203.0.113.10', proto: 'tcp', sport, dport: 443 })
const reuse = { reuse: true }

describe('a flow from another source port reuses the walk', () => {
  it('SNAT to a port range: the step shows the port this flow had, and the flow leaves from the range', async () => {
    const state = await nodeWith((nat) => nat.replace('--to-source 10.0.3.45 --random-fully', '--to-source 10.0.3.45:1024-2048 --random-fully'))
    explain(state, toInternet(40000), reuse)
    const reused = toVerdictJson(explain(state, toInternet(40001), reuse), state)
    expect(reused.flow.sport).toBe(40001)
    expect(reused.sourceAfter).toBe('10.0.3.45')
    const snat = reused.steps.find((s) => s.kind === 'nat')!
    expect(snat.changes).toContainEqual({ field: 'sport', before: '40001', after: '1024-2048' })
    expect(JSON.stringify(reused)).toBe(JSON.stringify(toVerdictJson(explain(state, toInternet(40001)), state)))
    expect(prepare(state).explanations.size).toBeGreaterThan(0)
  })

  it('a node whose rules read the source port walks every flow', async () => {
    const state = await nodeWith((nat) => nat.replace(/^-A AWS-SNAT-CHAIN-0 -d /m, '-A AWS-SNAT-CHAIN-0 -p tcp -m tcp --sport 40001 -j RETURN\n-A AWS-SNAT-CHAIN-0 -d '))
    const first = toVerdictJson(explain(state, toInternet(40000), reuse), state)
    const second = toVerdictJson(explain(state, toInternet(40001), reuse), state)
    expect(first.snat).toBe(true)
    expect(second.snat).toBe(false)
    expect(second.decidedBy?.rule).toContain('--sport 40001')
    expect(prepare(state).sourcePortBlind).toBe(false)
    expect(prepare(state).explanations.size).toBe(0)
  })

  it('the answer for the same flow again is the same object; another port gets its own', async () => {
    const state = await nodeWith((nat) => nat)
    const a = explain(state, toInternet(40000), reuse)
    expect(explain(state, toInternet(40000), reuse)).toBe(a)
    expect(explain(state, toInternet(40000))).not.toBe(a)
    const b = explain(state, toInternet(40002), reuse)
    expect(b).not.toBe(a)
    expect(b.flow.sport).toBe(40002)
    expect(b.trace.finalFlow.sport).toBe(40002)
    expect(a.flow.sport).toBe(40000)
  })
})
