#!/usr/bin/env node
// explain throughput: the 5,000-service × 10-endpoint kube-proxy state plus the VPC CNI rules (≈160k nat rules,
// bench/gen-kube-proxy.mjs) with the example node's ip rules and routes; 100,000 random flows (pod → ClusterIP,
// pod → internet, pod → VPC) after one load. Reports load time, flows/s and peak RSS.
// usage: node bench/explain.mjs [--flows 100000] [--services 5000] [--endpoints 10]
import { execFileSync } from 'node:child_process'
import { mkdtempSync, copyFileSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const repo = join(here, '..')
const args = { flows: 100000, services: 5000, endpoints: 10 }
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = Number(process.argv[i + 1])

const { loadNodeState } = await import(join(repo, 'dist/sources/load.js'))
const { explain, prepare } = await import(join(repo, 'dist/engine/explain.js'))
const { parseFlow } = await import(join(repo, 'dist/model/flow.js'))

const dir = mkdtempSync(join(tmpdir(), 'natlens-bench-'))
const rules = join(dir, 'iptables-save.txt')
execFileSync(process.execPath, [join(here, 'gen-kube-proxy.mjs'), '--services', String(args.services), '--endpoints', String(args.endpoints), '--out', rules], { stdio: ['ignore', 'ignore', 'inherit'] })
for (const f of ['ip-rule.txt', 'ip-route-all.txt']) copyFileSync(join(repo, 'fixtures/example-node', f), join(dir, f))

const t0 = performance.now()
const state = await loadNodeState([dir])
prepare(state)
const loadMs = performance.now() - t0
const natRules = state.tables.filter((t) => t.name === 'nat').reduce((n, t) => n + [...t.chains.values()].reduce((m, c) => m + c.rules.length, 0), 0)

// Service addresses from the dump itself, so the flows hit real KUBE-SERVICES rules.
const services = []
for (const line of readFileSync(rules, 'utf8').split('\n')) {
  const m = /^-A KUBE-SERVICES -d (\S+)\/32 -p (tcp|udp) .*--dport (\d+)/.exec(line)
  if (m) services.push({ dst: m[1], proto: m[2], dport: Number(m[3]) })
}
const pods = state.derived.pods.map((p) => p.ip)
let seed = 12345
const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32)
const flows = []
for (let i = 0; i < args.flows; i++) {
  const src = ['10.0.7.201', '10.0.9.88', '10.0.12.9', '10.0.14.3'][i % 4]
  const r = rnd()
  let input
  if (r < 0.6 && services.length) { const s = services[Math.floor(rnd() * services.length)]; input = { src, dst: s.dst, proto: s.proto, dport: s.dport, sport: 30000 + (i % 30000) } }
  else if (r < 0.8) input = { src, dst: `203.0.113.${1 + Math.floor(rnd() * 250)}`, dport: 443, sport: 30000 + (i % 30000) }
  else input = { src, dst: `10.0.${20 + Math.floor(rnd() * 100)}.${1 + Math.floor(rnd() * 250)}`, dport: 5432, sport: 30000 + (i % 30000) }
  flows.push(parseFlow(input))
}
void pods
// Warm up (JIT), then time each kind of flow on its own and the whole mix.
for (const f of flows.slice(0, 2000)) explain(state, f)
const kinds = { service: [], internet: [], vpc: [] }
flows.forEach((f) => { const d = f.dst.n >>> 24; kinds[d === 172 ? 'service' : d === 203 ? 'internet' : 'vpc'].push(f) })
function time(list) {
  const t = performance.now()
  let branches = 0, snat = 0
  for (const f of list) { const e = explain(state, f); branches += e.branches.length; if (e.trace.finalFlow.src.value !== f.src.value) snat++ }
  const s = (performance.now() - t) / 1000
  return { flows: list.length, seconds: s, perSecond: Math.round(list.length / s), branches, snat }
}
const all = time(flows)
const per = Object.fromEntries(Object.entries(kinds).map(([k, l]) => [k, time(l)]))
const rss = Math.round(process.resourceUsage().maxRSS / 1024)
console.log(`State: ${natRules.toLocaleString('en')} nat rules (${args.services} services × ${args.endpoints} endpoints + VPC CNI), loaded and indexed in ${(loadMs / 1000).toFixed(2)} s; peak RSS ${rss} MB\n`)
console.log('| flows | count | flows/s | paths explored (kube-proxy endpoint branches) | paths/s |')
console.log('|---|---|---|---|---|')
const row = (name, r) => console.log(`| ${name} | ${r.flows.toLocaleString('en')} | ${r.perSecond.toLocaleString('en')} | ${r.branches.toLocaleString('en')} | ${Math.round(r.branches / r.seconds).toLocaleString('en')} |`)
row(`pod → ClusterIP (${args.endpoints} endpoints each)`, per.service)
row('pod → internet (SNAT)', per.internet)
row('pod → VPC (no SNAT)', per.vpc)
row('all (60/20/20 mix)', all)

// Where a ClusterIP flow's time goes: the same 20,000 flows cycling over 1, 50 or every Service. Each endpoint path
// touches its own KUBE-SEP chain; with more Services those chains are spread over a larger part of the heap.
console.log('\n| pod → ClusterIP flows cycling over | flows/s | µs per flow |')
console.log('|---|---|---|')
for (const n of [1, 50, services.length]) {
  const list = []
  for (let i = 0; i < 20000; i++) {
    const s = services[(i * 7919) % n]
    list.push(parseFlow({ src: '10.0.7.201', dst: s.dst, proto: s.proto, dport: s.dport, sport: 30000 + (i % 30000) }))
  }
  for (const f of list.slice(0, 2000)) explain(state, f)
  const r = time(list)
  console.log(`| ${n.toLocaleString('en')} Service${n === 1 ? '' : 's'} | ${r.perSecond.toLocaleString('en')} | ${(r.seconds / r.flows * 1e6).toFixed(1)} |`)
}
