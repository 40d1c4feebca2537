#!/usr/bin/env node
// Benchmark: natlens' iptables-save parser against `iptables-restore --test` on the same synthetic kube-proxy dump
// (bench/gen-kube-proxy.mjs), in the same run, runs interleaved so load on the machine hits both alike.
// iptables-legacy-restore --test parses and builds the whole ruleset without committing it; it runs inside a
// throwaway network namespace (nl-bench-*) so the host's tables are never touched. Needs `npm run build` first
// (the parser is imported from dist/) and root for the namespace; without root only natlens is measured.
//
// usage: node bench/iptables-parse.mjs [--file PATH] [--runs 5] [--services 5000] [--endpoints 10] [--seed 1]
import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync, statSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath } from 'node:url'

const here = fileURLToPath(new URL('.', import.meta.url))

if (process.argv[2] === '--child') {
  // One measured parse in a fresh process, so peak RSS belongs to this parse alone.
  const { parseIptablesSave } = await import(new URL('../dist/parse/iptables-save.js', import.meta.url))
  const { makeContext } = await import(new URL('../dist/parse/context.js', import.meta.url))
  const file = process.argv[3]
  const t0 = performance.now()
  const c0 = process.cpuUsage()
  const text = readFileSync(file, 'utf8')
  const ctx = makeContext(file)
  const tables = parseIptablesSave(text, ctx)
  const wallMs = performance.now() - t0
  const cpu = process.cpuUsage(c0)
  let rules = 0
  let chains = 0
  for (const t of tables) { chains += t.chains.size; for (const c of t.chains.values()) rules += c.rules.length }
  console.log(JSON.stringify({ wallMs, cpuMs: (cpu.user + cpu.system) / 1000, maxRssKB: process.resourceUsage().maxRSS, rules, chains, diagnostics: ctx.sink.items.length }))
  process.exit(0)
}

const args = { file: '', runs: 5, services: 5000, endpoints: 10, seed: 1 }
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '')
  if (!(k in args)) { console.error(`unknown option --${k}`); process.exit(2) }
  args[k] = typeof args[k] === 'number' ? Number(process.argv[i + 1]) : process.argv[i + 1]
}
if (!args.file) {
  args.file = `/tmp/natlens-bench-kube-proxy-${args.services}x${args.endpoints}-s${args.seed}.iptables-save.txt`
  if (!existsSync(args.file)) {
    execFileSync(process.execPath, [`${here}gen-kube-proxy.mjs`, '--services', String(args.services), '--endpoints', String(args.endpoints), '--seed', String(args.seed), '--out', args.file], { stdio: ['ignore', 'ignore', 'inherit'] })
  }
}
if (!existsSync(new URL('../dist/parse/iptables-save.js', import.meta.url))) {
  console.error('dist/parse/iptables-save.js is missing: run `npm run build` first')
  process.exit(2)
}
const bytes = statSync(args.file).size

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0
}
const isRoot = process.getuid?.() === 0
const restoreTools = ['iptables-legacy-restore', 'iptables-nft-restore'].filter(have)
const timeTool = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined
const skipReason = !isRoot ? 'not root (a network namespace is needed)' : !have('ip') ? 'iproute2 missing' : restoreTools.length === 0 ? 'iptables-restore missing' : undefined

function natlensRun() {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', args.file], { encoding: 'utf8', maxBuffer: 1 << 20 })
  if (r.status !== 0) throw new Error(`natlens child failed: ${r.stderr}`)
  return JSON.parse(r.stdout.trim().split('\n').pop())
}

const NS = `nl-bench-${randomBytes(4).toString('hex')}`
function restoreRun(tool) {
  const input = readFileSync(args.file)
  const cmd = timeTool ? [timeTool, '-f', 'NATLENS_TIME %e %U %S %M', 'ip', 'netns', 'exec', NS, tool, '--test'] : ['ip', 'netns', 'exec', NS, tool, '--test']
  const t0 = performance.now()
  const r = spawnSync(cmd[0], cmd.slice(1), { input, encoding: 'utf8', maxBuffer: 64 << 20 })
  const wall = performance.now() - t0
  const line = r.stderr.split('\n').find((l) => l.startsWith('NATLENS_TIME'))
  const exit = timeTool ? Number(/Command exited with non-zero status (\d+)/.exec(r.stderr)?.[1] ?? 0) : r.status
  if (exit !== 0 || r.status !== 0) throw new Error(`${tool} --test failed (${r.status}): ${r.stderr.slice(0, 500)}`)
  if (!line) return { wallMs: wall }
  const [, e, u, s, m] = line.split(' ')
  return { wallMs: Number(e) * 1000, cpuMs: (Number(u) + Number(s)) * 1000, maxRssKB: Number(m) }
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }
const min = (xs) => Math.min(...xs)

const results = { natlens: [] }
for (const t of restoreTools) results[t] = []
if (!skipReason) execFileSync('ip', ['netns', 'add', NS])
try {
  for (let i = 0; i < args.runs; i++) {
    results.natlens.push(natlensRun())
    if (!skipReason) for (const t of restoreTools) results[t].push(restoreRun(t))
  }
} finally {
  if (!skipReason) spawnSync('ip', ['netns', 'del', NS])
}

const first = results.natlens[0]
const mb = bytes / 1e6
const row = (name, runs, base) => {
  const wall = median(runs.map((r) => r.wallMs))
  const best = min(runs.map((r) => r.wallMs))
  const cpu = runs[0].cpuMs !== undefined ? median(runs.map((r) => r.cpuMs)) : undefined
  const rss = runs[0].maxRssKB !== undefined ? Math.max(...runs.map((r) => r.maxRssKB)) / 1024 : undefined
  const ratio = base ? `${(wall / base).toFixed(2)}×` : '1.00×'
  return `| ${name} | ${(wall / 1000).toFixed(2)} | ${(best / 1000).toFixed(2)} | ${cpu !== undefined ? (cpu / 1000).toFixed(2) : 'n/a'} | ${(mb / (wall / 1000)).toFixed(1)} | ${rss !== undefined ? rss.toFixed(0) : 'n/a'} | ${ratio} |`
}
const natWall = median(results.natlens.map((r) => r.wallMs))
const iptVersion = have('iptables') ? spawnSync('iptables', ['--version'], { encoding: 'utf8' }).stdout.trim() : 'n/a'
console.log(`\nInput: ${args.file} — ${mb.toFixed(1)} MB, ${first.rules.toLocaleString('en')} rules in ${first.chains.toLocaleString('en')} chains, ${first.diagnostics} diagnostics`)
console.log(`Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, ${iptVersion}, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}; ${args.runs} runs each, interleaved\n`)
console.log('| parser | median wall (s) | best wall (s) | median CPU (s) | MB/s (median) | peak RSS (MB) | time vs natlens |')
console.log('|---|---|---|---|---|---|---|')
console.log(row('natlens `parseIptablesSave` (read + parse, Node)', results.natlens))
for (const t of restoreTools) if (results[t].length) console.log(row(`\`${t} --test\` (in ${'nl-bench-*'} netns)`, results[t], natWall))
if (skipReason) console.log(`\niptables-restore not measured: ${skipReason}`)
const legacy = results['iptables-legacy-restore']
if (legacy?.length) {
  const ratio = median(legacy.map((r) => r.wallMs)) / natWall
  console.log(`\nnatlens is ${ratio.toFixed(2)}× ${ratio >= 1 ? 'faster' : 'slower'} than iptables-legacy-restore --test on this input (median wall time).`)
}
