// SNAT port exhaustion risk: every connection SNATed to the node's address needs its own source port per
// destination (proto, address, port), and host processes take theirs from net.ipv4.ip_local_port_range. When one
// destination holds a large share of that range, new connections to it fail to find a free tuple.
import { cidrContains, formatIp, sameIp, type IpAddress } from '../../model/ip.js'
import type { ConntrackEntry } from '../../model/conntrack.js'
import type { Check, Finding } from '../model.js'
import { uniqueEvidence } from '../model.js'
import { prepare } from '../../engine/explain.js'

const DEFAULT_RANGE = { from: 32768, to: 60999 }
const WARN = 0.5
const ERROR = 0.9

export const ephemeralPorts: Check = {
  id: 'ephemeral-ports',
  description: 'The ephemeral port range is small for the node\'s off-VPC connections to one destination (SNAT port exhaustion risk)',
  run(ctx) {
    const state = ctx.state
    if (state.conntrack.length === 0) return { skip: 'conntrack -L is not in the bundle (or lists no connection)' }
    const rangeSetting = state.sysctls.get('net.ipv4.ip_local_port_range')
    const m = rangeSetting ? /^(\d+)\s+(\d+)$/.exec(rangeSetting.value.trim()) : null
    const range = m ? { from: Number(m[1]), to: Number(m[2]) } : DEFAULT_RANGE
    const size = Math.max(1, range.to - range.from + 1)
    const addresses = prepare(state).addresses
    const exempt = [...state.derived.vpcCidrs, ...state.derived.excludeCidrs].map((c) => c.cidr)
    // Connections that leave with one of the node's addresses to a destination outside the VPC: SNATed pod traffic
    // (the reply is addressed to the node) and the node's own connections.
    const groups = new Map<string, { node: IpAddress; entries: ConntrackEntry[] }>()
    for (const e of state.conntrack) {
      if (e.family !== 4) continue
      const natted = !sameIp(e.orig.src, e.reply.dst)
      const node = e.reply.dst
      if (!addresses.isLocal(node) || addresses.isLocal(e.orig.dst)) continue
      if (!natted && !addresses.isLocal(e.orig.src)) continue
      if (exempt.some((c) => cidrContains(c, e.orig.dst))) continue
      const key = `${e.proto} ${formatIp(node)} → ${formatIp(e.orig.dst)}${e.orig.dport !== null ? `:${e.orig.dport}` : ''}`
      const g = groups.get(key) ?? { node, entries: [] }
      g.entries.push(e)
      groups.set(key, g)
    }
    if (groups.size === 0) return []
    const [key, top] = [...groups.entries()].sort((a, b) => b[1].entries.length - a[1].entries.length)[0]!
    const total = [...groups.values()].reduce((n, g) => n + g.entries.length, 0)
    const share = top.entries.length / size
    if (share < WARN) return []
    const out: Finding = {
      id: 'ephemeral-ports', severity: share >= ERROR ? 'error' : 'warning',
      title: `${top.entries.length} connections to one destination (${key}) against ${size} ephemeral ports`,
      detail: `Connections that leave with the node's address to the same destination need distinct source ports. conntrack holds ${top.entries.length} for ${key} (${total} off-VPC connections in all), ${Math.round(share * 100)}% of the ${size} ports of ip_local_port_range ${range.from}–${range.to}${rangeSetting ? '' : ' (the kernel default: the sysctl is not in the bundle)'}. New connections fail (EADDRNOTAVAIL for the node's own, insert_failed for SNATed pods) as the range runs out.`,
      evidence: uniqueEvidence([rangeSetting?.ref, ...top.entries.slice(0, 3).map((e) => e.ref)]),
      fix: 'Widen the range (sysctl -w net.ipv4.ip_local_port_range="1024 65535"), spread the traffic over more destination addresses or a NAT gateway (AWS_VPC_K8S_CNI_EXTERNALSNAT=true with pods on private subnets), reuse connections (keep-alive, pooling), and keep --random-fully on the SNAT rules.',
    }
    return [out]
  },
}
