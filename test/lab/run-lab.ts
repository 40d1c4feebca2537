// Runs the kernel lab by hand (as root):
//   npx vite-node test/lab/run-lab.ts [scenario ids…] [--fixtures]
// prints every flow's observation next to the documented expectation, and with --fixtures stores one bundle,
// observations.json and node.pcap per scenario under test/lab/fixtures/<scenario>/ for the replay test.
import { runLab } from './lab-run.js'
import { expectationMismatches } from './expectations.js'

const args = process.argv.slice(2)
const writeFixtures = args.includes('--fixtures')
const only = args.filter((a) => !a.startsWith('--'))
const result = await runLab({ only, writeFixtures, log: (m) => process.stderr.write(`${m}\n`) })
if (result.skipped) {
  process.stderr.write(`kernel lab skipped: ${result.skipped}\n`)
  process.exit(0)
}
let bad = 0
for (const s of result.runs) {
  process.stdout.write(`\n== ${s.scenario}: ${s.title} (${s.durationMs} ms)\n`)
  for (const f of s.flows) {
    const o = f.observed
    const miss = expectationMismatches(f)
    if (miss.length > 0) bad++
    process.stdout.write(`${miss.length ? 'XX' : 'ok'} ${f.name.padEnd(44)} ${o.delivered ? 'delivered' : 'DROPPED  '} out=${String(o.egressInterface).padEnd(15)} src=${o.sourceSeen}:${o.sportSeen ?? ''} at=${o.arrivedAt}:${o.dportArrived ?? ''} ct-mark=${o.conntrack?.mark ?? '-'}${miss.length ? `\n     ${miss.join('\n     ')}\n     ${o.evidence.join('\n     ')}` : ''}\n`)
  }
}
process.stdout.write(`\n${result.runs.reduce((n, s) => n + s.flows.length, 0)} flows in ${result.runs.length} scenarios, ${bad} differ from the docs\n`)
process.exit(bad > 0 ? 1 : 0)
