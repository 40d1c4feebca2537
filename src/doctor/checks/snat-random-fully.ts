// SNAT without --random-fully: the kernel then tries to keep the pod's own source port and searches for a free one
// only on a clash, so two pods connecting to the same destination at the same moment race for one tuple and one
// connection fails (conntrack insert_failed). The VPC CNI adds --random-fully with RANDOMIZESNAT=prng (the default).
import { ownerOfRule } from '../../model/owner.js'
import type { Check, Finding } from '../model.js'
import { evidenceOf } from '../model.js'

export const snatRandomFully: Check = {
  id: 'snat-random-fully',
  description: 'SNAT or MASQUERADE without --random-fully (source-port collisions under load)',
  run(ctx) {
    const state = ctx.state
    if (state.tables.length === 0) return { skip: 'no iptables or nft rules in the bundle' }
    const out: Finding[] = []
    const rnd = state.settings.get('AWS_VPC_K8S_CNI_RANDOMIZESNAT')
    for (const table of state.tables) {
      for (const chain of table.chains.values()) {
        for (const rule of chain.rules) {
          const t = rule.target
          if ((t.kind !== 'snat' && t.kind !== 'masquerade') || t.randomFully) continue
          const owner = ownerOfRule(rule, table)
          const cni = owner === 'vpc-cni' || owner === 'egress-cni'
          const what = t.kind === 'snat' ? 'SNAT' : 'MASQUERADE'
          out.push({
            id: 'snat-random-fully', severity: cni || owner === 'kube-proxy' ? 'warning' : 'info',
            title: `${what} in ${table.name} ${chain.name} without --random-fully${t.random ? ' (--random only)' : ''}`,
            detail: `${owner === 'unknown' ? 'A hand-written' : `The ${owner}`} ${what} rule ${t.random ? 'hashes the source port (--random) but does not pick it at random for every connection' : 'keeps the original source port when it can'}: concurrent connections to the same destination race for the same tuple and lose (conntrack insert_failed, a dropped SYN).${cni && rnd ? ` AWS_VPC_K8S_CNI_RANDOMIZESNAT=${rnd.value}.` : ''}`,
            evidence: [evidenceOf(rule.ref), ...(cni && rnd ? [evidenceOf(rnd.ref)] : [])],
            fix: cni ? 'Set AWS_VPC_K8S_CNI_RANDOMIZESNAT=prng on the aws-node daemonset (the default; it falls back to --random only when iptables lacks random-fully).'
              : owner === 'kube-proxy' ? 'kube-proxy adds --random-fully when its iptables binary supports it: update the kube-proxy image.' : 'Add --random-fully to the rule.',
          })
        }
      }
    }
    return out
  },
}
