// The lab's scenarios: which node each one builds and which flows it sends, with what ../shared/docs say must happen.
// Section numbers (§) refer to ../shared/docs/vpc-cni.md unless kube-proxy.md is named.
import { hostVethName } from './names.js'
import type { Expectation, LabFlowSpec, LabOrigin, LabProto, Outcome } from './model.js'
import { addCalicoLike, addCiliumChaining, addKubeProxyForward, addService, type CniRuleConfig, type IptablesProgram, type KubeProxyNftConfig } from './rules.js'
import { NODE_IP, REMOTE, type EniSpec, type NodeSpec, type PodSpec } from './topology.js'
import type { CniSettings } from './bundle.js'

export interface ScenarioSpec {
  /** Short id; the namespaces are nl-<id>-node, nl-<id>-vpc, nl-<id>-p<i>. */
  readonly id: string
  readonly title: string
  /** Which cases of the issue this scenario covers. */
  readonly covers: readonly string[]
  readonly node: NodeSpec
  /** Rules beyond kube-proxy's base and the CNI's: services, another CNI, hand-written rules. */
  readonly extraRules?: (p: IptablesProgram) => void
  /** An nft ruleset loaded after the iptables rules (another agent's native nft table). */
  readonly extraNft?: string
  /** kube-proxy in nftables mode (`table ip kube-proxy`, loaded with `nft -f` after the iptables rules) instead of its iptables chains. */
  readonly kubeProxyNft?: KubeProxyNftConfig
  readonly settings: (primaryMac: string) => CniSettings
  readonly flows: readonly LabFlowSpec[]
}

// Pods of ../shared/examples/node-states (names, IPs and host veths as there).
const WEB = { namespace: 'default', name: 'web-7d9c6b5f4-2xkqz', ip: '10.0.7.201' }
const API = { namespace: 'default', name: 'api-6f7b8d9c5-q8wzt', ip: '10.0.9.88' }
const LEDGER = { namespace: 'payments', name: 'ledger-7f8d9c6b5-kq2xv', ip: '10.0.11.140' }
const APP1 = { namespace: 'default', name: 'app1-58b7c9d6f4-wq2lp', ip: '100.64.5.20' }
const APP2 = { namespace: 'default', name: 'app2-7c9d8e6f5-hx4kd', ip: '100.64.7.33' }
const WEB6 = { namespace: 'default', name: 'web-7d9c6b5f4-2xkqz', ip6: '2001:db8:a:0:9b3e::1', v4: '169.254.172.2', containerId: '3f2a9c1be8d74f06a51c2e9d8b7a6f5e4d3c2b1a0f9e8d7c6b5a49382716a5b4' }
const DNS6 = { namespace: 'kube-system', name: 'coredns-5b8cc885bc-7hj4m', ip6: '2001:db8:a:0:9b3e::2', v4: '169.254.172.3', containerId: '9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4938271605f4e3d2c1b0a9f8e7d6c5b4a3' }

const vethOf = (p: { namespace: string; name: string }, prefix = 'eni') => hostVethName(prefix, p.namespace, p.name)

const ETH0: EniSpec = { name: 'eth0', ip: NODE_IP, prefixLen: 20, gateway: '10.0.0.1', deviceNumber: 0, primary: true }
const ETH1: EniSpec = { name: 'eth1', ip: '10.0.6.120', prefixLen: 20, gateway: '10.0.0.1', deviceNumber: 1, primary: false }
const ETH2_TRUNK: EniSpec = { name: 'eth2', ip: '10.0.8.50', prefixLen: 20, gateway: '10.0.0.1', deviceNumber: 2, primary: false, trunk: true }

const pod = (key: string, p: { namespace: string; name: string; ip: string }, eni: string, extra: Partial<PodSpec> = {}): PodSpec => ({ key, namespace: p.namespace, name: p.name, ip: p.ip, eni, ...extra })

const cni = (over: Partial<CniRuleConfig> = {}): CniRuleConfig => ({
  era: 'v1.20', nodeIp: NODE_IP, primaryInterface: 'eth0', vpcCidrs: ['10.0.0.0/16'], excludeCidrs: [], externalSnat: false, randomizeSnat: 'prng', ...over,
})

/** ipamd `/v1/networkutils-env-settings` for a CNI config (RANDOMIZESNAT as the integer ipamd prints: 0 none, 1 hashrandom, 2 prng). */
function settingsFor(c: CniRuleConfig | null, ipamd?: Record<string, unknown>): (mac: string) => CniSettings {
  return (mac) => ({
    networkutils: {
      AWS_EXTERNAL_SERVICE_CIDRS: null,
      AWS_VPC_CNI_NODE_PORT_SUPPORT: true,
      AWS_VPC_ENI_MTU: 9001,
      AWS_VPC_K8S_CNI_CONNMARK: 128,
      AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS: c && c.excludeCidrs.length > 0 ? [...c.excludeCidrs] : null,
      AWS_VPC_K8S_CNI_EXTERNALSNAT: c?.externalSnat ?? false,
      AWS_VPC_K8S_CNI_RANDOMIZESNAT: { none: 0, hashrandom: 1, prng: 2 }[c?.randomizeSnat ?? 'prng'],
      AWS_VPC_K8S_CNI_VETHPREFIX: 'eni',
    },
    ...(ipamd ? { ipamd } : {}),
    imds: { 'local-ipv4': NODE_IP, mac, 'vpc-ipv4-cidr-blocks': (c?.vpcCidrs ?? ['10.0.0.0/16']).join(' ') },
  })
}

const go = (egressInterface: string, sourceSeen: string, arrivedAt: string, snat: boolean, why: string): Expectation =>
  ({ delivered: true, outcomes: [{ egressInterface, sourceSeen, arrivedAt, snat }], why })
const oneOf = (outcomes: Outcome[], why: string): Expectation => ({ delivered: true, outcomes, why })
const dropped = (why: string): Expectation => ({ delivered: false, outcomes: [], why })

/** Builds a scenario's flows with unique source ports (41001…) and ICMP ids, so captures and conntrack are unambiguous. */
class Flows {
  private readonly list: LabFlowSpec[] = []
  private port = 41001
  private id = 0x4e01

  private add(name: string, client: string, proto: LabProto, src: string, dst: string, dport: number | null, expect: Expectation, iif?: string): void {
    const origin: LabOrigin = client === 'node' ? 'host' : client === 'vpc' ? 'external' : 'pod'
    const ports = proto === 'tcp' || proto === 'udp'
    const spec: LabFlowSpec = {
      name, client, expect,
      flow: { src, dst, proto, sport: ports ? this.port++ : null, dport: ports ? dport : null, origin, ...(iif ? { iif } : {}) },
      ...(ports ? {} : { icmpId: this.id++ }),
    }
    this.list.push(spec)
  }

  tcp(name: string, client: string, src: string, dst: string, dport: number, expect: Expectation, iif?: string): this { this.add(name, client, 'tcp', src, dst, dport, expect, iif); return this }
  udp(name: string, client: string, src: string, dst: string, dport: number, expect: Expectation): this { this.add(name, client, 'udp', src, dst, dport, expect); return this }
  icmp(name: string, client: string, src: string, dst: string, expect: Expectation): this {
    this.add(name, client, src.includes(':') ? 'icmpv6' : 'icmp', src, dst, null, expect); return this
  }

  /** The SYN-ACK a backend sends back on the connection of flow `of` (no traffic of its own). */
  reply(name: string, of: string, backend: string, backendPort: number, iif: string, expect: Expectation): this {
    const parent = this.list.find((f) => f.name === of)
    if (!parent) throw new Error(`lab: reply ${name} names unknown flow ${of}`)
    this.list.push({ name, client: parent.client, replyOf: of, expect, flow: { src: backend, dst: parent.flow.src, proto: 'tcp', sport: backendPort, dport: parent.flow.sport, origin: 'reply', iif } })
    return this
  }

  build(): LabFlowSpec[] { return this.list }
}

const { internet: INET, vpcPeer: PEER, onPrem: ONPREM, remoteEndpoint: REMOTE_EP, internet2: INET2, secondaryCidrPeer: PEER100 } = REMOTE
const SNAT_WHY = '§1/§2.1: off-VPC destination, no RETURN matches; SNAT --to-source the primary IP'

// ---------------------------------------------------------------------------------------------------------------
const web = vethOf(WEB)
const api = vethOf(API)

const current: ScenarioSpec = {
  id: 'v4cur',
  title: 'v1.20–v1.22 single-chain CNI, two ENIs, defaults (EXTERNALSNAT=false, RANDOMIZESNAT=prng)',
  covers: ['in-VPC no SNAT', 'off-VPC SNAT to the primary IP', 'secondary-ENI pod leaves through main because of connmark 0x80', 'single chain era (v1.16.1+)', 'RANDOMIZESNAT=prng (--random-fully)', 'host-network process (OUTPUT)', 'pod to pod on the node', 'ICMP and UDP'],
  node: { enis: [ETH0, ETH1], pods: [pod('p1', WEB, 'eth0'), pod('p2', API, 'eth1')], cni: cni() },
  settings: settingsFor(cni()),
  flows: new Flows()
    .tcp('web→internet', 'p1', WEB.ip, INET, 8080, go('eth0', NODE_IP, INET, true, `${SNAT_WHY}; main table → eth0`))
    .tcp('web→vpc', 'p1', WEB.ip, PEER, 8080, go('eth0', WEB.ip, PEER, false, '§2.1 RETURN for the VPC CIDR; pod on the primary ENI: no from-rule → main → eth0'))
    .tcp('api(eth1)→internet', 'p2', API.ip, INET, 8080, go('eth0', NODE_IP, INET, true, '§1: connmark 0x80 (off-VPC) → 1024 fwmark → main → eth0; SNAT to the primary IP'))
    .tcp('api(eth1)→vpc', 'p2', API.ip, PEER, 8080, go('eth1', API.ip, PEER, false, '§1: no mark (VPC) → 1536 from pod → table 2 → eth1; RETURN, no SNAT'))
    .udp('api(eth1)→on-prem udp', 'p2', API.ip, ONPREM, 8081, go('eth0', NODE_IP, ONPREM, true, 'SCENARIO default-ipv4: 192.168.50.10 not excluded → marked → eth0, SNAT'))
    .icmp('web→internet icmp', 'p1', WEB.ip, INET, go('eth0', NODE_IP, INET, true, SNAT_WHY))
    .icmp('api(eth1)→internet icmp', 'p2', API.ip, INET, go('eth0', NODE_IP, INET, true, '§1 connmark → main → eth0; SNAT'))
    .udp('api(eth1)→internet udp', 'p2', API.ip, INET, 8081, go('eth0', NODE_IP, INET, true, '§1 connmark → main → eth0; SNAT'))
    .tcp('host→internet', 'node', NODE_IP, INET, 8080, go('eth0', NODE_IP, INET, false, '§1: the SNAT rule has no source match: local traffic hits it too, but to its own address (only --random-fully\'s new port shows)'))
    .tcp('host(eth1 IP)→internet', 'node', ETH1.ip, INET, 8080, go('eth1', NODE_IP, INET, true, '§4.1 32765 from the ENI IP → table 2 → eth1; the SNAT rule rewrites the source to the primary IP'))
    .tcp('host→vpc', 'node', NODE_IP, PEER, 8080, go('eth0', NODE_IP, PEER, false, '§2.1 RETURN for the VPC CIDR'))
    .tcp('web→api pod-to-pod', 'p1', WEB.ip, API.ip, 8080, go(api, WEB.ip, API.ip, false, '§4.3 512 to pod → main → host veth; VPC RETURN'))
    .tcp('api→web pod-to-pod', 'p2', API.ip, WEB.ip, 8080, go(web, API.ip, WEB.ip, false, '§4.1 512 (to pod) wins over 1536 (from pod)'))
    .build(),
}

const noMarkCni = cni({ connmarkJumpMissing: true })
const noMark: ScenarioSpec = {
  id: 'v4nomark',
  title: 'connmark not reached (the -i eni+ jump to AWS-CONNMARK-CHAIN-0 is missing): the classic failure',
  covers: ['secondary-ENI pod without the 0x80 mark leaves through its own ENI still SNATed to the primary IP'],
  node: { enis: [ETH0, ETH1], pods: [pod('p1', WEB, 'eth0'), pod('p2', API, 'eth1')], cni: noMarkCni },
  settings: settingsFor(noMarkCni),
  flows: new Flows()
    .tcp('api(eth1)→internet unmarked', 'p2', API.ip, INET, 8080, go('eth1', NODE_IP, INET, true, '§1 last bullet: no mark → 1536 → table 2 → eth1, and SNAT to the primary IP anyway'))
    .udp('api(eth1)→internet udp unmarked', 'p2', API.ip, INET, 8081, go('eth1', NODE_IP, INET, true, '§1 last bullet'))
    .tcp('api(eth1)→vpc', 'p2', API.ip, PEER, 8080, go('eth1', API.ip, PEER, false, '1536 → table 2; RETURN'))
    .tcp('web→internet', 'p1', WEB.ip, INET, 8080, go('eth0', NODE_IP, INET, true, 'primary-ENI pod: main → eth0 with or without the mark; SNAT'))
    .build(),
}

const extCni = cni({ externalSnat: true })
const externalSnat: ScenarioSpec = {
  id: 'v4ext',
  title: 'AWS_VPC_K8S_CNI_EXTERNALSNAT=true (chains declared and empty, mangle and 1024 fwmark unchanged)',
  covers: ['EXTERNALSNAT=true'],
  node: { enis: [ETH0, ETH1], pods: [pod('p1', WEB, 'eth0'), pod('p2', API, 'eth1')], cni: extCni },
  settings: settingsFor(extCni),
  flows: new Flows()
    .tcp('web→internet', 'p1', WEB.ip, INET, 8080, go('eth0', WEB.ip, INET, false, 'SCENARIO externalsnat-true: no SNAT rule; main → eth0'))
    .tcp('api(eth1)→internet', 'p2', API.ip, INET, 8080, go('eth1', API.ip, INET, false, 'no mark → 1536 → table 2 → eth1 with the pod IP'))
    .tcp('api(eth1)→vpc', 'p2', API.ip, PEER, 8080, go('eth1', API.ip, PEER, false, '1536 → table 2'))
    .tcp('host→internet', 'node', NODE_IP, INET, 8080, go('eth0', NODE_IP, INET, false, 'no SNAT rule at all: source and port kept'))
    .icmp('api(eth1)→internet icmp', 'p2', API.ip, INET, go('eth1', API.ip, INET, false, 'no mark → table 2 → eth1'))
    .build(),
}

const customCni = cni({ vpcCidrs: ['10.0.0.0/16', '100.64.0.0/16'], excludeCidrs: ['192.168.0.0/16'] })
const ETH1_CUSTOM: EniSpec = { name: 'eth1', ip: '100.64.2.10', prefixLen: 19, gateway: '100.64.0.1', deviceNumber: 1, primary: false }
const app1 = vethOf(APP1)
const custom: ScenarioSpec = {
  id: 'v4custom',
  title: 'custom networking: pods on eth1 in a secondary VPC CIDR (100.64.0.0/16), EXCLUDE_SNAT_CIDRS=192.168.0.0/16',
  covers: ['secondary VPC CIDRs and custom networking', 'EXCLUDE_SNAT_CIDRS'],
  node: { enis: [ETH0, ETH1_CUSTOM], pods: [pod('p1', APP1, 'eth1'), pod('p2', APP2, 'eth1')], cni: customCni },
  settings: settingsFor(customCni, { AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG: true, ENABLE_IPv6: false, ENABLE_POD_ENI: false }),
  flows: new Flows()
    .tcp('app1→vpc (primary CIDR)', 'p1', APP1.ip, PEER, 8080, go('eth1', APP1.ip, PEER, false, '§7: every VPC CIDR is exempt; 1536 → table 2 → eth1'))
    .tcp('app1→vpc (secondary CIDR)', 'p1', APP1.ip, PEER100, 8080, go('eth1', APP1.ip, PEER100, false, '§7: 100.64.0.0/16 is a VPC CIDR (IMDS vpc-ipv4-cidr-blocks)'))
    .tcp('app1→internet', 'p1', APP1.ip, INET, 8080, go('eth0', NODE_IP, INET, true, '§7: connmark → main → primary ENI → SNAT to the node IP'))
    .tcp('app1→excluded on-prem', 'p1', APP1.ip, ONPREM, 8080, go('eth1', APP1.ip, ONPREM, false, '§2.1/§2.3: EXCLUSION RETURN in both chains: no mark → own ENI, no SNAT'))
    .udp('app2→internet udp', 'p2', APP2.ip, INET, 8081, go('eth0', NODE_IP, INET, true, '§7'))
    .tcp('app2→app1 pod-to-pod', 'p2', APP2.ip, APP1.ip, 8080, go(app1, APP2.ip, APP1.ip, false, '512 to pod → main → host veth'))
    .tcp('host→excluded on-prem', 'node', NODE_IP, ONPREM, 8080, go('eth0', NODE_IP, ONPREM, false, 'EXCLUSION RETURN: no SNAT, port kept'))
    .build(),
}

const bareCni = cni({ era: 'v1.2', randomizeSnat: 'none' })
const bare: ScenarioSpec = {
  id: 'v4bare',
  title: 'VPC CNI ≤ v1.2: one bare POSTROUTING SNAT rule and `1024: not to VPC lookup main`',
  covers: ['era ≤1.2 bare rule'],
  node: { enis: [ETH0, ETH1], pods: [pod('p1', WEB, 'eth0'), pod('p2', API, 'eth1')], cni: bareCni },
  settings: settingsFor(bareCni),
  flows: new Flows()
    .tcp('web→internet', 'p1', WEB.ip, INET, 8080, go('eth0', NODE_IP, INET, true, '§2.2 ≤v1.2: ! -d VPC … SNAT'))
    .tcp('api(eth1)→internet', 'p2', API.ip, INET, 8080, go('eth0', NODE_IP, INET, true, '§4.1: 1024 not to VPC lookup main (before 1536) → eth0; SNAT'))
    .tcp('api(eth1)→vpc', 'p2', API.ip, PEER, 8080, go('eth1', API.ip, PEER, false, '1536 → table 2; ! -d VPC does not match'))
    .udp('api(eth1)→on-prem udp', 'p2', API.ip, ONPREM, 8081, go('eth0', NODE_IP, ONPREM, true, '§4.1 1024 not to VPC → main; SNAT'))
    .build(),
}

const numberedCni = cni({ era: 'v1.12.0', excludeCidrs: ['192.168.0.0/16'], randomizeSnat: 'hashrandom' })
const numbered: ScenarioSpec = {
  id: 'v4num',
  title: 'numbered chains (v1.6–v1.12.0, `-m state --state NEW`), EXCLUDE_SNAT_CIDRS, RANDOMIZESNAT=hashrandom (--random)',
  covers: ['numbered chains era 1.3–1.16.0', 'EXCLUDE_SNAT_CIDRS', 'RANDOMIZESNAT=hashrandom'],
  node: { enis: [ETH0, ETH1], pods: [pod('p1', WEB, 'eth0'), pod('p2', API, 'eth1')], cni: numberedCni },
  settings: settingsFor(numberedCni),
  flows: new Flows()
    .tcp('api(eth1)→excluded on-prem', 'p2', API.ip, ONPREM, 8080, go('eth1', API.ip, ONPREM, false, '§2.2: falls off AWS-*-CHAIN-1 (! -d 192.168.0.0/16 does not match): no mark, no SNAT → 1536 → eth1'))
    .tcp('api(eth1)→internet', 'p2', API.ip, INET, 8080, go('eth0', NODE_IP, INET, true, '§2.2/§2.3 numbered: reaches CONNMARK/SNAT in the last chain'))
    .udp('web→excluded on-prem udp', 'p1', WEB.ip, ONPREM, 8081, go('eth0', WEB.ip, ONPREM, false, 'excluded: no SNAT'))
    .tcp('api(eth1)→vpc', 'p2', API.ip, PEER, 8080, go('eth1', API.ip, PEER, false, 'falls off AWS-SNAT-CHAIN-0'))
    .icmp('web→internet icmp', 'p1', WEB.ip, INET, go('eth0', NODE_IP, INET, true, 'SNAT --random'))
    .build(),
}

const nftCni = cni({ era: 'v1.23-nft', randomizeSnat: 'none' })
const nftEra: ScenarioSpec = {
  id: 'v4nft',
  title: 'v1.23 on an nf_tables host: connmark in `table ip aws-cni`, SNAT chain in iptables-nft, RANDOMIZESNAT=none',
  covers: ['nft connmark era 1.23+', 'RANDOMIZESNAT=none'],
  node: { enis: [ETH0, ETH1], pods: [pod('p1', WEB, 'eth0'), pod('p2', API, 'eth1')], cni: nftCni },
  settings: settingsFor(nftCni),
  flows: new Flows()
    .tcp('api(eth1)→internet', 'p2', API.ip, INET, 8080, go('eth0', NODE_IP, INET, true, '§2.4: snat-mark sets ct mark 0x80, meta mark restored → 1024 → main → eth0; SNAT (no random flag)'))
    .tcp('api(eth1)→vpc', 'p2', API.ip, PEER, 8080, go('eth1', API.ip, PEER, false, '§2.4: ip daddr VPC return; 1536 → table 2'))
    .tcp('web→internet', 'p1', WEB.ip, INET, 8080, go('eth0', NODE_IP, INET, true, SNAT_WHY))
    .udp('api(eth1)→internet udp', 'p2', API.ip, INET, 8081, go('eth0', NODE_IP, INET, true, '§2.4'))
    .build(),
}

const ledgerStrict = vethOf(LEDGER, 'vlan')
const sgpCni = cni()
const sgpStrict: ScenarioSpec = {
  id: 'v4sgps',
  title: 'security groups for pods, strict mode: branch pod behind vlan<hash>, vlan.eth.1, table 101, local rule at 20',
  covers: ['security groups for pods (strict)', 'vlan.eth.N', 'tables 100+N'],
  node: { enis: [ETH0, ETH2_TRUNK], pods: [pod('p1', WEB, 'eth0'), pod('p2', LEDGER, 'eth2', { mode: 'sgp-strict', vlanId: 1 })], cni: sgpCni, sgpMode: 'strict' },
  settings: settingsFor(sgpCni, { ENABLE_POD_ENI: true, POD_SECURITY_GROUP_ENFORCING_MODE: 'strict', ENABLE_IPv6: false }),
  flows: new Flows()
    .tcp('ledger(strict)→internet', 'p2', LEDGER.ip, INET, 8080, go('vlan.eth.1', LEDGER.ip, INET, false, '§5 strict: 10 iif vlan<hash> → table 101 → vlan.eth.1; ! -o vlan+: never SNATed'))
    .tcp('ledger(strict)→vpc', 'p2', LEDGER.ip, PEER, 8080, go('vlan.eth.1', LEDGER.ip, PEER, false, '§5 strict'))
    .tcp('ledger(strict)→web same node', 'p2', LEDGER.ip, WEB.ip, 8080, go('vlan.eth.1', LEDGER.ip, WEB.ip, false, '§5 strict: even pod→pod on the node goes out through the trunk (local lookup moved to 20)'))
    .tcp('web→internet', 'p1', WEB.ip, INET, 8080, go('eth0', NODE_IP, INET, true, SNAT_WHY))
    .tcp('web→ledger(strict)', 'p1', WEB.ip, LEDGER.ip, 8080, go('eth0', WEB.ip, LEDGER.ip, false, '§5 strict: the branch pod route is only in table 101, so main sends it to the VPC via eth0'))
    .build(),
}

const ledgerStd = vethOf(LEDGER)
const sgpStandard: ScenarioSpec = {
  id: 'v4sgpd',
  title: 'security groups for pods, standard mode: branch pod behind eni<hash>, 1536 → table 101 (vlan.eth.1)',
  covers: ['security groups for pods (standard)', 'vlan.eth.N', 'tables 100+N'],
  node: { enis: [ETH0, ETH2_TRUNK], pods: [pod('p1', WEB, 'eth0'), pod('p2', LEDGER, 'eth2', { mode: 'sgp-standard', vlanId: 1 })], cni: sgpCni, sgpMode: 'standard' },
  settings: settingsFor(sgpCni, { ENABLE_POD_ENI: true, POD_SECURITY_GROUP_ENFORCING_MODE: 'standard', ENABLE_IPv6: false }),
  flows: new Flows()
    .tcp('ledger(standard)→internet', 'p2', LEDGER.ip, INET, 8080, go('eth0', NODE_IP, INET, true, 'SCENARIO sgp-standard: eni+ → connmark 0x80 → 1024 → main → eth0; SNAT'))
    .tcp('ledger(standard)→vpc', 'p2', LEDGER.ip, PEER, 8080, go('vlan.eth.1', LEDGER.ip, PEER, false, 'SCENARIO sgp-standard: 1536 → table 101 → vlan.eth.1'))
    .tcp('ledger(standard)→web', 'p2', LEDGER.ip, WEB.ip, 8080, go(web, LEDGER.ip, WEB.ip, false, '512 to web → main → host veth (not through the trunk)'))
    .tcp('web→ledger(standard)', 'p1', WEB.ip, LEDGER.ip, 8080, go(ledgerStd, WEB.ip, LEDGER.ip, false, '512 to ledger → main → its host veth'))
    .udp('ledger(standard)→on-prem udp', 'p2', LEDGER.ip, ONPREM, 8081, go('eth0', NODE_IP, ONPREM, true, 'marked → main → eth0; SNAT'))
    .build(),
}

const ETH0_V6: EniSpec = { ...ETH0, ipv6: { address: '2001:db8:a::3:45', subnet: '2001:db8:a::/64' } }
const dns6 = vethOf(DNS6)
const ipv6: ScenarioSpec = {
  id: 'v6',
  title: 'IPv6 cluster (prefix delegation) with the egress-v4 plugin (v4if0, 169.254.172.0/22, CNI-E4-* chains)',
  covers: ['IPv6 pods to IPv6 (no SNAT)', 'IPv6 pods to IPv4 through the egress plugin (CNI-E4 SNAT to the node IPv4)', 'node-local 169.254.172.0/22 blocked'],
  node: {
    enis: [ETH0_V6], ipv6Cluster: true, cni: null,
    pods: [
      { key: 'p1', namespace: WEB6.namespace, name: WEB6.name, ipv6: WEB6.ip6, eni: 'eth0', v4egress: { ip: WEB6.v4, containerId: WEB6.containerId } },
      { key: 'p2', namespace: DNS6.namespace, name: DNS6.name, ipv6: DNS6.ip6, eni: 'eth0', v4egress: { ip: DNS6.v4, containerId: DNS6.containerId } },
    ],
  },
  settings: (mac) => ({ ...settingsFor(null, { ENABLE_IPv6: true, ENABLE_V4_EGRESS: true, ENABLE_POD_ENI: false })(mac), imds: { 'local-ipv4': NODE_IP, mac, 'vpc-ipv4-cidr-blocks': '10.0.0.0/16', ipv6: '2001:db8:a::3:45', 'vpc-ipv6-cidr-blocks': '2001:db8:a::/56' } }),
  flows: new Flows()
    .tcp('web6→internet6', 'p1', WEB6.ip6, REMOTE.internet6, 8080, go('eth0', WEB6.ip6, REMOTE.internet6, false, '§6.1: no IPv6 NAT rules; global pod address kept'))
    .tcp('web6→vpc6', 'p1', WEB6.ip6, REMOTE.vpcPeer6, 8080, go('eth0', WEB6.ip6, REMOTE.vpcPeer6, false, '§6.1'))
    .icmp('web6→internet6 icmpv6', 'p1', WEB6.ip6, REMOTE.internet6, go('eth0', WEB6.ip6, REMOTE.internet6, false, '§6.1'))
    .tcp('web v4-egress→internet', 'p1', WEB6.v4, INET, 8080, go('eth0', NODE_IP, INET, true, '§6.2: v4if0 → host main → eth0; CNI-E4 chain SNAT to the node IPv4'))
    .udp('web v4-egress→vpc udp', 'p1', WEB6.v4, PEER, 8081, go('eth0', NODE_IP, PEER, true, '§6.2: the egress chain has no VPC exemption'))
    .tcp('dns v4-egress→web v4if0', 'p2', DNS6.v4, WEB6.v4, 8080, dropped('§3b: FORWARD -d 169.254.172.0/22 ctstate NEW REJECT'))
    .tcp('web6→dns6 pod-to-pod', 'p1', WEB6.ip6, DNS6.ip6, 8080, go(dns6, WEB6.ip6, DNS6.ip6, false, '§6.1: 512 to pod → main → host veth'))
    .build(),
}

// ENABLE_V6_EGRESS=true (v1.13.0+) on the v4cur node: the primary ENI also has an IPv6 address, which becomes the
// egress plugin's nodeIP. Each IPv4 pod gets v6if0 with an address of fd00::ac:00/118 (host-local: .1 is the
// gateway, so the first pod gets fd00::ac:2), its IPv6 leaves through the host's main table and its CNI-E6 chain SNATs
// it to the node's IPv6 address, whichever ENI the pod's IPv4 address belongs to.
const WEB_V6 = { ip: 'fd00::ac:2', containerId: '5e0b7c3a9d1f48e2b6a4c8d0e2f4a6b8c0d2e4f6a8b0c2d4e6f8a0b2c4d6e8f0' }
const API_V6 = { ip: 'fd00::ac:3', containerId: 'c4d2a0e8f6b4c2d0e8f6a4b2c0d8e6f4a2b0c8d6e4f2a0b8c6d4e2f0a8b6c4d2' }
const NODE_IP6 = '2001:db8:a::3:45'
const ETH0_V6_EGRESS: EniSpec = { ...ETH0, ipv6: { address: NODE_IP6, subnet: '2001:db8:a::/64' } }
const v6EgressCni = cni()
const E6_WHY = '§6.3: v6if0 → host veth → main IPv6 table (default via fe80::1 dev eth0); POSTROUTING -s <pod ULA>/128 → CNI-E6 chain: SNAT --to-source the node IPv6'
const egressV6: ScenarioSpec = {
  id: 'v4egress6',
  title: 'IPv4 cluster with ENABLE_V6_EGRESS (egress plugin, v6if0 in fd00::ac:00/118, CNI-E6-* ip6tables chains) on the v1.20 node',
  covers: ['IPv4 pods to IPv6 through the egress plugin (CNI-E6 SNAT to the node IPv6, out eth0)', 'a secondary-ENI pod\'s IPv6 still leaves eth0', 'IPv4 of the same pods unchanged (AWS-SNAT-CHAIN-0)', 'node-local fd00::ac:00/118 blocked in FORWARD (dropped flow)'],
  node: {
    enis: [ETH0_V6_EGRESS, ETH1], cni: v6EgressCni,
    pods: [pod('p1', WEB, 'eth0', { v6egress: WEB_V6 }), pod('p2', API, 'eth1', { v6egress: API_V6 })],
  },
  settings: (mac) => {
    const base = settingsFor(v6EgressCni, { ENABLE_IPv6: false, ENABLE_V6_EGRESS: true, ENABLE_POD_ENI: false })(mac)
    return { ...base, imds: { ...base.imds, ipv6: NODE_IP6, 'vpc-ipv6-cidr-blocks': '2001:db8:a::/56' } }
  },
  flows: new Flows()
    .tcp('web v6-egress→internet6', 'p1', WEB_V6.ip, REMOTE.internet6, 8080, go('eth0', NODE_IP6, REMOTE.internet6, true, E6_WHY))
    .udp('web v6-egress→internet6 udp', 'p1', WEB_V6.ip, REMOTE.internet6, 8081, go('eth0', NODE_IP6, REMOTE.internet6, true, E6_WHY))
    .icmp('api(eth1) v6-egress→internet6 icmpv6', 'p2', API_V6.ip, REMOTE.internet6, go('eth0', NODE_IP6, REMOTE.internet6, true, `${E6_WHY}; no IPv6 rule sends it to eth1's table`))
    .tcp('api(eth1) v6-egress→vpc6', 'p2', API_V6.ip, REMOTE.vpcPeer6, 8080, go('eth0', NODE_IP6, REMOTE.vpcPeer6, true, '§6.3: the CNI-E6 chain has no VPC exemption (only ff00::/8 is accepted): SNAT to the node IPv6'))
    .tcp('web→internet', 'p1', WEB.ip, INET, 8080, go('eth0', NODE_IP, INET, true, `${SNAT_WHY}; main table → eth0 (IPv4 unchanged by the egress plugin)`))
    .tcp('api(eth1)→internet', 'p2', API.ip, INET, 8080, go('eth0', NODE_IP, INET, true, '§1: connmark 0x80 → 1024 fwmark → main → eth0; SNAT to the primary IP'))
    .tcp('api(eth1)→vpc', 'p2', API.ip, PEER, 8080, go('eth1', API.ip, PEER, false, '§2.1 RETURN for the VPC CIDR; 1536 → table 2 → eth1'))
    .tcp('host→internet6', 'node', NODE_IP6, REMOTE.internet6, 8080, go('eth0', NODE_IP6, REMOTE.internet6, false, '§6.3: the CNI-E6 jumps match only the pods\' ULAs: the node\'s own IPv6 leaves as it is'))
    .tcp('external→web v6if0 (node-local ULA)', 'vpc', REMOTE.internet6, WEB_V6.ip, 8080, dropped('§6.3: routed to the node, fd00::ac:2 dev veth… → FORWARD -d fd00::ac:0/118 ctstate NEW REJECT ("Block Node Local Pod access via IPv6")'), 'eth0')
    .build(),
}

// kube-proxy (iptables mode, EKS without a local-traffic detector), services in kube-proxy.md §1.4 form.
const LB_CLUSTER = '198.51.100.50'
const LB_LOCAL = '198.51.100.51'
const kubeProxyCni = cni()
const masq = (ep: string, egress: string, from = ''): Outcome => ({ arrivedAt: ep, egressInterface: egress, sourceSeen: NODE_IP, snat: from !== NODE_IP })
const kubeProxy: ScenarioSpec = {
  id: 'v4kp',
  title: 'kube-proxy ClusterIP, NodePort and LoadBalancer with externalTrafficPolicy Cluster and Local, NodePort replies',
  covers: ['kube-proxy ClusterIP', 'NodePort ETP=Cluster (MASQUERADE via 0x4000)', 'NodePort ETP=Local', 'LoadBalancer ETP=Cluster and Local', 'reply of a NodePort connection (connmark 0x80 restore decides its route)', 'host to its own NodePort'],
  node: { enis: [ETH0, ETH1], pods: [pod('p1', WEB, 'eth0'), pod('p2', API, 'eth1')], cni: kubeProxyCni, routedToPrimary: [LB_CLUSTER, LB_LOCAL] },
  extraRules: (p) => {
    addService(p, { name: 'default/web:http', clusterIp: '172.20.0.10', port: 80, targetPort: 8080, endpoints: [{ ip: PEER, local: false }, { ip: WEB.ip, local: true }] })
    addService(p, { name: 'default/api:http', clusterIp: '172.20.0.20', port: 80, targetPort: 8080, nodePort: 30080, externalTrafficPolicy: 'Cluster', endpoints: [{ ip: REMOTE_EP, local: false }, { ip: API.ip, local: true }] })
    addService(p, { name: 'default/api-local:http', clusterIp: '172.20.0.21', port: 80, targetPort: 8080, nodePort: 30081, externalTrafficPolicy: 'Local', endpoints: [{ ip: REMOTE_EP, local: false }, { ip: API.ip, local: true }] })
    addService(p, { name: 'default/web-lb:http', clusterIp: '172.20.0.30', port: 80, targetPort: 8080, nodePort: 30082, loadBalancerIp: LB_CLUSTER, externalTrafficPolicy: 'Cluster', endpoints: [{ ip: REMOTE_EP, local: false }, { ip: WEB.ip, local: true }] })
    addService(p, { name: 'default/web-lb-local:http', clusterIp: '172.20.0.31', port: 80, targetPort: 8080, nodePort: 30083, loadBalancerIp: LB_LOCAL, externalTrafficPolicy: 'Local', endpoints: [{ ip: REMOTE_EP, local: false }, { ip: WEB.ip, local: true }] })
    addKubeProxyForward(p)
  },
  settings: settingsFor(kubeProxyCni),
  flows: new Flows()
    .tcp('api→ClusterIP', 'p2', API.ip, '172.20.0.10', 80, oneOf([
      { arrivedAt: PEER, egressInterface: 'eth1', sourceSeen: API.ip, snat: false },
      { arrivedAt: WEB.ip, egressInterface: web, sourceSeen: API.ip, snat: false },
    ], 'kube-proxy.md §1.8(a): DNAT, no masquerade (no detector on EKS); §1 CIDR tests see the post-DNAT VPC address: no mark, RETURN; remote endpoint via 1536 → eth1'))
    .tcp('host→ClusterIP', 'node', NODE_IP, '172.20.0.10', 80, oneOf([
      { arrivedAt: PEER, egressInterface: 'eth0', sourceSeen: NODE_IP, snat: false },
      { arrivedAt: WEB.ip, egressInterface: web, sourceSeen: NODE_IP, snat: false },
    ], 'kube-proxy.md §1.2 OUTPUT → KUBE-SERVICES; no masquerade rule without a detector; VPC RETURN'))
    .tcp('external→NodePort (Cluster)', 'vpc', INET, NODE_IP, 30080, oneOf([masq(REMOTE_EP, 'eth0'), masq(API.ip, api)],
      'kube-proxy.md §1.7 M3: KUBE-EXT marks 0x4000 → KUBE-POSTROUTING MASQUERADE (to the egress interface\'s address; a host veth has none, the kernel picks the primary IP)'), 'eth0')
    .tcp('external→NodePort (Local)', 'vpc', INET, NODE_IP, 30081, go(api, INET, API.ip, false, 'kube-proxy.md §1.8(c): KUBE-SVL local endpoint, no masquerade; client IP preserved'), 'eth0')
    .reply('reply of NodePort (Local) from api(eth1)', 'external→NodePort (Local)', API.ip, 8080, api, go('eth0', NODE_IP, INET, true,
      '§3: mangle eth0 rule set ct mark 0x80 on the NodePort connection; -i eni+ restore → fwmark 0x80 → 1024 → main → eth0; conntrack restores source 10.0.3.45:30081'))
    .tcp('external→LoadBalancer (Cluster)', 'vpc', INET, LB_CLUSTER, 80, oneOf([masq(REMOTE_EP, 'eth0'), masq(WEB.ip, web)], 'kube-proxy.md §1.7 M3'), 'eth0')
    .tcp('external→LoadBalancer (Local)', 'vpc', INET, LB_LOCAL, 80, go(web, INET, WEB.ip, false, 'kube-proxy.md §1.8(c)'), 'eth0')
    .tcp('web→NodePort (Cluster)', 'p1', WEB.ip, NODE_IP, 30080, oneOf([masq(REMOTE_EP, 'eth0'), masq(API.ip, api)], 'kube-proxy.md §1.7: pod → NodePort with ETP=Cluster is masqueraded'))
    .tcp('vpc→api pod IP directly', 'vpc', PEER, API.ip, 8080, go(api, PEER, API.ip, false, 'no NAT: 512 to pod → main → host veth'), 'eth1')
    .reply('reply of direct connection from api(eth1)', 'vpc→api pod IP directly', API.ip, 8080, api, go('eth1', API.ip, PEER, false,
      '§3: the connection did not enter on eth0 for a local address: no ct mark → 1536 → table 2 → eth1'))
    .tcp('host→own NodePort (Local)', 'node', NODE_IP, NODE_IP, 30081, oneOf([masq(REMOTE_EP, 'eth0', NODE_IP), masq(API.ip, api, NODE_IP)],
      'kube-proxy.md §1.7 M4: --src-type LOCAL → masquerade LOCAL traffic, route to KUBE-SVC (all endpoints); MASQUERADE to the node\'s own address keeps the address (new port)'))
    .build(),
}

// kube-proxy in nftables mode (kube-proxy.md §2, newest generation) next to a v1.20–v1.22 VPC CNI in iptables-legacy: the
// same services as v4kp, a two-port ClusterIP (TCP and UDP), one with no endpoints. No local-traffic detector (EKS
// gives kube-proxy no cluster CIDR), `--nodeport-addresses primary` (nftables mode's default).
// Ordering: kube-proxy's nat-prerouting (dstnat, -100) and the CNI's iptables nat PREROUTING (-100) share a priority.
// The kernel inserts a newly registered hook ahead of the ones of equal priority (net/netfilter/core.c
// nf_hook_entries_grow), and nf_nat stops at the first nat chain that binds: kube-proxy's chains, registered after
// the iptables nat table (kubelet instantiates it before any pod runs; kube-proxy recreates its base chains when it
// starts), DNAT first, and AWS-CONNMARK-CHAIN-0 never sees a service connection (vpc-cni.md §1: it would otherwise
// see the ClusterIP, off-VPC, and mark it 0x80 — aws/amazon-vpc-cni-k8s#3563, the race #3588 fixed in v1.23).
const kubeProxyNftCni = cni()
const KP_NFT_ORDER = 'kube-proxy\'s nat-prerouting (dstnat) was registered after the iptables nat table: same priority, it runs first and its DNAT binds, so the CNI\'s nat PREROUTING (AWS-CONNMARK-CHAIN-0) is skipped'
const kubeProxyNftables: ScenarioSpec = {
  id: 'v4kpnft',
  title: 'kube-proxy in nftables mode (table ip kube-proxy: service-ips/service-nodeports maps, numgen endpoint choice) beside the iptables VPC CNI',
  covers: ['kube-proxy nftables mode: ClusterIP (TCP, UDP), NodePort and LoadBalancer, ETP Cluster/Local', 'service-ips / service-nodeports verdict maps, nodeport-ips and cluster-ips sets', 'numgen random mod 2 endpoint choice', 'masquerading chain (mark 0x4000, masquerade fully-random)', 'no-endpoint, invalid-port and unallocated ClusterIPs rejected or dropped in filter-forward', 'nft and iptables nat chains at the same priority (registration order)', 'reply of a NodePort connection'],
  node: { enis: [ETH0, ETH1], pods: [pod('p1', WEB, 'eth0'), pod('p2', API, 'eth1')], cni: kubeProxyNftCni, routedToPrimary: [LB_CLUSTER, LB_LOCAL] },
  kubeProxyNft: {
    serviceCidr: '172.20.0.0/16',
    nodePortIps: [NODE_IP],
    services: [
      { name: 'default/web:http', clusterIp: '172.20.0.10', port: 80, targetPort: 8080, endpoints: [{ ip: PEER, local: false }, { ip: WEB.ip, local: true }] },
      { name: 'default/web:dns', protocol: 'udp', clusterIp: '172.20.0.10', port: 53, targetPort: 8081, endpoints: [{ ip: PEER, local: false }, { ip: WEB.ip, local: true }] },
      { name: 'default/api:http', clusterIp: '172.20.0.20', port: 80, targetPort: 8080, nodePort: 30080, externalTrafficPolicy: 'Cluster', endpoints: [{ ip: REMOTE_EP, local: false }, { ip: API.ip, local: true }] },
      { name: 'default/api-local:http', clusterIp: '172.20.0.21', port: 80, targetPort: 8080, nodePort: 30081, externalTrafficPolicy: 'Local', endpoints: [{ ip: REMOTE_EP, local: false }, { ip: API.ip, local: true }] },
      { name: 'default/web-lb:http', clusterIp: '172.20.0.30', port: 80, targetPort: 8080, nodePort: 30082, loadBalancerIp: LB_CLUSTER, externalTrafficPolicy: 'Cluster', endpoints: [{ ip: REMOTE_EP, local: false }, { ip: WEB.ip, local: true }] },
      { name: 'default/web-lb-local:http', clusterIp: '172.20.0.31', port: 80, targetPort: 8080, nodePort: 30083, loadBalancerIp: LB_LOCAL, externalTrafficPolicy: 'Local', endpoints: [{ ip: REMOTE_EP, local: false }, { ip: WEB.ip, local: true }] },
      { name: 'default/empty:http', clusterIp: '172.20.0.40', port: 80, targetPort: 8080, endpoints: [] },
    ],
  },
  settings: settingsFor(kubeProxyNftCni),
  flows: new Flows()
    .tcp('api→ClusterIP', 'p2', API.ip, '172.20.0.10', 80, oneOf([
      { arrivedAt: PEER, egressInterface: 'eth1', sourceSeen: API.ip, snat: false },
      { arrivedAt: WEB.ip, egressInterface: web, sourceSeen: API.ip, snat: false },
    ], `kube-proxy.md §2.4: services → @service-ips → service chain → numgen → endpoint chain dnat; no masquerade rule without a detector (§1.6). ${KP_NFT_ORDER}: no 0x80 mark → 1536 → table 2 → eth1 for the VPC endpoint; §2.1 VPC RETURN`))
    .udp('api→ClusterIP udp', 'p2', API.ip, '172.20.0.10', 53, oneOf([
      { arrivedAt: PEER, egressInterface: 'eth1', sourceSeen: API.ip, snat: false },
      { arrivedAt: WEB.ip, egressInterface: web, sourceSeen: API.ip, snat: false },
    ], `kube-proxy.md §2.4: the udp . 53 element of @service-ips; ${KP_NFT_ORDER}; 1536 → eth1 for the VPC endpoint`))
    .tcp('host→ClusterIP', 'node', NODE_IP, '172.20.0.10', 80, oneOf([
      { arrivedAt: PEER, egressInterface: 'eth0', sourceSeen: NODE_IP, snat: false },
      { arrivedAt: WEB.ip, egressInterface: web, sourceSeen: NODE_IP, snat: false },
    ], 'kube-proxy.md §2.2 nat-output → services → DNAT; no masquerade rule without a detector (§1.6); §2.1 VPC RETURN'))
    .tcp('external→NodePort (Cluster)', 'vpc', INET, NODE_IP, 30080, oneOf([masq(REMOTE_EP, 'eth0'), masq(API.ip, api)],
      'kube-proxy.md §2.4: ip daddr @nodeport-ips → @service-nodeports → external chain (ETP Cluster) jump mark-for-masquerade (0x4000) → masquerading: masquerade fully-random to the egress interface\'s address (a host veth has none: the primary IP)'), 'eth0')
    .tcp('external→NodePort (Local)', 'vpc', INET, NODE_IP, 30081, go(api, INET, API.ip, false, 'kube-proxy.md §2.4 external chain (ETP Local): fib saddr type local does not match → goto local chain (the local endpoint only), no masquerade; client IP preserved'), 'eth0')
    .reply('reply of NodePort (Local) from api(eth1)', 'external→NodePort (Local)', API.ip, 8080, api, go('eth0', NODE_IP, INET, true,
      '§3: mangle eth0 rule set ct mark 0x80 on the NodePort connection (mangle, -150, before any DNAT); -i eni+ restore → fwmark 0x80 → 1024 → main → eth0; conntrack restores source 10.0.3.45:30081'))
    .tcp('external→LoadBalancer (Cluster)', 'vpc', INET, LB_CLUSTER, 80, oneOf([masq(REMOTE_EP, 'eth0'), masq(WEB.ip, web)], 'kube-proxy.md §2.3: the LB IP\'s @service-ips element → external chain → mark-for-masquerade → masquerading'), 'eth0')
    .tcp('external→LoadBalancer (Local)', 'vpc', INET, LB_LOCAL, 80, go(web, INET, WEB.ip, false, 'kube-proxy.md §2.4 ETP Local: local chain, no masquerade'), 'eth0')
    .tcp('web→NodePort (Cluster)', 'p1', WEB.ip, NODE_IP, 30080, oneOf([masq(REMOTE_EP, 'eth0'), masq(API.ip, api)], 'kube-proxy.md §1.7 M3 (same in nft, §2.4): every packet to an ETP Cluster NodePort is masqueraded'))
    .tcp('host→own NodePort (Local)', 'node', NODE_IP, NODE_IP, 30081, oneOf([masq(REMOTE_EP, 'eth0', NODE_IP), masq(API.ip, api, NODE_IP)],
      'kube-proxy.md §2.4 ETP Local: fib saddr type local → mark-for-masquerade, goto the service chain (all endpoints); masquerade to the node\'s own address keeps the address (new port)'))
    .tcp('api→ClusterIP without endpoints', 'p2', API.ip, '172.20.0.40', 80, dropped('kube-proxy.md §2.3: no nat chain; filter-forward ct state new → service-endpoints-check → @no-endpoint-services → goto reject-chain: reject'))
    .tcp('api→ClusterIP invalid port', 'p2', API.ip, '172.20.0.10', 8080, dropped('kube-proxy.md §2.2: no @service-ips element, no DNAT; filter-forward → cluster-ips-check: ip daddr @cluster-ips reject'))
    .udp('api→unallocated ClusterIP udp', 'p2', API.ip, '172.20.0.99', 53, dropped('kube-proxy.md §2.2: cluster-ips-check: not in @cluster-ips, ip daddr 172.20.0.0/16 drop'))
    .build(),
}

const otherCni = cni()
const ETH0_SECONDARY: EniSpec = { ...ETH0, secondaryIps: ['10.0.3.46'] }
const others: ScenarioSpec = {
  id: 'v4other',
  title: 'another CNI\'s chain (Calico-like MASQUERADE) and hand-written rules ahead of the VPC CNI\'s',
  covers: ['other CNIs\' chains (Calico-like)', 'a hand-written rule that shadows the CNI\'s'],
  node: { enis: [ETH0_SECONDARY, ETH1], pods: [pod('p1', WEB, 'eth0'), pod('p2', API, 'eth1')], cni: otherCni },
  extraRules: (p) => {
    addCalicoLike(p, '10.0.7.0/24')
    p.nat.insert('POSTROUTING', `-s ${API.ip}/32 -d 203.0.113.0/24 -m comment --comment "ops: keep the api source for the partner allow-list" -j ACCEPT`)
    p.nat.insert('POSTROUTING', `-s ${API.ip}/32 -d 198.51.100.0/24 -j SNAT --to-source 10.0.3.46`)
  },
  settings: settingsFor(otherCni),
  flows: new Flows()
    .tcp('web→vpc (Calico-like MASQUERADE)', 'p1', WEB.ip, PEER, 8080, go('eth0', NODE_IP, PEER, true, 'cali-nat-outgoing MASQUERADE runs before AWS-SNAT-CHAIN-0 (its RETURN never reached); eth0 primary address'))
    .tcp('web→internet (Calico-like MASQUERADE)', 'p1', WEB.ip, INET, 8080, go('eth0', NODE_IP, INET, true, 'MASQUERADE (not the AWS SNAT rule)'))
    .tcp('api→internet shadowed by ACCEPT', 'p2', API.ip, INET, 8080, go('eth0', API.ip, INET, false, 'a nat POSTROUTING ACCEPT ends the nat walk: the AWS SNAT chain is never reached; still marked → eth0'))
    .tcp('api→198.51.100.10 hand-written SNAT', 'p2', API.ip, INET2, 8080, go('eth0', '10.0.3.46', INET2, true, 'the hand-written SNAT to the secondary IP wins'))
    .tcp('api(eth1)→vpc', 'p2', API.ip, PEER, 8080, go('eth1', API.ip, PEER, false, 'no hand-written rule matches: VPC RETURN; 1536 → eth1'))
    .build(),
}

// Another agent's native nft NAT (not the VPC CNI's, not kube-proxy's). nf_nat runs the postrouting nat chains in
// priority order until one sets up a binding: the foreign chain at srcnat - 10 binds first, so the AWS SNAT chain
// (iptables nat, srcnat) is not consulted for the flows it matches. The EKS log collector does not run
// `nft list ruleset`, so a bundle without it cannot explain what the capture shows: analyze's foreign-NAT case.
const FOREIGN_NFT = `table ip foreign-agent {
	chain postrouting {
		type nat hook postrouting priority srcnat - 10; policy accept;
		ip saddr ${WEB.ip} ip daddr 198.51.100.0/24 counter snat to 10.0.3.46
	}
}
`
const foreign: ScenarioSpec = {
  id: 'v4foreign',
  title: 'a foreign agent\'s native nft NAT chain ahead of the VPC CNI\'s SNAT',
  covers: ['another component rewrote the packet (native nft table)', 'nat chains of one hook: the first binding wins'],
  node: { enis: [ETH0_SECONDARY, ETH1], pods: [pod('p1', WEB, 'eth0'), pod('p2', API, 'eth1')], cni: cni() },
  extraNft: FOREIGN_NFT,
  settings: settingsFor(cni()),
  flows: new Flows()
    .tcp('web→198.51.100.10 foreign nft SNAT', 'p1', WEB.ip, INET2, 8080, go('eth0', '10.0.3.46', INET2, true, 'the foreign nft chain (srcnat - 10) binds first; AWS-SNAT-CHAIN-0 is skipped'))
    .tcp('web→internet', 'p1', WEB.ip, INET, 8080, go('eth0', NODE_IP, INET, true, `the foreign rule does not match; ${SNAT_WHY}`))
    .tcp('api(eth1)→198.51.100.10', 'p2', API.ip, INET2, 8080, go('eth0', NODE_IP, INET2, true, 'the foreign rule matches only web; connmark → main → eth0; AWS SNAT'))
    .tcp('web→vpc', 'p1', WEB.ip, PEER, 8080, go('eth0', WEB.ip, PEER, false, '§2.1 RETURN for the VPC CIDR'))
    .build(),
}

// Cilium chained on the VPC CNI (cni.chainingMode=aws-cni, cni.exclusive=false, routingMode=native,
// endpointRoutes.enabled=true, kube-proxy kept): the VPC CNI owns addresses, routes and SNAT; Cilium adds its CILIUM_*
// chains with feeders at the top of the built-in chains (rules.ts addCiliumChaining has the sources of every line).
const ciliumCni = cni()
const CILIUM_PASSES = 'CILIUM_POST_nat is empty with enable-ipv4-masquerade=false: the feeder returns, AWS-SNAT-CHAIN-0 decides'
const ciliumChained: ScenarioSpec = {
  id: 'v4cilium',
  title: 'Cilium in aws-cni chaining mode, masquerading off (the usual EKS setup): CILIUM_* chains ahead of the VPC CNI\'s',
  covers: ['other CNIs\' chains (Cilium in chaining mode)', 'Cilium feeders first in every built-in chain, passing traffic on', 'Cilium\'s host mark 0xc00/0xf00 leaves the VPC CNI\'s 0x80 alone'],
  node: { enis: [ETH0, ETH1], pods: [pod('p1', WEB, 'eth0'), pod('p2', API, 'eth1')], cni: ciliumCni },
  extraRules: (p) => addCiliumChaining(p),
  settings: settingsFor(ciliumCni),
  flows: new Flows()
    .tcp('web→internet', 'p1', WEB.ip, INET, 8080, go('eth0', NODE_IP, INET, true, `${CILIUM_PASSES}; ${SNAT_WHY}`))
    .tcp('web→vpc', 'p1', WEB.ip, PEER, 8080, go('eth0', WEB.ip, PEER, false, `${CILIUM_PASSES}; §2.1 RETURN for the VPC CIDR`))
    .tcp('api(eth1)→internet', 'p2', API.ip, INET, 8080, go('eth0', NODE_IP, INET, true, '§1: CILIUM_PRE_mangle sets no mark on this packet (no transparent socket, no proxy mark); connmark 0x80 → 1024 → main → eth0; AWS SNAT'))
    .tcp('api(eth1)→vpc', 'p2', API.ip, PEER, 8080, go('eth1', API.ip, PEER, false, '§1: no mark → 1536 → table 2 → eth1; RETURN'))
    .udp('web→internet udp', 'p1', WEB.ip, INET, 8081, go('eth0', NODE_IP, INET, true, SNAT_WHY))
    .icmp('api(eth1)→internet icmp', 'p2', API.ip, INET, go('eth0', NODE_IP, INET, true, '§1 connmark → main → eth0; AWS SNAT'))
    .tcp('host→internet', 'node', NODE_IP, INET, 8080, go('eth0', NODE_IP, INET, false, 'CILIUM_OUTPUT marks 0xc00/0xf00 (filter OUTPUT: no reroute); the AWS SNAT rule rewrites to the node\'s own address (only the port changes)'))
    .tcp('host(eth1 IP)→internet', 'node', ETH1.ip, INET, 8080, go('eth1', NODE_IP, INET, true, '§4.1 32765 from the ENI IP → table 2 → eth1; CILIUM_POST_nat empty; AWS SNAT to the primary IP'))
    .tcp('web→api pod-to-pod', 'p1', WEB.ip, API.ip, 8080, go(api, WEB.ip, API.ip, false, '§4.3 512 to pod → main → host veth; CILIUM_FORWARD -o eni+ ACCEPT; VPC RETURN'))
    .build(),
}

// The same node with Cilium's iptables masquerading on (enable-ipv4-masquerade=true, enable-bpf-masquerade=false,
// ipv4-native-routing-cidr = the VPC CIDR, egress-masquerade-interfaces=eth0). Its feeder is the first rule of nat
// POSTROUTING, so its MASQUERADE binds before AWS-SNAT-CHAIN-0 is reached for off-VPC traffic leaving eth0 (the port
// is kept: no --random-fully, where the AWS rule's prng would rewrite it); traffic leaving another ENI is still the
// VPC CNI's.
const ciliumMasqCni = cni()
const CILIUM_MASQ = 'CILIUM_POST_nat (first in POSTROUTING): ! -d 10.0.0.0/16 -o eth0 → "cilium masquerade non-cluster" MASQUERADE to eth0\'s primary address; AWS-SNAT-CHAIN-0 never reached'
const ciliumMasq: ScenarioSpec = {
  id: 'v4ciliummasq',
  title: 'Cilium in aws-cni chaining mode with iptables masquerading on (native-routing CIDR = VPC CIDR, egress interface eth0)',
  covers: ['other CNIs\' chains (Cilium in chaining mode)', 'Cilium\'s MASQUERADE decides ahead of the VPC CNI\'s SNAT', 'traffic leaving a secondary ENI is still SNATed by the VPC CNI'],
  node: { enis: [ETH0, ETH1], pods: [pod('p1', WEB, 'eth0'), pod('p2', API, 'eth1')], cni: ciliumMasqCni },
  extraRules: (p) => addCiliumChaining(p, { masquerade: { nativeRoutingCidr: '10.0.0.0/16', egressInterface: 'eth0', hostMasqueradeIp: NODE_IP } }),
  settings: settingsFor(ciliumMasqCni),
  flows: new Flows()
    .tcp('web→internet (Cilium MASQUERADE)', 'p1', WEB.ip, INET, 8080, go('eth0', NODE_IP, INET, true, CILIUM_MASQ))
    .tcp('web→vpc', 'p1', WEB.ip, PEER, 8080, go('eth0', WEB.ip, PEER, false, 'the native-routing CIDR is excluded (! -d 10.0.0.0/16): CILIUM_POST_nat returns; §2.1 RETURN'))
    .tcp('api(eth1)→internet (Cilium MASQUERADE)', 'p2', API.ip, INET, 8080, go('eth0', NODE_IP, INET, true, `§1 connmark → main → eth0; ${CILIUM_MASQ}`))
    .tcp('api(eth1)→vpc', 'p2', API.ip, PEER, 8080, go('eth1', API.ip, PEER, false, '1536 → table 2 → eth1; no Cilium rule matches (VPC, not eth0); RETURN'))
    .udp('api(eth1)→on-prem udp (Cilium MASQUERADE)', 'p2', API.ip, ONPREM, 8081, go('eth0', NODE_IP, ONPREM, true, `192.168.50.10 is off-VPC: marked → eth0; ${CILIUM_MASQ}`))
    .icmp('web→internet icmp (Cilium MASQUERADE)', 'p1', WEB.ip, INET, go('eth0', NODE_IP, INET, true, CILIUM_MASQ))
    .tcp('host→internet (Cilium MASQUERADE)', 'node', NODE_IP, INET, 8080, go('eth0', NODE_IP, INET, false, `the MASQUERADE rule has no source match: ${CILIUM_MASQ}, which is the address the packet already has`))
    .tcp('host(eth1 IP)→internet (AWS SNAT)', 'node', ETH1.ip, INET, 8080, go('eth1', NODE_IP, INET, true, '§4.1 32765 → table 2 → eth1: -o eth0 does not match, so CILIUM_POST_nat returns and the AWS SNAT rule rewrites to the primary IP'))
    .tcp('web→api pod-to-pod', 'p1', WEB.ip, API.ip, 8080, go(api, WEB.ip, API.ip, false, '512 to pod → main → host veth: -o eni… is not eth0, and the 127.0.0.1 rule does not match; VPC RETURN'))
    .build(),
}

export const SCENARIOS: readonly ScenarioSpec[] = [current, noMark, externalSnat, custom, bare, numbered, nftEra, sgpStrict, sgpStandard, ipv6, egressV6, kubeProxy, kubeProxyNftables, others, foreign, ciliumChained, ciliumMasq]

/** The only namespace names the lab ever creates or deletes. */
export const OWNED_NAMESPACES = new RegExp(`^nl-(${SCENARIOS.map((s) => s.id).join('|')})-(node|vpc|p\\d+)$`)
