// kube-proxy in nftables mode beside the VPC CNI's iptables rules, explained from the kernel lab's stored bundle
// (test/lab/fixtures/v4kpnft, made by test/lab/run-lab.ts --fixtures): no root needed. What each flow should give is
// what the kernel did in that run (test/lab/README.md "Scenarios"); here the point is the nft evidence natlens shows:
// which map element, numgen branch, `dnat to` and `masquerade fully-random` line of `nft list ruleset` decided.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadNodeState, type LoadedNode } from '../../src/sources/load.js'
import { explain } from '../../src/engine/explain.js'
import { parseFlow, type FlowInput } from '../../src/model/flow.js'
import { toVerdictJson, stepJson, type VerdictJson } from '../../src/render/verdict-json.js'
import { toInspectJson } from '../../src/render/inspect.js'
import type { Explanation } from '../../src/model/trace.js'
import { FIXTURES_DIR } from '../lab/lab-run.js'

const NFT = 'nft-list-ruleset.txt'
const SAVE = 'iptables-legacy-save.txt'
const WEB = '10.0.7.201'
const API = '10.0.9.88'
const NODE = '10.0.3.45'
const INET = '203.0.113.10'
const PEER = '10.0.20.15'
const REMOTE_EP = '10.0.40.7'
const WEB_VETH = 'eni212428e8e5c'
const API_VETH = 'enie90ff0f6268'

const dir = join(FIXTURES_DIR, 'v4kpnft', 'bundle')
const state: LoadedNode = await loadNodeState([dir])
const nftLines = readFileSync(join(dir, NFT), 'utf8').split('\n')
const saveLines = readFileSync(join(dir, SAVE), 'utf8').split('\n')

function run(input: FlowInput, ctmark?: number): { e: Explanation; v: VerdictJson } {
  const flow = parseFlow(input)
  if (typeof flow === 'string') throw new Error(flow)
  const e = explain(state, flow, ctmark !== undefined ? { ctmark } : {})
  return { e, v: toVerdictJson(e, state) }
}

/** 1-based line of `nft list ruleset` holding `text`, inside `chain <name>` when a chain is given. */
function nftLine(text: string, chain?: string): number {
  const from = chain ? nftLines.findIndex((l) => l.trim() === `chain ${chain} {`) : 0
  if (from < 0) throw new Error(`no chain ${chain} in ${NFT}`)
  const i = nftLines.findIndex((l, k) => k > from && l.trim() === text)
  if (i < 0) throw new Error(`no line ${text} in ${NFT}${chain ? ` chain ${chain}` : ''}`)
  return i + 1
}

const MASQUERADE = { file: NFT, line: nftLine('masquerade fully-random'), rule: 'masquerade fully-random' }

/** The DNAT step of a branch: the `dnat to` line of the endpoint chain it went through. */
function dnatOf(e: Explanation, i: number): { chain?: string; line?: number; text?: string } {
  const s = e.branches[i]!.steps.map(stepJson).find((x) => x.kind === 'nat' && /DNAT/.test(x.summary))
  return { chain: s?.chain, line: s?.evidence?.line, text: s?.evidence?.text }
}

describe('kube-proxy in nftables mode (v4kpnft): table ip kube-proxy beside the VPC CNI\'s iptables rules', () => {
  it('inspect names kube-proxy in nftables mode from its table', () => {
    const kp = toInspectJson(state).components.find((c) => c.name === 'kube-proxy')!
    expect(kp).toMatchObject({ era: 'nftables mode', evidence: [{ file: NFT, line: 1, text: 'table ip kube-proxy {' }] })
  })

  it('external → NodePort (ETP Cluster): @service-nodeports, numgen picks either endpoint with 0.5, the masquerading chain decides', () => {
    const { e, v } = run({ src: INET, dst: NODE, sport: 41004, dport: 30080, origin: 'external', iif: 'eth0' })
    expect(v.branches.map((b) => [b.probability, b.destinationAfter, b.egressInterface])).toEqual([[0.5, REMOTE_EP, 'eth0'], [0.5, API, API_VETH]])
    for (const b of v.branches) expect(b).toMatchObject({ verdict: 'forwarded', snat: true, sourceAfter: NODE, owner: 'kube-proxy', decidedBy: MASQUERADE })
    expect(v).toMatchObject({ owner: 'kube-proxy', decidedBy: MASQUERADE })
    // Each branch names the `dnat to` of its own endpoint chain.
    const remote = 'endpoint-MVREGBOR-default/api/tcp/http__10.0.40.7/8080'
    const local = 'endpoint-YUNM7A3N-default/api/tcp/http__10.0.9.88/8080'
    expect(dnatOf(e, 0)).toEqual({ chain: remote, line: nftLine('meta l4proto tcp dnat to 10.0.40.7:8080', remote), text: 'meta l4proto tcp dnat to 10.0.40.7:8080' })
    expect(dnatOf(e, 1)).toEqual({ chain: local, line: nftLine('meta l4proto tcp dnat to 10.0.9.88:8080', local), text: 'meta l4proto tcp dnat to 10.0.9.88:8080' })
    const summaries = v.steps.map((s) => s.summary)
    expect(summaries).toContain('kube-proxy services: goto external-FKIP43JP-default/api/tcp/http')
    expect(summaries).toContain('kube-proxy mark-for-masquerade: mark 0x0 → 0x4000')
    expect(summaries.at(-1)).toBe('kube-proxy masquerading: MASQUERADE to 10.0.3.45 (eth0)')
  })

  it('api on eth1 → ClusterIP: the tcp . 80 element, DNAT to either endpoint with 0.5 each, no masquerade; the CNI\'s VPC RETURN keeps the pod address', () => {
    const { e, v } = run({ src: API, dst: '172.20.0.10', dport: 80 })
    expect(v.branches.map((b) => [b.probability, b.destinationAfter, b.egressInterface, b.sourceAfter, b.snat])).toEqual([
      [0.5, PEER, 'eth1', API, false],
      [0.5, WEB, WEB_VETH, API, false],
    ])
    const vpcReturn = saveLines.findIndex((l) => l.includes('-A AWS-SNAT-CHAIN-0 -d 10.0.0.0/16')) + 1
    for (const b of v.branches) expect(b).toMatchObject({ owner: 'vpc-cni', decidedBy: { file: SAVE, line: vpcReturn } })
    expect(dnatOf(e, 0).chain).toBe('endpoint-52FKT4F7-default/web/tcp/http__10.0.20.15/8080')
    expect(dnatOf(e, 1).chain).toBe('endpoint-LYUYTESM-default/web/tcp/http__10.0.7.201/8080')
    // kube-proxy's DNAT bound first: the CNI's nat PREROUTING (and its 0x80 connmark) never ran; rule 1536 → table 2.
    expect(v.steps.some((s) => s.chain === 'AWS-CONNMARK-CHAIN-0')).toBe(false)
    expect(v.steps.some((s) => s.kind === 'policy-route' && /1536/.test(s.summary))).toBe(true)
    expect(v.warnings.some((w) => /^prerouting: nft ip kube-proxy nat-prerouting and iptables-legacy nat PREROUTING are nat chains of the same priority/.test(w))).toBe(true)
  })

  it('api → ClusterIP over UDP: the udp . 53 element of the same address goes to the dns port\'s chains', () => {
    const { e, v } = run({ src: API, dst: '172.20.0.10', dport: 53, proto: 'udp' })
    expect(v.branches.map((b) => [b.probability, b.destinationAfter, b.egressInterface])).toEqual([[0.5, PEER, 'eth1'], [0.5, WEB, WEB_VETH]])
    expect(dnatOf(e, 0).text).toBe('meta l4proto udp dnat to 10.0.20.15:8081')
    expect(v.steps.map((s) => s.summary)).toContain('kube-proxy services: goto service-S5KDWTE3-default/web/udp/dns')
  })

  it('external → NodePort (ETP Local): fib saddr type local does not match, the local chain has one endpoint (no branches), no masquerade', () => {
    const { v } = run({ src: INET, dst: NODE, dport: 30081, origin: 'external', iif: 'eth0' })
    expect(v).toMatchObject({ branches: [], destinationAfter: API, egressInterface: API_VETH, sourceAfter: INET, snat: false })
    expect(v.steps.map((s) => s.summary)).toContain('kube-proxy external-UQGHZSRV-default/api-local/tcp/http: goto local-UQGHZSRV-default/api-local/tcp/http')
  })

  it('host → its own NodePort (ETP Local): fib saddr type local marks and short-circuits to every endpoint; the masquerade keeps the node address', () => {
    const { v } = run({ src: NODE, dst: NODE, dport: 30081, origin: 'host' })
    expect(v.branches.map((b) => [b.probability, b.destinationAfter])).toEqual([[0.5, REMOTE_EP], [0.5, API]])
    for (const b of v.branches) expect(b).toMatchObject({ sourceAfter: NODE, snat: false, owner: 'kube-proxy', decidedBy: MASQUERADE })
    const masqLocal = v.steps.find((s) => s.chain === 'external-UQGHZSRV-default/api-local/tcp/http')
    expect(masqLocal?.evidence).toEqual({ file: NFT, line: nftLine('fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"'), text: 'fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"' })
  })

  it('the reply of a NodePort connection from api on eth1 (ct mark 0x80): rule 1024 → eth0, conntrack gives back the node address', () => {
    const { v } = run({ src: API, dst: INET, sport: 8080, dport: 41005, origin: 'reply' }, 0x80)
    expect(v).toMatchObject({ verdict: 'forwarded', egressInterface: 'eth0', sourceAfter: NODE, snat: true })
  })

  for (const [name, input, chain, text] of [
    ['a ClusterIP without endpoints: @no-endpoint-services → reject-chain', { src: API, dst: '172.20.0.40', dport: 80 }, 'reject-chain', 'reject'],
    ['a ClusterIP on a port it does not serve: @cluster-ips reject', { src: API, dst: '172.20.0.10', dport: 8080 }, 'cluster-ips-check', 'ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"'],
    ['an unallocated ClusterIP (UDP): the service CIDR drop', { src: API, dst: '172.20.0.99', dport: 53, proto: 'udp' }, 'cluster-ips-check', 'ip daddr 172.20.0.0/16 drop comment "Drop traffic to unallocated ClusterIPs"'],
  ] as const) {
    it(`${name}, in filter-forward`, () => {
      const { v } = run(input)
      expect(v).toMatchObject({ verdict: 'dropped', egressInterface: null, branches: [] })
      expect(v.steps.at(-1)).toMatchObject({ hook: 'forward', table: 'kube-proxy', chain, evidence: { file: NFT, line: nftLine(text, chain), text } })
    })
  }
})
