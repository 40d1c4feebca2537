// Builds a VPC-CNI-like node for real in network namespaces:
//   nl-<s>-node  the worker node: ENIs eth0/eth1/eth2 (veths), pod host veths (eni<hash>/vlan<hash>), vlan.eth.N, v4 egress veths
//   nl-<s>-vpc   the VPC around it: the subnet router (10.0.0.1 on every ENI leg) and every remote host as a local address
//   nl-<s>-p<i>  one namespace per pod, set up as the CNI plugin does (driver.go)
// Addresses are the VPC-like ones of ../shared/examples (private ranges only inside the namespaces; "internet" hosts
// in TEST-NET / 2001:db8::/32). Nothing is routed out of the namespaces: the VPC namespace owns every destination.
import { egressV4Chain, egressV6Chain, egressVethName, eui64LinkLocal, hostVethName, labMac } from './names.js'
import { ipBatch, inNs, type LabRun } from './kernel.js'
import type { CniRuleConfig } from './rules.js'

export interface EniSpec {
  /** eth0 (primary), eth1, eth2 … */
  readonly name: string
  readonly ip: string
  readonly prefixLen: number
  readonly gateway: string
  readonly deviceNumber: number
  readonly primary: boolean
  /** SGP trunk ENI: its table exists but it gets no `32765: from <ip>` rule (vpc-cni.md §4.2). */
  readonly trunk?: boolean
  readonly secondaryIps?: readonly string[]
  /** The node's global IPv6 address on the primary ENI (a /128, the subnet route learned from RA): an IPv6 cluster,
   * or an IPv4 cluster whose egress plugin SNATs IPv6 to it (ENABLE_V6_EGRESS). */
  readonly ipv6?: { readonly address: string; readonly subnet: string }
}

export interface PodSpec {
  /** p1, p2 … (namespace nl-<s>-<key>) */
  readonly key: string
  readonly namespace: string
  readonly name: string
  readonly ip?: string
  readonly ipv6?: string
  /** The ENI the pod's IP belongs to (its from-rule table), or the trunk for branch pods. */
  readonly eni: string
  readonly mode?: 'regular' | 'sgp-strict' | 'sgp-standard'
  readonly vlanId?: number
  /** IPv6 cluster: the egress plugin's IPv4 leg (v4if0, 169.254.172.X). */
  readonly v4egress?: { readonly ip: string; readonly containerId: string }
  /** IPv4 cluster with ENABLE_V6_EGRESS: the egress plugin's IPv6 leg (v6if0, an address of fd00::ac:00/118). */
  readonly v6egress?: { readonly ip: string; readonly containerId: string }
}

export interface NodeSpec {
  readonly enis: readonly EniSpec[]
  readonly pods: readonly PodSpec[]
  /** IPv4 VPC CNI rules; null in an IPv6 cluster (no AWS-* chains, vpc-cni.md §6.1). */
  readonly cni: CniRuleConfig | null
  readonly ipv6Cluster?: boolean
  /** SGP enforcing mode; strict moves the local rule to priority 20 (vpc-cni.md §4.1, §5). */
  readonly sgpMode?: 'strict' | 'standard'
  /** Addresses the VPC routes to the primary ENI although the node does not own them (LoadBalancer VIPs). */
  readonly routedToPrimary?: readonly string[]
}

/** Every remote host lives in the VPC namespace as a local address. */
export const REMOTE = {
  vpcPeer: '10.0.20.15',
  remoteEndpoint: '10.0.40.7',
  secondaryCidrPeer: '100.64.9.9',
  internet: '203.0.113.10',
  internet2: '198.51.100.10',
  onPrem: '192.168.50.10',
  vpcPeer6: '2001:db8:a:14::15',
  internet6: '2001:db8:ffff::10',
} as const

export const NODE_IP = '10.0.3.45'

export interface BuiltPod {
  readonly spec: PodSpec
  readonly ns: string
  readonly hostVeth: string
  readonly hostMac: string
  readonly egressVeth?: string
  readonly egressChain?: string
}

export interface BuiltNode {
  readonly scenario: string
  readonly nodeNs: string
  readonly vpcNs: string
  readonly pods: readonly BuiltPod[]
  readonly enis: readonly (EniSpec & { readonly mac: string; readonly table: string; readonly leg: string })[]
  readonly branches: readonly { readonly vlanId: number; readonly name: string; readonly table: number; readonly gateway: string; readonly mac: string; readonly leg: string }[]
  readonly sysctls: Record<string, string>
}

const tableOf = (e: EniSpec) => (e.primary ? 'main' : String(e.deviceNumber + 1))

function networkOf(ip: string, prefixLen: number): string {
  const n = ip.split('.').reduce((a, o) => (a << 8n) | BigInt(Number(o)), 0n)
  const mask = ((1n << 32n) - 1n) ^ ((1n << BigInt(32 - prefixLen)) - 1n)
  const v = n & mask
  return `${[24n, 16n, 8n, 0n].map((s) => String((v >> s) & 255n)).join('.')}/${prefixLen}`
}

export function nsName(scenario: string, role: string): string {
  return `nl-${scenario}-${role}`
}

export function describePods(scenario: string, node: NodeSpec): BuiltPod[] {
  return node.pods.map((p) => {
    const prefix = p.mode === 'sgp-strict' ? 'vlan' : 'eni'
    const hostVeth = hostVethName(prefix, p.namespace, p.name)
    return {
      spec: p,
      ns: nsName(scenario, p.key),
      hostVeth,
      hostMac: labMac(`${scenario}/${hostVeth}`),
      ...(p.v4egress ? { egressVeth: egressVethName(`${scenario}/${p.namespace}/${p.name}`), egressChain: egressV4Chain(p.v4egress.containerId) } : {}),
      ...(p.v6egress ? { egressVeth: egressVethName(`${scenario}/${p.namespace}/${p.name}`), egressChain: egressV6Chain(p.v6egress.containerId) } : {}),
    }
  })
}

/** Creates the namespaces, links, addresses, routes, rules and sysctls of a scenario's node. */
export async function buildNode(lab: LabRun, scenario: string, node: NodeSpec): Promise<BuiltNode> {
  const nodeNs = nsName(scenario, 'node')
  const vpcNs = nsName(scenario, 'vpc')
  const pods = describePods(scenario, node)
  // IPv6 on the node: an IPv6 cluster, or an IPv4 cluster with the egress plugin's IPv6 leg (vpc-cni.md §6.3).
  const v6Egress = node.pods.some((p) => p.v6egress)
  const enis = node.enis.map((e) => ({ ...e, mac: labMac(`${scenario}/${e.name}`), table: tableOf(e), leg: `leg${e.deviceNumber}` }))
  const vlanIds = [...new Set(pods.map((p) => p.spec.vlanId).filter((v): v is number => v !== undefined))]
  const trunk = enis.find((e) => e.trunk)
  const branches = vlanIds.map((id) => ({ vlanId: id, name: `vlan.eth.${id}`, table: 100 + id, gateway: trunk?.gateway ?? '10.0.0.1', mac: labMac(`${scenario}/vlan.eth.${id}`), leg: `b${id}` }))

  for (const ns of [nodeNs, vpcNs, ...pods.map((p) => p.ns)]) await lab.createNamespace(ns)

  // Sysctls before links, so every interface created afterwards inherits the defaults. rp_filter: AL2 keeps 1 on
  // interfaces, aws-vpc-cni-init sets 2 on the primary ENI (vpc-cni.md §4.3). DAD off: addresses are usable at once.
  const sysctls: Record<string, string> = {
    'net.ipv4.ip_forward': '1',
    'net.ipv4.conf.all.rp_filter': '1',
    'net.ipv4.conf.default.rp_filter': '1',
    'net.ipv6.conf.all.accept_dad': '0',
    'net.ipv6.conf.default.accept_dad': '0',
    ...(node.ipv6Cluster || v6Egress ? { 'net.ipv6.conf.all.forwarding': '1' } : {}),
  }
  await setSysctls(nodeNs, sysctls)
  // The VPC router answers ARP for every address of the subnet (proxy_arp, which needs forwarding) and forwards
  // between ENIs, as the VPC delivers a node's packet for another ENI's address; it never sends redirects.
  await setSysctls(vpcNs, {
    'net.ipv4.ip_forward': '1', 'net.ipv4.conf.all.proxy_arp': '1', 'net.ipv4.conf.default.proxy_arp': '1',
    'net.ipv4.conf.all.send_redirects': '0', 'net.ipv4.conf.default.send_redirects': '0',
    'net.ipv4.conf.all.rp_filter': '0', 'net.ipv4.conf.default.rp_filter': '0', 'net.ipv6.conf.all.accept_dad': '0', 'net.ipv6.conf.default.accept_dad': '0',
  })
  for (const p of pods) await setSysctls(p.ns, { 'net.ipv6.conf.all.accept_dad': '0', 'net.ipv6.conf.default.accept_dad': '0' })

  // Links: every veth is created with both ends already in lab namespaces (the host namespace is never touched).
  const links: string[] = []
  for (const e of enis) links.push(`link add ${e.name} address ${e.mac} mtu 9001 type veth peer name ${e.leg} address ${labMac(`${scenario}/${e.leg}`)} mtu 9001 netns ${vpcNs}`)
  // No 8021q in the lab kernel: vlan.eth.N is a veth to the VPC namespace with the branch ENI's MAC. Routing and
  // netfilter only look at its name, so `-o vlan+`, `iif vlan.eth.N` and table 100+N behave as on a trunk.
  for (const b of branches) links.push(`link add ${b.name} address ${b.mac} mtu 9001 type veth peer name ${b.leg} address ${labMac(`${scenario}/${b.leg}`)} mtu 9001 netns ${vpcNs}`)
  for (const p of pods) {
    links.push(`link add ${p.hostVeth} address ${p.hostMac} mtu 9001 type veth peer name eth0 address ${labMac(`${scenario}/${p.ns}/eth0`)} mtu 9001 netns ${p.ns}`)
    const egressIf = p.spec.v6egress ? 'v6if0' : 'v4if0'
    if (p.egressVeth) links.push(`link add ${p.egressVeth} address ${egressMac(scenario, p)} mtu 9001 type veth peer name ${egressIf} address ${labMac(`${scenario}/${p.ns}/${egressIf}`)} mtu 9001 netns ${p.ns}`)
  }
  for (const e of enis) links.push(`link set ${e.name} up`)
  for (const b of branches) links.push(`link set ${b.name} up`)
  for (const p of pods) { links.push(`link set ${p.hostVeth} up`); if (p.egressVeth) links.push(`link set ${p.egressVeth} up`) }
  await ipBatch(nodeNs, links)
  const primary = enis.find((e) => e.primary)
  if (!primary) throw new Error(`lab: scenario ${scenario} has no primary ENI`)
  const primaryRp = `net.ipv4.conf.${primary.name}.rp_filter`
  sysctls[primaryRp] = '2'
  await setSysctls(nodeNs, { [primaryRp]: '2' })

  // Node addresses, per-ENI tables (vpc-cni.md §4.2) and pod routes (§4.3).
  const v1220 = node.cni === null || node.cni.era === 'v1.20' || node.cni.era === 'v1.23-nft'
  const cmds: string[] = []
  const rules: string[] = []
  for (const e of enis) {
    cmds.push(`addr add ${e.ip}/${e.prefixLen} dev ${e.name}`)
    for (const s of e.secondaryIps ?? []) cmds.push(`addr add ${s}/${e.prefixLen} dev ${e.name}`)
    if (e.primary) {
      cmds.push(`route add default via ${e.gateway} dev ${e.name}`)
      continue
    }
    // The secondary ENI's connected route is deleted from main; its table holds exactly two routes.
    cmds.push(`route del ${networkOf(e.ip, e.prefixLen)} dev ${e.name} table main`)
    cmds.push(`route add ${e.gateway} dev ${e.name} scope link table ${e.table}`)
    cmds.push(`route add default via ${e.gateway} dev ${e.name} table ${e.table}`)
    if (v1220 && !e.trunk) rules.push(`rule add pref 32765 from ${e.ip} lookup ${e.table}`)
  }
  for (const b of branches) {
    cmds.push(`route add ${b.gateway} dev ${b.name} scope link table ${b.table}`)
    cmds.push(`route add default via ${b.gateway} dev ${b.name} table ${b.table}`)
  }
  const globalRules: string[] = []
  if (node.sgpMode === 'strict') globalRules.push('rule add pref 20 lookup local', 'rule del pref 0 lookup local')
  if (node.cni?.era === 'v1.2') globalRules.push(`rule add pref 1024 not to ${node.cni.vpcCidrs[0]} lookup main`)
  if (!node.ipv6Cluster) globalRules.push('rule add pref 1024 fwmark 0x80/0x80 lookup main')
  const podRules: string[] = []
  for (const p of pods) {
    const s = p.spec
    const eni = enis.find((e) => e.name === s.eni)
    if (s.ip) {
      if (s.mode === 'sgp-strict') {
        const b = branches.find((x) => x.vlanId === s.vlanId)!
        cmds.push(`route add ${s.ip} dev ${p.hostVeth} scope link table ${b.table}`)
        podRules.push(`rule add pref 10 iif ${b.name} lookup ${b.table}`, `rule add pref 10 iif ${p.hostVeth} lookup ${b.table}`)
      } else {
        cmds.push(`route add ${s.ip} dev ${p.hostVeth} scope link`)
        podRules.push(`rule add pref 512 to ${s.ip} lookup main`)
        if (s.mode === 'sgp-standard') podRules.push(`rule add pref 1536 from ${s.ip} lookup ${100 + (s.vlanId ?? 0)}`)
        else if (eni && !eni.primary) podRules.push(`rule add pref 1536 from ${s.ip} lookup ${eni.table}`)
      }
    }
    if (p.egressVeth && s.v4egress) {
      // Egress plugin host side (vpc-cni.md §6.2): every egress veth holds 169.254.172.1/32.
      cmds.push(`addr add 169.254.172.1/32 dev ${p.egressVeth} scope link`)
      cmds.push(`route add ${s.v4egress.ip} dev ${p.egressVeth} scope link`)
    }
  }
  await ipBatch(nodeNs, [...cmds, ...globalRules, ...rules, ...podRules])

  if (node.ipv6Cluster || v6Egress) {
    const v6: string[] = []
    if (primary.ipv6) {
      v6.push(`addr add ${primary.ipv6.address}/128 dev ${primary.name} nodad`)
      v6.push(`route add ${primary.ipv6.subnet} dev ${primary.name} proto ra metric 1024`)
      v6.push(`route add default via fe80::1 dev ${primary.name} proto ra metric 1024`)
    }
    for (const p of pods) if (p.spec.ipv6) { v6.push(`route add ${p.spec.ipv6} dev ${p.hostVeth} metric 1024`); v6.push(`rule add pref 512 to ${p.spec.ipv6} lookup main`) }
    // The egress plugin's host route to the pod's ULA (setupHostIPv6Route: netlink SCOPE_HOST, which IPv6 routes do not keep).
    for (const p of pods) if (p.spec.v6egress && p.egressVeth) v6.push(`route add ${p.spec.v6egress.ip}/128 dev ${p.egressVeth} scope host`)
    if (node.ipv6Cluster) v6.push('rule add pref 1024 fwmark 0x80/0x80 lookup main')
    await ipBatch(nodeNs, v6, ['-6'])
  }

  // Pods (driver.go): /32 on eth0, gateway 169.254.1.1 scope link, permanent neighbour to the host veth's MAC.
  for (const p of pods) {
    const s = p.spec
    const pod: string[] = ['link set eth0 up']
    if (s.ip) {
      pod.push(`addr add ${s.ip}/32 dev eth0`, 'route add 169.254.1.1 dev eth0 scope link', 'route add default via 169.254.1.1 dev eth0', `neigh add 169.254.1.1 lladdr ${p.hostMac} dev eth0 nud permanent`)
    }
    if (s.v4egress) {
      const x = s.v4egress.ip
      pod.push('link set v4if0 up', `addr add ${x}/22 dev v4if0`, 'route del 169.254.172.0/22 dev v4if0',
        `route add 169.254.172.1 dev v4if0 scope link src ${x}`, `route add 169.254.172.0/22 via 169.254.172.1 dev v4if0 src ${x}`, 'route add default via 169.254.172.1 dev v4if0')
    }
    await ipBatch(p.ns, pod)
    if (s.v6egress && p.egressVeth) {
      // Egress plugin, IPv6 leg (vpc-cni.md §6.3, cmd/egress-cni-plugin/cni/cni6.go): IPv6 off on eth0; v6if0 holds the
      // host-local address with the range's prefix length; the default route goes via the host veth's link-local address.
      await setSysctls(p.ns, { 'net.ipv6.conf.eth0.disable_ipv6': '1' })
      await ipBatch(p.ns, ['link set v6if0 up', `addr add ${s.v6egress.ip}/118 dev v6if0 nodad`, `route replace default via ${eui64LinkLocal(egressMac(scenario, p))} dev v6if0`], ['-6'])
    }
    if (s.ipv6) {
      await ipBatch(p.ns, [`addr add ${s.ipv6}/128 dev eth0 nodad`, 'route add fe80::1 dev eth0 metric 1024', 'route add default via fe80::1 dev eth0 metric 1024', `neigh add fe80::1 lladdr ${p.hostMac} dev eth0 nud permanent`], ['-6'])
    }
  }

  // The VPC: the subnet router on every leg and every remote host. Node-side addresses are reached through
  // permanent neighbours to the ENI MACs, as the VPC fabric delivers to an ENI without ARP.
  // The remote hosts are /32s on the VPC namespace's loopback (this kernel has no dummy devices).
  const vpc: string[] = []
  for (const a of [REMOTE.vpcPeer, REMOTE.remoteEndpoint, REMOTE.secondaryCidrPeer, REMOTE.internet, REMOTE.internet2, REMOTE.onPrem]) vpc.push(`addr add ${a}/32 dev lo`)
  const toNode = (ip: string, leg: string, mac: string) => vpc.push(`route add ${ip} dev ${leg} scope link`, `neigh add ${ip} lladdr ${mac} dev ${leg} nud permanent`)
  const gateways = new Map<string, string[]>()
  for (const e of enis) { vpc.push(`link set ${e.leg} up`); gateways.set(e.leg, [e.gateway]) }
  for (const b of branches) { vpc.push(`link set ${b.leg} up`); gateways.set(b.leg, [b.gateway]) }
  for (const [leg, gws] of gateways) for (const gw of gws) vpc.push(`addr add ${gw}/32 dev ${leg}`)
  for (const e of enis) for (const ip of [e.ip, ...(e.secondaryIps ?? [])]) toNode(ip, e.leg, e.mac)
  for (const p of pods) {
    if (!p.spec.ip) continue
    const b = branches.find((x) => x.vlanId === p.spec.vlanId)
    const e = enis.find((x) => x.name === p.spec.eni)
    if (b) toNode(p.spec.ip, b.leg, b.mac)
    else if (e) toNode(p.spec.ip, e.leg, e.mac)
  }
  for (const vip of node.routedToPrimary ?? []) toNode(vip, primary.leg, primary.mac)
  await ipBatch(vpcNs, vpc)
  const vpc6: string[] = [`addr add ${REMOTE.vpcPeer6}/128 dev lo nodad`, `addr add ${REMOTE.internet6}/128 dev lo nodad`]
  if ((node.ipv6Cluster || v6Egress) && primary.ipv6) {
    vpc6.push(`addr add fe80::1/64 dev ${primary.leg} nodad`)
    vpc6.push(`route add ${primary.ipv6.address} dev ${primary.leg}`, `neigh add ${primary.ipv6.address} lladdr ${primary.mac} dev ${primary.leg} nud permanent`)
    for (const p of pods) if (p.spec.ipv6) vpc6.push(`route add ${p.spec.ipv6} dev ${primary.leg}`, `neigh add ${p.spec.ipv6} lladdr ${primary.mac} dev ${primary.leg} nud permanent`)
    // A host outside that routes a pod's node-local ULA through the node (what the FORWARD REJECT of fd00::ac:00/118 is for).
    for (const p of pods) if (p.spec.v6egress) vpc6.push(`route add ${p.spec.v6egress.ip} dev ${primary.leg}`, `neigh add ${p.spec.v6egress.ip} lladdr ${primary.mac} dev ${primary.leg} nud permanent`)
  }
  await ipBatch(vpcNs, vpc6, ['-6'])

  return { scenario, nodeNs, vpcNs, pods, enis, branches, sysctls }
}

/** The host end of a pod's egress veth has a stable MAC, so its link-local address (the pod's IPv6 gateway) is known. */
function egressMac(scenario: string, p: BuiltPod): string {
  return labMac(`${scenario}/${p.egressVeth}`)
}

async function setSysctls(ns: string, values: Record<string, string>): Promise<void> {
  const assignments = Object.entries(values).map(([k, v]) => `${k}=${v}`)
  if (assignments.length > 0) await inNs(ns, 'sysctl', ['-q', '-w', ...assignments], { timeoutMs: 5_000 })
}

