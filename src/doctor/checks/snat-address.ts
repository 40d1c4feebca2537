// SNAT to an address that is not on the node: replies come back to an address the node does not own (or the VPC
// drops the packet because no ENI of the node holds that source), so the connection never completes.
import { formatIp, sameIp, type IpAddress } from '../../model/ip.js'
import { prepare } from '../../engine/explain.js'
import type { Check, Finding } from '../model.js'
import { uniqueEvidence } from '../model.js'

export const snatAddress: Check = {
  id: 'snat-address',
  description: 'SNAT --to-source an address that no interface of the node holds, or not the node\'s primary address',
  run(ctx) {
    const state = ctx.state
    const addresses = prepare(state).addresses
    if (!addresses.known) return { skip: 'the node\'s addresses are not in the bundle (ip addr or ip route show table all)' }
    const out: Finding[] = []
    const local = state.imds.get('local-ipv4')
    for (const table of state.tables) {
      for (const chain of table.chains.values()) {
        for (const rule of chain.rules) {
          const t = rule.target
          if (t.kind !== 'snat') continue
          for (const range of t.to) {
            if (!range.minAddr) continue
            const addrs: IpAddress[] = [range.minAddr, ...(range.maxAddr && !sameIp(range.maxAddr, range.minAddr) ? [range.maxAddr] : [])]
            const foreign = addrs.filter((a) => !addresses.isLocal(a))
            if (foreign.length === 0) continue
            out.push({
              id: 'snat-address', severity: 'error',
              title: `SNAT to ${foreign.map(formatIp).join(', ')}, which is not an address of this node`,
              detail: `${table.name} ${chain.name} rewrites the source to ${foreign.map(formatIp).join(', ')}, but no interface of the node holds it${local ? ` (IMDS local-ipv4 is ${local.value.trim()})` : ''}: replies are not delivered to the node and the VPC drops packets whose source is not an address of the ENI they leave through. A node whose primary address changed, or rules copied from another node.`,
              evidence: uniqueEvidence([rule.ref, local?.ref]),
              fix: rule.comment === 'AWS, SNAT' || rule.chain.startsWith('AWS-SNAT') ? 'Restart aws-node (`kubectl -n kube-system rollout restart daemonset aws-node`): ipamd writes the SNAT rule with IMDS local-ipv4.' : `Correct or delete the rule: iptables -t ${table.name} ${rule.ref.text.replace(/^\s*\[\d+:\d+\]\s+/, '').replace(/^-A /, '-D ')}`,
            })
          }
        }
      }
    }
    return out
  },
}
