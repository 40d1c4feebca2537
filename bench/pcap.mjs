#!/usr/bin/env node
// Benchmark: `natlens flows` against `tcpdump -nr` and `tshark -q -z conv,tcp` on the same 1 GiB synthetic
// capture (../shared/tools/gen-big-pcap.py, deterministic, with an exact truth file), in the same run, rounds
// interleaved so load on the machine hits every tool alike. Reports wall time, packets/s, MB/s and peak RSS
// (GNU time's maximum resident set size of the process), checks natlens's packet, protocol and flow counts
// against the generator's truth, and reads the file three times in one run (same flows, three times the
// bytes) to show that memory does not grow with the bytes read, only with the flow table.
// No timed assertions: this prints a report (and exits non-zero only when natlens's counts are wrong).
//
// usage: node bench/pcap.mjs [--runs 3] [--size BYTES] [--dir DIR] [--keep] [--skip-tshark]
// Needs `npm run build` first (natlens runs from dist/ through bin/run.js), python3, and /usr/bin/time.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const repo = path.resolve(fileURLToPath(new URL('..', import.meta.url)))
const shared = path.resolve(repo, '..', 'shared')
const generator = path.join(shared, 'tools', 'gen-big-pcap.py')

const args = { runs: 3, size: 1 << 30, dir: '', keep: false, 'skip-tshark': false }
for (let i = 2; i < process.argv.length; i++) {
  const k = process.argv[i].replace(/^--/, '')
  if (!(k in args)) { console.error(`unknown option --${k}`); process.exit(2) }
  if (typeof args[k] === 'boolean') args[k] = true
  else args[k] = typeof args[k] === 'number' ? Number(process.argv[++i]) : process.argv[++i]
}

const bin = path.join(repo, 'bin', 'run.js')
if (!existsSync(path.join(repo, 'dist', 'commands', 'flows.js'))) {
  console.error('dist/commands/flows.js is missing: run `npm run build` first')
  process.exit(2)
}
if (!existsSync('/usr/bin/time')) {
  console.error('/usr/bin/time (GNU time) is needed for peak RSS')
  process.exit(2)
}
const have = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0

// ------------------------------------------------------------------------------------------ the capture
const dir = args.dir || mkdtempSync(path.join(os.tmpdir(), 'natlens-bench-pcap-'))
const file = path.join(dir, 'big.pcap')
if (!existsSync(file) || !existsSync(`${file}.truth.json`)) {
  process.stderr.write(`generating ${(args.size / 2 ** 30).toFixed(2)} GiB capture in ${dir} …\n`)
  execFileSync('python3', [generator, file, '--size', String(args.size)], { stdio: ['ignore', 'ignore', 'inherit'] })
}
const truth = JSON.parse(readFileSync(`${file}.truth.json`, 'utf8'))
const fileBytes = statSync(file).size
// Warm the page cache, as the throughput anchor in ../shared/corpus/README.md did.
spawnSync('sh', ['-c', `cat '${file}' > /dev/null`])

// -------------------------------------------------------------------------------------------- running
/** Runs a shell command under GNU time: wall and CPU (user + system) seconds, peak RSS in KiB, exit code. */
function measure(command) {
  const timeOut = path.join(dir, 'time.txt')
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M %U %S', '-o', timeOut, 'sh', '-c', command], { maxBuffer: 1 << 30, encoding: 'utf8' })
  const [wall, rss, user, sys] = readFileSync(timeOut, 'utf8').trim().split('\n').pop().split(' ').map(Number)
  return { wall, rssKiB: rss, cpu: user + sys, exit: r.status, stdout: r.stdout, stderr: r.stderr }
}

const q = (s) => `'${s}'`
const tools = [
  { name: 'natlens flows (table, top 20)', cmd: `node ${q(bin)} flows ${q(file)} > /dev/null` },
  { name: 'natlens flows --ndjson', cmd: `node ${q(bin)} flows ${q(file)} --ndjson > /dev/null` },
  { name: 'natlens flows --json', cmd: `node ${q(bin)} flows ${q(file)} --json > ${q(path.join(dir, 'flows.json'))}` },
  { name: 'natlens flows --reader pcap-parser', cmd: `node ${q(bin)} flows ${q(file)} --reader pcap-parser > /dev/null` },
  { name: 'tcpdump -nr', cmd: `tcpdump -nr ${q(file)} > /dev/null 2>&1`, needs: 'tcpdump' },
  { name: 'tshark -q -z conv,tcp', cmd: `tshark -r ${q(file)} -q -z conv,tcp > ${q(path.join(dir, 'tshark-conv.txt'))} 2>/dev/null`, needs: 'tshark' },
].filter((t) => !t.needs || (have(t.needs) && !(t.needs === 'tshark' && args['skip-tshark'])))

const results = new Map(tools.map((t) => [t.name, []]))
const failures = []
const loadBefore = os.loadavg()[0]
for (let round = 0; round < args.runs; round++) {
  for (const t of tools) {
    process.stderr.write(`round ${round + 1}/${args.runs}: ${t.name} … `)
    const m = measure(t.cmd)
    process.stderr.write(`${m.wall} s (CPU ${m.cpu.toFixed(2)} s), ${(m.rssKiB / 1024).toFixed(0)} MiB${m.exit ? ` (exit ${m.exit})` : ''}\n`)
    if (m.exit && !t.name.startsWith('tshark')) failures.push(`${t.name} exited ${m.exit}: ${m.stderr.trim().split('\n')[0] ?? ''}`)
    results.get(t.name).push(m)
  }
}

const loadAfter = os.loadavg()[0]

// Memory against bytes read: the same file given three times holds the same flows in three times the bytes.
const triple = measure(`node ${q(bin)} flows ${q(file)} ${q(file)} ${q(file)} > /dev/null`)
const single = results.get(tools[0].name)

// ------------------------------------------------------------------------------------------- checking
const doc = JSON.parse(readFileSync(path.join(dir, 'flows.json'), 'utf8'))
const protocols = doc.files[0].protocols
const checks = [
  ['packets', doc.packets, truth.packets],
  ['bidirectional flows', doc.flowCount, truth.bidirectional_flows],
  ['IPv4 packets', protocols.ip ?? 0, truth.ipv4],
  ['IPv6 packets', protocols.ipv6 ?? 0, truth.ipv6],
  ['TCP packets', protocols.tcp ?? 0, truth.tcp],
  ['UDP packets', protocols.udp ?? 0, truth.udp],
  ['ICMP + ICMPv6 packets', (protocols.icmp ?? 0) + (protocols.icmpv6 ?? 0), truth.icmp],
  ['VLAN-tagged packets', protocols.vlan ?? 0, truth.vlan_tagged],
  ['bytes in flows', doc.flows.reduce((s, f) => s + f.bytes, 0), truth.wire_bytes],
]
let tsharkRows
if (existsSync(path.join(dir, 'tshark-conv.txt'))) {
  tsharkRows = readFileSync(path.join(dir, 'tshark-conv.txt'), 'utf8').split('\n').filter((l) => l.includes('<->')).length
  const natlensTcp = doc.flows.filter((f) => f.proto === 'tcp').length
  checks.push(['TCP conversations (tshark conv,tcp rows)', natlensTcp, tsharkRows])
}

// ------------------------------------------------------------------------------------------- reporting
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const tcpdumpPps = results.has('tcpdump -nr') ? truth.packets / median(results.get('tcpdump -nr').map((m) => m.wall)) : undefined
const fmt = (n) => Math.round(n).toLocaleString('en')
const lines = []
lines.push(`Capture: ${fmt(fileBytes)} bytes, ${fmt(truth.packets)} packets, ${fmt(truth.bidirectional_flows)} flows (gen-big-pcap.py, seed ${truth.seed}); ${os.cpus().length} CPUs (${os.cpus()[0]?.model.trim()}), Node ${process.version}; median of ${args.runs} runs, interleaved, page cache warm; load average ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after; MB = 10^6 bytes.`)
lines.push('')
lines.push('| command | wall s (runs) | CPU s | packets/s | MB/s | peak RSS | packets/s vs tcpdump |')
lines.push('|---|---|---|---|---|---|---|')
for (const [name, ms] of results) {
  const wall = median(ms.map((m) => m.wall))
  const pps = truth.packets / wall
  const rss = median(ms.map((m) => m.rssKiB)) / 1024
  lines.push(`| \`${name}\` | ${wall.toFixed(2)} (${ms.map((m) => m.wall.toFixed(2)).join(', ')}) | ${median(ms.map((m) => m.cpu)).toFixed(2)} | ${fmt(pps)} | ${fmt(fileBytes / 1e6 / wall)} | ${rss.toFixed(0)} MiB | ${tcpdumpPps ? `${(pps / tcpdumpPps).toFixed(2)}×` : '-'} |`)
}
lines.push('')
lines.push(`Memory against bytes read: the file given three times (${fmt(3 * fileBytes)} bytes, the same ${fmt(truth.bidirectional_flows)} flows): ` +
  `peak RSS ${(triple.rssKiB / 1024).toFixed(0)} MiB in ${triple.wall.toFixed(2)} s, against ${(median(single.map((m) => m.rssKiB)) / 1024).toFixed(0)} MiB for one pass.`)
lines.push('')
lines.push('| natlens count | natlens | truth | |')
lines.push('|---|---|---|---|')
let bad = 0
for (const [what, got, want] of checks) {
  const ok = got === want
  if (!ok) bad++
  lines.push(`| ${what} | ${fmt(got)} | ${fmt(want)} | ${ok ? 'equal' : 'DIFFERENT'} |`)
}
if (failures.length) lines.push('', ...failures.map((f) => `FAILED: ${f}`))
console.log(lines.join('\n'))

if (!args.keep && !args.dir) rmSync(dir, { recursive: true, force: true })
process.exit(bad || failures.length ? 1 : 0)
