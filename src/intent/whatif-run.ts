// The flows `whatif` re-explains (a capture's conversations, or every pod against representative destinations) and
// the comparison of each flow on the node as it is and as it would be.
import { formatIp, ipKey, isMulticast, sameIp, type IpAddress } from '../model/ip.js'
import type { ConntrackEntry } from '../model/conntrack.js'
import type { NodeState } from '../model/node-state.js'
import { parseFlow, type Flow } from '../model/flow.js'
import { explain } from '../engine/explain.js'
import { representativeFlows, type LabelledFlow } from '../engine/representative.js'
import { prepare } from '../engine/explain.js'
import { toVerdictJson, type VerdictJson } from '../render/verdict-json.js'
import { readFlows } from '../pcap/conversations.js'
import type { Flow as CaptureFlow } from '../pcap/flows.js'
import { NatlensError } from '../errors.js'
import { stateAfter, type SettingChange, type WhatIfState } from './whatif.js'

export interface WhatIfFlow {
  readonly label?: string
  readonly flow: Flow
  readonly before: VerdictJson
  readonly after: VerdictJson
  /** `sourceAfter`, `egressInterface`, `verdict`: what differs between before and after. */
  readonly changed: readonly ('sourceAfter' | 'egressInterface' | 'verdict')[]
}

export interface WhatIfResult {
  readonly whatif: WhatIfState
  readonly flowSource: 'capture' | 'all-pods' | 'given'
  readonly flows: readonly WhatIfFlow[]
}

const PROTOS = new Set(['tcp', 'udp', 'icmp', 'icmpv6', 'sctp'])

/**
 * The conversations of a node capture worth re-explaining: those a pod started, those the node started, and those
 * from outside to one of the node's addresses or Service addresses (NodePort, LoadBalancer, hostPort). A capture on
 * every interface shows a NATed connection after the translation (and, for forwarded traffic, before it too): a
 * conversation that is the reversed reply tuple of a conntrack entry of the bundle is replaced by the entry's
 * original tuple, so each connection is explained once, as it was sent. Without conntrack, a pod's second
 * conversation from the same source port (DNAT) and the node's conversation to where a pod's went (SNAT) are left
 * out. Link-local and multicast traffic (router solicitations, MLD) is left out too.
 */
export function flowsFromCapture(state: NodeState, conversations: readonly CaptureFlow[]): LabelledFlow[] {
  const pods = new Set(state.derived.pods.map((p) => ipKey(p.ip)))
  const addresses = prepare(state).addresses
  const services = serviceAddresses(state)
  const tuple = (proto: string, src: IpAddress, sport: number | null, dst: IpAddress, dport: number | null) => `${proto}|${ipKey(src)}|${sport ?? ''}|${ipKey(dst)}|${dport ?? ''}`
  // After NAT, a connection's packets carry the reversed reply tuple of its conntrack entry.
  const natCopies = new Map<string, ConntrackEntry>()
  for (const e of state.conntrack) {
    if (sameIp(e.orig.src, e.reply.dst) && sameIp(e.orig.dst, e.reply.src) && e.orig.sport === e.reply.dport && e.orig.dport === e.reply.sport) continue
    natCopies.set(tuple(e.proto, e.reply.dst, e.reply.dport, e.reply.src, e.reply.sport), e)
  }
  const parsed = [...conversations]
    .sort((a, b) => (a.firstNs < b.firstNs ? -1 : a.firstNs > b.firstNs ? 1 : 0))
    .flatMap((c) => {
      if (!PROTOS.has(c.proto)) return []
      const f = parseFlow({ src: c.src, dst: c.dst, proto: c.proto, sport: c.sport, dport: c.dport })
      if (typeof f === 'string' || isLinkLocalOrMulticast(f.src) || isLinkLocalOrMulticast(f.dst)) return []
      const e = natCopies.get(tuple(f.proto, f.src, f.sport, f.dst, f.dport))
      if (!e) return [{ c, f, natted: false }]
      return [{ c, f: { ...f, src: e.orig.src, dst: e.orig.dst, sport: e.orig.sport, dport: e.orig.dport }, natted: true }]
    })
  const podDests = new Set<string>()
  for (const { f } of parsed) if (pods.has(ipKey(f.src))) podDests.add(`${f.proto}|${ipKey(f.dst)}|${f.dport}`)
  const out: LabelledFlow[] = []
  const seen = new Set<string>()
  const podSources = new Set<string>()
  for (const { c, f, natted } of parsed) {
    const key = tuple(f.proto, f.src, f.sport, f.dst, f.dport)
    if (seen.has(key)) continue
    seen.add(key)
    let origin: Flow['origin']
    if (pods.has(ipKey(f.src))) {
      const source = `${f.proto}|${ipKey(f.src)}|${f.sport}`
      if (f.sport !== null && podSources.has(source)) continue
      podSources.add(source)
      origin = 'pod'
    } else if (addresses.isLocal(f.src)) {
      if (!natted && (pods.has(ipKey(f.dst)) || (state.conntrack.length === 0 && podDests.has(`${f.proto}|${ipKey(f.dst)}|${f.dport}`)))) continue
      origin = 'host'
    } else if (addresses.isLocal(f.dst) || services.has(ipKey(f.dst))) origin = 'external'
    else continue
    const ep = (a: IpAddress, p: number | null) => (p === null ? formatIp(a) : `${formatIp(a)}:${p}`)
    out.push({ label: `${f.proto} ${ep(f.src, f.sport)} → ${ep(f.dst, f.dport)} (${c.packets} packet${c.packets === 1 ? '' : 's'}${natted ? ', as sent: the capture has it after NAT' : ''})`, flow: { ...f, origin } })
  }
  return out
}

/** Service addresses kube-proxy DNATs (cluster, external and load-balancer IPs in KUBE-SERVICES). */
function serviceAddresses(state: NodeState): Set<string> {
  const out = new Set<string>()
  for (const t of state.tables) {
    for (const r of t.chains.get('KUBE-SERVICES')?.rules ?? []) {
      const d = r.matches.find((m) => m.kind === 'dst')
      if (d && d.kind === 'dst' && !d.negated && d.cidr.prefix === (d.cidr.family === 4 ? 32 : 128)) out.add(ipKey({ family: d.cidr.family, value: d.cidr.network }))
    }
  }
  return out
}

function isLinkLocalOrMulticast(a: IpAddress): boolean {
  if (isMulticast(a)) return true
  // IPv4 169.254.0.0/16 stays: the egress plugin's pod legs live in 169.254.172.0/22.
  return a.family === 6 && (a.value >> 118n) === 0x3fan
}

/** Reads captures with the pcap library and picks the flows to re-explain. */
export async function captureFlows(state: NodeState, paths: readonly string[]): Promise<LabelledFlow[]> {
  let conversations: CaptureFlow[]
  try {
    conversations = (await readFlows(paths)).flows
  } catch (e) {
    throw new NatlensError(`cannot read the capture: ${(e as Error).message}`, 'whatif.capture', 2, 'give a pcap or pcapng file taken on the node (tcpdump -i any -w node.pcap)')
  }
  return flowsFromCapture(state, conversations)
}

/** Every pod against representative destinations of the node before and after (a new exclusion or VPC CIDR adds some). */
export function allPodsFlows(before: NodeState, after: NodeState): LabelledFlow[] {
  const out: LabelledFlow[] = []
  const seen = new Set<string>()
  for (const lf of [...representativeFlows(before), ...representativeFlows(after)]) {
    const f = lf.flow
    const key = `${ipKey(f.src)}|${ipKey(f.dst)}|${f.proto}|${f.dport}`
    if (seen.has(key)) continue
    seen.add(key)
    out.push(lf)
  }
  return out
}

interface Outcome { verdict: string; dst: string | null; src: string | null; egress: string | null }

function outcomes(v: VerdictJson): Outcome[] {
  const list = v.branches.length ? v.branches : [v]
  return list.map((b) => ({ verdict: b.verdict, dst: b.destinationAfter, src: b.sourceAfter, egress: b.egressInterface }))
}

/** What differs between two verdicts of one flow: the set of sources after NAT, of egress interfaces, of verdicts. */
export function changedFields(before: VerdictJson, after: VerdictJson): WhatIfFlow['changed'] {
  const a = outcomes(before)
  const b = outcomes(after)
  const set = (xs: Outcome[], k: keyof Outcome) => [...new Set(xs.map((x) => String(x[k])))].sort().join(',')
  const out: ('sourceAfter' | 'egressInterface' | 'verdict')[] = []
  if (set(a, 'src') !== set(b, 'src')) out.push('sourceAfter')
  if (set(a, 'egress') !== set(b, 'egress')) out.push('egressInterface')
  if (set(a, 'verdict') !== set(b, 'verdict')) out.push('verdict')
  return out
}

/** Explains each flow on the node as it is and as it would be with the changes. */
export function whatIf(state: NodeState, changes: readonly SettingChange[], flows: readonly LabelledFlow[] | 'all-pods', flowSource: WhatIfResult['flowSource'] = 'given'): WhatIfResult {
  const w = stateAfter(state, changes)
  const list = flows === 'all-pods' ? allPodsFlows(state, w.state) : flows
  const results = list.map(({ label, flow }) => {
    const before = toVerdictJson(explain(state, flow), state)
    const after = toVerdictJson(explain(w.state, flow), w.state)
    return { ...(label ? { label } : {}), flow, before, after, changed: changedFields(before, after) }
  })
  return { whatif: w, flowSource: flows === 'all-pods' ? 'all-pods' : flowSource, flows: results }
}


