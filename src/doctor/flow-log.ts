// VPC Flow Log sanity: which address a flow log record shows for a pod's traffic, and why. A record's srcaddr (egress)
// or dstaddr (ingress) is always the ENI's *primary* private IP when the packet used a secondary IP of the ENI, and
// pods use secondary IPs (AWS docs, "Flow log records"); pkt-srcaddr / pkt-dstaddr show the packet's own address. So
// the node's address in srcaddr means either "SNATed to the node" or "a pod on this ENI, not SNATed": the node's
// evidence (pods, ENI addresses, the SNAT rule, explain on each candidate pod) tells which.
import { formatIp, ipKey, parseIp, sameIp, type IpAddress } from '../model/ip.js'
import type { SourceRef } from '../model/evidence.js'
import type { Eni, NodeState, Pod } from '../model/node-state.js'
import type { Protocol } from '../model/flow.js'
import { explain } from '../engine/explain.js'
import { prepare } from '../engine/explain.js'
import { toVerdictJson } from '../render/verdict-json.js'
import { NatlensError } from '../errors.js'
import type { EvidenceLine } from './model.js'
import { uniqueEvidence } from './model.js'

/** The default (version 2) format, in order. */
export const DEFAULT_FLOW_LOG_FIELDS = ['version', 'account-id', 'interface-id', 'srcaddr', 'dstaddr', 'srcport', 'dstport', 'protocol', 'packets', 'bytes', 'start', 'end', 'action', 'log-status'] as const

const KNOWN_FIELDS = new Set<string>([
  ...DEFAULT_FLOW_LOG_FIELDS, 'vpc-id', 'subnet-id', 'instance-id', 'tcp-flags', 'type', 'pkt-srcaddr', 'pkt-dstaddr', 'region', 'az-id',
  'sublocation-type', 'sublocation-id', 'pkt-src-aws-service', 'pkt-dst-aws-service', 'flow-direction', 'traffic-path', 'reject-reason',
  'ecs-cluster-arn', 'ecs-cluster-name', 'ecs-container-instance-arn', 'ecs-container-instance-id', 'ecs-container-id', 'ecs-second-container-id', 'ecs-service-name', 'ecs-task-definition-arn', 'ecs-task-arn', 'ecs-task-id',
])

/** `${version} ${pkt-srcaddr} …` (the --log-format syntax) or a header line `version pkt-srcaddr …`. */
export function parseFlowLogFormat(format: string): string[] | string {
  const words = format.trim().split(/\s+/).filter(Boolean)
  if (words.length === 0) return 'the flow log format is empty'
  const fields = words.map((w) => w.replace(/^\$\{(.*)\}$/, '$1'))
  const unknown = fields.filter((f) => !KNOWN_FIELDS.has(f))
  if (unknown.length) return `unknown flow log field${unknown.length === 1 ? '' : 's'} ${unknown.map((u) => JSON.stringify(u)).join(', ')} (fields are written \${name}, e.g. \${pkt-srcaddr})`
  return fields
}

const isHeader = (line: string) => line.trim().split(/\s+/).every((w) => KNOWN_FIELDS.has(w.replace(/^\$\{(.*)\}$/, '$1')))

export interface FlowLogRecord {
  readonly fields: Readonly<Record<string, string>>
  readonly format: readonly string[]
}

/**
 * One record. The line may carry its header line first (as in the files Flow Logs delivers to S3); `format`
 * overrides both. Returns an error message for a record that does not fit the format.
 */
export function parseFlowLogRecord(line: string, format?: string): FlowLogRecord | string {
  const lines = line.split(/\r?\n/).map((l) => l.trim()).filter(Boolean)
  let fields: string[] = [...DEFAULT_FLOW_LOG_FIELDS]
  if (format !== undefined) {
    const f = parseFlowLogFormat(format)
    if (typeof f === 'string') return f
    fields = f
  } else if (lines.length > 1 && isHeader(lines[0]!)) {
    fields = lines[0]!.split(/\s+/).map((w) => w.replace(/^\$\{(.*)\}$/, '$1'))
  }
  const record = lines.filter((l) => !isHeader(l)).at(-1)
  if (!record) return 'no flow log record (only a header line)'
  const values = record.split(/\s+/)
  if (values.length !== fields.length) {
    return `the record has ${values.length} fields, the format ${fields.length} (${fields.join(' ')}); give the format with --flow-log-format '\${version} \${pkt-srcaddr} …' or put the header line first`
  }
  const out: Record<string, string> = {}
  fields.forEach((f, i) => { out[f] = values[i]! })
  return { fields: out, format: fields }
}

export type FlowLogVerdict = 'node-snat' | 'pod-address' | 'secondary-address' | 'node-address' | 'undetermined' | 'not-this-node'

export interface FlowLogCandidate {
  readonly pod: string
  readonly name: string | null
  readonly snat: boolean | null
  readonly sourceAfter: string | null
  readonly egressInterface: string | null
  readonly decidedBy: { file: string; line: number; rule: string } | null
}

export interface FlowLogExplanation {
  readonly record: Readonly<Record<string, string>>
  readonly direction: 'egress' | 'ingress' | 'unknown'
  /** The address the record shows for the node's side (srcaddr for egress, dstaddr for ingress). */
  readonly shown: string | null
  /** pkt-srcaddr / pkt-dstaddr: the packet's own address on the node's side, when the format has it. */
  readonly packet: string | null
  readonly remote: string | null
  /** The node interface (ENI) the address belongs to. */
  readonly interface: string | null
  readonly verdict: FlowLogVerdict
  readonly summary: string
  readonly detail: readonly string[]
  readonly candidates: readonly FlowLogCandidate[]
  readonly evidence: readonly EvidenceLine[]
}

const value = (f: Readonly<Record<string, string>>, k: string): string | undefined => {
  const v = f[k]
  return v === undefined || v === '-' || v === '' ? undefined : v
}

const PROTO: Record<string, Protocol> = { '6': 'tcp', '17': 'udp', '1': 'icmp', '58': 'icmpv6', '132': 'sctp' }

interface NodeSide {
  readonly primary?: IpAddress
  readonly enis: readonly Eni[]
  readonly pods: ReadonlyMap<string, Pod>
  readonly isNode: (a: IpAddress) => boolean
}

function nodeSide(state: NodeState): NodeSide {
  const addresses = prepare(state).addresses
  const enis = state.derived.enis
  return {
    ...(state.derived.primaryAddress ? { primary: state.derived.primaryAddress } : {}),
    enis,
    pods: new Map(state.derived.pods.map((p) => [ipKey(p.ip), p])),
    isNode: (a) => addresses.isLocal(a) || enis.some((e) => sameIp(e.address, a)),
  }
}

/** The ENI whose primary IP an address is, or the ENI a pod uses. */
function eniOf(side: NodeSide, a: IpAddress): Eni | undefined {
  return side.enis.find((e) => sameIp(e.address, a)) ?? (side.primary && sameIp(side.primary, a) ? side.enis.find((e) => e.primary) : undefined)
}

/** Explains the record against the node; throws NatlensError on a record natlens cannot read. */
export function explainFlowLogRecord(state: NodeState, line: string, format?: string): FlowLogExplanation {
  const rec = parseFlowLogRecord(line, format)
  if (typeof rec === 'string') throw new NatlensError(`--flow-log-line: ${rec}`, 'usage.flow-log', 2)
  const f = rec.fields
  const ip = (k: string) => { const v = value(f, k); return v ? parseIp(v) : undefined }
  const src = ip('srcaddr'), dst = ip('dstaddr'), pktSrc = ip('pkt-srcaddr'), pktDst = ip('pkt-dstaddr')
  if (!src && !dst && !pktSrc && !pktDst) throw new NatlensError('--flow-log-line: the record has no address (srcaddr, dstaddr, pkt-srcaddr, pkt-dstaddr are all "-")', 'usage.flow-log', 2)
  const side = nodeSide(state)
  const ours = (a: IpAddress | undefined) => !!a && (side.isNode(a) || side.pods.has(ipKey(a)))
  const dirField = value(f, 'flow-direction')
  const direction: FlowLogExplanation['direction'] = dirField === 'egress' || dirField === 'ingress' ? dirField
    : ours(src) || ours(pktSrc) ? 'egress' : ours(dst) || ours(pktDst) ? 'ingress' : 'unknown'
  const shown = direction === 'ingress' ? dst : src
  const packet = direction === 'ingress' ? pktDst : pktSrc
  const remote = direction === 'ingress' ? pktSrc ?? src : pktDst ?? dst
  const proto: Protocol = PROTO[value(f, 'protocol') ?? '6'] ?? 'tcp'
  const port = (k: string) => { const v = value(f, k); return v && /^\d+$/.test(v) ? Number(v) : null }
  const remotePort = direction === 'ingress' ? port('srcport') : port('dstport')
  const detail: string[] = []
  const refs: (SourceRef | undefined)[] = []
  const base = {
    record: f, direction, shown: shown ? formatIp(shown) : null, packet: packet ? formatIp(packet) : null, remote: remote ? formatIp(remote) : null,
  }
  const done = (verdict: FlowLogVerdict, summary: string, iface: string | null, candidates: FlowLogCandidate[] = []): FlowLogExplanation =>
    ({ ...base, interface: iface, verdict, summary, detail, candidates, evidence: uniqueEvidence(refs.filter((r) => r && r.text !== '')) })

  if (direction === 'unknown' || !shown) {
    return done('not-this-node', `none of the record's addresses (${[src, dst, pktSrc, pktDst].filter(Boolean).map((a) => formatIp(a!)).join(', ')}) is an address of this node or of its pods`, null)
  }
  const eni = eniOf(side, shown)
  if (eni) refs.push(eni.ref)
  const iface = eni?.interface ?? null
  const snatAddr = side.primary
  const podOf = (a: IpAddress | undefined) => (a ? side.pods.get(ipKey(a)) : undefined)
  const describePod = (p: Pod) => `pod ${formatIp(p.ip)}${p.name ? ` (${p.name})` : ''}`

  /** Explains a pod's flow to the remote end and keeps the evidence. */
  const candidate = (p: Pod): FlowLogCandidate => {
    refs.push(p.ref)
    if (!remote || remote.family !== p.ip.family) return { pod: formatIp(p.ip), name: p.name ?? null, snat: null, sourceAfter: null, egressInterface: null, decidedBy: null }
    const v = toVerdictJson(explain(state, { src: p.ip, dst: remote, proto, sport: 40000, dport: proto === 'tcp' || proto === 'udp' || proto === 'sctp' ? remotePort ?? 443 : null, origin: 'pod' }), state)
    if (v.decidedBy) refs.push({ artifact: v.decidedBy.file, line: v.decidedBy.line, text: v.decidedBy.rule })
    return { pod: formatIp(p.ip), name: p.name ?? null, snat: v.snat, sourceAfter: v.sourceAfter, egressInterface: v.egressInterface, decidedBy: v.decidedBy }
  }

  const pktPod = podOf(packet)
  if (packet && pktPod && !sameIp(packet, shown)) {
    const c = candidate(pktPod)
    detail.push(`${direction === 'egress' ? 'srcaddr' : 'dstaddr'} ${formatIp(shown)} is the primary private IP of ${iface ?? 'the ENI'}; ${direction === 'egress' ? 'pkt-srcaddr' : 'pkt-dstaddr'} ${formatIp(packet)} is ${describePod(pktPod)}, one of the ENI's secondary IPs: Flow Logs report the ENI's primary IP in ${direction === 'egress' ? 'srcaddr' : 'dstaddr'} for traffic of a secondary IP.`)
    if (c.snat === false) detail.push(`natlens explain agrees: the pod's traffic to ${formatIp(remote!)} keeps its address${c.decidedBy ? ` (${c.decidedBy.file}:${c.decidedBy.line})` : ''} and leaves through ${c.egressInterface ?? '?'}.`)
    if (c.snat === true) detail.push(`natlens explain disagrees: on this node the pod's traffic to ${formatIp(remote!)} is SNATed to ${c.sourceAfter}; the record may predate a change of the rules.`)
    return done('secondary-address', `${formatIp(shown)} is the ENI's primary IP shown for ${describePod(pktPod)}, which was not SNATed (the flow-log secondary-address behaviour)`, iface, [c])
  }
  if (packet && snatAddr && sameIp(packet, snatAddr) && eni && !eni.primary) {
    detail.push(`The packet's source is the primary ENI's address ${formatIp(snatAddr)}, but it left through ${eni.interface} (srcaddr ${formatIp(shown)} is ${eni.interface}'s primary IP): a pod on ${eni.interface} was SNATed without the 0x80 connmark that routes off-VPC traffic out of the primary ENI. The VPC drops such packets (source/destination check).`)
    return done('node-snat', `SNATed to the node's address ${formatIp(snatAddr)} but sent out ${eni.interface}: the missing-connmark failure (run natlens doctor)`, iface)
  }
  const shownPod = podOf(shown)
  if (shownPod) {
    const c = candidate(shownPod)
    detail.push(`${formatIp(shown)} is ${describePod(shownPod)}'s own address: the record shows the pod itself, so its traffic was not SNATed${c.decidedBy ? ` (${c.decidedBy.file}:${c.decidedBy.line}: ${c.decidedBy.rule})` : ''}.`)
    return done('pod-address', `${formatIp(shown)} is the pod's own address (${describePod(shownPod)})`, c.egressInterface ?? iface, [c])
  }
  if (!side.isNode(shown)) {
    return done('not-this-node', `${formatIp(shown)} is not an address of this node or of its pods`, null)
  }

  // The node's own address, and no pkt-* address that settles it: the pods that would show this address.
  const isSnat = !!snatAddr && sameIp(shown, snatAddr)
  const podsHere = [...side.pods.values()].filter((p) => p.ip.family === shown.family && p.kind !== 'egress-v4' && p.kind !== 'egress-v6' && (eni ? p.eni === eni.interface || (eni.primary && !p.eni) : true))
  const others = [...side.pods.values()].filter((p) => p.ip.family === shown.family && !podsHere.includes(p) && p.kind !== 'egress-v4' && p.kind !== 'egress-v6')
  const candidates = direction === 'egress' ? [...podsHere, ...(isSnat ? others : [])].map(candidate) : []
  const snatted = candidates.filter((c) => c.snat === true && c.sourceAfter === formatIp(shown))
  const kept = candidates.filter((c) => c.snat === false && c.egressInterface === iface)
  if (packet && sameIp(packet, shown)) {
    detail.push(`pkt-${direction === 'egress' ? 'srcaddr' : 'dstaddr'} is ${formatIp(packet)} too: the packet itself carried the node's address.`)
    if (isSnat) {
      detail.push(snatted.length ? `Pods whose traffic to ${remote ? formatIp(remote) : 'this destination'} is SNATed to it: ${snatted.map((c) => c.pod).join(', ')}${snatted[0]?.decidedBy ? ` (${snatted[0].decidedBy.file}:${snatted[0].decidedBy.line})` : ''}; or the node itself.` : 'No pod\'s traffic to this destination is SNATed on this node: the node itself (a host-network process) sent it.')
      return done('node-snat', `${formatIp(shown)} is the node's SNAT address: ${direction === 'egress' ? 'traffic SNATed to the node (or the node\'s own)' : 'return traffic of SNATed connections (or to the node itself)'}`, iface, candidates)
    }
    return done('node-address', `${formatIp(shown)} is an address of the node's ${iface ?? 'interfaces'}, not a pod's: the node's own traffic`, iface, candidates)
  }
  if (direction === 'ingress') {
    detail.push(`Without pkt-dstaddr, dstaddr ${formatIp(shown)} is either the node${isSnat ? ' (including return traffic of connections SNATed to it)' : ''} or a pod using a secondary IP of ${iface ?? 'this ENI'}; add \${pkt-dstaddr} to the flow log format to tell them apart.`)
    return done('undetermined', `${formatIp(shown)} is the primary IP of ${iface ?? 'an ENI of the node'}: the node${isSnat ? '\'s SNAT address' : ''}, or a pod's secondary IP on that ENI`, iface)
  }
  if (snatted.length && !kept.length) {
    detail.push(`Every pod whose traffic to ${remote ? formatIp(remote) : 'this destination'} leaves with ${formatIp(shown)} is SNATed to it on this node (${snatted.map((c) => c.pod).join(', ')}): srcaddr shows the SNAT, and a pod's own address would not appear. Add \${pkt-srcaddr} to the format to be sure.`)
    return done('node-snat', `${formatIp(shown)} is the node's SNAT address: pod traffic to ${remote ? formatIp(remote) : 'this destination'} is SNATed to it`, iface, candidates)
  }
  if (kept.length && !snatted.length) {
    detail.push(`No pod's traffic to ${remote ? formatIp(remote) : 'this destination'} is SNATed on this node; pods on ${iface ?? 'this ENI'} (${kept.map((c) => c.pod).join(', ')}) keep their own secondary IPs, which Flow Logs report as the ENI's primary IP ${formatIp(shown)} in srcaddr. Add \${pkt-srcaddr} to the format to see the pod.`)
    return done('secondary-address', `${formatIp(shown)} is the primary IP of ${iface ?? 'the ENI'}, shown for pods that use its secondary IPs and are not SNATed (the flow-log secondary-address behaviour)`, iface, candidates)
  }
  if (kept.length && snatted.length) {
    detail.push(`Some pods are SNATed to ${formatIp(shown)} for this destination (${snatted.map((c) => c.pod).join(', ')}), others keep their secondary IP on ${iface} (${kept.map((c) => c.pod).join(', ')}), which srcaddr also shows as ${formatIp(shown)}. Add \${pkt-srcaddr} to the format to tell them apart.`)
    return done('undetermined', `${formatIp(shown)} can be the node's SNAT or a pod's secondary IP on ${iface}`, iface, candidates)
  }
  detail.push(`No pod of this node would leave with ${formatIp(shown)} for this destination: the node itself sent it.`)
  return done('node-address', `${formatIp(shown)} is ${isSnat ? 'the node\'s primary address' : `an address of ${iface ?? 'the node'}`}: the node's own traffic`, iface, candidates)
}

export function renderFlowLog(x: FlowLogExplanation): string {
  const lines = [`${x.verdict}: ${x.summary}`]
  lines.push(`  direction ${x.direction}; shown ${x.shown ?? '-'}; packet ${x.packet ?? '- (the format has no pkt-* field)'}; remote ${x.remote ?? '-'}${x.interface ? `; interface ${x.interface}` : ''}`)
  for (const d of x.detail) lines.push(`  ${d}`)
  if (x.candidates.length) {
    lines.push('  pods:')
    for (const c of x.candidates) lines.push(`    ${c.pod}${c.name ? ` ${c.name}` : ''}: ${c.snat === null ? 'unknown' : c.snat ? `SNATed to ${c.sourceAfter}` : 'keeps its address'}${c.egressInterface ? `, out ${c.egressInterface}` : ''}${c.decidedBy ? ` (${c.decidedBy.file}:${c.decidedBy.line})` : ''}`)
  }
  if (x.evidence.length) {
    lines.push('  evidence:')
    for (const e of x.evidence) lines.push(`    ${e.file}${e.line ? `:${e.line}` : ''}  ${e.text}`)
  }
  return lines.join('\n')
}

/** The one call `natlens explain --flow-log-line` makes: the explanation and its text. */
export function flowLogReport(state: NodeState, line: string, format?: string): { result: FlowLogExplanation; text: string } {
  const result = explainFlowLogRecord(state, line, format)
  return { result, text: renderFlowLog(result) }
}


