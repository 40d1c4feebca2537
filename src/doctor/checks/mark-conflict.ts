// kube-proxy and the VPC CNI disagreeing about marks. kube-proxy marks packets to masquerade with bit 0x4000
// (KUBE-MARK-MASQ, tested in KUBE-POSTROUTING); the VPC CNI marks off-VPC and NodePort connections with 0x80
// (AWS_VPC_K8S_CNI_CONNMARK), restores it into the packet mark and routes it with `1024: fwmark 0x80/0x80`. If the
// bits overlap, pods' traffic is masqueraded or routed by the other component's mark; if the CNI's own rules use
// different values, marked traffic misses rule 1024 and leaves through the pod's ENI.
import { ownerOfRule } from '../../model/owner.js'
import type { SourceRef } from '../../model/evidence.js'
import type { Check, Finding } from '../model.js'
import { uniqueEvidence } from '../model.js'
import { parseMark } from '../../intent/inputs.js'

const hex = (n: number) => `0x${(n >>> 0).toString(16)}`

interface MarkUse { bits: number; what: string; ref: SourceRef }

export const markConflict: Check = {
  id: 'mark-conflict',
  description: 'kube-proxy\'s masquerade mark (0x4000) and the VPC CNI\'s connmark (0x80) overlap, or the CNI\'s rules and ip rule 1024 use different marks',
  run(ctx) {
    const state = ctx.state
    const kube: MarkUse[] = []
    const cni: MarkUse[] = []
    for (const table of state.tables) {
      for (const chain of table.chains.values()) {
        for (const rule of chain.rules) {
          const owner = ownerOfRule(rule, table)
          const t = rule.target
          if (owner === 'kube-proxy') {
            if ((chain.name === 'KUBE-MARK-MASQ' || chain.name === 'mark-for-masquerade') && t.kind === 'mark' && t.value !== 0) kube.push({ bits: t.value, what: `${chain.name} sets ${hex(t.value)}`, ref: rule.ref })
            for (const m of rule.matches) if (m.kind === 'mark' && (chain.name === 'KUBE-POSTROUTING' || chain.name === 'masquerading')) kube.push({ bits: m.mask, what: `${chain.name} tests ${hex(m.value)}/${hex(m.mask)}`, ref: rule.ref })
          }
          if (owner !== 'vpc-cni') continue
          if (t.kind === 'connmark-set') cni.push({ bits: t.value, what: `${table.name} ${chain.name} sets connmark ${hex(t.value)}/${hex(t.mask)}`, ref: rule.ref })
          if (t.kind === 'connmark-restore') cni.push({ bits: t.nfmask | t.ctmask, what: `${table.name} ${chain.name} restores connmark with masks ${hex(t.nfmask)}/${hex(t.ctmask)}`, ref: rule.ref })
          if (t.kind === 'ctmark-expr' && t.or) cni.push({ bits: t.or, what: `nft ${chain.name} sets ct mark | ${hex(t.or)}`, ref: rule.ref })
          if (t.kind === 'mark-from-ct') cni.push({ bits: t.and, what: `nft ${chain.name} copies ct mark & ${hex(t.and)}`, ref: rule.ref })
        }
      }
    }
    for (const r of state.routingRules) {
      if (r.priority === 1024 && r.fwmark && r.action.kind === 'lookup' && r.action.table === 'main') cni.push({ bits: r.fwmark.value | r.fwmark.mask, what: `ip rule ${r.priority} matches fwmark ${hex(r.fwmark.value)}/${hex(r.fwmark.mask)}`, ref: r.ref })
    }
    const setting = state.settings.get('AWS_VPC_K8S_CNI_CONNMARK')
    const settingMark = parseMark(setting?.value)
    if (setting && settingMark !== undefined) cni.push({ bits: settingMark, what: `AWS_VPC_K8S_CNI_CONNMARK=${setting.value.trim()} (${hex(settingMark)})`, ref: setting.ref })
    if (kube.length === 0 && cni.length === 0) return { skip: 'no kube-proxy or VPC CNI marks in the bundle' }
    const out: Finding[] = []
    const kubeBits = kube.reduce((b, k) => b | k.bits, 0)
    const overlapping = cni.filter((c) => (c.bits & kubeBits) !== 0)
    if (overlapping.length) {
      out.push({
        id: 'mark-conflict', severity: 'error',
        title: `The VPC CNI's mark overlaps kube-proxy's masquerade bit ${hex(kubeBits)}`,
        detail: `kube-proxy masquerades every packet that carries ${hex(kubeBits)} in nat POSTROUTING; the VPC CNI's rules use the same bit:\n${overlapping.map((c) => `  ${c.what}`).join('\n')}\nOff-VPC pod connections (marked by the CNI) are then masqueraded by kube-proxy to the egress interface's address, and packets kube-proxy marks for masquerade match rule 1024 and are routed through the main table.`,
        evidence: uniqueEvidence([...kube.map((k) => k.ref), ...overlapping.map((c) => c.ref)]),
        fix: `Give the VPC CNI a bit of its own (AWS_VPC_K8S_CNI_CONNMARK=0x80, the default) or move kube-proxy's (--iptables-masquerade-bit, default 14 = 0x4000), then restart both so they rewrite their rules.`,
      })
    }
    const distinct = [...new Set(cni.map((c) => c.bits))]
    if (distinct.length > 1) {
      out.push({
        id: 'mark-conflict', severity: 'error',
        title: `The VPC CNI's rules use different marks: ${distinct.map(hex).join(', ')}`,
        detail: `The mark set on off-VPC and NodePort connections, the masks that restore it into the packet mark, and the fwmark ip rule 1024 matches must be the same bit(s):\n${cni.map((c) => `  ${c.what}`).join('\n')}\nA marked packet whose mark rule 1024 does not match uses the pod's ENI table and leaves through that ENI (SNATed to the primary ENI's address, which the VPC drops).`,
        evidence: uniqueEvidence(cni.map((c) => c.ref)),
        fix: 'Restart aws-node so ipamd rewrites its chains, mangle rules and rule 1024 with AWS_VPC_K8S_CNI_CONNMARK; delete rules a previous value left behind.',
      })
    }
    return out
  },
}
