// The kernel lab: builds each scenario's node in network namespaces, sends real traffic, and checks (1) that the kernel
// did what ../shared/docs say, and (2) that `natlens explain` on the bundle dumped from the node predicts it.
// Needs root, iproute2, iptables (legacy and nft), nftables, tcpdump, conntrack and perl; skips with the reason otherwise.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { finishLab, prepareLab, writeFixture } from './lab-run.js'
import { labWorkDir, runScenario } from './harness.js'
import { listOwnedNamespaces } from './kernel.js'
import { OWNED_NAMESPACES, SCENARIOS } from './scenarios.js'
import { expectationMismatches } from './expectations.js'
import { compareScenario, comparisonTable } from './compare.js'
import type { ScenarioRun } from './model.js'

const prepared = await prepareLab((m) => console.warn(`kernel lab: ${m}`))

if (prepared.skipped) {
  console.warn(`kernel lab skipped: ${prepared.skipped}`)
  describe('kernel lab', () => {
    it.skip(`kernel lab skipped: ${prepared.skipped}`, () => undefined)
  })
} else {
  describe('kernel lab', () => {
    const runs = new Map<string, ScenarioRun>()
    const failures = new Map<string, string>()
    const workDir = labWorkDir()

    beforeAll(async () => {
      // Scenarios run one after the other (each in its own namespaces, removed when it ends).
      for (const spec of SCENARIOS) {
        try {
          const r = await runScenario(spec, { workDir })
          runs.set(spec.id, r)
          if (process.env.NATLENS_LAB_WRITE_FIXTURES === '1') writeFixture(r)
        } catch (e) {
          failures.set(spec.id, e instanceof Error ? e.message : String(e))
        }
      }
    }, 280_000)

    afterAll(() => finishLab())

    it('covers at least 8 scenarios and 40 flows, IPv4 and IPv6, with TCP, UDP and ICMP', () => {
      const flows = SCENARIOS.flatMap((s) => s.flows)
      expect(SCENARIOS.length).toBeGreaterThanOrEqual(8)
      expect(flows.length).toBeGreaterThanOrEqual(40)
      expect(new Set(flows.map((f) => f.flow.proto))).toEqual(new Set(['tcp', 'udp', 'icmp', 'icmpv6']))
      expect(flows.some((f) => f.flow.src.includes(':'))).toBe(true)
      expect(new Set(flows.map((f) => f.flow.origin))).toEqual(new Set(['pod', 'host', 'external', 'reply']))
    })

    for (const spec of SCENARIOS) {
      it(`${spec.id}: the kernel does what the docs say for every flow`, () => {
        const r = runs.get(spec.id)
        if (!r) throw new Error(`scenario ${spec.id} did not run: ${failures.get(spec.id)}`)
        const wrong = r.flows.map((f) => ({ flow: f.name, mismatches: expectationMismatches(f), evidence: f.observed.evidence })).filter((x) => x.mismatches.length > 0)
        expect(wrong).toEqual([])
        // Every defined flow was observed; random-endpoint flows also have their repetitions (`name #k`).
        expect(spec.flows.map((f) => f.name).filter((n) => !r.flows.some((x) => x.name === n))).toEqual([])
        for (const f of spec.flows.filter((x) => x.expect.outcomes.length > 1)) {
          const hit = new Set(r.flows.filter((x) => x.name === f.name || x.name.startsWith(`${f.name} #`)).map((x) => x.observed.arrivedAt))
          expect([...hit].sort(), `${f.name}: every endpoint reached`).toEqual(f.expect.outcomes.map((o) => o.arrivedAt).sort())
        }
      })

      it(`${spec.id}: natlens explain agrees with the kernel`, async () => {
        const r = runs.get(spec.id)
        if (!r) throw new Error(`scenario ${spec.id} did not run: ${failures.get(spec.id)}`)
        const rows = await compareScenario(r)
        console.log(`\n${spec.id}: ${spec.title}\n${comparisonTable(rows)}`)
        expect(rows.filter((c) => !c.agree).map((c) => `${c.flow}: ${c.mismatches.join('; ')}`)).toEqual([])
      })
    }

    it('leaves no lab namespace behind', async () => {
      expect(await listOwnedNamespaces(OWNED_NAMESPACES)).toEqual([])
    })
  })
}
