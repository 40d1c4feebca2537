// Cilium chained on the VPC CNI, explained from the kernel lab's stored bundles (test/lab/fixtures/v4cilium and
// v4ciliummasq, made by test/lab/run-lab.ts --fixtures): no root needed. Which component translated (or exempted) a
// flow is what the kernel showed in those runs (test/lab/README.md "Scenarios"): Cilium's MASQUERADE keeps the source
// port (no --random-fully), the VPC CNI's SNAT rewrites it (prng).
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadNodeState, type LoadedNode } from '../../src/sources/load.js'
import { explain } from '../../src/engine/explain.js'
import { parseFlow, type FlowInput } from '../../src/model/flow.js'
import { toVerdictJson, type VerdictJson } from '../../src/render/verdict-json.js'
import { toInspectJson } from '../../src/render/inspect.js'
import { FIXTURES_DIR } from '../lab/lab-run.js'

const SAVE = 'iptables-legacy-save.txt'
const WEB = '10.0.7.201'
const API = '10.0.9.88'
const NODE = '10.0.3.45'
const ETH1 = '10.0.6.120'
const INET = '203.0.113.10'
const PEER = '10.0.20.15'
const ONPREM = '192.168.50.10'

interface Bundle { readonly state: LoadedNode; readonly save: string }

async function bundle(scenario: string): Promise<Bundle> {
  const dir = join(FIXTURES_DIR, scenario, 'bundle')
  return { state: await loadNodeState([dir]), save: readFileSync(join(dir, SAVE), 'utf8') }
}

function ex(b: Bundle, input: FlowInput): VerdictJson {
  const flow = parseFlow(input)
  if (typeof flow === 'string') throw new Error(flow)
  return toVerdictJson(explain(b.state, flow), b.state)
}

/** `decidedBy` of the rule whose line in the save file contains `text` (lines carry `[pkts:bytes]` counters first). */
function rule(b: Bundle, text: string): VerdictJson['decidedBy'] {
  const lines = b.save.split('\n')
  const i = lines.findIndex((l) => l.includes(text))
  if (i < 0) throw new Error(`no line of ${SAVE} contains ${text}`)
  return { file: SAVE, line: i + 1, rule: lines[i]!.trim() }
}

const AWS_SNAT = '-A AWS-SNAT-CHAIN-0 ! -o vlan+'
const AWS_VPC_RETURN = '-A AWS-SNAT-CHAIN-0 -d 10.0.0.0/16'
const CILIUM_MASQ = '"cilium masquerade non-cluster" -j MASQUERADE'

describe('Cilium chaining, masquerading off (v4cilium): the VPC CNI decides, Cilium\'s chains pass traffic on', async () => {
  const b = await bundle('v4cilium')

  it('inspect lists cilium next to the VPC CNI and kube-proxy, with no masquerading of its own', () => {
    const j = toInspectJson(b.state)
    expect(j.components.map((c) => c.name)).toEqual(['vpc-cni', 'kube-proxy', 'cilium'])
    const cilium = j.components.find((c) => c.name === 'cilium')!
    expect(cilium.detail).toBeNull()
    expect(cilium.evidence[0]!.text).toMatch(/^:CILIUM_/)
    expect(j.counts.tables).toHaveProperty('ip raw (iptables-legacy)')
  })

  it('web → internet: through the empty CILIUM_POST_nat, then the AWS SNAT rule', () => {
    const v = ex(b, { src: WEB, dst: INET, dport: 8080 })
    expect(v).toMatchObject({ snat: true, sourceAfter: NODE, egressInterface: 'eth0', owner: 'vpc-cni', decidedBy: rule(b, AWS_SNAT) })
    const post = v.steps.filter((s) => s.hook === 'postrouting' && s.table === 'nat').map((s) => s.summary)
    expect(post[0]).toBe('nat POSTROUTING: jump CILIUM_POST_nat')
    expect(post.at(-1)).toMatch(/^nat AWS-SNAT-CHAIN-0: SNAT to 10\.0\.3\.45/)
  })

  it('web → VPC peer: the AWS VPC CIDR RETURN keeps the pod address', () => {
    expect(ex(b, { src: WEB, dst: PEER, dport: 8080 })).toMatchObject({ snat: false, sourceAfter: WEB, egressInterface: 'eth0', owner: 'vpc-cni', decidedBy: rule(b, AWS_VPC_RETURN) })
  })

  it('api on eth1 → internet: CILIUM_PRE_mangle sets no mark, the 0x80 connmark still sends it out eth0, AWS SNAT', () => {
    const v = ex(b, { src: API, dst: INET, dport: 8080 })
    expect(v).toMatchObject({ snat: true, sourceAfter: NODE, egressInterface: 'eth0', owner: 'vpc-cni', decidedBy: rule(b, AWS_SNAT) })
    expect(v.steps.some((s) => s.kind === 'policy-route' && /1024/.test(s.summary))).toBe(true)
  })

  it('host → internet: CILIUM_OUTPUT marks 0xc00 (the 0x80 bit stays clear), the AWS SNAT rule keeps the node address', () => {
    const v = ex(b, { src: NODE, dst: INET, dport: 8080, origin: 'host' })
    expect(v).toMatchObject({ snat: false, sourceAfter: NODE, egressInterface: 'eth0', owner: 'vpc-cni', decidedBy: rule(b, AWS_SNAT) })
    expect(v.steps.find((s) => s.chain === 'CILIUM_OUTPUT')?.changes).toEqual([{ field: 'mark', before: '0x0', after: '0xc00' }])
  })

  it('host with eth1\'s address → internet: table 2, eth1, AWS SNAT to the primary address', () => {
    expect(ex(b, { src: ETH1, dst: INET, dport: 8080, origin: 'host' })).toMatchObject({ snat: true, sourceAfter: NODE, egressInterface: 'eth1', owner: 'vpc-cni', decidedBy: rule(b, AWS_SNAT) })
  })

  it('web → api on the node: CILIUM_FORWARD accepts -o eni+, no SNAT', () => {
    const v = ex(b, { src: WEB, dst: API, dport: 8080 })
    expect(v).toMatchObject({ snat: false, sourceAfter: WEB, owner: 'vpc-cni', decidedBy: rule(b, AWS_VPC_RETURN) })
    expect(v.egressInterface).toMatch(/^eni/)
    expect(v.steps.some((s) => s.chain === 'CILIUM_FORWARD' && /ACCEPT$/.test(s.summary))).toBe(true)
  })

  // Every forwarded packet reaches CILIUM_PRE_mangle's `-m socket --transparent` rule. The first packet of a
  // connection belongs to no socket (xt_socket ignores wildcard listeners, and --transparent wants a TPROXY proxy's
  // socket), so the rule does not match and the flow is decided; a later packet might belong to Cilium's proxy.
  it('pod flows are forwarded: -m socket --transparent does not match a connection\'s first packet', () => {
    for (const dst of [INET, PEER, API]) expect(ex(b, { src: WEB, dst, dport: 8080 }).verdict).toBe('forwarded')
  })

  it('a later packet may belong to Cilium\'s proxy socket: the socket match is named, the verdict is insufficient-info', () => {
    const v = ex(b, { src: INET, dst: WEB, sport: 8080, dport: 40000, origin: 'reply' })
    expect(v.verdict).toBe('insufficient-info')
    expect(v.steps.some((s) => s.kind === 'indeterminate' && /-m socket/.test(s.summary))).toBe(true)
  })
})

describe('Cilium chaining, iptables masquerading on (v4ciliummasq): Cilium\'s MASQUERADE decides for eth0', async () => {
  const b = await bundle('v4ciliummasq')

  it('inspect lists cilium with its masquerading rules, ahead of the VPC CNI\'s SNAT', () => {
    const cilium = toInspectJson(b.state).components.find((c) => c.name === 'cilium')!
    expect(cilium.detail).toBe('iptables masquerading: 2 MASQUERADE/SNAT rules in CILIUM_POST_nat, ahead of the VPC CNI\'s SNAT')
    expect(cilium.evidence.map((e) => e.line)).toContain(rule(b, CILIUM_MASQ)!.line)
  })

  for (const [name, input] of [
    ['web → internet', { src: WEB, dst: INET, dport: 8080 }],
    ['api on eth1 → internet (0x80 connmark → eth0)', { src: API, dst: INET, dport: 8080 }],
    ['api on eth1 → on-prem, UDP', { src: API, dst: ONPREM, dport: 8081, proto: 'udp' }],
    ['web → internet, ICMP', { src: WEB, dst: INET, proto: 'icmp' }],
  ] as const) {
    it(`${name}: MASQUERADE in CILIUM_POST_nat; AWS-SNAT-CHAIN-0 is never reached`, () => {
      const v = ex(b, input)
      expect(v).toMatchObject({ snat: true, sourceAfter: NODE, egressInterface: 'eth0', owner: 'cilium', decidedBy: rule(b, CILIUM_MASQ) })
      expect(v.steps.some((s) => s.chain === 'AWS-SNAT-CHAIN-0')).toBe(false)
    })
  }

  it('host → internet: Cilium\'s MASQUERADE has no source match, so it decides, to the address the packet has', () => {
    expect(ex(b, { src: NODE, dst: INET, dport: 8080, origin: 'host' })).toMatchObject({ snat: false, sourceAfter: NODE, egressInterface: 'eth0', owner: 'cilium', decidedBy: rule(b, CILIUM_MASQ) })
  })

  it('host with eth1\'s address → internet: -o eth0 does not match eth1, the VPC CNI\'s SNAT decides', () => {
    expect(ex(b, { src: ETH1, dst: INET, dport: 8080, origin: 'host' })).toMatchObject({ snat: true, sourceAfter: NODE, egressInterface: 'eth1', owner: 'vpc-cni', decidedBy: rule(b, AWS_SNAT) })
  })

  it('VPC destinations keep the pod address', () => {
    expect(ex(b, { src: WEB, dst: PEER, dport: 8080 })).toMatchObject({ snat: false, sourceAfter: WEB, egressInterface: 'eth0' })
    expect(ex(b, { src: API, dst: PEER, dport: 8080 })).toMatchObject({ snat: false, sourceAfter: API, egressInterface: 'eth1' })
    expect(ex(b, { src: WEB, dst: API, dport: 8080 })).toMatchObject({ snat: false, sourceAfter: WEB })
  })

  // The packet meets Cilium's MASQUERADE first (not matching: ! -d 10.0.0.0/16) and the VPC CIDR RETURN of
  // AWS-SNAT-CHAIN-0 last: the last exemption the packet met decides.
  it('VPC destinations: the last exemption met, the VPC CNI\'s RETURN, decides', () => {
    for (const [src, dst] of [[WEB, PEER], [API, PEER], [WEB, API]] as const) {
      expect(ex(b, { src, dst, dport: 8080 })).toMatchObject({ verdict: 'forwarded', owner: 'vpc-cni', decidedBy: rule(b, AWS_VPC_RETURN) })
    }
  })

  it('host → internet from its own address: the MASQUERADE applied and kept the address; the reason says so, no setting', () => {
    const v = ex(b, { src: NODE, dst: INET, dport: 8080, origin: 'host' })
    expect(v.reason).toContain(`cilium's MASQUERADE rule (${SAVE}:${rule(b, CILIUM_MASQ)!.line}) applied, and ${NODE} is the address it translates to`)
    expect(v.setting).toBeNull()
  })
})
