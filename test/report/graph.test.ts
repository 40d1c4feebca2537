// The packet graph: a traced flow's path is one connected walk from where the packet arrives to where it leaves (or
// ends), through every hook it crossed, every base chain in priority order and every rule explain says matched;
// the graph stays bounded on a 160k-rule kube-proxy node; dot, Mermaid and SVG say the same thing.
import { describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadNodeState, type LoadedNode } from '../../src/sources/load.js'
import { explain } from '../../src/engine/explain.js'
import { representativeFlows } from '../../src/engine/representative.js'
import { parseFlow, type Flow } from '../../src/model/flow.js'
import type { Trace } from '../../src/model/trace.js'
import { buildPacketGraph, dotToSvg, toDot, toMermaid, type PacketGraph } from '../../src/render/graph/index.js'
import { EXAMPLES, REPO } from '../helpers.js'
import { readFixtures } from '../lab/lab-run.js'

function flow(input: Parameters<typeof parseFlow>[0]): Flow {
  const f = parseFlow(input)
  if (typeof f === 'string') throw new Error(f)
  return f
}

const node = (g: PacketGraph, id: string) => g.nodes.find((n) => n.id === id)
const onPath = (g: PacketGraph) => new Set(g.nodes.filter((n) => n.onPath).map((n) => n.id))

/** The path's start: where the packet arrives (its veth, an ENI) or the local process for host traffic. */
function start(g: PacketGraph, t: Trace): string {
  if (t.flow.origin === 'host') return 'local'
  return t.flow.iif ? `in:${t.flow.iif}` : 'in:unknown'
}

/** The path's end: the interface it leaves by, the local process, or an end node (dropped, no route). */
function ends(g: PacketGraph): string[] {
  return g.nodes.filter((n) => n.onPath && (n.stage === 'egress' || n.kind === 'end' || n.kind === 'local-process')).map((n) => n.id)
}

/** Every path node is reached from the start over path edges, and an end is among them. */
function checkPath(g: PacketGraph, t: Trace, what: string): void {
  const s = start(g, t)
  expect(node(g, s)?.onPath, `${what}: start ${s}`).toBe(true)
  const reached = new Set([s])
  const queue = [s]
  while (queue.length) {
    const x = queue.shift()!
    for (const e of g.edges) if (e.onPath && e.from === x && !reached.has(e.to)) { reached.add(e.to); queue.push(e.to) }
  }
  expect([...onPath(g)].filter((id) => !reached.has(id)), `${what}: path nodes not reached from ${s}`).toEqual([])
  expect(ends(g).some((id) => reached.has(id) && id !== s) || (t.flow.origin === 'host' && t.verdict === 'delivered'), `${what}: no end reached`).toBe(true)
  // Every rule explain says matched is a path node carrying that rule's evidence.
  for (const st of t.steps) {
    if (st.kind !== 'rule' && st.kind !== 'nat') continue
    const rn = g.nodes.find((n) => n.kind === 'rule' && n.onPath && n.evidence?.file === st.rule.ref.artifact && n.evidence.line === st.rule.ref.line)
    expect(rn, `${what}: rule ${st.rule.ref.artifact}:${st.rule.ref.line} on the path`).toBeDefined()
    expect(rn!.evidence!.text).toBe(st.rule.ref.text.trim())
  }
  for (const st of t.steps) {
    if (st.kind !== 'policy-route') continue
    expect(g.nodes.some((n) => n.kind === 'ip-rule' && n.onPath && n.evidence?.file === st.rule.ref.artifact && n.evidence.line === st.rule.ref.line), `${what}: ip rule ${st.rule.priority}`).toBe(true)
  }
  const route = [...t.steps].reverse().find((st) => st.kind === 'route')
  if (route && route.kind === 'route') expect(g.nodes.some((n) => n.kind === 'route' && n.onPath && n.evidence?.line === route.route.ref.line), `${what}: route`).toBe(true)
  if (t.egressInterface) expect(node(g, `out:${t.egressInterface}`)?.onPath, `${what}: egress ${t.egressInterface}`).toBe(true)
}

describe('the traced path on the example node', async () => {
  const state = await loadNodeState([join(REPO, 'fixtures', 'example-node')])

  it('a secondary-ENI pod to the internet: veth → PREROUTING (connmark) → ip rule 1024 → main → FORWARD → POSTROUTING (SNAT) → eth0', () => {
    const t = explain(state, flow({ src: '10.0.9.88', dst: '203.0.113.10' })).trace
    const g = buildPacketGraph(state, { trace: t })
    checkPath(g, t, '10.0.9.88 → internet')
    const path = onPath(g)
    for (const id of ['in:enie90ff0f6268', 'hook:prerouting', 'chain:ip/iptables-legacy/mangle/PREROUTING', 'chain:ip/iptables-legacy/nat/PREROUTING',
      'chain:ip/iptables-legacy/nat/AWS-CONNMARK-CHAIN-0@prerouting', 'rule:iptables-save-nat.txt:29', 'routing', 'iprule:4:1024:ip-rule.txt:6', 'table:4:main', 'route:ip-route-all.txt:3',
      'hook:forward', 'chain:ip/iptables-legacy/mangle/FORWARD', 'hook:postrouting', 'chain:ip/iptables-legacy/nat/POSTROUTING',
      'chain:ip/iptables-legacy/nat/AWS-SNAT-CHAIN-0@postrouting', 'rule:iptables-save-nat.txt:31', 'out:eth0']) expect(path, id).toContain(id)
    for (const id of ['table:4:2', 'out:eth1', 'hook:input', 'hook:output', 'local']) expect(path, id).not.toContain(id)
    expect(node(g, 'rule:iptables-save-nat.txt:31')).toMatchObject({ label: 'iptables-save-nat.txt:31', detail: 'SNAT to 10.0.3.45 (random-fully)' })
    expect(g.edges.find((e) => e.to === 'out:eth0' && e.onPath)?.label).toBe('leaves as 10.0.3.45')
    // Base chains in the kernel's priority order: mangle (-150) before nat (-100) on the path.
    const order = g.edges.filter((e) => e.onPath && e.from === 'chain:ip/iptables-legacy/mangle/PREROUTING').map((e) => e.to)
    expect(order).toContain('chain:ip/iptables-legacy/nat/PREROUTING')
  })

  it('a pod to a VPC address on eth1: the 1536 rule, table 2, out eth1, the pod address kept', () => {
    const t = explain(state, flow({ src: '10.0.9.88', dst: '10.0.20.15', dport: 5432 })).trace
    const g = buildPacketGraph(state, { trace: t })
    checkPath(g, t, '10.0.9.88 → VPC')
    expect(onPath(g)).toContain('table:4:2')
    expect(g.edges.find((e) => e.to === 'out:eth1' && e.onPath)?.label).toBe('keeps 10.0.9.88')
  })

  it('without a flow: five hooks, every base chain, ip rules folded per pod, and nothing highlighted', () => {
    const g = buildPacketGraph(state)
    expect(g.flow).toBeNull()
    expect(g.nodes.filter((n) => n.kind === 'hook').map((n) => n.label)).toEqual(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'])
    expect(g.nodes.filter((n) => n.kind === 'base-chain').length).toBe(state.tables.reduce((n, t) => n + [...t.chains.values()].filter((c) => /^(PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING)$/.test(c.name)).length, 0))
    expect(g.nodes.find((n) => n.kind === 'ip-rule-group' && n.label === '512: from all to <pod> lookup main')).toMatchObject({ count: 4 })
    expect(g.nodes.find((n) => n.kind === 'interface-group')).toMatchObject({ label: 'pod veths eni*', count: 4 })
    expect(g.nodes.some((n) => n.onPath) || g.edges.some((e) => e.onPath)).toBe(false)
  })
})

describe('every example and lab flow: a connected path with every matched rule on it', () => {
  const cases: { name: string; dir: string; flows: { label: string; flow: Flow; ctmark?: number }[] }[] = []
  for (const name of readdirSync(EXAMPLES).sort()) cases.push({ name, dir: join(EXAMPLES, name), flows: [] })
  for (const run of readFixtures()) {
    cases.push({
      name: `lab ${run.scenario}`, dir: run.bundleDir,
      flows: run.flows.map((r) => ({
        label: r.name,
        flow: flow({ src: r.flow.src, dst: r.flow.dst, proto: r.flow.proto, sport: r.flow.sport, dport: r.flow.dport, origin: r.flow.origin, ...(r.flow.iif ? { iif: r.flow.iif } : {}) }),
        ...(r.flow.origin === 'reply' && r.observed.conntrack?.mark !== undefined ? { ctmark: r.observed.conntrack.mark } : {}),
      })),
    })
  }
  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const state: LoadedNode = await loadNodeState([c.dir])
    const flows: { label: string; flow: Flow; ctmark?: number }[] = [...c.flows, ...representativeFlows(state).map((f) => ({ label: f.label, flow: f.flow }))]
    expect(flows.length).toBeGreaterThan(0)
    const verdicts = new Set<string>()
    for (const f of flows) {
      const t = explain(state, f.flow, f.ctmark !== undefined ? { ctmark: f.ctmark } : {}).trace
      verdicts.add(t.verdict)
      const g = buildPacketGraph(state, { trace: t })
      checkPath(g, t, `${c.name}: ${f.label}`)
      expect(g.nodes.length).toBeLessThan(150)
      const dot = toDot(g)
      expect(dot.split('\n').filter((l) => /^ {4}"/.test(l) && l.includes('color="#c2185b", penwidth=2.5')).length).toBe(g.nodes.filter((n) => n.onPath).length)
    }
    if (c.flows.length) expect(verdicts.size).toBeGreaterThan(0)
  })
})

describe('renderings', async () => {
  const state = await loadNodeState([join(REPO, 'fixtures', 'example-node')])
  const t = explain(state, flow({ src: '10.0.7.201', dst: '172.20.0.1' })).trace
  const g = buildPacketGraph(state, { trace: t })

  it('Mermaid: one node per graph node, one link per edge, the path links styled by their index', () => {
    const m = toMermaid(g)
    const lines = m.split('\n')
    expect(lines[0]).toBe('flowchart TB')
    const links = lines.filter((l) => /^ {2}n\d+ (-->|==>|-\.->|---)/.test(l))
    expect(links.length).toBe(g.edges.length)
    const styled = /^ {2}linkStyle ([\d,]+) stroke:#c2185b/m.exec(m)![1]!.split(',').map(Number)
    expect(styled.map((i) => links[i]!.includes('==>'))).toEqual(styled.map(() => true))
    expect(styled.length).toBe(g.edges.filter((e) => e.onPath).length)
    expect(lines.filter((l) => /^ {4}n\d+[[({/>]/.test(l)).length).toBe(g.nodes.length)
    expect(m).not.toMatch(/[^#]"[^"\n]*"[^"\n]*"\]/) // no bare quote inside a label
  })

  it('SVG from Graphviz in WebAssembly: every node drawn, its evidence as the tooltip, the path in the path colour', async () => {
    const svg = await dotToSvg(toDot(g))
    expect(svg.startsWith('<svg')).toBe(true)
    expect(svg).not.toContain('<!DOCTYPE')
    expect((svg.match(/<g id="node\d+" class="node">/g) ?? []).length).toBe(g.nodes.length)
    expect((svg.match(/<g id="edge\d+" class="edge">/g) ?? []).length).toBe(g.edges.length)
    // Graphviz writes '-' as &#45; and a second space as &#160;.
    const text = svg.replace(/&#45;/g, '-').replace(/&#160;/g, ' ').replace(/&quot;/g, '"')
    expect(text).toContain('xlink:title="iptables-save-nat.txt:22  -A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES"')
    expect(svg).toMatch(/stroke="#c2185b"/)
    // The DNAT to a Service endpoint is on the path: KUBE-SVC → KUBE-SEP → DNAT rule.
    expect(g.nodes.some((n) => n.onPath && n.kind === 'rule' && /DNAT to 10\.0\.(20\.15|40\.7):443/.test(n.detail ?? ''))).toBe(true)
  })

  it('a label with quotes, backslashes and angle brackets survives dot and Mermaid', async () => {
    const tricky: PacketGraph = {
      family: 4, flow: 'tcp "a" → <b>', verdict: 'forwarded', collapsed: { chains: 0, ipRules: 0, interfaces: 0 },
      nodes: [
        { id: 'a"1', kind: 'rule', stage: 'prerouting', label: 'x "quoted" \\ back', detail: '<tag> & |pipe|', onPath: true },
        { id: 'b', kind: 'chain', stage: 'prerouting', label: 'plain', onPath: false },
      ],
      edges: [{ from: 'a"1', to: 'b', kind: 'jump', label: 'say "hi"', onPath: true }],
    }
    const svg = await dotToSvg(toDot(tricky))
    expect(svg).toContain('x &quot;quoted&quot; \\ back')
    expect(svg).toContain('&lt;tag&gt; &amp; |pipe|')
    const m = toMermaid(tricky)
    expect(m).toContain('n0>"x #quot;quoted#quot; \\ back<br/>#lt;tag#gt; #amp; #124;pipe#124;"]')
    expect(m).toContain('n0 ==>|"say #quot;hi#quot;"| n1')
  })
})

describe('a 160k-rule kube-proxy node stays readable', () => {
  it('5,000 Services × 10 endpoints: KUBE-SVC-*/KUBE-SEP-* drawn as counted groups, the traced Service by name, under 150 nodes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'natlens-graph-'))
    const rules = join(dir, 'iptables-save.txt')
    execFileSync(process.execPath, [join(REPO, 'bench', 'gen-kube-proxy.mjs'), '--services', '5000', '--endpoints', '10', '--out', rules], { stdio: 'ignore' })
    for (const f of ['ip-rule.txt', 'ip-route-all.txt']) copyFileSync(join(REPO, 'fixtures', 'example-node', f), join(dir, f))
    const state = await loadNodeState([dir])
    const nat = state.tables.find((t) => t.name === 'nat')!
    expect([...nat.chains.values()].reduce((n, c) => n + c.rules.length, 0)).toBeGreaterThan(150_000)

    const full = buildPacketGraph(state)
    expect(full.nodes.length).toBeLessThan(80)
    const groups = full.nodes.filter((n) => n.kind === 'chain-group').map((n) => `${n.label} ${n.count}`)
    expect(groups).toEqual(expect.arrayContaining(['KUBE-SVC-* 5000', 'KUBE-SEP-* 50000']))
    expect(full.collapsed.chains).toBeGreaterThan(50_000)

    const svc = /^-A KUBE-SERVICES -d (\S+)\/32 -p tcp .*--dport (\d+)/m.exec(readFileSync(rules, 'utf8'))!
    const t = explain(state, flow({ src: '10.0.7.201', dst: svc[1]!, dport: svc[2]! })).trace
    const started = performance.now()
    const g = buildPacketGraph(state, { trace: t })
    expect(performance.now() - started).toBeLessThan(5000)
    expect(g.nodes.length).toBeLessThan(150)
    checkPath(g, t, 'ClusterIP on the 160k-rule node')
    const named = g.nodes.filter((n) => n.onPath && n.kind === 'chain').map((n) => n.label)
    expect(named.some((l) => l.startsWith('KUBE-SVC-'))).toBe(true)
    expect(named.some((l) => l.startsWith('KUBE-SEP-'))).toBe(true)
    // The traced Service's chain is drawn by name and left out of the group's count.
    expect(g.nodes.find((n) => n.kind === 'chain-group' && n.label === 'KUBE-SVC-*' && n.stage === 'prerouting')?.count).toBe(4999)
    const svg = await dotToSvg(toDot(g))
    expect(svg.length).toBeLessThan(200_000)
    writeFileSync(join(dir, 'graph.svg'), svg)
  })

  it('110 pods: the per-pod ip rules and veths are two counted nodes, not 330', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'natlens-graph-'))
    const rules = ['0:\tfrom all lookup local']
    for (let i = 0; i < 110; i++) rules.push(`512:\tfrom all to 10.0.${8 + (i >> 6)}.${10 + (i & 63)} lookup main`)
    for (let i = 0; i < 110; i++) rules.push(`1536:\tfrom 10.0.${8 + (i >> 6)}.${10 + (i & 63)} lookup 2`)
    rules.push('32766:\tfrom all lookup main', '32767:\tfrom all lookup default')
    writeFileSync(join(dir, 'ip-rule.txt'), `${rules.join('\n')}\n`)
    copyFileSync(join(REPO, 'fixtures', 'example-node', 'ip-route-all.txt'), join(dir, 'ip-route-all.txt'))
    copyFileSync(join(REPO, 'fixtures', 'example-node', 'iptables-save-nat.txt'), join(dir, 'iptables-save-nat.txt'))
    const state = await loadNodeState([dir])
    const t = explain(state, flow({ src: '10.0.8.20', dst: '203.0.113.10' })).trace
    const g = buildPacketGraph(state, { trace: t })
    checkPath(g, t, '110 pods')
    expect(g.nodes.find((n) => n.kind === 'ip-rule-group' && n.label.startsWith('512:'))?.count).toBe(110)
    // The pod's own 1536 rule matched: it is drawn by itself, the other 109 stay in the group.
    expect(g.nodes.find((n) => n.kind === 'ip-rule-group' && n.label.startsWith('1536:'))?.count).toBe(109)
    expect(g.nodes.filter((n) => n.kind === 'ip-rule' || n.kind === 'ip-rule-group').length).toBeLessThan(12)
  })
})
