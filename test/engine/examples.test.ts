// explain on the four example nodes in ../shared/examples, against the verdicts their SCENARIO.md states.
import { describe, expect, it } from 'vitest'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadNodeState, type LoadedNode } from '../../src/sources/load.js'
import { explain } from '../../src/engine/explain.js'
import { parseFlow, type FlowInput } from '../../src/model/flow.js'
import { toVerdictJson, type VerdictJson } from '../../src/render/verdict-json.js'
import { EXAMPLES, lineOf } from '../helpers.js'

async function node(name: string, files: string[]): Promise<LoadedNode> {
  return loadNodeState(files.map((f) => join(EXAMPLES, name, f)))
}

function ex(state: LoadedNode, input: FlowInput, ctmark?: number): VerdictJson {
  const flow = parseFlow(input)
  if (typeof flow === 'string') throw new Error(flow)
  return toVerdictJson(explain(state, flow, ctmark !== undefined ? { ctmark } : {}), state)
}

const BASE = ['ip-rule.txt', 'ip-route-all.txt', 'iptables-save-mangle.txt', 'networkutils-env-settings.json']

describe('default-ipv4 (EXTERNALSNAT=false, two ENIs)', async () => {
  const state = await node('default-ipv4', [...BASE, 'iptables-save-nat.txt'])
  const nat = await readFile(join(EXAMPLES, 'default-ipv4', 'iptables-save-nat.txt'), 'utf8')
  const snatLine = lineOf(nat, '-A AWS-SNAT-CHAIN-0 ! -o vlan+')
  const vpcReturn = lineOf(nat, '-A AWS-SNAT-CHAIN-0 -d 10.0.0.0/16')

  it('web on eth0 to the internet: SNAT to the primary address by the AWS SNAT rule, out eth0', () => {
    const v = ex(state, { src: '10.0.7.201', dst: '93.184.216.34', dport: 443 })
    expect(v).toMatchObject({ snat: true, sourceAfter: '10.0.3.45', destinationAfter: '93.184.216.34', egressInterface: 'eth0', owner: 'vpc-cni' })
    expect(v.decidedBy).toEqual({ file: join(EXAMPLES, 'default-ipv4', 'iptables-save-nat.txt'), line: snatLine, rule: nat.split('\n')[snatLine - 1] })
    expect(v.setting).toMatch(/AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS/)
    expect(v.flow.origin).toBe('pod')
    expect(v.flow.iif).toBe('eni212428e8e5c')
  })

  it('api on eth1 to the internet: connmark 0x80 → rule 1024 → main → eth0, SNATed', () => {
    const v = ex(state, { src: '10.0.9.88', dst: '93.184.216.34', dport: 443 })
    expect(v).toMatchObject({ snat: true, sourceAfter: '10.0.3.45', egressInterface: 'eth0' })
    expect(v.steps.some((s) => s.kind === 'policy-route' && /1024/.test(s.summary))).toBe(true)
    expect(v.warnings.join(' ')).not.toMatch(/connmark/)
  })

  it('api to a VPC address: the VPC CIDR RETURN keeps the pod address, table 2 sends it out eth1', () => {
    const v = ex(state, { src: '10.0.9.88', dst: '10.0.20.15', dport: 5432 })
    expect(v).toMatchObject({ snat: false, sourceAfter: '10.0.9.88', egressInterface: 'eth1', owner: 'vpc-cni' })
    expect(v.decidedBy?.line).toBe(vpcReturn)
    expect(v.reason).toMatch(/10\.0\.0\.0\/16/)
  })

  it('web to a VPC address: no SNAT, main table, eth0', () => {
    expect(ex(state, { src: '10.0.7.201', dst: '10.0.20.15' })).toMatchObject({ snat: false, sourceAfter: '10.0.7.201', egressInterface: 'eth0' })
  })

  it('web to the kubernetes ClusterIP: DNAT to either endpoint with probability 1/2 each, never SNATed', () => {
    const v = ex(state, { src: '10.0.7.201', dst: '172.20.0.1', dport: 443 })
    expect(v.branches).toHaveLength(2)
    expect(v.branches.map((b) => b.destinationAfter).sort()).toEqual(['10.0.20.15', '10.0.40.7'])
    for (const b of v.branches) expect(b).toMatchObject({ probability: 0.5, snat: false, sourceAfter: '10.0.7.201', egressInterface: 'eth0' })
  })

  it('api to on-prem 192.168.50.10 (not excluded): SNATed, and the setting to change it is named', () => {
    const v = ex(state, { src: '10.0.9.88', dst: '192.168.50.10' })
    expect(v).toMatchObject({ snat: true, sourceAfter: '10.0.3.45', egressInterface: 'eth0' })
    expect(v.setting).toMatch(/EXCLUDE_SNAT_CIDRS/)
  })

  it('reply of a NodePort connection from api: connmark 0x80 restored → main → eth0; without it table 2 → eth1', () => {
    const marked = ex(state, { src: '10.0.9.88', dst: '198.51.100.7', sport: 8080, dport: 51000, origin: 'reply' }, 0x80)
    expect(marked).toMatchObject({ egressInterface: 'eth0', snat: false, firstPacket: false })
    const unmarked = ex(state, { src: '10.0.9.88', dst: '198.51.100.7', sport: 8080, dport: 51000, origin: 'reply' })
    expect(unmarked.egressInterface).toBe('eth1')
  })

  it('the classic failure: without the connmark rules, api leaves through eth1 still SNATed to eth0\'s address, and natlens says so', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'natlens-'))
    await writeFile(join(dir, 'nat.txt'), nat.split('\n').filter((l) => !/AWS, outbound connections|--restore-mark/.test(l)).join('\n'))
    for (const f of ['ip-rule.txt', 'ip-route-all.txt']) await writeFile(join(dir, f), await readFile(join(EXAMPLES, 'default-ipv4', f)))
    const broken = await loadNodeState([dir])
    const v = ex(broken, { src: '10.0.9.88', dst: '93.184.216.34' })
    expect(v).toMatchObject({ snat: true, sourceAfter: '10.0.3.45', egressInterface: 'eth1' })
    expect(v.warnings.join(' ')).toMatch(/connmark/)
  })

  it('numbered-chain era (v1.3–v1.16.0): same verdicts; the VPC exemption is the `! -d` hop that did not match', async () => {
    const numbered = await node('default-ipv4', [...BASE, 'iptables-save-nat.v1.12.1-v1.16.0-numbered.txt'])
    expect(ex(numbered, { src: '10.0.9.88', dst: '93.184.216.34' })).toMatchObject({ snat: true, sourceAfter: '10.0.3.45', egressInterface: 'eth0' })
    const v = ex(numbered, { src: '10.0.9.88', dst: '10.0.20.15' })
    expect(v).toMatchObject({ snat: false, egressInterface: 'eth1', owner: 'vpc-cni' })
    expect(v.decidedBy?.rule).toMatch(/! -d 10\.0\.0\.0\/16/)
  })

  it('v1.23 on an nft host: the connmark lives in table ip aws-cni, the SNAT chain in iptables-nft', async () => {
    const nft = await node('default-ipv4', [...BASE, 'iptables-save-nat.v1.23-nft-host.txt', 'nft-list-table-ip-aws-cni.v1.23-nft-host.txt'])
    const v = ex(nft, { src: '10.0.9.88', dst: '93.184.216.34' })
    expect(v).toMatchObject({ snat: true, sourceAfter: '10.0.3.45', egressInterface: 'eth0' })
    expect(v.steps.some((s) => s.table === 'aws-cni')).toBe(true)
    expect(ex(nft, { src: '10.0.9.88', dst: '10.0.20.15' })).toMatchObject({ snat: false, egressInterface: 'eth1' })
  })

  it('a whole folder with variants: one nat table is used and the others are named as duplicates', async () => {
    const all = await loadNodeState([join(EXAMPLES, 'default-ipv4')])
    const dup = all.diagnostics.filter((d) => d.code === 'bundle.duplicate-source')
    expect(dup.length).toBeGreaterThan(0)
    expect(all.artifacts.find((a) => a.artifact === 'iptables-save-nat.txt')?.used).toBe(true)
    expect(all.artifacts.find((a) => a.artifact === 'iptables-save-nat.v1.23-nft-host.txt')?.used).toBe(false)
    const chosen = await loadNodeState([join(EXAMPLES, 'default-ipv4')], { prefer: ['iptables-save-nat.v1.12.1-v1.16.0-numbered.txt'] })
    expect(chosen.artifacts.find((a) => a.artifact === 'iptables-save-nat.v1.12.1-v1.16.0-numbered.txt')?.used).toBe(true)
  })
})

describe('externalsnat-true', async () => {
  const state = await node('externalsnat-true', ['ip-rule.txt', 'ip-route-all.txt', 'iptables-save-mangle.txt', 'iptables-save-nat.txt'])
  it('web to the internet keeps its pod address; no rule decided, and the reason names EXTERNALSNAT', () => {
    const v = ex(state, { src: '10.0.7.201', dst: '93.184.216.34' })
    expect(v).toMatchObject({ snat: false, sourceAfter: '10.0.7.201', egressInterface: 'eth0', decidedBy: null })
    expect(v.reason).toMatch(/EXTERNALSNAT/)
    expect(v.setting).toMatch(/AWS_VPC_K8S_CNI_EXTERNALSNAT=false/)
  })
  it('api (eth1) to the internet leaves through eth1 with its own address', () => {
    expect(ex(state, { src: '10.0.9.88', dst: '93.184.216.34' })).toMatchObject({ snat: false, sourceAfter: '10.0.9.88', egressInterface: 'eth1' })
  })
  it('the v1.23 legacy-host rendering gives the same verdicts', async () => {
    const v123 = await node('externalsnat-true', ['ip-rule.txt', 'ip-route-all.txt', 'iptables-save-mangle.txt', 'iptables-save-nat.v1.23-legacy-host.txt'])
    expect(ex(v123, { src: '10.0.9.88', dst: '93.184.216.34' })).toMatchObject({ snat: false, egressInterface: 'eth1' })
  })
})

describe('sgp-standard (security groups for pods, standard mode)', async () => {
  const state = await node('sgp-standard', ['ip-rule.txt', 'ip-route-all.txt', 'iptables-save-mangle.txt', 'iptables-save-nat.txt', 'ip-link-abridged.txt'])
  it('ledger to the internet: marked (eni+ veth) → main → eth0, SNATed', () => {
    expect(ex(state, { src: '10.0.11.140', dst: '93.184.216.34' })).toMatchObject({ snat: true, sourceAfter: '10.0.3.45', egressInterface: 'eth0' })
  })
  it('ledger to the VPC: table 101 → vlan.eth.1, pod address kept', () => {
    expect(ex(state, { src: '10.0.11.140', dst: '10.0.20.15' })).toMatchObject({ snat: false, sourceAfter: '10.0.11.140', egressInterface: 'vlan.eth.1' })
  })
  it('ledger to kube-dns: DNAT to the local coredns pod, delivered through its veth, not the trunk', () => {
    const v = ex(state, { src: '10.0.11.140', dst: '172.20.0.10', proto: 'udp', dport: 53 })
    expect(v).toMatchObject({ snat: false, destinationAfter: '10.0.12.9', egressInterface: 'eni61d104e9256' })
  })
})

describe('ipv6-egress-v4 (IPv6 cluster, IPv4 egress plugin)', async () => {
  const files = ['ip-rule.txt', 'ip-route-all.txt', 'ip-6-rule.txt', 'ip-6-route-main-abridged.txt', 'iptables-save-nat.txt', 'iptables-save-mangle.txt', 'iptables-save-filter.txt']
  const state = await node('ipv6-egress-v4', files)
  it('IPv4 from the pod (169.254.172.2) is SNATed by its CNI-E4 chain to the node IPv4, even to the VPC', () => {
    const v = ex(state, { src: '169.254.172.2', dst: '93.184.216.34' })
    expect(v).toMatchObject({ snat: true, sourceAfter: '10.0.3.45', egressInterface: 'eth0', owner: 'egress-cni' })
    expect(v.decidedBy?.rule).toMatch(/CNI-E4-2a82b03e3c75f4403ec11/)
    expect(ex(state, { src: '169.254.172.2', dst: '10.0.20.15' })).toMatchObject({ snat: true, sourceAfter: '10.0.3.45' })
  })
  it('multicast is accepted before the SNAT', () => {
    expect(ex(state, { src: '169.254.172.2', dst: '224.0.0.251', proto: 'udp', dport: 5353 }).snat).toBe(false)
  })
  it('IPv6 from the pod leaves through eth0; without ip6tables in the bundle natlens says SNAT is unknown, not "no"', () => {
    const v = ex(state, { src: '2600:1f14:8a1:5c00:9b3e::1', dst: '2001:db8::10' })
    expect(v).toMatchObject({ snat: null, sourceAfter: null, egressInterface: 'eth0' })
    expect(v.warnings.join(' ')).toMatch(/ip6tables/)
  })
  it('with an (empty) ip6tables nat table the IPv6 pod keeps its global address', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'natlens-'))
    await writeFile(join(dir, 'ip6tables-save.txt'), '# Generated by ip6tables-save v1.8.4\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n')
    const withV6 = await loadNodeState([...files.map((f) => join(EXAMPLES, 'ipv6-egress-v4', f)), join(dir, 'ip6tables-save.txt')])
    expect(ex(withV6, { src: '2600:1f14:8a1:5c00:9b3e::1', dst: '2001:db8::10' })).toMatchObject({ snat: false, sourceAfter: '2600:1f14:8a1:5c00:9b3e::1', egressInterface: 'eth0' })
  })
  it('another pod reaching a pod\'s 169.254.172.x address is rejected in FORWARD', () => {
    expect(ex(state, { src: '169.254.172.3', dst: '169.254.172.2' }).verdict).toBe('dropped')
  })
  it('the pod-side files in the folder are recognised as a pod\'s view and not used', async () => {
    const all = await loadNodeState([join(EXAMPLES, 'ipv6-egress-v4')])
    for (const f of ['pod-web-ip-route.txt', 'pod-web-ip-addr.txt']) {
      expect(all.artifacts.find((a) => a.artifact === f)).toMatchObject({ used: false, reason: expect.stringMatching(/pod's network namespace/) })
    }
  })
})

describe('rp_filter (fib_validate_source)', async () => {
  async function withSysctl(eth1: number) {
    const dir = await mkdtemp(join(tmpdir(), 'natlens-rpf-'))
    for (const f of [...BASE, 'iptables-save-nat.txt']) await writeFile(join(dir, f), await readFile(join(EXAMPLES, 'default-ipv4', f)))
    await writeFile(join(dir, 'sysctl.txt'), `net.ipv4.ip_forward = 1\nnet.ipv4.conf.all.rp_filter = 0\nnet.ipv4.conf.eth0.rp_filter = 2\nnet.ipv4.conf.eth1.rp_filter = ${eth1}\n`)
    return loadNodeState([dir])
  }
  it('strict on eth1: a VPC host reaching web (a pod of eth0) through eth1 is dropped, the route back leaves through eth0', async () => {
    const v = ex(await withSysctl(1), { src: '10.0.20.15', dst: '10.0.7.201', dport: 8080, origin: 'external', iif: 'eth1' })
    expect(v.verdict).toBe('dropped')
    expect(v.steps.find((s) => s.kind === 'rp-filter')?.summary).toMatch(/leaves through eth0, not eth1/)
  })
  it('loose on eth1: the same packet is forwarded to the pod', async () => {
    const v = ex(await withSysctl(2), { src: '10.0.20.15', dst: '10.0.7.201', dport: 8080, origin: 'external', iif: 'eth1' })
    expect(v).toMatchObject({ verdict: 'forwarded', egressInterface: 'eni212428e8e5c', snat: false })
  })
  it('strict on eth1: a VPC host reaching api (a pod of eth1) through eth1 passes: rule 1536 sends the reply out eth1', async () => {
    const v = ex(await withSysctl(1), { src: '10.0.20.15', dst: '10.0.9.88', dport: 8080, origin: 'external', iif: 'eth1' })
    expect(v).toMatchObject({ verdict: 'forwarded', egressInterface: 'enie90ff0f6268' })
  })
})

describe('partial state still gets an answer, with what is missing named and the fields that depend on it null', () => {
  it('only a nat table: SNAT is decided, the egress interface is unknown', async () => {
    const only = await node('default-ipv4', ['iptables-save-nat.txt'])
    const v = ex(only, { src: '10.0.7.201', dst: '93.184.216.34' })
    expect(v).toMatchObject({ snat: true, sourceAfter: '10.0.3.45', egressInterface: null, owner: 'vpc-cni' })
    expect(v.warnings.join(' ')).toMatch(/no routes in the bundle/)
    expect(ex(only, { src: '10.0.7.201', dst: '10.0.20.15' })).toMatchObject({ snat: false, sourceAfter: '10.0.7.201' })
  })
  it('only ip rule and routes: the egress interface is decided, SNAT is unknown', async () => {
    const only = await node('default-ipv4', ['ip-rule.txt', 'ip-route-all.txt'])
    const v = ex(only, { src: '10.0.9.88', dst: '10.0.20.15' })
    expect(v).toMatchObject({ snat: null, sourceAfter: null, egressInterface: 'eth1' })
    expect(v.warnings.join(' ')).toMatch(/no iptables or nft rules/)
    // Without the mangle/nat rules nothing sets the connmark: off-VPC traffic of api would take table 2 as well.
    expect(ex(only, { src: '10.0.9.88', dst: '93.184.216.34' }).egressInterface).toBe('eth1')
  })
})
