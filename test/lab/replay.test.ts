// Replays the stored kernel lab runs (test/lab/fixtures/<scenario>/: bundle, observations.json, node.pcap) without root:
// natlens on the stored bundle must predict what the kernel did when the fixture was made.
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { readFixtures } from './lab-run.js'
import { expectationMismatches } from './expectations.js'
import { compareScenario, comparisonTable } from './compare.js'
import { readCapture } from './capture.js'
import { SCENARIOS } from './scenarios.js'

const fixtures = readFixtures()

describe('kernel lab replay (stored fixtures)', () => {
  it('has a fixture for every scenario, with at least 40 flows in all', () => {
    expect(fixtures.map((f) => f.scenario).sort()).toEqual(SCENARIOS.map((s) => s.id).sort())
    expect(fixtures.reduce((n, f) => n + f.flows.length, 0)).toBeGreaterThanOrEqual(40)
  })

  for (const run of fixtures) {
    describe(run.scenario, () => {
      it('stored observations match the documented behaviour and the scenario as defined now', () => {
        const spec = SCENARIOS.find((s) => s.id === run.scenario)
        expect(spec, `scenario ${run.scenario} is no longer defined: regenerate the fixtures`).toBeDefined()
        // The fixture was made from the same flows (names, tuples) the scenario defines today.
        // Repetitions of random-endpoint flows (`name #k`) come on top.
        expect(run.flows.filter((f) => !/ #\d+$/.test(f.name)).map((f) => [f.name, f.flow])).toEqual(spec!.flows.map((f) => [f.name, f.flow]))
        expect(run.flows.flatMap((f) => expectationMismatches(f).map((m) => `${f.name}: ${m}`))).toEqual([])
      })

      it('stored capture holds every delivered flow\'s packet on its egress interface', () => {
        const packets = readCapture(run.pcap)
        expect(packets.length).toBeGreaterThan(0)
        for (const f of run.flows.filter((x) => x.observed.delivered && x.observed.sourceSeen)) {
          const hit = packets.some((p) => p.pktType === 4 && p.src === f.observed.sourceSeen && p.dst === f.observed.arrivedAt && (p.sport ?? null) === f.observed.sportSeen)
          expect(hit, `${f.name}: no outgoing ${f.observed.sourceSeen} > ${f.observed.arrivedAt} in ${path.basename(run.pcap)}`).toBe(true)
        }
        expect(fs.statSync(run.pcap).size).toBeLessThan(512 * 1024)
      })

      it('natlens explain on the stored bundle agrees with the kernel', async () => {
        const rows = await compareScenario(run)
        console.log(`\n${run.scenario} (replay): ${run.title}\n${comparisonTable(rows)}`)
        expect(rows.filter((c) => !c.agree).map((c) => `${c.flow}: ${c.mismatches.join('; ')}`)).toEqual([])
      })
    })
  }
})
