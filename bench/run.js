#!/usr/bin/env node
// `npm run bench`: every benchmark, each against its reference tool on the same input in the same run.
// Nothing here is a test: it prints figures (the README quotes them). Run as root for the namespace-based parts.
//   node bench/run.js [iptables] [explain] [pcap] [analyze] [collect]     (default: all that are present)
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const suites = [
  ['iptables', 'iptables-parse.mjs', 'parse: natlens vs iptables-restore --test on the 160k-rule kube-proxy + VPC CNI dump'],
  ['explain', 'explain.mjs', 'explain: 100,000 random flows on the same state'],
  ['pcap', 'pcap.mjs', 'flows: natlens vs tcpdump -nr and tshark on the 1 GiB synthetic capture'],
  ['analyze', 'analyze.mjs', 'analyze: pairing NAT legs in 50k and 200k-connection captures, next to tcpdump -nr'],
  ['collect', 'collect.mjs', 'collect: natlens collect vs the EKS log collector\'s commands on a 160k-rule lab node'],
]
const wanted = process.argv.slice(2)
let failed = 0
for (const [name, file, title] of suites) {
  if (wanted.length && !wanted.includes(name)) continue
  const path = join(here, file)
  if (!existsSync(path)) { console.log(`\n## ${name}: not present (${file})`); continue }
  console.log(`\n## ${title}\n`)
  const r = spawnSync(process.execPath, [path], { stdio: 'inherit' })
  if (r.status !== 0) { failed++; console.log(`(${name} exited with ${r.status})`) }
}
process.exit(failed ? 1 : 0)
