// Words for a trace: the sentence a support engineer pastes into a ticket, and the setting that would change it.
import { formatCidr, formatIp } from '../model/ip.js'
import type { Explanation, Step, Trace } from '../model/trace.js'
import type { NodeState } from '../model/node-state.js'
import type { Rule } from '../model/netfilter.js'

export function at(ref: { artifact: string; line: number }): string {
  return ref.line ? `${ref.artifact}:${ref.line}` : ref.artifact
}

function decisiveStep(trace: Trace): Step | undefined {
  return trace.decisive && trace.decisive.stepIndex >= 0 ? trace.steps[trace.decisive.stepIndex] : undefined
}

function decisiveRule(trace: Trace): Rule | undefined {
  const step = decisiveStep(trace)
  return step && (step.kind === 'rule' || step.kind === 'nat') ? step.rule : undefined
}

function ruleAt(state: NodeState, ref: { artifact: string; line: number }): Rule | undefined {
  for (const t of state.tables) for (const c of t.chains.values()) for (const r of c.rules) if (r.ref.artifact === ref.artifact && r.ref.line === ref.line) return r
  return undefined
}

export function snatOf(trace: Trace, state: NodeState): boolean | null {
  const fam = trace.flow.src.family
  const hasNat = state.tables.some((t) => (t.family === (fam === 4 ? 'ip' : 'ip6') || t.family === 'inet') && (t.name === 'nat' || [...t.chains.values()].some((c) => c.type === 'nat')))
  if (!hasNat) return null
  // A reply's source is rewritten by conntrack undoing the connection's DNAT; that counts as translated too.
  const translated = trace.steps.some((s) => (s.kind === 'nat' && (s.nat === 'snat' || s.nat === 'masquerade')) || (s.kind === 'conntrack' && s.changes.some((c) => c.field === 'src')))
  return translated && trace.finalFlow.src.value !== trace.flow.src.value
}

export function reasonFor(trace: Trace, state: NodeState): string {
  const src = formatIp(trace.flow.src)
  const dst = formatIp(trace.flow.dst)
  const dnat = trace.finalFlow.dst.value !== trace.flow.dst.value ? ` after DNAT to ${formatIp(trace.finalFlow.dst)}${trace.finalFlow.dport !== null ? `:${trace.finalFlow.dport}` : ''}` : ''
  const out = trace.egressInterface ? `; it leaves through ${trace.egressInterface}` : ''
  switch (trace.verdict) {
    case 'dropped': {
      const last = [...trace.steps].reverse().find((s) => s.kind === 'rule' || s.kind === 'policy' || s.kind === 'policy-route' || s.kind === 'route')
      const where = last && last.kind === 'rule' ? ` by ${at(last.rule.ref)}` : last && last.kind === 'policy-route' ? ` by ip rule ${last.rule.priority}` : ''
      return `The packet from ${src} to ${dst}${dnat} is dropped${where}.`
    }
    case 'no-route':
      return `The node has no route for ${formatIp(trace.finalFlow.dst)}${dnat}: the packet from ${src} is dropped.`
    default:
      break
  }
  const snat = snatOf(trace, state)
  const rule = decisiveRule(trace) ?? (trace.decisive ? ruleAt(state, trace.decisive.ref) : undefined)
  const owner = trace.decisive?.owner
  const ownerText = owner && owner !== 'unknown' ? `${owner}'s` : 'a hand-written'
  if (trace.verdict === 'delivered') {
    return `The packet from ${src} to ${dst}${dnat} is delivered on this node${snat ? `, with its source translated to ${formatIp(trace.finalFlow.src)}` : ''}.`
  }
  const undo = trace.steps.find((s) => s.kind === 'conntrack' && s.changes.some((c) => c.field === 'src'))
  if (snat && undo && undo.kind === 'conntrack' && !trace.decisive) {
    return `${src} leaves as ${formatIp(trace.finalFlow.src)}: a reply of a DNATed connection, so conntrack gives it the address the client connected to${undo.ref ? ` (${at(undo.ref)})` : ''}${out}.`
  }
  if (snat === null) {
    return `${src} → ${dst}${dnat}${out}; whether the source is translated is unknown: ${trace.undecidedReason ?? 'no nat table in the bundle'}.`
  }
  if (snat && rule && trace.decisive) {
    const kind = rule.target.kind === 'masquerade' ? 'MASQUERADE' : 'SNAT'
    return `${src} leaves as ${formatIp(trace.finalFlow.src)}: ${ownerText} ${kind} rule (${at(trace.decisive.ref)}) translated the source${dnat ? ` (destination ${dst}${dnat})` : ''}${out}.`
  }
  if (rule && trace.decisive && decisiveStep(trace)?.kind === 'nat') {
    // A host process already sending from the address the rule translates to (the node's primary IP).
    const kind = rule.target.kind === 'masquerade' ? 'MASQUERADE' : 'SNAT'
    return `${src} keeps its address to ${dst}${dnat}: ${ownerText} ${kind} rule (${at(trace.decisive.ref)}) applied, and ${src} is the address it translates to${out}.`
  }
  if (rule && trace.decisive) {
    return `${src} keeps its address to ${dst}${dnat}: ${exemptionWords(rule, trace)} (${ownerText} rule, ${at(trace.decisive.ref)})${out}.`
  }
  return `${src} keeps its address to ${dst}${dnat}: ${trace.undecidedReason ?? 'no rule translated it'}${out}.`
}

function exemptionWords(rule: Rule, trace: Trace): string {
  const dst = trace.finalFlow.dst
  const d = rule.matches.find((m) => m.kind === 'dst')
  if (rule.target.kind === 'return' && d && d.kind === 'dst' && !d.negated) {
    const what = /EXCLU/.test(rule.comment ?? '') ? 'an excluded CIDR (AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS)' : /AWS/.test(rule.comment ?? '') ? 'a VPC CIDR' : 'an exempt range'
    return `${formatIp(dst)} is in ${formatCidr(d.cidr)}, ${what}, so the SNAT chain returns before its SNAT rule`
  }
  if (rule.target.kind === 'return' && rule.matches.some((m) => m.kind === 'mark')) return 'the packet does not carry the masquerade mark, so the chain returns before MASQUERADE'
  if (rule.target.kind === 'return') return 'the SNAT chain returns before its SNAT rule'
  const o = rule.matches.find((m) => m.kind === 'out-iface')
  if (o && o.kind === 'out-iface' && o.negated && trace.egressInterface && (o.wildcard ? trace.egressInterface.startsWith(o.name) : trace.egressInterface === o.name)) {
    return `it leaves through ${trace.egressInterface}, which the SNAT rule excludes (! -o ${o.name}${o.wildcard ? '+' : ''})`
  }
  if (d && d.kind === 'dst' && d.negated) return `${formatIp(dst)} is in ${formatCidr(d.cidr)}, which the rule exempts (! -d ${formatCidr(d.cidr)})`
  if (rule.matches.some((m) => m.kind === 'addrtype')) return `${formatIp(dst)} is an address of this node (addrtype LOCAL), which is never SNATed`
  return 'a rule on the way to the SNAT rule did not match'
}

/** The setting that would change the outcome, in the words of the component that owns the decision. */
export function settingFor(trace: Trace, state: NodeState): string | undefined {
  const owner = trace.decisive?.owner
  const rule = decisiveRule(trace) ?? (trace.decisive ? ruleAt(state, trace.decisive.ref) : undefined)
  const snat = snatOf(trace, state)
  if (trace.verdict !== 'forwarded' && trace.verdict !== 'delivered') return undefined
  // The rule translated the source to the address it already had: no setting changes that.
  if (decisiveStep(trace)?.kind === 'nat' && !snat) return undefined
  if (owner === 'vpc-cni' && snat) return 'AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS: add the destination range to keep the pod address; or AWS_VPC_K8S_CNI_EXTERNALSNAT=true to leave translation to a NAT gateway'
  if (owner === 'vpc-cni' && rule && /EXCLU/.test(rule.comment ?? '')) return 'AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS: remove the range to have the node SNAT it'
  if (owner === 'vpc-cni' && rule?.target.kind === 'return') return 'the VPC\'s CIDR blocks (IMDS vpc-ipv4-cidr-blocks): traffic inside the VPC is never SNATed by the VPC CNI'
  if (owner === 'vpc-cni' && rule?.matches.some((m) => m.kind === 'out-iface')) return 'POD_SECURITY_GROUP_ENFORCING_MODE=standard: off-VPC traffic of branch-ENI pods then leaves through the primary ENI, SNATed'
  if (owner === 'kube-proxy' && snat) return 'externalTrafficPolicy: Local on the Service keeps the client address (NodePort/LoadBalancer); for a ClusterIP from the node itself the masquerade always applies'
  if (owner === 'egress-cni') {
    return trace.flow.src.family === 6
      ? 'ENABLE_V6_EGRESS (the egress-cni plugin): IPv6 from IPv4 pods always leaves as the node\'s IPv6 address'
      : 'ENABLE_V4_EGRESS (the egress-cni plugin): IPv4 from IPv6 pods always leaves as the node\'s IPv4 address'
  }
  if (!trace.decisive && snat === false && /EXTERNALSNAT=true|no SNAT rule exists/.test(trace.undecidedReason ?? '')) return 'AWS_VPC_K8S_CNI_EXTERNALSNAT=false makes the node SNAT off-VPC pod traffic to its primary address'
  if (owner === 'unknown') return 'a hand-written rule decides: remove or change it (it is not a component setting)'
  return undefined
}

export function summaryOfBranches(e: Explanation): string | undefined {
  if (e.branches.length < 2) return undefined
  return `${e.branches.length} alternative paths (kube-proxy picks an endpoint at random); the verdict above is the most likely, the others are listed under branches`
}
