// `--all-pods`: each pod against destinations that tell the node's SNAT policy apart: an address in the node's
// subnet, one in each other VPC CIDR, one in each excluded CIDR, the internet, and a Service IP.
import { cidrContains, formatCidr, formatIp, nthAddress, parseCidr, parseIp, type Cidr, type IpAddress } from '../model/ip.js'
import type { NodeState, Pod } from '../model/node-state.js'
import type { Flow } from '../model/flow.js'

export interface LabelledFlow {
  readonly label: string
  readonly flow: Flow
}

const INTERNET_V4 = parseIp('203.0.113.10')!
const INTERNET_V6 = parseIp('2001:db8::10')!

function sampleIn(cidr: Cidr, avoid: readonly IpAddress[]): IpAddress {
  // The 20th address: clear of the network, the VPC router (.1), DNS (.2) and reserved (.3) addresses.
  for (let n = 20; n < 60; n++) {
    const a = nthAddress(cidr, Math.min(n, cidr.prefix >= (cidr.family === 4 ? 31 : 127) ? 0 : n))
    if (!avoid.some((x) => x.value === a.value) && cidrContains(cidr, a)) return a
  }
  return nthAddress(cidr, 0)
}

function serviceIps(state: NodeState): IpAddress[] {
  const out: IpAddress[] = []
  for (const t of state.tables) {
    const services = t.chains.get('KUBE-SERVICES')
    if (!services || t.name !== 'nat') continue
    for (const r of services.rules) {
      if (r.target.kind !== 'jump') continue
      const d = r.matches.find((m) => m.kind === 'dst')
      if (d && d.kind === 'dst' && !d.negated && d.cidr.prefix === 32 && /cluster IP/.test(r.comment ?? '')) out.push({ family: 4, value: d.cidr.network })
      if (out.length > 0) return out
    }
  }
  return out
}

export function representativeFlows(state: NodeState): LabelledFlow[] {
  const out: LabelledFlow[] = []
  const d = state.derived
  const primary = d.primaryAddress
  const avoid = [...(primary ? [primary] : []), ...d.pods.map((p) => p.ip)]
  const subnet = primaryPrefix(state)
  const destinations: { label: string; dst: IpAddress }[] = []
  if (subnet) destinations.push({ label: `node subnet ${formatCidr(subnet)}`, dst: sampleIn(subnet, avoid) })
  for (const v of d.vpcCidrs) {
    if (v.cidr.family !== 4) continue
    if (subnet && cidrContains(v.cidr, { family: 4, value: subnet.network })) {
      // Another subnet of the same VPC CIDR, outside the node's own subnet.
      const other = nthAddress(v.cidr, Number((1n << BigInt(32 - v.cidr.prefix)) / 2n) + 15)
      if (!cidrContains(subnet, other)) destinations.push({ label: `VPC CIDR ${formatCidr(v.cidr)}`, dst: other })
    } else {
      destinations.push({ label: `VPC CIDR ${formatCidr(v.cidr)}`, dst: sampleIn(v.cidr, avoid) })
    }
  }
  for (const e of d.excludeCidrs) if (e.cidr.family === 4) destinations.push({ label: `excluded CIDR ${formatCidr(e.cidr)}`, dst: sampleIn(e.cidr, avoid) })
  destinations.push({ label: 'the internet', dst: INTERNET_V4 })
  const svc = serviceIps(state)[0]
  if (svc) destinations.push({ label: 'a Service', dst: svc })
  for (const pod of d.pods) {
    if (pod.ip.family === 6) {
      out.push({ label: `${podLabel(pod)} → ${formatIp(INTERNET_V6)} (the internet, IPv6)`, flow: { src: pod.ip, dst: INTERNET_V6, proto: 'tcp', sport: 40000, dport: 443, origin: 'pod' } })
      continue
    }
    const dsts = pod.kind === 'egress-v4' ? destinations.filter((x) => x.label === 'the internet' || x.label.startsWith('VPC')) : destinations
    for (const dest of dsts) {
      const isSvc = dest.label === 'a Service'
      out.push({ label: `${podLabel(pod)} → ${formatIp(dest.dst)} (${dest.label})`, flow: { src: pod.ip, dst: dest.dst, proto: 'tcp', sport: 40000, dport: isSvc ? 443 : 443, origin: 'pod' } })
    }
  }
  return out
}

function podLabel(p: Pod): string {
  return p.name ?? `${formatIp(p.ip)}${p.eni ? ` (${p.eni})` : ''}`
}

function primaryPrefix(state: NodeState): Cidr | undefined {
  const dev = state.derived.primaryInterface
  const iface = state.interfaces.find((i) => i.name === dev)
  const a = iface?.addresses.find((x) => x.address.family === 4 && !x.secondary)
  if (a) return parseCidr(`${formatIp(a.address)}/${a.prefix}`)
  const link = state.routes.find((r) => r.table === 'main' && r.family === 4 && r.dev === dev && r.scope === 'link' && r.dst.prefix > 0 && r.dst.prefix < 32 && r.proto === 'kernel')
  return link?.dst
}
