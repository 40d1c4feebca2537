// Properties of explain on arbitrary flows over real states (the shared examples, the lab's stored bundles, the
// kube-proxy rule sets in iptables and nftables form): it never throws, every step words itself, the branches'
// probabilities add up, the trace's pointers hold, the engine's lazily built indexes (compiled chains, resolved
// jumps, merged index lists, nft set lookups, SNAT capability) make no answer depend on which flows came before, and
// an answer reused for another source port is the one a fresh walk gives.
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { loadNodeState, type LoadedNode } from '../../src/sources/load.js'
import { explain } from '../../src/engine/explain.js'
import { formatIp } from '../../src/model/ip.js'
import { parseFlow, type Flow } from '../../src/model/flow.js'
import type { Explanation } from '../../src/model/trace.js'
import { toVerdictJson } from '../../src/render/verdict-json.js'
import { EXAMPLES, FIXTURES, REPO, SHARED } from '../helpers.js'

const LAB = join(REPO, 'test/lab/fixtures')
const KUBE_PROXY = join(SHARED, 'examples/kube-proxy')
const ROUTING = ['ip-rule.txt', 'ip-route-all.txt'].map((f) => join(FIXTURES, 'example-node', f))

const states: [string, string[]][] = [
  ...readdirSync(EXAMPLES).map((n): [string, string[]] => [n, [join(EXAMPLES, n)]]),
  ...['v4kp', 'v4nft', 'v4sgps', 'v4cilium', 'v6'].filter((s) => existsSync(join(LAB, s, 'bundle'))).map((s): [string, string[]] => [`lab ${s}`, [join(LAB, s, 'bundle')]]),
  ...readdirSync(KUBE_PROXY).map((f): [string, string[]] => [`kube-proxy ${f}`, [join(KUBE_PROXY, f), ...ROUTING]]),
]

/** Addresses worth aiming at: the node's own, its pods', every /32 and prefix the rules and routes name, and strangers. */
function interesting(state: LoadedNode, family: 4 | 6): string[] {
  const out = new Set<string>()
  for (const p of state.derived.pods) if (p.ip.family === family) out.add(formatIp(p.ip))
  for (const i of state.interfaces) for (const a of i.addresses) if (a.address.family === family) out.add(formatIp(a.address))
  for (const r of state.routes) if (r.family === family) out.add(formatIp({ family, value: r.dst.network }))
  for (const t of state.tables) for (const c of t.chains.values()) for (const r of c.rules) for (const m of r.matches) {
    if ((m.kind === 'dst' || m.kind === 'src') && m.cidr.family === family) out.add(formatIp({ family, value: m.cidr.network }))
    if (out.size > 400) break
  }
  for (const s of family === 4 ? ['203.0.113.10', '198.51.100.7', '10.0.0.20', '127.0.0.1', '255.255.255.255', '0.0.0.0'] : ['2001:db8::1', '::1', 'fe80::1', '64:ff9b::cb00:710a']) out.add(s)
  return [...out]
}

function checkExplanation(e: Explanation): void {
  expect(e.branches.length).toBeGreaterThan(0)
  expect(e.branches[0]).toBe(e.trace)
  const total = e.branches.reduce((n, b) => n + b.probability, 0)
  if (!e.warnings.some((w) => /alternative paths/.test(w))) expect(total).toBeCloseTo(1, 6)
  for (const b of e.branches) {
    expect(b.probability).toBeGreaterThanOrEqual(0)
    expect(b.probability).toBeLessThanOrEqual(1)
    if (b.decisive && b.decisive.stepIndex >= 0) expect(b.decisive.stepIndex).toBeLessThan(b.steps.length)
    // insufficient-info keeps the egress the walk found, as the best known answer next to its warning.
    if (b.verdict !== 'forwarded' && b.verdict !== 'insufficient-info') expect(b.egressInterface).toBeNull()
    for (const s of b.steps) {
      expect(typeof s.summary).toBe('string')
      expect(s.summary.length).toBeGreaterThan(0)
      if ('changes' in s) for (const c of s.changes) expect(typeof c.before === 'string' && typeof c.after === 'string').toBe(true)
    }
  }
}

describe.each(states)('explain on %s', async (_name, inputs) => {
  const state = await loadNodeState(inputs)
  const v4 = interesting(state, 4)
  const v6 = interesting(state, 6)
  const flowArb = fc.record({
    family: fc.constantFrom(4 as const, 6 as const),
    src: fc.nat(), dst: fc.nat(),
    proto: fc.constantFrom('tcp', 'udp', 'icmp'),
    sport: fc.integer({ min: 1, max: 65535 }), dport: fc.constantFrom(22, 53, 80, 443, 8080, 30080, 31000, 5432),
    origin: fc.constantFrom(undefined, 'pod', 'host', 'external', 'reply'),
    ctmark: fc.constantFrom(undefined, 0, 0x80, 0x4000),
  }).map((r): [Flow, number | undefined] | undefined => {
    const pool = r.family === 4 ? v4 : v6
    if (pool.length === 0) return undefined
    const f = parseFlow({ src: pool[r.src % pool.length]!, dst: pool[r.dst % pool.length]!, proto: r.proto, sport: r.sport, dport: r.dport, ...(r.origin ? { origin: r.origin } : {}) })
    return typeof f === 'string' ? undefined : [f, r.ctmark]
  })

  it('never throws; every step words itself; branch probabilities add up; the JSON renders', () => {
    fc.assert(fc.property(flowArb, (x) => {
      if (!x) return
      const [flow, ctmark] = x
      const e = explain(state, flow, ctmark !== undefined ? { ctmark } : {})
      checkExplanation(e)
      expect(() => JSON.stringify(toVerdictJson(e, state))).not.toThrow()
    }), { numRuns: 150 })
  })

  // A second copy of the state sees only the flows compared; the first has explained many others in between.
  const other = await loadNodeState(inputs)
  it('an answer does not depend on the flows explained before it', () => {
    fc.assert(fc.property(fc.array(flowArb, { minLength: 2, maxLength: 12 }), (xs) => {
      const flows = xs.filter((x): x is [Flow, number | undefined] => !!x)
      if (flows.length === 0) return
      for (const [f, c] of flows.slice(1)) explain(state, f, c !== undefined ? { ctmark: c } : {})
      const [first, ctmark] = flows[0]!
      const opts = ctmark !== undefined ? { ctmark } : {}
      expect(JSON.stringify(toVerdictJson(explain(state, first, opts), state))).toBe(JSON.stringify(toVerdictJson(explain(other, first, opts), other)))
    }), { numRuns: 40 })
  })

  // With `reuse`, a flow that differs from an earlier one only in the source port is answered from the earlier walk.
  it('a flow after the same flow with another source port: what a fresh walk gives', () => {
    fc.assert(fc.property(flowArb, fc.integer({ min: 1, max: 65535 }), (x, sport) => {
      if (!x) return
      const [flow, ctmark] = x
      const opts = ctmark !== undefined ? { ctmark } : {}
      explain(state, flow, { ...opts, reuse: true })
      const again = { ...flow, sport: flow.sport === null ? null : sport }
      const reused = explain(state, again, { ...opts, reuse: true })
      checkExplanation(reused)
      expect(JSON.stringify(toVerdictJson(reused, state))).toBe(JSON.stringify(toVerdictJson(explain(state, again, opts), state)))
    }), { numRuns: 100 })
  })
})
