// IPv6 egress of IPv4 pods (ENABLE_V6_EGRESS, vpc-cni.md §6.3), explained from the kernel lab's stored bundle
// (test/lab/fixtures/v4egress6, made by test/lab/run-lab.ts --fixtures): no root needed. In that run the kernel sent
// every pod's IPv6 out eth0 with the node's IPv6 address (the CNI-E6 chain's SNAT, --random-fully), left the pods'
// IPv4 to the VPC CNI's AWS-SNAT-CHAIN-0 as on any IPv4 node, and refused a packet routed to a pod's fd00::ac: address.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadNodeState, type LoadedNode } from '../../src/sources/load.js'
import { explain } from '../../src/engine/explain.js'
import { parseFlow, type FlowInput } from '../../src/model/flow.js'
import { toVerdictJson, type VerdictJson } from '../../src/render/verdict-json.js'
import { toInspectJson } from '../../src/render/inspect.js'
import { buildReport } from '../../src/render/report/index.js'
import { FIXTURES_DIR } from '../lab/lab-run.js'

const DIR = join(FIXTURES_DIR, 'v4egress6', 'bundle')
const SAVE4 = 'iptables-legacy-save.txt'
const SAVE6 = 'ip6tables-legacy-save.txt'
const WEB = '10.0.7.201'
const API = '10.0.9.88'
const WEB_ULA = 'fd00::ac:2'
const API_ULA = 'fd00::ac:3'
const NODE = '10.0.3.45'
const NODE6 = '2001:db8:a::3:45'
const INET = '203.0.113.10'
const INET6 = '2001:db8:ffff::10'
const PEER = '10.0.20.15'
const PEER6 = '2001:db8:a:14::15'

const state: LoadedNode = await loadNodeState([DIR])

function ex(input: FlowInput): VerdictJson {
  const flow = parseFlow(input)
  if (typeof flow === 'string') throw new Error(flow)
  return toVerdictJson(explain(state, flow), state)
}

/** `decidedBy` of the rule whose line in the save file contains `text` (lines carry `[pkts:bytes]` counters first). */
function rule(file: string, text: string): VerdictJson['decidedBy'] {
  const lines = readFileSync(join(DIR, file), 'utf8').split('\n')
  const i = lines.findIndex((l) => l.includes(text))
  if (i < 0) throw new Error(`no line of ${file} contains ${text}`)
  return { file, line: i + 1, rule: lines[i]!.trim() }
}

// The egress plugin's chains are named CNI-E6- + sha512("aws-cni" + containerID) (test/lab/names.ts egressV6Chain).
const WEB_E6 = 'CNI-E6-a57e4f6b2b80b6d5be3bd'
const API_E6 = 'CNI-E6-535f9f34719a94e5c1d31'
const e6Snat = (chain: string) => rule(SAVE6, `-A ${chain} -m comment`)

// The lab gives every pod flow its origin; the pods' v6if0 addresses are asked about the same way.
describe('ENABLE_V6_EGRESS (v4egress6): IPv6 of IPv4 pods is the egress plugin\'s, IPv4 stays the VPC CNI\'s', () => {
  for (const [name, input, chain] of [
    ['web → internet6, TCP', { src: WEB_ULA, dst: INET6, dport: 8080, origin: 'pod' }, WEB_E6],
    ['web → internet6, UDP', { src: WEB_ULA, dst: INET6, dport: 8081, proto: 'udp', origin: 'pod' }, WEB_E6],
    ['api (an eth1 pod) → internet6, ICMPv6: no IPv6 rule sends it to eth1\'s table', { src: API_ULA, dst: INET6, proto: 'icmpv6', origin: 'pod' }, API_E6],
    ['api → a VPC IPv6 peer: the CNI-E6 chain has no VPC exemption', { src: API_ULA, dst: PEER6, dport: 8080, origin: 'pod' }, API_E6],
  ] as const) {
    it(`${name}: SNAT to the node's IPv6 by its CNI-E6 chain, out eth0`, () => {
      const v = ex(input)
      expect(v).toMatchObject({ verdict: 'forwarded', snat: true, sourceAfter: NODE6, egressInterface: 'eth0', owner: 'egress-cni', decidedBy: e6Snat(chain) })
      expect(v.steps.find((s) => s.chain === 'POSTROUTING' && s.table === 'nat')?.summary).toBe(`nat POSTROUTING: jump ${chain}`)
    })
  }

  it('the ULAs are the plugin\'s IPv6 legs (kind egress-v6): a flow from one is placed behind its veth without --origin, with the setting that owns it', () => {
    expect(state.derived.pods.filter((p) => p.kind === 'egress-v6').map((p) => p.ip.family === 6 && p.hostVeth?.startsWith('veth'))).toEqual([true, true])
    const v = ex({ src: WEB_ULA, dst: INET6, dport: 8080 })
    expect(v.flow).toMatchObject({ origin: 'pod', iif: expect.stringMatching(/^veth[0-9a-f]{8}$/) })
    expect(v).toMatchObject({ snat: true, sourceAfter: NODE6, owner: 'egress-cni', decidedBy: e6Snat(WEB_E6) })
    expect(v.setting).toMatch(/^ENABLE_V6_EGRESS .*node's IPv6 address/)
  })

  it('inspect\'s SNAT policy names the IPv4 chain\'s exemptions only: the VPC\'s IPv6 block is not one of them', () => {
    const j = toInspectJson(state)
    expect(j.snatPolicy).toMatch(/^traffic from pods to anything outside 10\.0\.0\.0\/16 leaves as 10\.0\.3\.45/)
    expect(j.components.map((c) => c.name)).toContain('egress-cni')
  })

  it('the pod\'s IPv4 is untouched by the plugin: AWS-SNAT-CHAIN-0 SNATs it to the primary IPv4 address', () => {
    for (const src of [WEB, API]) {
      expect(ex({ src, dst: INET, dport: 8080 })).toMatchObject({ snat: true, sourceAfter: NODE, egressInterface: 'eth0', owner: 'vpc-cni', decidedBy: rule(SAVE4, '-A AWS-SNAT-CHAIN-0 ! -o vlan+') })
    }
    expect(ex({ src: API, dst: PEER, dport: 8080 })).toMatchObject({ snat: false, sourceAfter: API, egressInterface: 'eth1', owner: 'vpc-cni', decidedBy: rule(SAVE4, '-A AWS-SNAT-CHAIN-0 -d 10.0.0.0/16') })
  })

  it('the node\'s own IPv6 matches no CNI-E6 jump (they name the pods\' ULAs) and leaves as it is', () => {
    const v = ex({ src: NODE6, dst: INET6, dport: 8080, origin: 'host' })
    expect(v).toMatchObject({ verdict: 'forwarded', snat: false, sourceAfter: NODE6, egressInterface: 'eth0', owner: null, decidedBy: null })
    expect(v.steps.some((s) => s.chain?.startsWith('CNI-E6-'))).toBe(false)
  })

  it('a packet routed to a pod\'s fd00::ac: address from outside is refused by the FORWARD REJECT of fd00::ac:0/118', () => {
    const v = ex({ src: INET6, dst: WEB_ULA, dport: 8080, origin: 'external', iif: 'eth0' })
    expect(v).toMatchObject({ verdict: 'dropped', egressInterface: null })
    const reject = rule(SAVE6, 'Block Node Local Pod access via IPv6')!
    const last = v.steps.at(-1)!
    expect(last).toMatchObject({ table: 'filter', chain: 'FORWARD', evidence: { file: SAVE6, line: reject.line } })
  })
})

describe('the report\'s SNAT policy on v4egress6', () => {
  it('says where the IPv4 pods\' IPv6 goes, citing the CNI-E6 SNAT, and does not claim the legs keep their address', () => {
    const report = buildReport({ state, inputs: [DIR], flows: [] })
    const texts = report.snatPolicy.statements.map((s) => s.text)
    const e6 = texts.find((t) => t.startsWith('IPv6 traffic from IPv4 pods'))
    expect(e6).toMatch(new RegExp(`pod side ${WEB_ULA}, ${API_ULA}\\) leaves as ${NODE6.replace(/[.]/g, '\\.')}: rule ${SAVE6}:\\d+ \\(and 1 more, one chain per pod\\)`))
    expect(texts.some((t) => /keeps the pod's address/.test(t))).toBe(false)
  })
})
