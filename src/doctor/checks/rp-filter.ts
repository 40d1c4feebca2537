// rp_filter strict (1) on an ENI that policy routing uses. The kernel's reverse-path check (fib_validate_source)
// looks up the route back to the sender from the packet's destination (iif lo, mark 0 unless src_valid_mark) and, in
// strict mode, drops the packet unless that route leaves through the interface it arrived on. Policy routing sends a
// pod's traffic out of its own ENI, so strict mode drops what comes back another way: replies to SNATed traffic of
// secondary-ENI pods arrive on the primary ENI (why aws-vpc-cni-init sets the primary to 2, vpc-cni.md §4.3), and
// traffic to a pod or an ENI address whose from-rule is missing arrives on an ENI the main table does not use.
import { cidrContains, formatIp, nthAddress, parseIp, sameIp, type IpAddress } from '../../model/ip.js'
import type { SourceRef } from '../../model/evidence.js'
import type { Setting } from '../../model/node-state.js'
import { prepare } from '../../engine/explain.js'
import type { Check, Finding } from '../model.js'
import { uniqueEvidence } from '../model.js'

const INTERNET = parseIp('203.0.113.10')!

function effective(sysctls: ReadonlyMap<string, Setting>, iface: string): { value: number; refs: SourceRef[] } | undefined {
  const all = sysctls.get('net.ipv4.conf.all.rp_filter')
  const own = sysctls.get(`net.ipv4.conf.${iface}.rp_filter`) ?? sysctls.get('net.ipv4.conf.default.rp_filter')
  if (!all && !own) return undefined
  // The kernel uses the larger of conf/all and conf/<iface> (IN_DEV_RPFILTER: max).
  const value = Math.max(Number(all?.value ?? 0), Number(own?.value ?? 0))
  return { value, refs: [all?.ref, own?.ref].filter((r): r is SourceRef => !!r) }
}

export const rpFilter: Check = {
  id: 'rp-filter',
  description: 'rp_filter strict (1) on an ENI whose traffic policy routing sends back another way (the reverse-path check drops it)',
  run(ctx) {
    const state = ctx.state
    if (![...state.sysctls.keys()].some((k) => k.endsWith('.rp_filter'))) return { skip: 'no rp_filter sysctls in the bundle (sysctl -a)' }
    if (state.routingRules.length === 0 || state.routes.length === 0) return { skip: 'ip rule or ip route show table all was not collected' }
    const { router } = prepare(state)
    const d = state.derived
    const vpc = d.vpcCidrs.find((c) => c.cidr.family === 4)?.cidr
    const vpcRemote = vpc ? nthAddress(vpc, Number((1n << BigInt(32 - vpc.prefix)) / 2n) + 15) : undefined
    const intent = ctx.intent()
    const snatOn = 'none' in intent ? state.derived.components.some((c) => c.name === 'vpc-cni') : !intent.intent.inputs.externalSnat.value && intent.intent.inputs.era.era !== 'ipv6'
    const back = (from: IpAddress, to: IpAddress) => {
      const r = router.decide({ family: 4, src: from, dst: to, iif: 'lo', mark: 0, proto: 'tcp', sport: null, dport: null }, [])
      return r.kind === 'unicast' ? r.dev : undefined
    }
    const out: Finding[] = []
    for (const eni of d.enis) {
      const rp = effective(state.sysctls, eni.interface)
      if (!rp || rp.value !== 1) continue
      const drops: string[] = []
      // Traffic from the VPC to the ENI's own addresses and to the pods whose addresses it holds arrives on it.
      const own = state.interfaces.find((i) => i.name === eni.interface)?.addresses.filter((a) => a.address.family === 4).map((a) => a.address) ?? (eni.address ? [eni.address] : [])
      const served = [...own.map((a) => ({ a, what: `${eni.interface}'s address ${formatIp(a)}` })),
        ...d.pods.filter((p) => p.ip.family === 4 && p.eni === eni.interface && p.kind !== 'egress-v4').map((p) => ({ a: p.ip, what: `pod ${formatIp(p.ip)}` }))]
      if (vpcRemote) {
        for (const s of served) {
          if (vpc && cidrContains(vpc, vpcRemote) && sameIp(s.a, vpcRemote)) continue
          const dev = back(s.a, vpcRemote)
          if (dev && dev !== eni.interface) drops.push(`traffic from the VPC (${formatIp(vpcRemote)}) to ${s.what} arrives on ${eni.interface}, but the route back leaves through ${dev}`)
        }
      }
      // Replies to SNATed traffic come back to the primary ENI and are un-SNATed to the pod before the check.
      if (eni.primary && snatOn) {
        for (const p of d.pods.filter((x) => x.ip.family === 4 && x.kind === 'pod' && x.eni && x.eni !== eni.interface)) {
          const dev = back(p.ip, INTERNET)
          if (dev && dev !== eni.interface) drops.push(`replies to pod ${formatIp(p.ip)}'s SNATed off-VPC traffic arrive on ${eni.interface}, but the route back from the pod leaves through ${dev} (its 1536 rule)`)
        }
      }
      if (drops.length === 0) continue
      out.push({
        id: 'rp-filter', severity: 'warning',
        title: `rp_filter is strict on ${eni.interface}, which receives traffic that policy routing sends back through another interface`,
        detail: `With net.ipv4.conf.${eni.interface}.rp_filter effectively 1 (the larger of conf.all and conf.${eni.interface}), the kernel drops a packet unless the route back to its sender leaves through the interface it arrived on:\n${drops.map((x) => `  ${x}`).join('\n')}`,
        evidence: uniqueEvidence([...rp.refs, eni.ref]),
        fix: `Set loose mode, as aws-vpc-cni-init does for the primary ENI: sysctl -w net.ipv4.conf.${eni.interface}.rp_filter=2, and keep net.ipv4.conf.all.rp_filter at 0 or 2 (the kernel uses the larger of the two); persist both in /etc/sysctl.d/.`,
      })
    }
    return out
  },
}
