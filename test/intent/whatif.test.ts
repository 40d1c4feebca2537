// whatif without root: settings parsed strictly; predictions on the example node; and predictions checked against
// what the kernel did in a sibling lab scenario that already runs with the changed setting (v4cur ↔ v4ext for
// EXTERNALSNAT, v4sgpd ↔ v4sgps for POD_SECURITY_GROUP_ENFORCING_MODE: same node, same pods, same flows).
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { loadNodeState } from '../../src/sources/load.js'
import { parseFlow } from '../../src/model/flow.js'
import { parseSettingChange, stateAfter, type SettingChange } from '../../src/intent/whatif.js'
import { captureFlows, whatIf } from '../../src/intent/whatif-run.js'
import { diffIntent, intentOf } from '../../src/intent/index.js'
import { renderWhatIf, toWhatIfJson } from '../../src/intent/whatif-report.js'
import { serviceChainHash } from '../../src/intent/kube-proxy-policy.js'
import { makeContext } from '../../src/parse/context.js'
import { parseIptablesSave } from '../../src/parse/iptables.js'
import { isNatlensError } from '../../src/errors.js'
import { readFixtures } from '../lab/lab-run.js'
import { judge } from '../lab/compare.js'
import type { ScenarioRun } from '../lab/model.js'
import { FIXTURES } from '../helpers.js'

const set = (...xs: string[]): SettingChange[] => xs.map((x) => {
  const c = parseSettingChange(x)
  if (typeof c === 'string') throw new Error(c)
  return c
})
const fixtures = readFixtures()
const fixture = (id: string): ScenarioRun => fixtures.find((f) => f.scenario === id)!

describe('--set', () => {
  it.each([
    ['AWS_VPC_K8S_CNI_EXTERNALSNAT=true', { kind: 'externalSnat', value: true }],
    ['EXTERNALSNAT=False', { kind: 'externalSnat', value: false }],
    ['AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS=10.0.0.0/8,192.168.0.0/16', { kind: 'excludeCidrs' }],
    ['AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS=', { kind: 'excludeCidrs', cidrs: [] }],
    ['AWS_VPC_K8S_CNI_RANDOMIZESNAT=hashrandom', { kind: 'randomizeSnat', value: 'hashrandom' }],
    ['POD_SECURITY_GROUP_ENFORCING_MODE=standard', { kind: 'sgpMode', value: 'standard' }],
    ['ADD_VPC_CIDR=100.64.0.0/16', { kind: 'addVpcCidr' }],
    ['externalTrafficPolicy/default/api:http=local', { kind: 'externalTrafficPolicy', service: 'default/api:http', value: 'Local' }],
  ])('%s', (text, want) => expect(parseSettingChange(text)).toMatchObject(want))

  it.each([
    ['EXTERNALSNAT', /expected NAME=VALUE/],
    ['AWS_VPC_K8S_CNI_EXTERNALSNAT=yes', /true or false/],
    ['AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS=10.0.0.0/8,fd00::/8', /not IPv4 CIDRs: fd00::\/8/],
    ['AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS=010.0.0.0/8', /not IPv4 CIDRs/],
    ['AWS_VPC_K8S_CNI_RANDOMIZESNAT=2', /prng, hashrandom or none/],
    ['ADD_VPC_CIDR=100.64.0.0', /not an IPv4 CIDR/],
    ['externalTrafficPolicy/api=Local', /<namespace>\/<service>/],
    ['WARM_IP_TARGET=5', /cannot change this setting/],
  ])('%s is refused: %s', (text, message) => expect(parseSettingChange(text)).toMatch(message))

  it('never throws on arbitrary text', () => {
    fc.assert(fc.property(fc.string(), fc.string(), (name, value) => { parseSettingChange(`${name}=${value}`); parseSettingChange(name) }), { numRuns: 300 })
  })
})

describe('externalTrafficPolicy on the kube-proxy lab node', async () => {
  const state = await loadNodeState([fixture('v4kp').bundleDir])
  const nodePort = (port: number) => {
    const f = parseFlow({ src: '203.0.113.10', dst: '10.0.3.45', proto: 'tcp', sport: 41000, dport: port, origin: 'external', iif: 'eth0' })
    if (typeof f === 'string') throw new Error(f)
    return [{ label: `external→NodePort ${port}`, flow: f }]
  }
  it('Local → Cluster: the external client is masqueraded and any endpoint may answer; KUBE-SVL goes away', () => {
    const r = whatIf(state, set('externalTrafficPolicy/default/api-local:http=Cluster'), nodePort(30081))
    const f = r.flows[0]!
    expect(f.before).toMatchObject({ sourceAfter: '203.0.113.10', destinationAfter: '10.0.9.88', branches: [] })
    expect(f.after.branches.map((b) => [b.destinationAfter, b.sourceAfter]).sort()).toEqual([['10.0.40.7', '10.0.3.45'], ['10.0.9.88', '10.0.3.45']])
    expect(f.changed).toEqual(['sourceAfter', 'egressInterface'])
    // kube-proxy's chain names: base32(sha256("default/api-local:http" + "tcp"))[:16] (kube-proxy.md §1.5).
    const h = serviceChainHash('default/api-local:http', 'tcp')
    expect(r.whatif.added.map((a) => a.text)).toEqual([
      `-A KUBE-EXT-${h} -m comment --comment "masquerade traffic for default/api-local:http external destinations" -j KUBE-MARK-MASQ`,
      `-A KUBE-EXT-${h} -j KUBE-SVC-${h}`,
    ])
    expect(state.tables.some((t) => t.chains.has(`KUBE-SVL-${h}`))).toBe(true)
    expect(r.whatif.state.tables.some((t) => t.chains.has(`KUBE-SVL-${h}`))).toBe(false)
  })
  it('the same policy again changes nothing and says so', () => {
    const r = whatIf(state, set('externalTrafficPolicy/default/api-local:http=Local'), nodePort(30081))
    expect(r.whatif.added).toEqual([])
    expect(r.whatif.warnings.join(' ')).toMatch(/already has externalTrafficPolicy=Local/)
    expect(r.flows[0]!.changed).toEqual([])
  })
})

describe('on the example node', async () => {
  const state = await loadNodeState([`${FIXTURES}/example-node`])

  it('an exclusion adds two RETURN rules; exactly the flows to the excluded CIDR keep the pod address, and eth1 pods leave through eth1', () => {
    const r = whatIf(state, set('AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS=192.168.0.0/16'), 'all-pods')
    expect(r.whatif.added.map((a) => a.text)).toEqual([
      '-A AWS-CONNMARK-CHAIN-0 -d 192.168.0.0/16 -m comment --comment "AWS CONNMARK CHAIN, EXCLUDED CIDR" -j RETURN',
      '-A AWS-SNAT-CHAIN-0 -d 192.168.0.0/16 -m comment --comment "AWS SNAT CHAIN EXCLUSION" -j RETURN',
    ])
    expect(r.whatif.removed).toEqual([])
    const changed = r.flows.filter((f) => f.changed.length)
    expect(changed.map((f) => [f.label, f.after.sourceAfter, f.after.egressInterface])).toEqual([
      ['10.0.7.201 (eth0) → 192.168.0.20 (excluded CIDR 192.168.0.0/16)', '10.0.7.201', 'eth0'],
      ['10.0.9.88 (eth1) → 192.168.0.20 (excluded CIDR 192.168.0.0/16)', '10.0.9.88', 'eth1'],
      ['10.0.12.9 (eth0) → 192.168.0.20 (excluded CIDR 192.168.0.0/16)', '10.0.12.9', 'eth0'],
      ['10.0.14.3 (eth1) → 192.168.0.20 (excluded CIDR 192.168.0.0/16)', '10.0.14.3', 'eth1'],
    ])
    for (const f of changed) expect(f.before).toMatchObject({ snat: true, sourceAfter: '10.0.3.45', egressInterface: 'eth0' })
    // The changed node agrees with its own settings.
    const after = r.whatif.state
    const i = intentOf(after)
    expect('intent' in i && diffIntent(after, i.intent).differences).toEqual([])
  })

  it('an added VPC CIDR is exempt from SNAT and marking; the new destinations are among the flows', () => {
    const r = whatIf(state, set('ADD_VPC_CIDR=100.64.0.0/16'), 'all-pods')
    const changed = r.flows.filter((f) => f.changed.length)
    expect(changed.length).toBe(4)
    for (const f of changed) expect(f.label).toMatch(/VPC CIDR 100\.64\.0\.0\/16/)
    expect(r.whatif.settings.map((s) => [s.setting, s.before, s.after])).toEqual([['VPC CIDR blocks (IMDS vpc-ipv4-cidr-blocks)', '10.0.0.0/16', '10.0.0.0/16, 100.64.0.0/16']])
  })

  it('RANDOMIZESNAT changes the SNAT rule and no flow', () => {
    const r = whatIf(state, set('AWS_VPC_K8S_CNI_RANDOMIZESNAT=none'), 'all-pods')
    expect(r.whatif.removed.map((x) => `${x.ref.artifact}:${x.ref.line}`)).toEqual(['iptables-save-nat.txt:31'])
    expect(r.whatif.added.map((x) => x.text)).toEqual(['-A AWS-SNAT-CHAIN-0 ! -o vlan+ -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL -j SNAT --to-source 10.0.3.45'])
    expect(r.flows.filter((f) => f.changed.length)).toEqual([])
  })

  it('the restore text holds every table of the backend and parses back to the same rules, with kube-proxy\'s untouched', () => {
    const w = stateAfter(state, set('AWS_VPC_K8S_CNI_EXTERNALSNAT=true'))
    const ctx = makeContext('restore')
    const tables = parseIptablesSave(w.restore.iptables, ctx)
    expect(ctx.sink.items.filter((d) => d.severity !== 'info')).toEqual([])
    const count = (ts: readonly { chains: Map<string, { rules: unknown[] }> }[]) => ts.reduce((n, t) => n + [...t.chains.values()].reduce((m, c) => m + c.rules.length, 0), 0)
    expect(count(tables)).toBe(count(w.state.tables.filter((t) => t.origin === w.restore.backend)))
    expect(w.restore.iptables).toContain('-A KUBE-SVC-NPX46M4PTMTKRN6Y -m comment --comment "default/kubernetes:https -> 10.0.20.15:443" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-6ZPGMQ2L3DKXWE5Y')
    expect(w.restore.iptables).not.toContain('AWS SNAT CHAIN"')
    expect(w.restore.iptables).toContain(':AWS-SNAT-CHAIN-0 - [0:0]')
  })

  it('renders the settings, the rules and the changed flows for people; the JSON keeps the before and after of each flow', () => {
    const j = toWhatIfJson(whatIf(state, set('AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS=192.168.0.0/16'), 'all-pods'))
    expect(j.summary).toEqual({ flows: 20, changed: 4 })
    const text = renderWhatIf(j)
    expect(text).toMatch(/AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS: \(empty\) → 192\.168\.0\.0\/16 {3}\(now: networkutils-env-settings\.json:1\)/)
    expect(text).toMatch(/\+ -A AWS-SNAT-CHAIN-0 -d 192\.168\.0\.0\/16/)
    expect(text).toMatch(/4 of 20 change/)
  })

  it('a service without external destinations is refused with the services that have them', () => {
    try {
      stateAfter(state, set('externalTrafficPolicy/default/kubernetes:https=Local'))
      expect.unreachable()
    } catch (e) {
      expect(isNatlensError(e) && e.exit).toBe(2)
      expect((e as Error).message).toMatch(/no service default\/kubernetes:https with a NodePort/)
    }
  })
})

describe('predictions against the kernel of a sibling lab scenario', () => {
  /** Explains the target scenario's flows on `from` changed by `changes`, and judges each against the kernel's observation. */
  async function predict(from: string, changes: string[], target: string): Promise<string[]> {
    const state = await loadNodeState([fixture(from).bundleDir])
    const runs = fixture(target).flows.filter((f) => f.flow.origin !== 'reply' && f.observed.delivered)
    const flows = runs.map((f) => {
      const flow = parseFlow({ ...f.flow })
      if (typeof flow === 'string') throw new Error(flow)
      return { label: f.name, flow }
    })
    const r = whatIf(state, set(...changes), flows)
    expect(r.flows.some((f) => f.changed.length > 0)).toBe(true)
    return r.flows.flatMap((f, i) => judge(f.after, runs[i]!.observed).mismatches.map((m) => `${f.label}: ${m}`))
  }

  it('v4cur with EXTERNALSNAT=true predicts what the kernel did in v4ext', async () => {
    expect(await predict('v4cur', ['AWS_VPC_K8S_CNI_EXTERNALSNAT=true'], 'v4ext')).toEqual([])
  })
  it('v4ext with EXTERNALSNAT=false predicts what the kernel did in v4cur', async () => {
    // The lab's imds.txt is not read for the VPC CIDRs (and v4ext's empty chains have none): given as an added CIDR.
    expect(await predict('v4ext', ['AWS_VPC_K8S_CNI_EXTERNALSNAT=false', 'ADD_VPC_CIDR=10.0.0.0/16'], 'v4cur')).toEqual([])
  })
  it('v4sgpd (standard) with POD_SECURITY_GROUP_ENFORCING_MODE=strict predicts the kernel of v4sgps', async () => {
    expect(await predict('v4sgpd', ['POD_SECURITY_GROUP_ENFORCING_MODE=strict'], 'v4sgps')).toEqual([])
  })
  it('v4sgps (strict) with POD_SECURITY_GROUP_ENFORCING_MODE=standard predicts the kernel of v4sgpd', async () => {
    expect(await predict('v4sgps', ['POD_SECURITY_GROUP_ENFORCING_MODE=standard'], 'v4sgpd')).toEqual([])
  })
})

describe('flows from a capture', () => {
  it('the v4cur capture gives back the scenario\'s flows as they were sent (NAT copies folded into their connection)', async () => {
    const run = fixture('v4cur')
    const state = await loadNodeState([run.bundleDir])
    const flows = await captureFlows(state, [run.pcap])
    const key = (f: { src: string; dst: string; proto: string; sport: number | null; dport: number | null }) => `${f.proto} ${f.src}:${f.sport ?? ''} → ${f.dst}:${f.dport ?? ''}`
    const fmt = (a: { family: 4 | 6; value: bigint }) => (a.family === 4 ? [24n, 16n, 8n, 0n].map((s) => String((a.value >> s) & 255n)).join('.') : '')
    expect(flows.map((f) => key({ ...f.flow, src: fmt(f.flow.src), dst: fmt(f.flow.dst) })).sort()).toEqual(run.flows.filter((f) => f.flow.origin !== 'reply').map((f) => key(f.flow)).map((k) => k.replace(/:(?= →)|:$/, (m) => m)).sort())
    expect(flows.find((f) => f.flow.sport === 41008)?.flow.origin).toBe('host')
  })
})
