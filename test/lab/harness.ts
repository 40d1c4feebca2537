// Runs a scenario end to end: build the node, program its rules, start servers and captures, send every flow
// (bounded: one client process per flow, each with a timeout), read conntrack, dump the bundle, derive observations.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { inNs, LabRun, run, type Background, type CommandRecord } from './kernel.js'
import { readCapture, startCapture, stopCapture } from './capture.js'
import { writeBundle } from './bundle.js'
import { findConntrack, observe, parseConntrackLines, type TrafficRecord } from './observe.js'
import { addEgressV4, addEgressV6, addKubeletCanaries, addKubeProxyBase, addKubeProxyNodePortTail, addVpcCni, emptyProgram, kubeProxyNftables, renderProgram } from './rules.js'
import { buildNode, NODE_IP, nsName, REMOTE, type BuiltNode } from './topology.js'
import { OWNED_NAMESPACES, type ScenarioSpec } from './scenarios.js'
import type { FlowRecord, LabFlowSpec, Observation, ScenarioRun } from './model.js'

const AGENT = fileURLToPath(new URL('./agent.mjs', import.meta.url))
const ICMP = fileURLToPath(new URL('./icmp-echo.pl', import.meta.url))
/** Every background process (servers, captures) ends by itself after this long, even if the harness dies. */
const BACKGROUND_MAX_MS = 120_000
const CLIENT_TIMEOUT_MS = 1_500
/** Bound on the repetitions of a flow whose endpoint kube-proxy picks at random (two endpoints: all seen with p > 0.999). */
const MAX_ATTEMPTS = 12

export interface ScenarioOptions {
  /** Where the bundle, captures and server logs go (a temp dir in tests). */
  readonly workDir: string
  readonly log?: (message: string) => void
}

/** Programs the node's netfilter rules with the backend of the scenario's era; returns the commands that did it. */
async function programRules(spec: ScenarioSpec, built: BuiltNode, workDir: string): Promise<CommandRecord[]> {
  const p = emptyProgram()
  const cniCfg = spec.node.cni
  const records: CommandRecord[] = []
  // kube-proxy in nftables mode keeps nothing in iptables (it removes its iptables-mode chains at start); kubelet's
  // canary chains stay.
  const kubeProxyIptables = !spec.node.ipv6Cluster && !spec.kubeProxyNft
  if (kubeProxyIptables) addKubeProxyBase(p)
  else if (spec.kubeProxyNft) addKubeletCanaries(p)
  const { nft } = cniCfg ? addVpcCni(p, cniCfg) : { nft: null }
  spec.extraRules?.(p)
  if (kubeProxyIptables) addKubeProxyNodePortTail(p)
  if (spec.node.ipv6Cluster) {
    const egress = built.pods.filter((x) => x.spec.v4egress && x.egressChain).map((x) => ({ v4: x.spec.v4egress!.ip, chain: x.egressChain!, containerId: x.spec.v4egress!.containerId }))
    addEgressV4(p, egress, NODE_IP, 'prng')
  }
  const text = renderProgram(p)
  const restore = cniCfg?.era === 'v1.23-nft' ? 'iptables-nft-restore' : 'iptables-legacy-restore'
  fs.writeFileSync(path.join(workDir, 'iptables-restore-input.txt'), text)
  const r = await inNs(built.nodeNs, restore, [], { input: text, timeoutMs: 10_000 })
  records.push({ command: `${restore} < iptables-restore-input.txt`, exitCode: r.exitCode, durationMs: r.durationMs, stderr: r.stderr })
  if (spec.node.ipv6Cluster) {
    // An IPv6 cluster's kube-proxy programs ip6tables (same chains, kube-proxy.md §1.10); the CNI adds no IPv6 NAT (§6.1).
    const p6 = emptyProgram()
    addKubeProxyBase(p6)
    addKubeProxyNodePortTail(p6, 6)
    const text6 = renderProgram(p6)
    fs.writeFileSync(path.join(workDir, 'ip6tables-restore-input.txt'), text6)
    const r6 = await inNs(built.nodeNs, 'ip6tables-legacy-restore', [], { input: text6, timeoutMs: 10_000 })
    records.push({ command: 'ip6tables-legacy-restore < ip6tables-restore-input.txt', exitCode: r6.exitCode, durationMs: r6.durationMs, stderr: r6.stderr })
  }
  const v6Egress = built.pods.filter((x) => x.spec.v6egress && x.egressChain).map((x) => ({ v6: x.spec.v6egress!.ip, chain: x.egressChain!, containerId: x.spec.v6egress!.containerId }))
  const nodeIp6 = built.enis.find((e) => e.primary)?.ipv6?.address
  if (v6Egress.length > 0 && nodeIp6) {
    // ENABLE_V6_EGRESS in an IPv4 cluster (vpc-cni.md §6.3): the egress plugin's CNI-E6 chains and ipamd's FORWARD
    // REJECT are the only ip6tables rules (kube-proxy of an IPv4 cluster programs none). go-iptables runs `ip6tables`,
    // the legacy backend beside the v1.20 CNI's iptables-legacy.
    const p6 = emptyProgram()
    addEgressV6(p6, v6Egress, nodeIp6, cniCfg?.randomizeSnat ?? 'prng')
    const text6 = renderProgram(p6)
    fs.writeFileSync(path.join(workDir, 'ip6tables-restore-input.txt'), text6)
    const r6 = await inNs(built.nodeNs, 'ip6tables-legacy-restore', [], { input: text6, timeoutMs: 10_000 })
    records.push({ command: 'ip6tables-legacy-restore < ip6tables-restore-input.txt', exitCode: r6.exitCode, durationMs: r6.durationMs, stderr: r6.stderr })
    if (r6.exitCode !== 0) throw new Error(`lab: ip6tables-legacy-restore of the egress plugin's rules failed: ${r6.stderr}`)
  }
  if (nft) {
    fs.writeFileSync(path.join(workDir, 'nft-input.txt'), nft)
    const n = await inNs(built.nodeNs, 'nft', ['-f', '-'], { input: nft, timeoutMs: 10_000 })
    records.push({ command: 'nft -f nft-input.txt', exitCode: n.exitCode, durationMs: n.durationMs, stderr: n.stderr })
  }
  if (spec.kubeProxyNft) {
    // After the iptables rules, as on a node: kubelet instantiates the iptables tables before any pod runs, and
    // kube-proxy (re)creates its base chains whenever it starts.
    const text = kubeProxyNftables(spec.kubeProxyNft)
    fs.writeFileSync(path.join(workDir, 'kube-proxy-nft-input.txt'), text)
    const n = await inNs(built.nodeNs, 'nft', ['-f', '-'], { input: text, timeoutMs: 10_000 })
    records.push({ command: 'nft -f kube-proxy-nft-input.txt', exitCode: n.exitCode, durationMs: n.durationMs, stderr: n.stderr })
    if (n.exitCode !== 0) throw new Error(`lab: nft -f of kube-proxy's ruleset failed: ${n.stderr}`)
  }
  if (spec.extraNft) {
    fs.writeFileSync(path.join(workDir, 'nft-extra-input.txt'), spec.extraNft)
    const n = await inNs(built.nodeNs, 'nft', ['-f', '-'], { input: spec.extraNft, timeoutMs: 10_000 })
    records.push({ command: 'nft -f nft-extra-input.txt', exitCode: n.exitCode, durationMs: n.durationMs, stderr: n.stderr })
    if (n.exitCode !== 0) throw new Error(`lab: nft -f of the scenario's extra ruleset failed: ${n.stderr}`)
  }
  return records
}

async function waitReady(bg: Background, what: string): Promise<void> {
  const deadline = Date.now() + 8_000
  while (!bg.stdout().includes('ready')) {
    if (bg.process.exitCode !== null && bg.process.exitCode !== undefined) throw new Error(`lab: ${what} exited: ${bg.stderr().trim()}`)
    if (Date.now() > deadline) throw new Error(`lab: ${what} not ready within 8 s: ${bg.stderr().trim()}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

async function ifnames(ns: string): Promise<Map<number, string>> {
  const r = await inNs(ns, 'ip', ['-j', 'link'], { timeoutMs: 5_000 })
  const links = JSON.parse(r.stdout) as { ifindex: number; ifname: string }[]
  return new Map(links.map((l) => [l.ifindex, l.ifname]))
}

/** Where conntrack says these flows were sent (the reply tuple's source is the DNAT target). */
async function arrivedEndpoints(nodeNs: string, flows: readonly LabFlowSpec[]): Promise<string[]> {
  const ct = parseConntrackLines((await inNs(nodeNs, 'conntrack', ['-L'], { check: false, timeoutMs: 5_000 })).stdout)
  return flows.flatMap((f) => { const e = findConntrack(ct, f); return e ? [e.reply.src] : [] })
}

/** Sends one flow from its client namespace; returns when the client is done (at most a few seconds). */
async function sendFlow(spec: ScenarioSpec, built: BuiltNode, f: LabFlowSpec, index: number): Promise<TrafficRecord> {
  const clientNs = f.client === 'node' ? built.nodeNs : f.client === 'vpc' ? built.vpcNs : nsName(spec.id, f.client)
  // ASCII only: captures are compared byte for byte.
  const tag = `nl:${spec.id}:flow${index}`
  const startUs = Date.now() * 1000
  let client: string
  if (f.flow.proto === 'tcp' || f.flow.proto === 'udp') {
    const r = await inNs(clientNs, process.execPath, [AGENT, f.flow.proto, '--src', f.flow.src, '--sport', String(f.flow.sport), '--dst', f.flow.dst, '--dport', String(f.flow.dport), '--tag', tag, '--timeout', String(CLIENT_TIMEOUT_MS)], { check: false, timeoutMs: CLIENT_TIMEOUT_MS + 4_000 })
    client = `${clientNs}: ${r.stdout.trim() || r.stderr.trim()}`
  } else {
    const r = await inNs(clientNs, 'perl', [ICMP, f.flow.proto === 'icmpv6' ? '6' : '4', f.flow.src, f.flow.dst, String(f.icmpId), tag], { check: false, timeoutMs: 5_000 })
    client = `${clientNs}: ${r.stdout.trim() || r.stderr.trim()}`
    // The echo reply needs a moment; the client does not wait for it.
    await new Promise((res) => setTimeout(res, 100))
  }
  return { spec: f, startUs, endUs: Date.now() * 1000, client, tag }
}

/** Runs one scenario in its own namespaces and removes them again, whatever happens. */
export async function runScenario(spec: ScenarioSpec, options: ScenarioOptions): Promise<ScenarioRun> {
  const started = Date.now()
  const log = options.log ?? (() => undefined)
  const dir = path.join(options.workDir, spec.id)
  fs.mkdirSync(dir, { recursive: true })
  const lab = new LabRun(OWNED_NAMESPACES)
  try {
    log(`${spec.id}: building the node`)
    const built = await buildNode(lab, spec.id, spec.node)
    const commands: CommandRecord[] = await programRules(spec, built, dir)

    const servers = [lab.spawn(built.vpcNs, 'server vpc', process.execPath, [AGENT, 'serve', '--tcp', '8080', '--udp', '8081', '--bind', Object.values(REMOTE).join(','), '--log', path.join(dir, 'server-vpc.log'), '--lifetime', String(BACKGROUND_MAX_MS)], BACKGROUND_MAX_MS + 5_000)]
    for (const p of built.pods) servers.push(lab.spawn(p.ns, `server ${p.spec.key}`, process.execPath, [AGENT, 'serve', '--tcp', '8080', '--udp', '8081', '--log', path.join(dir, `server-${p.spec.key}.log`), '--lifetime', String(BACKGROUND_MAX_MS)], BACKGROUND_MAX_MS + 5_000))
    for (const s of servers) await waitReady(s, s.name)
    const nodePcap = path.join(dir, 'node.pcap')
    const vpcPcap = path.join(dir, 'vpc.pcap')
    const captures = [await startCapture(lab, built.nodeNs, nodePcap, BACKGROUND_MAX_MS), await startCapture(lab, built.vpcNs, vpcPcap, BACKGROUND_MAX_MS)]

    log(`${spec.id}: sending ${spec.flows.length} flows`)
    const records = new Map<string, TrafficRecord>()
    const flowSpecs: LabFlowSpec[] = []
    for (const [i, f] of spec.flows.entries()) {
      flowSpecs.push(f)
      if (f.flow.origin === 'reply') continue
      records.set(f.name, await sendFlow(spec, built, f, i + 1))
      if (f.expect.outcomes.length < 2 || f.flow.sport === null) continue
      // kube-proxy picks an endpoint at random: repeat (new source port each time, at most MAX_ATTEMPTS in all)
      // until every documented endpoint was hit, so each of natlens's branches meets the kernel in every run.
      const endpoints = new Set(await arrivedEndpoints(built.nodeNs, [f]))
      for (let k = 2; k <= MAX_ATTEMPTS && f.expect.outcomes.some((o) => !endpoints.has(o.arrivedAt)); k++) {
        const again: LabFlowSpec = { ...f, name: `${f.name} #${k}`, flow: { ...f.flow, sport: f.flow.sport + 1000 * (k - 1) } }
        flowSpecs.push(again)
        records.set(again.name, await sendFlow(spec, built, again, (i + 1) * 100 + k))
        for (const e of await arrivedEndpoints(built.nodeNs, [again])) endpoints.add(e)
      }
    }
    await new Promise((r) => setTimeout(r, 300))
    const ct4 = await inNs(built.nodeNs, 'conntrack', ['-L'], { check: false, timeoutMs: 5_000 })
    const ct6 = await inNs(built.nodeNs, 'conntrack', ['-L', '-f', 'ipv6'], { check: false, timeoutMs: 5_000 })
    const conntrack = parseConntrackLines(ct4.stdout + '\n' + ct6.stdout)

    log(`${spec.id}: dumping the bundle`)
    const bundleDir = path.join(dir, 'bundle')
    const eth0 = built.enis.find((e) => e.primary)!
    commands.push(...await writeBundle(built.nodeNs, bundleDir, spec.settings(eth0.mac)))
    const nodeIfnames = await ifnames(built.nodeNs)
    const vpcIfnames = await ifnames(built.vpcNs)
    const sysctlText = (await inNs(built.nodeNs, 'sysctl', ['net.ipv4.ip_forward', 'net.ipv4.conf.all.rp_filter', 'net.ipv4.conf.default.rp_filter', `net.ipv4.conf.${eth0.name}.rp_filter`], { timeoutMs: 5_000 })).stdout
    for (const c of captures) await stopCapture(lab, c)
    for (const s of servers) await lab.stop(s, 1_000)

    const nodePackets = readCapture(nodePcap)
    const vpcPackets = readCapture(vpcPcap)
    const podVeths = new Set(built.pods.flatMap((p) => [p.hostVeth, ...(p.egressVeth ? [p.egressVeth] : [])]))
    const flows: FlowRecord[] = []
    const observed = new Map<string, Observation>()
    for (const f of flowSpecs) {
      const parentRecord = f.replyOf ? records.get(f.replyOf) : undefined
      const parentObserved = f.replyOf ? observed.get(f.replyOf) : undefined
      const record = f.flow.origin === 'reply' ? { spec: f, startUs: parentRecord?.startUs ?? 0, endUs: parentRecord?.endUs ?? 0, client: `reply of ${f.replyOf}`, tag: '' } : records.get(f.name)!
      const o = observe({
        record, conntrack, nodePackets, vpcPackets, nodeIfnames, vpcIfnames, podVeths,
        ...(parentRecord && parentObserved ? { parent: { record: parentRecord, observed: parentObserved } } : {}),
      })
      observed.set(f.name, o)
      flows.push({ name: f.name, client: f.client, flow: f.flow, ...(f.replyOf ? { replyOf: f.replyOf } : {}), expect: f.expect, observed: o })
    }
    const kernel = (await run('uname', ['-r'], { timeoutMs: 5_000 })).stdout.trim()
    return {
      scenario: spec.id, title: spec.title, covers: spec.covers, bundleDir, pcap: nodePcap, flows, commands, kernel,
      startedAt: new Date(started).toISOString(), durationMs: Date.now() - started,
      sysctls: Object.fromEntries(sysctlText.split('\n').filter((l) => l.includes('=')).map((l) => l.split('=').map((x) => x.trim()) as [string, string])),
    }
  } finally {
    await lab.cleanup()
  }
}

/** A fresh temp dir for one lab run. */
export function labWorkDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'natlens-lab-'))
}
