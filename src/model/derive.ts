// What follows from the parsed facts: the node's primary address, its ENIs and their tables, the pods, the VPC
// CIDRs, which components (and which of their eras) wrote the rules, and inconsistencies between sources.
import { cidrContains, formatCidr, formatIp, ipKey, parseCidr, sameIp, type Cidr, type IpAddress } from './ip.js'
import type { Diagnostic, SourceRef } from './evidence.js'
import type { CidrFact, Component, Derived, Eni, NodeFacts, Pod, PodKind } from './node-state.js'
import type { Rule, Table } from './netfilter.js'
import { ownerOfRule } from './owner.js'

const NONE: SourceRef = { artifact: '(derived)', line: 0, text: '' }

export function derive(facts: NodeFacts): Derived {
  const allRules = [...iterRules(facts.tables)]
  const components = detectComponents(facts.tables, allRules)
  const { vpcCidrs, excludeCidrs } = findCidrs(facts, allRules)
  const vethPrefix = findVethPrefix(facts, allRules)
  const connmark = findConnmark(allRules)
  const primary = findPrimary(facts, allRules)
  const enis = findEnis(facts, primary.interface)
  const pods = findPods(facts, enis, primary.interface, vethPrefix)
  const inconsistencies = findInconsistencies(facts, allRules)
  const derived: Derived = {
    ...(primary.interface ? { primaryInterface: primary.interface } : {}),
    ...(primary.address ? { primaryAddress: primary.address } : {}),
    ...(primary.ref ? { primaryRef: primary.ref } : {}),
    enis, pods, vpcCidrs, excludeCidrs, components, inconsistencies,
    ...(vethPrefix ? { vethPrefix } : {}),
    ...(connmark !== undefined ? { connmark } : {}),
  }
  derived.snatPolicy = describeSnatPolicy(facts, derived, allRules)
  return derived
}

function* iterRules(tables: readonly Table[]): Iterable<{ rule: Rule; table: Table }> {
  for (const table of tables) for (const chain of table.chains.values()) for (const rule of chain.rules) yield { rule, table }
}

function isAwsSnatRule(rule: Rule): boolean {
  return rule.target.kind === 'snat' && (rule.comment === 'AWS, SNAT' || rule.chain.startsWith('AWS-SNAT-CHAIN'))
}

function detectComponents(tables: readonly Table[], rules: { rule: Rule; table: Table }[]): Component[] {
  const out: Component[] = []
  const ipt = tables.filter((t) => t.origin !== 'nft')
  const chainNames = new Set(ipt.flatMap((t) => [...t.chains.keys()]))
  const chainHasRules = (name: string) => ipt.some((t) => (t.chains.get(name)?.rules.length ?? 0) > 0)
  const awsRules = rules.filter((r) => ownerOfRule(r.rule, r.table) === 'vpc-cni')
  const awsCniNft = tables.find((t) => t.origin === 'nft' && t.name === 'aws-cni')
  if (awsRules.length > 0 || chainNames.has('AWS-SNAT-CHAIN-0') || awsCniNft) {
    const eras: string[] = []
    const evidence: SourceRef[] = []
    const bare = awsRules.find((r) => r.rule.chain === 'POSTROUTING' && isAwsSnatRule(r.rule))
    const chan = awsRules.find((r) => r.rule.comment === 'AWS SNAT CHAN')
    const numbered = chainHasRules('AWS-SNAT-CHAIN-1')
    const stateNew = awsRules.find((r) => r.rule.comment === 'AWS, outbound connections' && r.rule.matches.some((m) => m.kind === 'ctstate'))
    const v123Legacy = awsRules.find((r) => r.rule.chain === 'AWS-CONNMARK-CHAIN-0' && r.rule.comment === 'AWS CONNMARK CHAIN')
    const single = awsRules.find((r) => r.rule.chain === 'AWS-SNAT-CHAIN-0' && r.rule.target.kind === 'return')
    if (bare) { eras.push('≤ v1.2 (single POSTROUTING SNAT rule)'); evidence.push(bare.rule.ref) }
    if (chan) { eras.push('v1.3–v1.5 (comment "AWS SNAT CHAN")'); evidence.push(chan.rule.ref) }
    if (numbered) eras.push('v1.3–v1.16.0 (numbered AWS-SNAT-CHAIN-0..N)')
    if (stateNew) { eras.push('≤ v1.12.0 (connmark jump with -m state --state NEW)'); evidence.push(stateNew.rule.ref) }
    if (single && !numbered) { eras.push('v1.16.1+ (single AWS-SNAT-CHAIN-0 with RETURN rules)'); evidence.push(single.rule.ref) }
    if (v123Legacy) { eras.push('v1.23+ iptables-legacy connmark'); evidence.push(v123Legacy.rule.ref) }
    if (awsCniNft) { eras.push('v1.23+ nftables connmark (table ip aws-cni)'); evidence.push(awsCniNft.ref) }
    const snatChain = ipt.find((t) => t.chains.has('AWS-SNAT-CHAIN-0'))?.chains.get('AWS-SNAT-CHAIN-0')
    const hasSnat = awsRules.some((r) => isAwsSnatRule(r.rule))
    const detail = snatChain && !hasSnat ? 'AWS-SNAT-CHAIN-0 is empty: AWS_VPC_K8S_CNI_EXTERNALSNAT=true' : undefined
    if (evidence.length === 0 && awsRules[0]) evidence.push(awsRules[0].rule.ref)
    out.push({ name: 'vpc-cni', ...(eras.length ? { era: eras.join('; ') } : {}), ...(detail ? { detail } : {}), evidence })
  }
  const kubeServices = ipt.find((t) => t.name === 'nat' && t.chains.has('KUBE-SERVICES'))
  const kpNft = tables.find((t) => t.origin === 'nft' && t.name === 'kube-proxy')
  if (kubeServices || kpNft) {
    const modes = [kubeServices ? 'iptables mode' : undefined, kpNft ? 'nftables mode' : undefined].filter(Boolean).join(' and ')
    const ev = kubeServices ? kubeServices.chains.get('KUBE-SERVICES')!.ref : kpNft!.ref
    out.push({ name: 'kube-proxy', era: modes, evidence: [ev] })
  }
  const others: [RegExp, Component['name']][] = [[/^CNI-E[46]-/, 'egress-cni'], [/^CNI-HOSTPORT-/, 'portmap'], [/^cali-/, 'calico'], [/^CILIUM_/, 'cilium'], [/^FLANNEL-/, 'flannel'], [/^IP-MASQ/, 'ip-masq-agent']]
  for (const [re, name] of others) {
    const t = ipt.find((x) => [...x.chains.keys()].some((c) => re.test(c)))
    if (t) {
      const chain = [...t.chains.values()].find((c) => re.test(c.name))!
      const masq = name === 'cilium' ? ciliumMasquerade(ipt) : undefined
      out.push({ name, ...(masq ? { detail: masq.detail } : {}), evidence: [chain.ref, ...(masq?.evidence ?? [])] })
    }
  }
  return out
}

/**
 * Cilium's iptables masquerading (enable-ipv4-masquerade without BPF masquerading) puts MASQUERADE/SNAT rules in
 * CILIUM_POST_nat. Its feeder is inserted at the top of nat POSTROUTING, so on a chained VPC CNI node those rules
 * translate before AWS-SNAT-CHAIN-0 is reached: the node's SNAT policy is no longer the VPC CNI's alone.
 */
function ciliumMasquerade(ipt: readonly Table[]): { detail: string; evidence: SourceRef[] } | undefined {
  const nat = ipt.find((t) => t.name === 'nat' && t.chains.has('CILIUM_POST_nat'))
  const rules = nat?.chains.get('CILIUM_POST_nat')?.rules.filter((r) => r.target.kind === 'masquerade' || r.target.kind === 'snat') ?? []
  if (!nat || rules.length === 0) return undefined
  const post = nat.chains.get('POSTROUTING')?.rules ?? []
  const feeder = post.findIndex((r) => r.target.kind === 'jump' && r.target.chain === 'CILIUM_POST_nat')
  const aws = post.findIndex((r) => (r.target.kind === 'jump' && r.target.chain.startsWith('AWS-SNAT-CHAIN')) || isAwsSnatRule(r))
  const ahead = feeder >= 0 && aws >= 0 && feeder < aws ? ', ahead of the VPC CNI\'s SNAT' : ''
  return { detail: `iptables masquerading: ${rules.length} MASQUERADE/SNAT rule${rules.length > 1 ? 's' : ''} in CILIUM_POST_nat${ahead}`, evidence: rules.map((r) => r.ref) }
}

function cidrFact(cidr: Cidr, source: CidrFact['source'], ref: SourceRef, into: CidrFact[]): void {
  if (!into.some((c) => c.cidr.family === cidr.family && c.cidr.network === cidr.network && c.cidr.prefix === cidr.prefix)) into.push({ cidr, source, ref })
}

function findCidrs(facts: NodeFacts, rules: { rule: Rule; table: Table }[]): { vpcCidrs: CidrFact[]; excludeCidrs: CidrFact[] } {
  const vpcCidrs: CidrFact[] = []
  const excludeCidrs: CidrFact[] = []
  for (const [key, s] of facts.imds) {
    if (/vpc-ipv[46]-cidr-blocks$/.test(key)) {
      for (const t of s.value.split(/[\s,]+/)) { const c = parseCidr(t); if (c) cidrFact(c, 'imds', s.ref, vpcCidrs) }
    }
  }
  const excl = facts.settings.get('AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS')
  if (excl) for (const t of excl.value.split(/[\s,]+/)) { const c = parseCidr(t); if (c) cidrFact(c, 'setting', excl.ref, excludeCidrs) }
  for (const { rule } of rules) {
    if (!rule.chain.startsWith('AWS-SNAT-CHAIN') && !rule.chain.startsWith('AWS-CONNMARK-CHAIN') && !(rule.chain === 'POSTROUTING' && isAwsSnatRule(rule))) continue
    const d = rule.matches.find((m) => m.kind === 'dst')
    if (!d || d.kind !== 'dst') continue
    const exclusion = /EXCLU/.test(rule.comment ?? '')
    const source = rule.chain.startsWith('AWS-CONNMARK') ? 'connmark-chain' : 'snat-chain'
    // Single-chain era: `-d CIDR -j RETURN`; numbered era and ≤1.2: `! -d CIDR -j <next>` / `! -d CIDR ... -j SNAT`.
    if ((rule.target.kind === 'return' && !d.negated) || (d.negated && (rule.target.kind === 'jump' || rule.target.kind === 'snat'))) {
      cidrFact(d.cidr, source, rule.ref, exclusion ? excludeCidrs : vpcCidrs)
    }
  }
  // ≤ v1.2: `1024: not from all to <VPC> lookup main`.
  for (const r of facts.routingRules) if (r.not && r.to && r.priority === 1024) cidrFact(r.to, 'ip-rule', r.ref, vpcCidrs)
  // An exclusion also listed as a VPC CIDR is a VPC CIDR.
  return { vpcCidrs, excludeCidrs: excludeCidrs.filter((e) => !vpcCidrs.some((v) => v.cidr.network === e.cidr.network && v.cidr.prefix === e.cidr.prefix && v.source !== 'setting')) }
}

function findVethPrefix(facts: NodeFacts, rules: { rule: Rule; table: Table }[]): string | undefined {
  const s = facts.settings.get('AWS_VPC_K8S_CNI_VETHPREFIX')
  for (const { rule, table } of rules) {
    const jumpsToConnmark = rule.target.kind === 'jump' && (rule.target.chain.startsWith('AWS-CONNMARK-CHAIN') || (table.origin === 'nft' && rule.target.chain === 'snat-mark'))
    if (!jumpsToConnmark) continue
    const i = rule.matches.find((m) => m.kind === 'in-iface')
    if (i && i.kind === 'in-iface' && i.wildcard) return i.name
  }
  return s?.value
}

function findConnmark(rules: { rule: Rule; table: Table }[]): number | undefined {
  for (const { rule, table } of rules) {
    const t = rule.target
    if (t.kind === 'connmark-set' && rule.chain.startsWith('AWS-CONNMARK-CHAIN')) return t.value
    if (t.kind === 'ctmark-expr' && table.name === 'aws-cni') return t.or
  }
  return undefined
}

function interfaceHolding(facts: NodeFacts, addr: IpAddress): string | undefined {
  for (const i of facts.interfaces) if (i.addresses.some((a) => sameIp(a.address, addr))) return i.name
  for (const r of facts.routes) if (r.table === 'local' && r.type === 'local' && r.dev && r.dst.prefix === (addr.family === 4 ? 32 : 128) && r.dst.network === addr.value) return r.dev
  return undefined
}

function findPrimary(facts: NodeFacts, rules: { rule: Rule; table: Table }[]): { interface?: string; address?: IpAddress; ref?: SourceRef } {
  const local = facts.imds.get('local-ipv4')
  if (local) {
    const a = parseCidr(local.value.trim())
    if (a && a.prefix === 32) {
      const addr = { family: 4 as const, value: a.network }
      const dev = interfaceHolding(facts, addr)
      return { ...(dev ? { interface: dev } : {}), address: addr, ref: local.ref }
    }
  }
  const snat = rules.find((r) => isAwsSnatRule(r.rule))
  if (snat && snat.rule.target.kind === 'snat' && snat.rule.target.to[0]?.minAddr) {
    const addr = snat.rule.target.to[0].minAddr
    const dev = interfaceHolding(facts, addr)
    return { ...(dev ? { interface: dev } : {}), address: addr, ref: snat.rule.ref }
  }
  const mangle = rules.find((r) => r.rule.comment === 'AWS, primary ENI' && r.rule.target.kind === 'connmark-set')
  const mangleIf = mangle?.rule.matches.find((m) => m.kind === 'in-iface')
  const mainDefault = facts.routes.find((r) => r.family === 4 && r.table === 'main' && r.dst.prefix === 0 && r.type === 'unicast')
  const dev = mangleIf && mangleIf.kind === 'in-iface' && !mangleIf.wildcard ? mangleIf.name : mainDefault?.dev
  if (!dev) return {}
  const iface = facts.interfaces.find((i) => i.name === dev)
  const addr = iface?.addresses.find((a) => a.address.family === 4 && !a.secondary)?.address
    ?? facts.routes.find((r) => r.table === 'main' && r.dev === dev && r.src && r.src.family === 4)?.src
  return { interface: dev, ...(addr ? { address: addr } : {}), ref: mangle?.rule.ref ?? mainDefault?.ref ?? NONE }
}

function findEnis(facts: NodeFacts, primaryIf: string | undefined): Eni[] {
  const enis: Eni[] = []
  const seen = new Set<string>()
  if (primaryIf) {
    const iface = facts.interfaces.find((i) => i.name === primaryIf)
    const address = iface?.addresses.find((a) => a.address.family === 4)?.address
    enis.push({ interface: primaryIf, primary: true, table: 'main', ...(address ? { address } : {}), trunk: false, ref: iface?.ref ?? NONE })
    seen.add(primaryIf)
  }
  // A per-ENI table holds `default via <gw> dev ethX`; the table's number is device-number + 1 (or 100+vlan for SGP).
  for (const r of facts.routes) {
    if (r.family !== 4 || r.dst.prefix !== 0 || !r.dev || ['main', 'local', 'default'].includes(r.table)) continue
    if (seen.has(r.dev) || r.dev.startsWith('vlan.')) continue
    seen.add(r.dev)
    const iface = facts.interfaces.find((i) => i.name === r.dev)
    const fromRule = facts.routingRules.find((x) => x.priority === 32765 && x.action.kind === 'lookup' && x.action.table === r.table && x.from)
    const address = fromRule?.from ? { family: 4 as const, value: fromRule.from.network } : iface?.addresses.find((a) => a.address.family === 4)?.address
    const trunk = facts.routes.some((x) => x.dev?.startsWith('vlan.') && x.dev.endsWith(`@${r.dev}`)) || facts.interfaces.some((i) => i.name.startsWith('vlan.') && i.linkName === r.dev)
    enis.push({ interface: r.dev, primary: false, table: r.table, ...(address ? { address } : {}), trunk, ref: r.ref })
  }
  return enis
}

function findPods(facts: NodeFacts, enis: Eni[], primaryIf: string | undefined, vethPrefix: string | undefined): Pod[] {
  const pods = new Map<string, Pod>()
  const prefix = vethPrefix ?? 'eni'
  const tableOwner = new Map(enis.filter((e) => e.table).map((e) => [e.table!, e.interface]))
  const fromRules = new Map<string, { table: string; ref: SourceRef }>()
  for (const r of facts.routingRules) {
    if (r.action.kind === 'lookup' && r.from && r.from.prefix === (r.family === 4 ? 32 : 128) && r.priority >= 1536 && r.priority < 32765 && !r.to) {
      fromRules.set(ipKey({ family: r.family, value: r.from.network }), { table: r.action.table, ref: r.ref })
    }
  }
  const kindOf = (dev: string, ip: IpAddress): PodKind | undefined => {
    if (dev.startsWith('vlan') && !dev.startsWith('vlan.')) return 'sgp-strict'
    if (ip.family === 4 && cidrContains(parseCidr('169.254.172.0/22')!, ip) && dev.startsWith('veth')) return 'egress-v4'
    if (ip.family === 6 && cidrContains(parseCidr('fd00::ac:0/118')!, ip) && dev.startsWith('veth')) return 'egress-v6'
    if (dev.startsWith(prefix)) return 'pod'
    return undefined
  }
  for (const r of facts.routes) {
    if (!r.dev || r.dst.prefix !== (r.family === 4 ? 32 : 128) || r.type !== 'unicast' || r.via) continue
    const ip = { family: r.family, value: r.dst.network }
    const kind = kindOf(r.dev, ip)
    if (!kind) continue
    const from = fromRules.get(ipKey(ip))
    let eni = primaryIf
    let finalKind: PodKind = kind
    if (from) {
      const owner = tableOwner.get(from.table)
      const vlanRoute = facts.routes.find((x) => x.table === from.table && x.dst.prefix === 0 && x.dev?.startsWith('vlan.'))
      if (vlanRoute) { eni = vlanRoute.dev; if (kind === 'pod') finalKind = 'sgp-standard' }
      else if (owner) eni = owner
    }
    if (kind === 'sgp-strict') {
      const vlanRoute = facts.routes.find((x) => x.table === r.table && x.dst.prefix === 0 && x.dev?.startsWith('vlan.'))
      if (vlanRoute?.dev) eni = vlanRoute.dev
    }
    const ipam = facts.ipamdEnis.flatMap((e) => e.addresses).find((a) => sameIp(a.address, ip))
    pods.set(ipKey(ip), {
      ip, hostVeth: r.dev, ...(eni ? { eni } : {}), ...(from ? { table: from.table } : kind === 'sgp-strict' ? { table: r.table } : {}),
      kind: finalKind, ...(ipam?.pod ? { name: `${ipam.namespace ?? ''}/${ipam.pod}` } : {}), ref: r.ref,
    })
  }
  // Pods known only from their ip rules (the routes were not collected).
  for (const r of facts.routingRules) {
    if (r.priority !== 512 || !r.to || r.to.prefix !== (r.family === 4 ? 32 : 128)) continue
    const ip = { family: r.family, value: r.to.network }
    if (pods.has(ipKey(ip))) continue
    const from = fromRules.get(ipKey(ip))
    const eni = from ? tableOwner.get(from.table) : primaryIf
    pods.set(ipKey(ip), { ip, ...(eni ? { eni } : {}), ...(from ? { table: from.table } : {}), kind: 'pod', ref: r.ref })
  }
  return [...pods.values()]
}

function findInconsistencies(facts: NodeFacts, rules: { rule: Rule; table: Table }[]): Diagnostic[] {
  const out: Diagnostic[] = []
  const populated = (origin: string) => facts.tables.some((t) => t.origin === origin && [...t.chains.values()].some((c) => c.rules.length > 0))
  if (populated('iptables-legacy') && populated('iptables-nft')) {
    out.push({ severity: 'warning', code: 'netfilter.both-backends', artifact: '(node)', message: 'iptables-legacy and iptables-nft both hold rules: the kernel runs both, each at its own hook priority' })
  }
  const localAddrs = facts.interfaces.flatMap((i) => i.addresses.map((a) => a.address))
  if (localAddrs.length > 0) {
    for (const { rule } of rules) {
      if (rule.target.kind !== 'snat') continue
      const to = rule.target.to[0]?.minAddr
      if (to && !localAddrs.some((a) => sameIp(a, to))) {
        out.push({ severity: 'warning', code: 'snat.address-not-on-node', artifact: rule.ref.artifact, line: rule.ref.line, text: rule.ref.text, message: `SNAT to ${formatIp(to)}, which is not an address of any interface on the node` })
      }
    }
  }
  return out
}

function describeSnatPolicy(facts: NodeFacts, d: Derived, rules: { rule: Rule; table: Table }[]): string | undefined {
  const snat = rules.find((r) => isAwsSnatRule(r.rule))
  const vpc = d.components.find((c) => c.name === 'vpc-cni')
  if (!snat) {
    if (vpc) {
      const ext = facts.settings.get('AWS_VPC_K8S_CNI_EXTERNALSNAT')
      return `the VPC CNI SNATs nothing (no AWS SNAT rule${ext ? `; AWS_VPC_K8S_CNI_EXTERNALSNAT=${ext.value}` : ''}): pod traffic leaves with the pod's own address, and off-VPC traffic needs a NAT gateway`
    }
    return undefined
  }
  const t = snat.rule.target
  const to = t.kind === 'snat' && t.to[0]?.minAddr ? formatIp(t.to[0].minAddr) : '?'
  // The rule's own family: an IPv4 SNAT chain exempts nothing of the VPC's IPv6 blocks (IMDS vpc-ipv6-cidr-blocks).
  const family = t.kind === 'snat' ? t.to[0]?.minAddr?.family : undefined
  const exempt = [...d.vpcCidrs, ...d.excludeCidrs].filter((c) => family === undefined || c.cidr.family === family).map((c) => formatCidr(c.cidr))
  const notVlan = snat.rule.matches.some((m) => m.kind === 'out-iface' && m.negated && m.name === 'vlan')
  const where = `${snat.rule.ref.artifact}:${snat.rule.ref.line}`
  return `traffic from pods to anything outside ${exempt.length ? exempt.join(' and ') : '(no exempt CIDR found)'} leaves as ${to}${notVlan ? ', unless it leaves through a vlan interface (security groups for pods)' : ''}: rule ${where}`
}

