// The rules the VPC CNI installs for a set of inputs, per era, written as the text vpc-cni.md gives (iptables-save
// layout, `nft list` layout, `ip rule show` layout) and read back with natlens's own parsers, so installed and
// intended rules share one semantics.
import { formatCidr, formatIp, type Cidr } from '../model/ip.js'
import type { SourceRef } from '../model/evidence.js'
import { makeContext } from '../parse/context.js'
import { parseIptablesSave } from '../parse/iptables.js'
import { parseNftRuleset } from '../parse/nft.js'
import { parseIpRules } from '../parse/ip-rule.js'
import type { Intent, IntentInputs, IntentIpRule, IntentLine } from './model.js'
import { ERA_LABEL } from './model.js'

export const INTENT_ARTIFACTS = {
  iptables: '(intent) iptables-save',
  nft: '(intent) nft list table ip aws-cni',
  ipRules: '(intent) ip rule',
} as const

/** Text being written, with why each line is there. */
class Lines {
  readonly text: string[] = []
  readonly why = new Map<number, IntentLine>()
  add(line: string, why?: string, because: readonly (SourceRef | undefined)[] = []): void {
    this.text.push(line)
    if (why) this.why.set(this.text.length, { why, because: because.filter((b): b is SourceRef => !!b) })
  }
  toString(): string {
    return this.text.length ? `${this.text.join('\n')}\n` : ''
  }
}

const hex = (n: number) => `0x${(n >>> 0).toString(16)}`

interface Exempt { cidr: Cidr; excluded: boolean; ref?: SourceRef }

function exemptions(inputs: IntentInputs): Exempt[] {
  // VPC CIDRs first, then the exclusions (v1.6.0+ order; vpc-cni.md §2.1, §2.2).
  return [
    ...inputs.vpcCidrs.map((c) => ({ cidr: c.cidr, excluded: false, ...(c.ref ? { ref: c.ref } : {}) })),
    ...inputs.excludeCidrs.map((c) => ({ cidr: c.cidr, excluded: true, ...(c.ref ? { ref: c.ref } : {}) })),
  ]
}

function randomFlag(inputs: IntentInputs): string {
  if (inputs.era.era === 'v1.2') return '' // the option arrived in v1.4.0
  const r = inputs.randomizeSnat.value
  return r === 'prng' ? ' --random-fully' : r === 'hashrandom' ? ' --random' : ''
}

/** iptables-save text for the mangle and nat tables (vpc-cni.md §2, §3). */
function iptablesText(inputs: IntentInputs): Lines {
  const out = new Lines()
  const era = inputs.era
  if (era.era === 'ipv6') return out // UpdateHostSNATRules returns before any IPv4 rule (§6.1).
  const mark = hex(inputs.connmark.value)
  const prefix = inputs.vethPrefix.value
  const ext = inputs.externalSnat.value
  const np = inputs.nodePortSupport
  const why = { ext: inputs.externalSnat.ref, mark: inputs.connmark.ref, veth: inputs.vethPrefix.ref, np: np.ref }
  const v123 = era.era === 'v1.23-legacy' || era.era === 'v1.23-nft'
  const dst = (c: Cidr, negated = false) => (v123 && c.prefix === 0 ? '' : `${negated ? '! ' : ''}-d ${formatCidr(c)} `)

  // mangle (§3): eth0 set-mark with NodePort support; eni+ restore with NodePort support or !EXTERNALSNAT (the "or"
  // since v1.12.1, #2026); vlan+ restore (v1.7.0+) with NodePort support.
  out.add('*mangle')
  for (const c of ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']) out.add(`:${c} ACCEPT [0:0]`)
  const before1121 = era.era === 'v1.2' || (era.era === 'numbered' && era.stateNew)
  if (np.value) out.add(`-A PREROUTING -i ${inputs.primaryInterface.value} -m comment --comment "AWS, primary ENI" -m addrtype --dst-type LOCAL --limit-iface-in -j CONNMARK --set-xmark ${mark}/${mark}`,
    `NodePort support: connections that arrive on the primary interface ${inputs.primaryInterface.value} for a local address get connmark ${mark}`, [why.np, inputs.primaryInterface.ref, why.mark])
  if (np.value || (!ext && !before1121)) out.add(`-A PREROUTING -i ${prefix}+ -m comment --comment "AWS, primary ENI" -j CONNMARK --restore-mark --nfmask ${mark} --ctmask ${mark}`,
    `replies from pods (${prefix}+) take the connection's mark ${mark}${np.value ? ' (NodePort support)' : ' (EXTERNALSNAT=false)'}`, [why.np, why.ext, why.veth, why.mark])
  if (np.value && era.vlan) out.add(`-A PREROUTING -i vlan+ -m comment --comment "AWS, primary ENI" -j CONNMARK --restore-mark --nfmask ${mark} --ctmask ${mark}`,
    `replies from security-group pods (vlan+) take the connection's mark ${mark} (NodePort support)`, [why.np, why.mark])
  out.add('COMMIT')

  out.add('*nat')
  for (const c of ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING']) out.add(`:${c} ACCEPT [0:0]`)
  const ip = inputs.nodeIp.value ? formatIp(inputs.nodeIp.value) : '0.0.0.0'
  const snatWhy = `EXTERNALSNAT=false: traffic to anything outside the exempt CIDRs is SNATed to the node's primary address ${ip}`
  const snatBecause = [why.ext, inputs.nodeIp.ref, inputs.randomizeSnat.ref]
  const cidrs = exemptions(inputs)
  const exemptWhy = (e: Exempt, what: string) => e.excluded ? `AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS has ${formatCidr(e.cidr)}: ${what}` : `${formatCidr(e.cidr)} is a VPC CIDR: ${what}`

  if (era.era === 'v1.2') {
    // §2.2: no chain; one VPC CIDR.
    if (!ext && cidrs[0]) out.add(`-A POSTROUTING ! -d ${formatCidr(cidrs[0].cidr)} -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL -j SNAT --to-source ${ip}`, snatWhy, [...snatBecause, cidrs[0].ref])
    out.add('COMMIT')
    return out
  }

  if (era.era === 'numbered') {
    const n = cidrs.length
    // Chains are created unconditionally, so EXTERNALSNAT=true leaves them declared and empty (§10 pitfall 6).
    if (era.connmarkChains) for (let i = 0; i <= n; i++) out.add(`:AWS-CONNMARK-CHAIN-${i} - [0:0]`)
    for (let i = 0; i <= n; i++) out.add(`:AWS-SNAT-CHAIN-${i} - [0:0]`)
    if (!ext) {
      if (era.connmarkChains) {
        out.add(`-A PREROUTING -i ${prefix}+ -m comment --comment "AWS, outbound connections"${era.stateNew ? ' -m state --state NEW' : ''} -j AWS-CONNMARK-CHAIN-0`, `EXTERNALSNAT=false: connections from pods (${prefix}+) are checked for off-VPC destinations`, [why.ext, why.veth])
        out.add(`-A PREROUTING -m comment --comment "AWS, CONNMARK" -j CONNMARK --restore-mark --nfmask ${mark} --ctmask ${mark}`, `EXTERNALSNAT=false: the connection's mark ${mark} becomes the packet's mark for rule 1024`, [why.ext, why.mark])
      }
      out.add('-A POSTROUTING -m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-0', 'EXTERNALSNAT=false: the SNAT chain', [why.ext])
      cidrs.forEach((c, i) => {
        if (era.connmarkChains) out.add(`-A AWS-CONNMARK-CHAIN-${i} ! -d ${formatCidr(c.cidr)} -m comment --comment "AWS CONNMARK CHAIN, ${c.excluded ? 'EXCLUDED CIDR' : 'VPC CIDR'}" -j AWS-CONNMARK-CHAIN-${i + 1}`, exemptWhy(c, 'not marked'), [c.ref])
        out.add(`-A AWS-SNAT-CHAIN-${i} ! -d ${formatCidr(c.cidr)} -m comment --comment "AWS SNAT CHAIN${c.excluded ? ' EXCLUSION' : ''}" -j AWS-SNAT-CHAIN-${i + 1}`, exemptWhy(c, 'not SNATed'), [c.ref])
      })
      if (era.connmarkChains) out.add(`-A AWS-CONNMARK-CHAIN-${n} -m comment --comment "AWS, CONNMARK" -j CONNMARK --set-xmark ${mark}/${mark}`, `EXTERNALSNAT=false: off-VPC connections from pods get connmark ${mark}`, [why.ext, why.mark])
      out.add(`-A AWS-SNAT-CHAIN-${n} ${era.vlan ? '! -o vlan+ ' : ''}-m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL -j SNAT --to-source ${ip}${randomFlag(inputs)}`, snatWhy, snatBecause)
    }
    out.add('COMMIT')
    return out
  }

  // Single chain (v1.16.1+). RETURN rules are inserted at position 1, so the list ends up reversed (§2.1).
  const reversed = [...cidrs].reverse()
  const connmarkInIptables = era.era === 'single' || era.era === 'v1.23-legacy'
  // v1.16–v1.22 keep an empty AWS-CONNMARK-CHAIN-0 with EXTERNALSNAT=true; v1.23 deletes it (§2.3).
  if (era.era === 'single' || (era.era === 'v1.23-legacy' && !ext)) out.add(':AWS-CONNMARK-CHAIN-0 - [0:0]')
  out.add(':AWS-SNAT-CHAIN-0 - [0:0]')
  if (!ext) {
    if (connmarkInIptables) {
      out.add(`-A PREROUTING -i ${prefix}+ -m comment --comment "AWS, outbound connections" -j AWS-CONNMARK-CHAIN-0`, `EXTERNALSNAT=false: connections from pods (${prefix}+) are checked for off-VPC destinations`, [why.ext, why.veth])
      out.add(`-A PREROUTING -m comment --comment "AWS, CONNMARK" -j CONNMARK --restore-mark --nfmask ${mark} --ctmask ${mark}`, `EXTERNALSNAT=false: the connection's mark ${mark} becomes the packet's mark for rule 1024`, [why.ext, why.mark])
    }
    out.add('-A POSTROUTING -m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-0', 'EXTERNALSNAT=false: the SNAT chain', [why.ext])
    if (connmarkInIptables) {
      for (const c of reversed) {
        const comment = era.era === 'v1.23-legacy' ? 'AWS CONNMARK CHAIN' : `AWS CONNMARK CHAIN, ${c.excluded ? 'EXCLUDED CIDR' : 'VPC CIDR'}`
        out.add(`-A AWS-CONNMARK-CHAIN-0 ${dst(c.cidr)}-m comment --comment "${comment}" -j RETURN`, exemptWhy(c, 'not marked'), [c.ref])
      }
      out.add(`-A AWS-CONNMARK-CHAIN-0 -m comment --comment "AWS, CONNMARK" -j CONNMARK --set-xmark ${mark}/${mark}`, `EXTERNALSNAT=false: off-VPC connections from pods get connmark ${mark}`, [why.ext, why.mark])
    }
    for (const c of reversed) out.add(`-A AWS-SNAT-CHAIN-0 ${dst(c.cidr)}-m comment --comment "${c.excluded ? 'AWS SNAT CHAIN EXCLUSION' : 'AWS SNAT CHAIN'}" -j RETURN`, exemptWhy(c, 'not SNATed'), [c.ref])
    out.add(`-A AWS-SNAT-CHAIN-0 ! -o vlan+ -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL -j SNAT --to-source ${ip}${randomFlag(inputs)}`, snatWhy, snatBecause)
  }
  out.add('COMMIT')
  return out
}

/** v1.23 on nf_tables: the connmark in `table ip aws-cni` at priority -90, after kube-proxy's DNAT (§2.4). */
function nftText(inputs: IntentInputs): Lines | null {
  if (inputs.era.era !== 'v1.23-nft' || inputs.externalSnat.value) return null
  const out = new Lines()
  const mark = `0x${inputs.connmark.value.toString(16).padStart(8, '0')}`
  const ext = inputs.externalSnat.ref
  out.add('table ip aws-cni {')
  out.add('\tchain nat-prerouting {')
  out.add('\t\ttype nat hook prerouting priority -90; policy accept;')
  out.add('\t\tfib daddr type local return', 'traffic to the node\'s own addresses is never marked', [ext])
  out.add(`\t\tiifname "${inputs.vethPrefix.value}*" counter jump snat-mark`, `EXTERNALSNAT=false: connections from pods (${inputs.vethPrefix.value}*) are checked for off-VPC destinations`, [ext, inputs.vethPrefix.ref])
  out.add(`\t\tcounter meta mark set ct mark & ${mark}`, `the connection's mark ${hex(inputs.connmark.value)} becomes the packet's mark for rule 1024`, [ext, inputs.connmark.ref])
  out.add('\t}')
  out.add('\tchain snat-mark {')
  for (const c of [...exemptions(inputs)].reverse()) {
    out.add(c.cidr.prefix === 0 ? '\t\tcounter return' : `\t\tcounter ip daddr ${formatCidr(c.cidr)} return`,
      c.excluded ? `AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS has ${formatCidr(c.cidr)}: not marked` : `${formatCidr(c.cidr)} is a VPC CIDR: not marked`, [c.ref])
  }
  out.add(`\t\tcounter ct mark set ct mark | ${mark}`, `off-VPC connections from pods get connmark ${hex(inputs.connmark.value)}`, [ext, inputs.connmark.ref])
  out.add('\t}')
  out.add('}')
  return out
}

interface RuleLine { text: string; optional: boolean; pod?: IntentIpRule['pod']; why: string; because: readonly (SourceRef | undefined)[] }

/** The ip rules (vpc-cni.md §4.1) for one family, as `ip rule show` prints them. */
function ipRuleLines(inputs: IntentInputs, family: 4 | 6): RuleLine[] {
  const era = inputs.era
  const out: RuleLine[] = []
  const v6 = era.era === 'ipv6'
  if ((family === 6) !== v6) return out
  const ext = inputs.externalSnat.value
  const np = inputs.nodePortSupport.value
  const mark = hex(inputs.connmark.value)
  const ipOf = (a: { family: number }) => a.family === family
  for (const p of inputs.pods) {
    const pod = p.pod
    if (!ipOf(pod.ip)) continue
    const ip = formatIp(pod.ip)
    if (pod.kind === 'sgp-strict') {
      // Strict branch pods: no 512/1536; `10: iif vlan.eth.N` and `10: iif vlan<hash>` to table 100+N (§5).
      if (p.table && pod.eni?.startsWith('vlan.')) out.push({ text: `10:\tfrom all iif ${pod.eni} lookup ${p.table}`, optional: false, pod: pod.ip, why: `security-group pod ${ip} (strict): traffic from its VLAN uses table ${p.table}`, because: [pod.ref] })
      if (p.table && pod.hostVeth) out.push({ text: `10:\tfrom all iif ${pod.hostVeth} lookup ${p.table}`, optional: false, pod: pod.ip, why: `security-group pod ${ip} (strict): traffic from its veth uses table ${p.table}`, because: [pod.ref] })
      continue
    }
    out.push({ text: `512:\tfrom all to ${ip} lookup main`, optional: false, pod: pod.ip, why: `pod ${ip}: traffic to the pod uses the main table (its host route)`, because: [pod.ref] })
    if (!p.table) continue
    if (era.era === 'numbered' && !era.connmarkChains && !ext) {
      // v1.3–v1.7 with SNAT on: one from-pod rule per exempt CIDR (§4.1 legacy row).
      for (const c of exemptions(inputs)) out.push({ text: `1536:\tfrom ${ip} to ${formatCidr(c.cidr)} lookup ${p.table}`, optional: false, pod: pod.ip, why: `pod ${ip} on table ${p.table}: traffic to ${formatCidr(c.cidr)} leaves through its ENI`, because: [p.tableRef, c.ref] })
    } else {
      out.push({ text: `1536:\tfrom ${ip} lookup ${p.table}`, optional: false, pod: pod.ip, why: `pod ${ip} has an address of the ENI of table ${p.table}: its traffic leaves through that ENI`, because: [p.tableRef] })
    }
  }
  // 1024 fwmark: NodePort support or !EXTERNALSNAT (the "or" since v1.12.1; before, NodePort support only).
  const before1121 = era.era === 'v1.2' || (era.era === 'numbered' && era.stateNew)
  if (np || (!ext && !before1121)) out.push({ text: `1024:\tfrom all fwmark ${mark}/${mark} lookup main`, optional: false, why: `marked traffic (${mark}) uses the main table: off-VPC pod traffic and NodePort replies leave through the primary ENI`, because: [inputs.nodePortSupport.ref, inputs.externalSnat.ref, inputs.connmark.ref] })
  if (v6) return out
  if (era.era === 'v1.2' && !ext && inputs.vpcCidrs[0]) {
    out.push({ text: `1024:\tnot from all to ${formatCidr(inputs.vpcCidrs[0].cidr)} lookup main`, optional: false, why: 'v1.2: off-VPC traffic uses the main table', because: [inputs.vpcCidrs[0].ref, inputs.externalSnat.ref] })
  }
  for (const c of inputs.externalServiceCidrs) out.push({ text: `1535:\tfrom all to ${formatCidr(c.cidr)} lookup main`, optional: false, why: `AWS_EXTERNAL_SERVICE_CIDRS has ${formatCidr(c.cidr)}: it is reached through the main table`, because: [c.ref] })
  // 32765 per managed secondary ENI from v1.20; the AMI may add it too, so only v1.23 makes it required.
  const v123 = era.era === 'v1.23-legacy' || era.era === 'v1.23-nft'
  for (const e of inputs.enis) {
    if (e.primary || e.trunk || !e.address || !e.table || e.address.family !== 4) continue
    out.push({ text: `32765:\tfrom ${formatIp(e.address)} lookup ${e.table}`, optional: !v123, why: `traffic from ${e.interface}'s own address ${formatIp(e.address)} leaves through ${e.interface} (table ${e.table})`, because: [e.ref] })
  }
  return out
}

export function generateIntent(inputs: IntentInputs): Intent {
  const ipt = iptablesText(inputs)
  const nft = nftText(inputs)
  const iptablesTextStr = ipt.toString()
  const nftStr = nft?.toString() ?? null
  const tables = iptablesTextStr ? parseIptablesSave(iptablesTextStr, makeContext(INTENT_ARTIFACTS.iptables)) : []
  if (nftStr) tables.push(...parseNftRuleset(nftStr, makeContext(INTENT_ARTIFACTS.nft)))
  const ipRules: IntentIpRule[] = []
  for (const family of [4, 6] as const) {
    const lines = ipRuleLines(inputs, family)
    if (lines.length === 0) continue
    const parsed = parseIpRules(lines.map((l) => l.text).join('\n') + '\n', makeContext(INTENT_ARTIFACTS.ipRules, { family }))
    parsed.forEach((rule, i) => {
      const l = lines[i]!
      ipRules.push({ rule, optional: l.optional, ...(l.pod ? { pod: l.pod } : {}), why: l.why, because: l.because.filter((b): b is SourceRef => !!b) })
    })
  }
  return { inputs, iptablesText: iptablesTextStr, nftText: nftStr, tables, iptablesLines: ipt.why, nftLines: nft?.why ?? new Map(), ipRules, artifacts: INTENT_ARTIFACTS }
}

/** One line for people: which era and inputs the intent was made for. */
export function describeInputs(inputs: IntentInputs): string {
  const cidrs = (xs: readonly { cidr: Cidr }[]) => (xs.length ? xs.map((c) => formatCidr(c.cidr)).join(', ') : 'none')
  return `${ERA_LABEL[inputs.era.era]}; EXTERNALSNAT=${inputs.externalSnat.value}, VPC CIDRs ${cidrs(inputs.vpcCidrs)}, excluded ${cidrs(inputs.excludeCidrs)}, RANDOMIZESNAT=${inputs.randomizeSnat.value}, mark ${hex(inputs.connmark.value)}, veth prefix ${inputs.vethPrefix.value}`
}
