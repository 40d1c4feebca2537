#!/usr/bin/env node
// Collection time on a node with the 160k-rule kube-proxy state (bench/gen-kube-proxy.mjs: 5,000 services × 10
// endpoints plus the VPC CNI's rules), loaded into a throwaway network namespace (nl-bench-col-*), next to what the
// EKS log collector runs for the same state in the same namespace in the same run: `iptables-save`,
// `iptables --wait 1 --numeric --verbose --list --table <t>` for mangle, filter, nat and the default listing,
// `ip rule show`, `ip route show table all` (eks-log-collector.sh get_iptables_info / get_networking_info, one
// after the other as the script does). Rounds alternate between the two so machine load hits both alike.
//
// natlens collect's "state" time is the manifest's stateDurationMs: every command of the plan (both iptables
// backends, nft text and JSON, conntrack, ip in text and JSON, sysctls, the ipamd/kube-proxy/IMDS reads) from the
// first start to the last file written; "wall" adds Node's and oclif's start-up and writing the bundle.
// Target: state collection under 3 s with the legacy backend (what kube-proxy uses on AL2, and what
// iptables-legacy-restore loads here in seconds). `--backend nft` loads the rules through iptables-nft instead:
// iptables-nft-save and nft list ruleset of 160k rules take minutes on this kernel, for natlens and for the EKS
// collector's `iptables-save` alike; it is reported, not held to the target.
//
// Needs root (a namespace), iptables, and `npm run build` (the CLI runs from dist/).
// usage: node bench/collect.mjs [--rounds 3] [--services 5000] [--endpoints 10] [--backend legacy|nft] [--json]
import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = fileURLToPath(new URL('.', import.meta.url))
const repo = join(here, '..')
const args = { rounds: 3, services: 5000, endpoints: 10, backend: 'legacy', json: false }
for (let i = 2; i < process.argv.length; i++) {
  const k = process.argv[i].replace(/^--/, '')
  if (!(k in args)) { console.error(`unknown option --${k}`); process.exit(2) }
  if (typeof args[k] === 'boolean') args[k] = true
  else args[k] = typeof args[k] === 'number' ? Number(process.argv[++i]) : process.argv[++i]
}
const TARGET_MS = 3000

function skip(why) {
  if (args.json) console.log(JSON.stringify({ benchmark: 'collect', skipped: why }))
  else console.log(`collect benchmark skipped: ${why}`)
  process.exit(0)
}
if (process.getuid?.() !== 0) skip('needs root (a network namespace holds the 160k-rule state)')
if (!existsSync(join(repo, 'dist', 'commands', 'collect.js'))) skip('dist/ is not built: run `npm run build` first')
const has = (c) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0
const ipt = args.backend === 'nft' ? 'iptables-nft' : 'iptables-legacy'
for (const c of ['ip', `${ipt}-restore`, `${ipt}-save`, ipt]) if (!has(c)) skip(`${c} is not installed`)

const rules = `/tmp/natlens-bench-kube-proxy-${args.services}x${args.endpoints}-s1.iptables-save.txt`
if (!existsSync(rules)) {
  execFileSync(process.execPath, [join(here, 'gen-kube-proxy.mjs'), '--services', String(args.services), '--endpoints', String(args.endpoints), '--seed', '1', '--out', rules], { stdio: ['ignore', 'ignore', 'inherit'] })
}

const NS = `nl-bench-col-${randomBytes(4).toString('hex')}`
const inNs = (argv, opts = {}) => spawnSync('ip', ['netns', 'exec', NS, ...argv], { maxBuffer: 1 << 30, timeout: 600_000, ...opts })
const cleanup = () => { try { execFileSync('ip', ['netns', 'del', NS], { stdio: 'ignore', timeout: 10_000 }) } catch { /* gone */ } }
process.on('exit', cleanup)
for (const s of ['SIGINT', 'SIGTERM']) process.once(s, () => { cleanup(); process.exit(130) })

execFileSync('ip', ['netns', 'add', NS])
// A node-like namespace: an ENI, the CNI's rules and routes, the kube-proxy state. Nothing leaves it.
execFileSync('ip', ['-n', NS, '-batch', '-'], { input: [
  'link set lo up',
  'link add eth0 type veth peer name leg0', 'link set eth0 up', 'link set leg0 up',
  'addr add 10.0.3.45/20 dev eth0', 'route add default via 10.0.0.1 dev eth0 onlink',
  'rule add pref 1024 fwmark 0x80/0x80 lookup main', 'rule add pref 512 to 10.0.7.201 lookup main',
].join('\n') + '\n' })
const t0 = performance.now()
const load = inNs([`${ipt}-restore`], { input: readFileSync(rules) })
if (load.status !== 0) { console.error(`${ipt}-restore failed: ${load.stderr}`); process.exit(1) }
const loadMs = performance.now() - t0
const ruleCount = readFileSync(rules, 'utf8').split('\n').filter((l) => l.startsWith('-A ')).length

function natlensRound() {
  const out = join(mkdtempSync(join(os.tmpdir(), 'natlens-bench-collect-')), 'bundle')
  const t = performance.now()
  // IMDS is left out (there is none here); ipamd and kube-proxy answer "connection refused" at once, as off a node.
  const r = spawnSync(process.execPath, [join(repo, 'bin', 'run.js'), 'collect', '--netns', NS, '-o', out, '--json', '--skip', 'imds'], { encoding: 'utf8', maxBuffer: 1 << 26, timeout: 900_000 })
  const wallMs = performance.now() - t
  if (r.status !== 0) throw new Error(`natlens collect failed (${r.status}): ${r.stderr.slice(-2000)}`)
  const summary = JSON.parse(r.stdout)
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'))
  const slowest = manifest.commands.filter((c) => c.kind === 'command').sort((a, b) => b.durationMs - a.durationMs).slice(0, 4).map((c) => `${c.id} ${c.durationMs} ms`)
  rmSync(join(out, '..'), { recursive: true, force: true })
  return { stateMs: summary.stateDurationMs, wallMs, bytes: summary.bytes, slowest }
}

/** eks-log-collector.sh's equivalents, one after the other, output to /dev/null as the bench only times them. */
const EKS = [
  [`${ipt}-save`],
  [ipt, '--wait', '1', '--numeric', '--verbose', '--list', '--table', 'mangle'],
  [ipt, '--wait', '1', '--numeric', '--verbose', '--list', '--table', 'filter'],
  [ipt, '--wait', '1', '--numeric', '--verbose', '--list', '--table', 'nat'],
  [ipt, '--wait', '1', '--numeric', '--verbose', '--list'],
  ['ip', 'rule', 'show'],
  ['ip', 'route', 'show', 'table', 'all'],
]
function eksRound() {
  const per = []
  const t = performance.now()
  for (const argv of EKS) {
    const s = performance.now()
    const r = inNs(argv, { stdio: ['ignore', 'ignore', 'pipe'] })
    if (r.status !== 0) throw new Error(`${argv.join(' ')} failed: ${r.stderr}`)
    per.push(`${argv.join(' ').replace(/ --wait 1 --numeric --verbose --list/, ' -nvL')} ${Math.round(performance.now() - s)} ms`)
  }
  return { totalMs: performance.now() - t, per }
}

const natlens = []
const eks = []
for (let i = 0; i < args.rounds; i++) {
  if (i % 2 === 0) { natlens.push(natlensRound()); eks.push(eksRound()) } else { eks.push(eksRound()); natlens.push(natlensRound()) }
}
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }
const result = {
  benchmark: 'collect', backend: args.backend, rules: ruleCount, rounds: args.rounds, loadMs: Math.round(loadMs),
  natlens: { stateMedianMs: median(natlens.map((r) => r.stateMs)), stateMaxMs: Math.max(...natlens.map((r) => r.stateMs)), wallMedianMs: Math.round(median(natlens.map((r) => r.wallMs))), bundleBytes: natlens[0].bytes, slowest: natlens[0].slowest },
  eksCollectorEquivalent: { totalMedianMs: Math.round(median(eks.map((r) => r.totalMs))), perCommand: eks[0].per },
  targetMs: TARGET_MS,
}
result.withinTarget = result.natlens.stateMaxMs < TARGET_MS
if (args.json) console.log(JSON.stringify(result, null, 2))
else {
  console.log(`natlens collect on ${ruleCount} iptables rules (${args.backend} backend, loaded in ${(loadMs / 1000).toFixed(1)} s), ${args.rounds} rounds, ${os.cpus().length} CPUs`)
  console.log(`  natlens collect --netns: state ${result.natlens.stateMedianMs} ms median (max ${result.natlens.stateMaxMs} ms), ${result.natlens.wallMedianMs} ms with start-up and writing; bundle ${(result.natlens.bundleBytes / 1048576).toFixed(1)} MiB`)
  console.log(`    slowest items: ${result.natlens.slowest.join(', ')}`)
  console.log(`  EKS log collector's commands: ${result.eksCollectorEquivalent.totalMedianMs} ms median, one after the other`)
  console.log(`    ${result.eksCollectorEquivalent.perCommand.join(', ')}`)
  console.log(`  target: state under ${TARGET_MS} ms: ${result.withinTarget ? 'met' : 'MISSED'}`)
}
