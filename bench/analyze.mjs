#!/usr/bin/env node
// analyze's pairing: captures of 50k and 200k NATed connections (bench/gen-nat-pcap.mjs: each packet on the pod's veth
// and SNATed on eth0), against the example node. Reports pairs/s and peak RSS at both sizes (pairing is linear:
// a hash of each leg's signature, no leg compared with every other), next to `tcpdump -nr` reading the same files.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, copyFileSync, writeFileSync, statSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const repo = join(here, '..')
if (process.argv[2] === '--child') {
  // The analysis in one process, printing only its counts (200k flows of JSON would not fit in a string).
  const { loadNodeState } = await import(join(repo, 'dist/sources/load.js'))
  const { analyze } = await import(join(repo, 'dist/analyze/analyze.js'))
  const { prepare } = await import(join(repo, 'dist/engine/explain.js'))
  const state = await loadNodeState([process.argv[3]])
  const a = await analyze(state, [process.argv[4]])
  const paired = a.flows.filter((f) => f.observed.snat && f.observed.egressInterface === 'eth0').length
  // Walks of the rules made: connections that differ only in the source port share one.
  const walks = prepare(state).explanations.size
  console.log(JSON.stringify({ flows: a.flows.length, paired, agreeing: a.agreeing, unpaired: a.unpaired.length, walks }))
  process.exit(0)
}

const dir = mkdtempSync(join(tmpdir(), 'natlens-bench-analyze-'))
for (const f of ['ip-rule.txt', 'ip-route-all.txt', 'iptables-save-nat.txt', 'iptables-save-mangle.txt']) copyFileSync(join(repo, 'fixtures/example-node', f), join(dir, f))
const links = [['lo', 1], ['eth0', 2], ['eth1', 3], ['eni212428e8e5c', 5], ['eni61d104e9256', 6], ['enie90ff0f6268', 7], ['enia9b3a9ead99', 8]]
writeFileSync(join(dir, 'ip-link.json'), JSON.stringify(links.map(([ifname, ifindex]) => ({ ifindex, ifname, flags: ['UP'], mtu: 9001, link_type: 'ether', address: '02:00:00:00:00:01' }))))

function peak(cmd, args, keepStdout) {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', cmd, ...args], { encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', keepStdout ? 'pipe' : 'ignore', 'pipe'] })
  const [sec, kb] = r.stderr.trim().split('\n').pop().split(' ').map(Number)
  return { seconds: sec, rssMB: Math.round(kb / 1024), stdout: r.stdout ?? '', status: r.status }
}



// Captures live apart from the bundle: a bundle directory's own captures are read as part of it.
const capDir = mkdtempSync(join(tmpdir(), 'natlens-bench-captures-'))
const rows = []
for (const n of [50000, 200000]) {
  const pcap = join(capDir, `nat-${n}.pcap`)
  const truth = JSON.parse(execFileSync(process.execPath, [join(here, 'gen-nat-pcap.mjs'), pcap, '--connections', String(n)], { encoding: 'utf8' }))
  const mb = statSync(pcap).size / 1e6
  const nl = peak(process.execPath, [fileURLToPath(import.meta.url), '--child', dir, pcap], true)
  const result = JSON.parse(nl.stdout)
  const td = peak('tcpdump', ['-nr', pcap], false)
  rows.push({ n, mb, packets: truth.packets, paired: result.paired, agree: result.agreeing, walks: result.walks, nl, td })
  rmSync(pcap)
}
console.log('| connections | capture | packets | pairs found | natlens analyze | pairs/s | peak RSS | tcpdump -nr (same file) | analyze time / tcpdump time |')
console.log('|---|---|---|---|---|---|---|---|---|')
for (const r of rows) {
  console.log(`| ${r.n.toLocaleString('en')} | ${r.mb.toFixed(0)} MB | ${r.packets.toLocaleString('en')} | ${r.paired.toLocaleString('en')} (${r.agree.toLocaleString('en')} agree) | ${r.nl.seconds.toFixed(1)} s | ${Math.round(r.paired / r.nl.seconds).toLocaleString('en')} | ${r.nl.rssMB} MB | ${r.td.seconds.toFixed(1)} s, ${r.td.rssMB} MB | ${(r.nl.seconds / r.td.seconds).toFixed(2)} |`)
}
const [a, b] = rows
console.log(`\nScaling: ${(b.n / a.n).toFixed(0)}× the connections took ${(b.nl.seconds / a.nl.seconds).toFixed(2)}× the time (linear would be ${(b.n / a.n).toFixed(0)}×).`)
for (const r of rows) console.log(`${r.n.toLocaleString('en')} connections: ${r.walks.toLocaleString('en')} walks of the rules (the others differ from one of those only in the source port)`)
rmSync(dir, { recursive: true })
rmSync(capDir, { recursive: true })
