// The netfilter rules each scenario programs, written as iptables-save / nft text exactly as
// ../shared/docs/vpc-cni.md (per CNI era) and ../shared/docs/kube-proxy.md (iptables-save form) give them.
import { endpointChainName, nftChainName, serviceChainHash } from './names.js'

export type CniEra =
  /** ≤ v1.2: one bare POSTROUTING SNAT rule, `1024: not to VPC lookup main` (vpc-cni.md §2.2, §9). */
  | 'v1.2'
  /** v1.6.0 – v1.12.0: numbered AWS-SNAT-CHAIN-0..N / AWS-CONNMARK-CHAIN-0..N, connmark jump with `-m state --state NEW` (§2.2, §2.3). */
  | 'v1.12.0'
  /** v1.20 – v1.22: single chains with RETURN rules, `32765: from <ENI IP>` rules (§2.1, §2.3, §4.1). */
  | 'v1.20'
  /** v1.23 on an nf_tables host: SNAT chain and mangle in iptables-nft, connmark in `table ip aws-cni` (§2.4). */
  | 'v1.23-nft'

export type RandomizeSnat = 'prng' | 'hashrandom' | 'none'

export interface CniRuleConfig {
  readonly era: CniEra
  readonly nodeIp: string
  readonly primaryInterface: string
  readonly vpcCidrs: readonly string[]
  readonly excludeCidrs: readonly string[]
  readonly externalSnat: boolean
  readonly randomizeSnat: RandomizeSnat
  /** The `-i eni+` jump to AWS-CONNMARK-CHAIN-0 is missing (connmark chain not reached: the classic failure). */
  readonly connmarkJumpMissing?: boolean
}

/** One iptables table being written: chains in declaration order, rules in order per chain. */
export class TableText {
  private readonly chains = new Map<string, string>()
  private readonly rules = new Map<string, string[]>()

  constructor(readonly name: 'raw' | 'nat' | 'mangle' | 'filter', builtins: readonly string[]) {
    for (const c of builtins) this.chains.set(c, 'ACCEPT')
  }

  declare(chain: string): this {
    if (!this.chains.has(chain)) this.chains.set(chain, '-')
    return this
  }

  /** Appends `-A <chain> <spec>`. */
  append(chain: string, spec: string): this {
    this.declare(chain)
    const list = this.rules.get(chain) ?? []
    list.push(`-A ${chain} ${spec}`)
    this.rules.set(chain, list)
    return this
  }

  /** Inserts at position 1, as `iptables -I` does (kube-proxy's jumps, the CNI's RETURN rules, hand-written rules). */
  insert(chain: string, spec: string): this {
    this.declare(chain)
    const list = this.rules.get(chain) ?? []
    list.unshift(`-A ${chain} ${spec}`)
    this.rules.set(chain, list)
    return this
  }

  get empty(): boolean {
    return [...this.chains.values()].every((p) => p === 'ACCEPT') && this.rules.size === 0
  }

  /** iptables-restore input in iptables-save layout (built-in chains first, then user chains by name), so the
   * programmed text reads like the dumps the docs show. */
  render(): string {
    const out = [`*${this.name}`]
    const builtins = [...this.chains].filter(([, p]) => p !== '-').map(([c]) => c)
    const order = [...builtins, ...[...this.chains.keys()].filter((c) => !builtins.includes(c)).sort()]
    for (const chain of order) out.push(`:${chain} ${this.chains.get(chain)} [0:0]`)
    for (const chain of order) out.push(...(this.rules.get(chain) ?? []))
    out.push('COMMIT')
    return out.join('\n') + '\n'
  }
}

export interface IptablesProgram {
  raw: TableText
  nat: TableText
  mangle: TableText
  filter: TableText
}

export function emptyProgram(): IptablesProgram {
  return {
    raw: new TableText('raw', ['PREROUTING', 'OUTPUT']),
    nat: new TableText('nat', ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING']),
    mangle: new TableText('mangle', ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']),
    filter: new TableText('filter', ['INPUT', 'FORWARD', 'OUTPUT']),
  }
}

export function renderProgram(p: IptablesProgram): string {
  return [p.raw, p.mangle, p.nat, p.filter].filter((t) => !t.empty).map((t) => t.render()).join('')
}

function randomFlag(r: RandomizeSnat): string {
  return r === 'prng' ? ' --random-fully' : r === 'hashrandom' ? ' --random' : ''
}

/**
 * kube-proxy's static nat chains (iptables mode, EKS: no local-traffic detector), in iptables-save form (kube-proxy.md §1.2–1.3).
 * The jumps are inserted at position 1, so they come before the CNI's rules in PREROUTING and POSTROUTING.
 */
export function addKubeProxyBase(p: IptablesProgram): void {
  const nat = p.nat
  for (const c of ['KUBE-KUBELET-CANARY', 'KUBE-MARK-MASQ', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-PROXY-CANARY', 'KUBE-SERVICES']) nat.declare(c)
  nat.insert('PREROUTING', '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES')
  nat.insert('OUTPUT', '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES')
  nat.insert('POSTROUTING', '-m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING')
  nat.append('KUBE-MARK-MASQ', '-j MARK --set-xmark 0x4000/0x4000')
  nat.append('KUBE-POSTROUTING', '-m mark ! --mark 0x4000/0x4000 -j RETURN')
  nat.append('KUBE-POSTROUTING', '-j MARK --set-xmark 0x4000/0x0')
  nat.append('KUBE-POSTROUTING', '-m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully')
  for (const t of [p.mangle, p.filter]) { t.declare('KUBE-KUBELET-CANARY'); t.declare('KUBE-PROXY-CANARY') }
}

/** kubelet's canary chains (it creates nothing else in iptables since kube-proxy owns the service rules). */
export function addKubeletCanaries(p: IptablesProgram): void {
  for (const t of [p.mangle, p.nat, p.filter]) t.declare('KUBE-KUBELET-CANARY')
}

/** kube-proxy's "must be the last rule" NodePort dispatch; added after every service rule. */
export function addKubeProxyNodePortTail(p: IptablesProgram, family: 4 | 6 = 4): void {
  // IPv6 never has localhost NodePorts (kube-proxy.md §1.3 variants).
  const notLoopback = family === 6 ? ' ! -d ::1/128' : ''
  p.nat.append('KUBE-SERVICES', `-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL${notLoopback} -j KUBE-NODEPORTS`)
}

export interface ServiceSpec {
  /** `<ns>/<name>:<port name>` */
  readonly name: string
  readonly clusterIp: string
  readonly port: number
  readonly targetPort: number
  readonly nodePort?: number
  readonly loadBalancerIp?: string
  readonly externalTrafficPolicy?: 'Cluster' | 'Local'
  readonly endpoints: readonly { readonly ip: string; readonly local: boolean }[]
}

const probability = (n: number, i: number): string => {
  // The kernel stores round(p·2^31) and iptables-save prints it with %.11f (kube-proxy.md §1.9).
  const stored = Math.round((1 / (n - i)) * 2 ** 31)
  return (stored / 2 ** 31).toFixed(11)
}

/** One TCP service port in kube-proxy's iptables-save form (kube-proxy.md §1.4; EKS has no masquerade rule in KUBE-SVC). */
export function addService(p: IptablesProgram, svc: ServiceSpec): void {
  const nat = p.nat
  const h = serviceChainHash(svc.name, 'tcp')
  const svcChain = `KUBE-SVC-${h}`
  // Endpoints are written in lexicographic "ip:port" order.
  const eps = [...svc.endpoints].map((e) => ({ ...e, ep: `${e.ip}:${svc.targetPort}` })).sort((a, b) => (a.ep < b.ep ? -1 : a.ep > b.ep ? 1 : 0))
  const sep = (ep: string) => endpointChainName(svc.name, 'tcp', ep)
  const dispatch = (chain: string, list: typeof eps) => {
    list.forEach((e, i) => {
      const stat = i < list.length - 1 ? ` -m statistic --mode random --probability ${probability(list.length, i)}` : ''
      nat.append(chain, `-m comment --comment "${svc.name} -> ${e.ep}"${stat} -j ${sep(e.ep)}`)
    })
  }
  nat.append('KUBE-SERVICES', `-d ${svc.clusterIp}/32 -p tcp -m comment --comment "${svc.name} cluster IP" -m tcp --dport ${svc.port} -j ${svcChain}`)
  dispatch(svcChain, eps)
  for (const e of eps) {
    nat.append(sep(e.ep), `-s ${e.ip}/32 -m comment --comment "${svc.name}" -j KUBE-MARK-MASQ`)
    nat.append(sep(e.ep), `-p tcp -m comment --comment "${svc.name}" -m tcp -j DNAT --to-destination ${e.ep}`)
  }
  if (svc.nodePort === undefined && svc.loadBalancerIp === undefined) return
  const ext = `KUBE-EXT-${h}`
  if (svc.loadBalancerIp) nat.append('KUBE-SERVICES', `-d ${svc.loadBalancerIp}/32 -p tcp -m comment --comment "${svc.name} loadbalancer IP" -m tcp --dport ${svc.port} -j ${ext}`)
  if (svc.nodePort !== undefined) nat.append('KUBE-NODEPORTS', `-p tcp -m comment --comment "${svc.name}" -m tcp --dport ${svc.nodePort} -j ${ext}`)
  if ((svc.externalTrafficPolicy ?? 'Cluster') === 'Cluster') {
    nat.append(ext, `-m comment --comment "masquerade traffic for ${svc.name} external destinations" -j KUBE-MARK-MASQ`)
    nat.append(ext, `-j ${svcChain}`)
    return
  }
  // externalTrafficPolicy=Local without a local-traffic detector (EKS): no "pod traffic" short-circuit.
  nat.append(ext, `-m comment --comment "masquerade LOCAL traffic for ${svc.name} external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ`)
  nat.append(ext, `-m comment --comment "route LOCAL traffic for ${svc.name} external destinations" -m addrtype --src-type LOCAL -j ${svcChain}`)
  const local = eps.filter((e) => e.local)
  if (local.length > 0) {
    const svl = `KUBE-SVL-${h}`
    nat.append(ext, `-j ${svl}`)
    dispatch(svl, local)
  }
}

export interface NftServiceSpec extends ServiceSpec {
  readonly protocol?: 'tcp' | 'udp'
}

export interface KubeProxyNftConfig {
  /** `--service-cluster-ip-range`: traffic to an unallocated ClusterIP in it is dropped. */
  readonly serviceCidr: string
  /** `--nodeport-addresses primary` (nftables mode's default): the node's primary IP only. */
  readonly nodePortIps: readonly string[]
  readonly services: readonly NftServiceSpec[]
}

/**
 * kube-proxy's nftables-mode ruleset as the transaction it feeds `nft -f` (kube-proxy.md §2; the text of
 * ../shared/examples/kube-proxy/nft-transaction.TestOverallNFTablesRules.txt, newest generation: filter-*-pre-dnat at
 * -110, filter-input/forward/output at 0). EKS gives kube-proxy no cluster CIDR, so there is no local-traffic detector
 * (kube-proxy.md §1.6): no `ip saddr != <podCIDR>` masquerade rule in the service chains and no "short-circuit pod
 * traffic" rule in the external chains of externalTrafficPolicy=Local services.
 */
export function kubeProxyNftables(cfg: KubeProxyNftConfig): string {
  const t = 'ip kube-proxy'
  const out: string[] = [
    `add table ${t} { comment "rules for kube-proxy" ; }`,
    '',
    `add set ${t} cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }`,
    `add set ${t} nodeport-ips { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }`,
    '',
    `add map ${t} firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }`,
    `add map ${t} no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }`,
    `add map ${t} no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }`,
    `add map ${t} service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }`,
    `add map ${t} service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }`,
    '',
    `add chain ${t} cluster-ips-check`,
    `add chain ${t} filter-prerouting-pre-dnat { type filter hook prerouting priority -110 ; }`,
    `add chain ${t} filter-output-pre-dnat { type filter hook output priority -110 ; }`,
    `add chain ${t} filter-forward { type filter hook forward priority 0 ; }`,
    `add chain ${t} filter-input { type filter hook input priority 0 ; }`,
    `add chain ${t} filter-output { type filter hook output priority 0 ; }`,
    `add chain ${t} firewall-check`,
    `add chain ${t} mark-for-masquerade`,
    `add chain ${t} masquerading`,
    `add chain ${t} nat-output { type nat hook output priority -100 ; }`,
    `add chain ${t} nat-postrouting { type nat hook postrouting priority 100 ; }`,
    `add chain ${t} nat-prerouting { type nat hook prerouting priority -100 ; }`,
    `add chain ${t} nodeport-endpoints-check`,
    `add chain ${t} reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }`,
    `add chain ${t} services`,
    `add chain ${t} service-endpoints-check`,
    '',
    `add rule ${t} cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"`,
    `add rule ${t} cluster-ips-check ip daddr { ${cfg.serviceCidr} } drop comment "Drop traffic to unallocated ClusterIPs"`,
    `add rule ${t} filter-prerouting-pre-dnat ct state new jump firewall-check`,
    `add rule ${t} filter-forward ct state new jump service-endpoints-check`,
    `add rule ${t} filter-forward ct state new jump cluster-ips-check`,
    `add rule ${t} filter-input ct state new jump nodeport-endpoints-check`,
    `add rule ${t} filter-input ct state new jump service-endpoints-check`,
    `add rule ${t} filter-output ct state new jump service-endpoints-check`,
    `add rule ${t} filter-output-pre-dnat ct state new jump firewall-check`,
    `add rule ${t} filter-output ct state new jump cluster-ips-check`,
    `add rule ${t} firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips`,
    `add rule ${t} mark-for-masquerade mark set mark or 0x4000`,
    `add rule ${t} masquerading mark and 0x4000 == 0 return`,
    `add rule ${t} masquerading mark set mark xor 0x4000`,
    `add rule ${t} masquerading masquerade fully-random`,
    `add rule ${t} nat-output jump services`,
    `add rule ${t} nat-postrouting jump masquerading`,
    `add rule ${t} nat-prerouting jump services`,
    `add rule ${t} nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports`,
    `add rule ${t} reject-chain reject`,
    `add rule ${t} services ip daddr . meta l4proto . th dport vmap @service-ips`,
    `add rule ${t} services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports`,
    '',
    ...cfg.nodePortIps.map((ip) => `add element ${t} nodeport-ips { ${ip} }`),
    `add rule ${t} service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services`,
  ]
  for (const svc of cfg.services) out.push('', ...nftService(t, svc))
  return out.join('\n') + '\n'
}

/** One service port in kube-proxy's nftables transaction form (kube-proxy.md §2.3–2.4), no local-traffic detector. */
function nftService(t: string, svc: NftServiceSpec): string[] {
  const proto = svc.protocol ?? 'tcp'
  const [nsName, portName = ''] = svc.name.split(':') as [string, string?]
  const base = `${nsName}/${proto}/${portName}`
  const service = nftChainName('service-', base)
  const local = nftChainName('local-', base)
  const external = nftChainName('external-', base)
  // Endpoints in lexicographic "ip:port" order, as kube-proxy writes them.
  const eps = [...svc.endpoints].map((e) => ({ ...e, ep: `${e.ip}:${svc.targetPort}` })).sort((a, b) => (a.ep < b.ep ? -1 : a.ep > b.ep ? 1 : 0))
  const epChain = (ip: string) => nftChainName('endpoint-', `${base}__${ip}/${svc.targetPort}`)
  const out: string[] = [`# ${svc.name}`]
  const externalIps = [...(svc.loadBalancerIp ? [svc.loadBalancerIp] : [])]
  const external_ = svc.nodePort !== undefined || externalIps.length > 0
  const etpLocal = svc.externalTrafficPolicy === 'Local'
  const localEps = eps.filter((e) => e.local)
  if (eps.length === 0) {
    out.push(`add element ${t} cluster-ips { ${svc.clusterIp} }`)
    out.push(`add element ${t} no-endpoint-services { ${svc.clusterIp} . ${proto} . ${svc.port} comment "${svc.name}" : goto reject-chain }`)
    return out
  }
  // Every chain first (kube-proxy's ensureChain runs before it writes rules): a goto needs its target to exist.
  const usesLocal = external_ && etpLocal && localEps.length > 0
  for (const c of [service, ...(external_ ? [external] : []), ...(usesLocal ? [local] : []), ...eps.map((e) => epChain(e.ip))]) out.push(`add chain ${t} ${c}`)
  const numgen = (chain: string, list: typeof eps) =>
    out.push(`add rule ${t} ${chain} numgen random mod ${list.length} vmap { ${list.map((e, i) => `${i} : goto ${epChain(e.ip)}`).join(' , ')} }`)
  numgen(service, eps)
  if (external_ && !etpLocal) {
    out.push(`add rule ${t} ${external} jump mark-for-masquerade`, `add rule ${t} ${external} goto ${service}`)
  } else if (external_) {
    out.push(
      `add rule ${t} ${external} fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"`,
      `add rule ${t} ${external} fib saddr type local goto ${service} comment "short-circuit local traffic"`,
    )
    if (usesLocal) {
      out.push(`add rule ${t} ${external} goto ${local}`)
      numgen(local, localEps)
    }
  }
  for (const e of eps) {
    const c = epChain(e.ip)
    out.push(`add rule ${t} ${c} ip saddr ${e.ip} jump mark-for-masquerade`, `add rule ${t} ${c} meta l4proto ${proto} dnat to ${e.ep}`)
  }
  out.push(`add element ${t} cluster-ips { ${svc.clusterIp} }`)
  out.push(`add element ${t} service-ips { ${svc.clusterIp} . ${proto} . ${svc.port} : goto ${service} }`)
  for (const ip of externalIps) out.push(`add element ${t} service-ips { ${ip} . ${proto} . ${svc.port} : goto ${external} }`)
  if (svc.nodePort !== undefined) out.push(`add element ${t} service-nodeports { ${proto} . ${svc.nodePort} : goto ${external} }`)
  if (external_ && etpLocal && localEps.length === 0) {
    // No local endpoint: external traffic that was not short-circuited is dropped (kube-proxy.md §2.3).
    if (svc.nodePort !== undefined) out.push(`add element ${t} no-endpoint-nodeports { ${proto} . ${svc.nodePort} comment "${svc.name}" : drop }`)
    for (const ip of externalIps) out.push(`add element ${t} no-endpoint-services { ${ip} . ${proto} . ${svc.port} comment "${svc.name}" : drop }`)
  }
  return out
}

/** kube-proxy's filter-table forwarding rules (kube-proxy.md §1.3), without the nfacct match. */
export function addKubeProxyForward(p: IptablesProgram): void {
  const f = p.filter
  f.declare('KUBE-FORWARD')
  f.append('FORWARD', '-m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD')
  f.append('KUBE-FORWARD', '-m conntrack --ctstate INVALID -j DROP')
  f.append('KUBE-FORWARD', '-m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT')
  f.append('KUBE-FORWARD', '-m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT')
}

/** The VPC CNI's IPv4 nat and mangle rules for one era (vpc-cni.md §2, §3). Returns the nft ruleset for v1.23-nft. */
export function addVpcCni(p: IptablesProgram, cfg: CniRuleConfig): { nft: string | null } {
  const { nat, mangle } = p
  const flag = randomFlag(cfg.randomizeSnat)
  const snatTarget = `-j SNAT --to-source ${cfg.nodeIp}${flag}`

  // mangle (§3): NodePort return path. v1.2 has the first two rules, the vlan+ rule is v1.7.0+.
  mangle.append('PREROUTING', `-i ${cfg.primaryInterface} -m comment --comment "AWS, primary ENI" -m addrtype --dst-type LOCAL --limit-iface-in -j CONNMARK --set-xmark 0x80/0x80`)
  mangle.append('PREROUTING', '-i eni+ -m comment --comment "AWS, primary ENI" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80')
  if (cfg.era !== 'v1.2') mangle.append('PREROUTING', '-i vlan+ -m comment --comment "AWS, primary ENI" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80')

  if (cfg.era === 'v1.2') {
    // §2.2: one VPC CIDR, no chain, no randomisation option yet (v1.4.0).
    if (!cfg.externalSnat) nat.append('POSTROUTING', `! -d ${cfg.vpcCidrs[0]} -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL -j SNAT --to-source ${cfg.nodeIp}`)
    return { nft: null }
  }

  const cidrs = [...cfg.vpcCidrs.map((c) => ({ cidr: c, excluded: false })), ...cfg.excludeCidrs.map((c) => ({ cidr: c, excluded: true }))]

  if (cfg.era === 'v1.12.0') {
    // §2.2 / §2.3 numbered chains: one hop per CIDR; a destination inside any CIDR falls off a chain's end (no SNAT, no mark).
    const n = cidrs.length
    for (let i = 0; i <= n; i++) { nat.declare(`AWS-CONNMARK-CHAIN-${i}`) }
    for (let i = 0; i <= n; i++) { nat.declare(`AWS-SNAT-CHAIN-${i}`) }
    if (cfg.externalSnat) return { nft: null }
    nat.append('PREROUTING', '-i eni+ -m comment --comment "AWS, outbound connections" -m state --state NEW -j AWS-CONNMARK-CHAIN-0')
    nat.append('PREROUTING', '-m comment --comment "AWS, CONNMARK" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80')
    nat.append('POSTROUTING', '-m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-0')
    cidrs.forEach((c, i) => {
      nat.append(`AWS-CONNMARK-CHAIN-${i}`, `! -d ${c.cidr} -m comment --comment "AWS CONNMARK CHAIN, ${c.excluded ? 'EXCLUDED CIDR' : 'VPC CIDR'}" -j AWS-CONNMARK-CHAIN-${i + 1}`)
      nat.append(`AWS-SNAT-CHAIN-${i}`, `! -d ${c.cidr} -m comment --comment "AWS SNAT CHAIN${c.excluded ? ' EXCLUSION' : ''}" -j AWS-SNAT-CHAIN-${i + 1}`)
    })
    nat.append(`AWS-CONNMARK-CHAIN-${n}`, '-m comment --comment "AWS, CONNMARK" -j CONNMARK --set-xmark 0x80/0x80')
    nat.append(`AWS-SNAT-CHAIN-${n}`, `! -o vlan+ -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL ${snatTarget}`)
    return { nft: null }
  }

  // v1.16.1+ single SNAT chain (§2.1): RETURN rules inserted at position 1, so the list ends up reversed.
  nat.declare('AWS-SNAT-CHAIN-0')
  if (cfg.era === 'v1.20') nat.declare('AWS-CONNMARK-CHAIN-0')
  if (cfg.externalSnat) {
    // §2.3 / SCENARIO externalsnat-true: chains declared and empty, no jumps.
    return { nft: null }
  }
  nat.append('POSTROUTING', '-m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-0')
  for (const c of cidrs) nat.insert('AWS-SNAT-CHAIN-0', `-d ${c.cidr} -m comment --comment "${c.excluded ? 'AWS SNAT CHAIN EXCLUSION' : 'AWS SNAT CHAIN'}" -j RETURN`)
  nat.append('AWS-SNAT-CHAIN-0', `! -o vlan+ -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL ${snatTarget}`)

  if (cfg.era === 'v1.20') {
    if (!cfg.connmarkJumpMissing) nat.append('PREROUTING', '-i eni+ -m comment --comment "AWS, outbound connections" -j AWS-CONNMARK-CHAIN-0')
    nat.append('PREROUTING', '-m comment --comment "AWS, CONNMARK" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80')
    for (const c of cidrs) nat.insert('AWS-CONNMARK-CHAIN-0', `-d ${c.cidr} -m comment --comment "AWS CONNMARK CHAIN, ${c.excluded ? 'EXCLUDED CIDR' : 'VPC CIDR'}" -j RETURN`)
    nat.append('AWS-CONNMARK-CHAIN-0', '-m comment --comment "AWS, CONNMARK" -j CONNMARK --set-xmark 0x80/0x80')
    return { nft: null }
  }

  // v1.23 on an nf_tables host (§2.4): native nftables connmark at priority -90 (after kube-proxy's dstnat), RETURNs prepended.
  const returns = [...cidrs].reverse().map((c) => `\t\tcounter ip daddr ${c.cidr} return`)
  const nft = [
    'table ip aws-cni {',
    '\tchain nat-prerouting {',
    '\t\ttype nat hook prerouting priority -90; policy accept;',
    '\t\tfib daddr type local return',
    '\t\tiifname "eni*" counter jump snat-mark',
    '\t\tcounter meta mark set ct mark & 0x80',
    '\t}',
    '\tchain snat-mark {',
    ...returns,
    '\t\tcounter ct mark set ct mark | 0x80',
    '\t}',
    '}',
  ].join('\n') + '\n'
  return { nft }
}

/** The egress plugin's per-pod chain for IPv4 egress of an IPv6 pod (vpc-cni.md §6.2) and the node-local block (§3b). */
export function addEgressV4(p: IptablesProgram, pods: readonly { readonly v4: string; readonly chain: string; readonly containerId: string }[], nodeIp: string, r: RandomizeSnat): void {
  for (const pod of pods) {
    const comment = `-m comment --comment "name: \\"aws-cni\\" id: \\"${pod.containerId}\\""`
    p.nat.declare(pod.chain)
    p.nat.append('POSTROUTING', `-s ${pod.v4}/32 ${comment} -j ${pod.chain}`)
    p.nat.append(pod.chain, `-d 224.0.0.0/4 ${comment} -j ACCEPT`)
    p.nat.append(pod.chain, `${comment} -j SNAT --to-source ${nodeIp}${randomFlag(r)}`)
  }
  p.filter.insert('FORWARD', '-d 169.254.172.0/22 -m conntrack --ctstate NEW -m comment --comment "Block Node Local Pod access via IPv4" -j REJECT --reject-with icmp-port-unreachable')
}

/**
 * The egress plugin's per-pod ip6tables chain for IPv6 egress of an IPv4 pod and ipamd's node-local block (vpc-cni.md
 * §6.3): cmd/egress-cni-plugin/snat/snat.go `iptRules` with the IPv6 multicast range, in iptables-save order (matches
 * before the target, the comment after `-d`/`-s`), and pkg/networkutils `setupRuleToBlockNodeLocalAccess(IPv6)`,
 * inserted at the top of filter FORWARD (`-j REJECT` prints its default `--reject-with icmp6-port-unreachable`).
 */
export function addEgressV6(p: IptablesProgram, pods: readonly { readonly v6: string; readonly chain: string; readonly containerId: string }[], nodeIp6: string, r: RandomizeSnat): void {
  for (const pod of pods) {
    const comment = `-m comment --comment "name: \\"aws-cni\\" id: \\"${pod.containerId}\\""`
    p.nat.declare(pod.chain)
    p.nat.append('POSTROUTING', `-s ${pod.v6}/128 ${comment} -j ${pod.chain}`)
    p.nat.append(pod.chain, `-d ff00::/8 ${comment} -j ACCEPT`)
    p.nat.append(pod.chain, `${comment} -j SNAT --to-source ${nodeIp6}${randomFlag(r)}`)
  }
  p.filter.insert('FORWARD', '-d fd00::ac:0/118 -m conntrack --ctstate NEW -m comment --comment "Block Node Local Pod access via IPv6" -j REJECT --reject-with icmp6-port-unreachable')
}

/**
 * A Calico-like outgoing NAT chain (another CNI's rules on the same node). Calico matches its IP pools with ipsets; the
 * lab has no ipset tool, so the pool is written as -s/! -d CIDRs. Calico inserts its POSTROUTING jump at position 1.
 */
export function addCalicoLike(p: IptablesProgram, poolCidr: string): void {
  const nat = p.nat
  nat.declare('cali-POSTROUTING').declare('cali-nat-outgoing')
  nat.insert('POSTROUTING', '-m comment --comment "cali:O3lYWMrLQYEMJtB5" -j cali-POSTROUTING')
  nat.append('cali-POSTROUTING', '-m comment --comment "cali:nYKhEzDlr11Jccal" -j cali-nat-outgoing')
  nat.append('cali-nat-outgoing', `-s ${poolCidr} ! -d ${poolCidr} -m comment --comment "cali:flqWnvo8yq4ULQLa" -j MASQUERADE --random-fully`)
}

/** Cilium in CNI chaining mode on top of the VPC CNI (`cni.chainingMode=aws-cni`, `kubeProxyReplacement=false`). */
export interface CiliumChainingConfig {
  /**
   * `enable-ipv4-masquerade=true` with iptables masquerading (`enable-bpf-masquerade=false`). Cilium's chaining guide
   * turns it off; when it is on, `egress-masquerade-interfaces` names the interface instead of `-s <alloc CIDR>`: the
   * pods' addresses come from the VPC CNI, not from Cilium's own allocation range, so `-s` would match none of them.
   */
  readonly masquerade?: { readonly nativeRoutingCidr: string; readonly egressInterface: string; readonly hostMasqueradeIp: string }
}

/**
 * The iptables chains and rules the Cilium agent installs in aws-cni chaining mode (IPv4), as iptables-save prints them.
 *
 * Sources (cilium/cilium):
 * - chains, tables and hooks: `pkg/datapath/iptables/custom_chain.go` `ciliumChains`; feeder rules from
 *   `doInstallFeeder`: `-m comment --comment "cilium-feeder: <chain>" -j <chain>`, inserted with `-I` (at the top of
 *   the built-in chain, ahead of kube-proxy's and the VPC CNI's rules) because `prepend-iptables-chains` defaults to true;
 * - rules: `pkg/datapath/iptables/iptables.go` (`Manager`): `installStaticProxyRules`, `installForwardChainRulesIpX`,
 *   `getDeliveryInterface` ("aws-cni creates container interfaces with names like eni621c0fc8425": `eni+` when
 *   `enable-endpoint-routes` is on, as Documentation/installation/cni-chaining-aws-cni.rst's helm values set it),
 *   `installHostTrafficMarkRule`, `installMasqueradeRules`;
 * - marks as printed (`0x200/0xf00`, `0xa00/0xfffffeff`, …): `pkg/datapath/linux/linux_defaults/mark.go`, and the same
 *   lines in a Cilium node's `iptables -S` and in cilium/cilium#21126 (CILIUM_FORWARD) and #15264 (raw);
 * - the DNS proxy's TPROXY rules (`l7Proxy` on, `enable-bpf-tproxy` off): `iptProxyRule`, port 42217 as on that node.
 * Not programmed: the `ipset` rule "exclude traffic to cluster nodes from masquerade" (no ipset tool in CI; every node
 * address is inside the native-routing CIDR, which the MASQUERADE rule's `! -d` already excludes, so it decides no flow
 * here), and Cilium's BPF programs on the eni veths (they enforce policy; in chaining mode they neither route nor NAT).
 */
export function addCiliumChaining(p: IptablesProgram, cfg: CiliumChainingConfig = {}): void {
  const feeders: [TableText, string, string][] = [
    [p.filter, 'INPUT', 'CILIUM_INPUT'], [p.filter, 'OUTPUT', 'CILIUM_OUTPUT'], [p.raw, 'OUTPUT', 'CILIUM_OUTPUT_raw'],
    [p.nat, 'POSTROUTING', 'CILIUM_POST_nat'], [p.nat, 'OUTPUT', 'CILIUM_OUTPUT_nat'], [p.nat, 'PREROUTING', 'CILIUM_PRE_nat'],
    [p.mangle, 'POSTROUTING', 'CILIUM_POST_mangle'], [p.mangle, 'PREROUTING', 'CILIUM_PRE_mangle'], [p.raw, 'PREROUTING', 'CILIUM_PRE_raw'],
    [p.filter, 'FORWARD', 'CILIUM_FORWARD'],
  ]
  for (const [table, , chain] of feeders) table.declare(chain)

  // installStaticProxyRules: NOTRACK and ACCEPT for proxy traffic (marks 0x200 to a proxy, 0xa00 from one, 0x800 L7 upstream).
  p.raw.append('CILIUM_PRE_raw', '-m mark --mark 0x200/0xf00 -m comment --comment "cilium: NOTRACK for proxy traffic" -j CT --notrack')
  p.filter.append('CILIUM_INPUT', '-m mark --mark 0x200/0xf00 -m comment --comment "cilium: ACCEPT for proxy traffic" -j ACCEPT')
  for (const [mark, what] of [['0xa00/0xfffffeff', 'proxy return traffic'], ['0x800/0xe00', 'L7 proxy upstream traffic']] as const) {
    for (const dev of ['lxc+', 'cilium_host']) p.raw.append('CILIUM_OUTPUT_raw', `-o ${dev} -m mark --mark ${mark} -m comment --comment "cilium: NOTRACK for ${what}" -j CT --notrack`)
  }
  p.filter.append('CILIUM_OUTPUT', '-m mark --mark 0xa00/0xe00 -m comment --comment "cilium: ACCEPT for proxy traffic" -j ACCEPT')
  p.filter.append('CILIUM_OUTPUT', '-m mark --mark 0x800/0xe00 -m comment --comment "cilium: ACCEPT for l7 proxy upstream traffic" -j ACCEPT')
  // inboundProxyRedirectRule (xt_socket present) and the DNS proxy's TPROXY pair (mark = port 42217 byte-swapped << 16 | 0x200).
  p.mangle.append('CILIUM_PRE_mangle', '-m socket --transparent -m mark ! --mark 0xe00/0xf00 -m comment --comment "cilium: any->pod redirect proxied traffic to host proxy" -j MARK --set-xmark 0x200/0xffffffff')
  for (const proto of ['tcp', 'udp']) {
    p.mangle.append('CILIUM_PRE_mangle', `-p ${proto} -m mark --mark 0xe9a40200 -m comment --comment "cilium: TPROXY to host cilium-dns-egress proxy" -j TPROXY --on-port 42217 --on-ip 127.0.0.1 --tproxy-mark 0x200/0xffffffff`)
  }

  // installForwardChainRulesIpX(ifName cilium_host, delivery interface eni+).
  const fwd = (spec: string) => p.filter.append('CILIUM_FORWARD', spec)
  fwd('-o cilium_host -m comment --comment "cilium: any->cluster on cilium_host forward accept" -j ACCEPT')
  fwd('-i cilium_host -m comment --comment "cilium: cluster->any on cilium_host forward accept (nodeport)" -j ACCEPT')
  fwd('-i lxc+ -m comment --comment "cilium: cluster->any on lxc+ forward accept" -j ACCEPT')
  fwd('-i cilium_net -m comment --comment "cilium: cluster->any on cilium_net forward accept (nodeport)" -j ACCEPT')
  fwd('-o eni+ -m comment --comment "cilium: any->cluster on eni+ forward accept" -j ACCEPT')
  fwd('-i eni+ -m comment --comment "cilium: cluster->any on eni+ forward accept (nodeport)" -j ACCEPT')

  // installHostTrafficMarkRule: every packet a host process sends gets 0xc00/0xf00 (not IPsec 0xe00/0xd00, overlay
  // 0x400, proxy 0xa00/0x800, DNS proxy 0xf00). Bit 0x80 is outside the mask: the VPC CNI's connmark bit is untouched.
  p.filter.append('CILIUM_OUTPUT', '-m mark ! --mark 0xe00/0xf00 -m mark ! --mark 0xd00/0xf00 -m mark ! --mark 0x400/0xf00 -m mark ! --mark 0xa00/0xe00 -m mark ! --mark 0x800/0xe00 -m mark ! --mark 0xf00/0xf00 -m comment --comment "cilium: host->any mark as from host" -j MARK --set-xmark 0xc00/0xf00')

  if (cfg.masquerade) {
    // installMasqueradeRules, native routing, endpoint routes on (so no "hairpin traffic that originated from a local
    // pod" rule), no --random-fully (iptables-random-fully defaults to false).
    const m = cfg.masquerade
    p.nat.append('CILIUM_POST_nat', `! -d ${m.nativeRoutingCidr} -o ${m.egressInterface} -m comment --comment "cilium masquerade non-cluster" -j MASQUERADE`)
    p.nat.append('CILIUM_POST_nat', '-m mark --mark 0xa00/0xe00 -m comment --comment "exclude proxy return traffic from masquerade" -j ACCEPT')
    p.nat.append('CILIUM_POST_nat', `-s 127.0.0.1/32 -o eni+ -m comment --comment "cilium host->cluster from 127.0.0.1 masquerade" -j SNAT --to-source ${m.hostMasqueradeIp}`)
  }

  // Feeders last, each inserted at position 1 of its built-in chain (installRules installs them after the rules).
  for (const [table, hook, chain] of feeders) table.insert(hook, `-m comment --comment "cilium-feeder: ${chain}" -j ${chain}`)
}
