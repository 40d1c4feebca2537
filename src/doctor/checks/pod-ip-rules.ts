// A pod without its ip rules: `512: to <pod> lookup main` and, for a pod whose address belongs to a secondary ENI,
// `1536: from <pod> lookup <ENI table>` (vpc-cni.md §4.1). ipamd re-creates them when it starts; after a restart
// that failed half-way, or a manual `ip rule flush`, the pod's traffic takes the wrong ENI or never comes back.
import { formatIp, ipKey, type IpAddress } from '../../model/ip.js'
import type { SourceRef } from '../../model/evidence.js'
import type { RuleDifference } from '../../intent/model.js'
import type { Check, Finding } from '../model.js'
import { uniqueEvidence } from '../model.js'

function command(d: RuleDifference): string {
  const m = /^(\d+):\s+(.*)$/.exec(d.text)
  if (!m) return d.text
  return `ip ${d.family === 6 ? '-6 ' : ''}rule ${d.kind === 'missing' ? 'add' : 'del'} pref ${m[1]} ${m[2].replace(/^from all /, '')}`
}

export const podIpRules: Check = {
  id: 'pod-ip-rules',
  description: 'A pod without its ip rules (512 to the pod, 1536 from a pod on a secondary ENI), rules left behind by pods that are gone, or a pod rule pointing at an empty table',
  run(ctx) {
    const r = ctx.intent()
    if ('none' in r) return { skip: r.none }
    const state = ctx.state
    if (state.routingRules.length === 0) return { skip: 'ip rule was not collected' }
    const { intent, diff } = r
    const out: Finding[] = []
    const byPod = new Map<string, { ip: IpAddress; ds: RuleDifference[] }>()
    for (const d of diff.differences) {
      if (!d.pod) continue
      const k = ipKey(d.pod)
      const e = byPod.get(k) ?? { ip: d.pod, ds: [] }
      e.ds.push(d)
      byPod.set(k, e)
    }
    const pods = new Map(intent.inputs.pods.map((p) => [ipKey(p.pod.ip), p]))
    for (const [k, { ip, ds }] of byPod) {
      const p = pods.get(k)
      const missing = ds.filter((d) => d.kind === 'missing')
      const stale = ds.filter((d) => d.kind === 'unexpected')
      if (missing.length) {
        const name = p?.pod.name ? ` (${p.pod.name})` : ''
        const lacks1536 = missing.some((d) => d.text.startsWith('1536:'))
        out.push({
          id: 'pod-ip-rules', severity: 'error',
          title: `Pod ${formatIp(ip)}${name} is missing its ip rule${missing.length === 1 ? '' : 's'}: ${missing.map((d) => d.text.split(/\s+/)[0]).join(' ')}`,
          detail: `${lacks1536 ? `The pod's address belongs to the ENI of table ${p?.table ?? '?'}, but without the 1536 rule its traffic uses the main table and leaves through the primary ENI with an address of another ENI, which the VPC drops. ` : ''}${missing.some((d) => d.text.startsWith('512:')) ? 'Without the 512 rule, traffic to the pod from another ENI\'s pods or from marked connections can be routed by a 1536 rule into an ENI table instead of to the pod\'s veth. ' : ''}ipamd re-creates these rules for every pod when it starts; a pod without them was set up while ipamd was restarting, or the rules were flushed.\nMissing:\n${missing.map((d) => `  ${d.text}`).join('\n')}`,
          evidence: uniqueEvidence([p?.pod.ref, p?.tableRef, ...missing.flatMap((d) => d.because)]),
          fix: `Restart aws-node on the node (\`kubectl -n kube-system rollout restart daemonset aws-node\`; ipamd's UpdateRuleListBySrc adds them back), or add them by hand:\n${missing.map(command).join('\n')}`,
        })
      }
      if (stale.length) {
        out.push({
          id: 'pod-ip-rules', severity: 'warning',
          title: `ip rule${stale.length === 1 ? '' : 's'} for ${formatIp(ip)} left behind${p ? '' : ' (no such pod on the node)'}`,
          detail: `${stale.map((d) => d.why).filter((x, i, a) => a.indexOf(x) === i).join('; ')}. A new pod that gets this address inherits the old routing until the rules are removed.\n${stale.map((d) => `  ${d.text}`).join('\n')}`,
          evidence: uniqueEvidence(stale.map((d) => d.ref)),
          fix: stale.map(command).join('\n'),
        })
      }
    }
    // A pod rule that points at a table with no route: the ENI was detached, the rule stayed.
    const tables = new Set(state.routes.map((x) => x.table))
    if (state.routes.length > 0) {
      for (const rule of state.routingRules) {
        if (rule.priority !== 1536 || !rule.from || rule.action.kind !== 'lookup') continue
        const t = rule.action.table
        if (tables.has(t)) continue
        const pod = formatIp({ family: rule.from.family, value: rule.from.network })
        const refs: (SourceRef | undefined)[] = [rule.ref]
        out.push({
          id: 'pod-ip-rules', severity: 'error',
          title: `Pod ${pod}'s rule looks up table ${t}, which has no routes`,
          detail: `\`${rule.ref.text.trim()}\` sends the pod's traffic to table ${t}, but the bundle's \`ip route show table all\` has no route in it: the lookup falls through to the next rule (main), so the pod's traffic leaves through the primary ENI with an address of another ENI. The ENI was detached or its table flushed while the pod kept its address.`,
          evidence: uniqueEvidence(refs),
          fix: 'Restart aws-node so ipamd sets up the ENI table again, or recreate the pod so it gets an address of an attached ENI.',
        })
      }
    }
    return out
  },
}
