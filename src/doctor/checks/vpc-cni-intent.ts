// The VPC CNI's settings and the installed rules disagree: the rules the settings imply for the node's era
// (src/intent) against the installed ones, grouped by what went wrong (an exclusion not applied, a VPC CIDR not
// exempt, rules left behind after EXTERNALSNAT was toggled, …). Per-pod ip rules are the `pod-ip-rules` check's.
import { cidrCovers, formatCidr, type Cidr } from '../../model/ip.js'
import type { SourceRef } from '../../model/evidence.js'
import type { Intent, RuleDifference } from '../../intent/model.js'
import { ERA_LABEL } from '../../intent/model.js'
import { describeInputs } from '../../intent/generate.js'
import type { Check, Finding, FindingSeverity } from '../model.js'
import { evidenceOf, uniqueEvidence } from '../model.js'

type Topic = 'exclude-missing' | 'vpc-cidr-missing' | 'exempt-unexpected' | 'snat-leftover' | 'snat-missing' | 'mangle' | 'ip-rule' | 'order' | 'other'

/** The CIDR a RETURN rule (or a numbered hop's `! -d`) exempts; `0.0.0.0/0` for a v1.23 `-j RETURN` without `-d`. */
function exemptCidr(d: RuleDifference): Cidr | undefined {
  const rule = d.rule
  if (!rule) return undefined
  const t = rule.target
  const hop = t.kind === 'jump' && /^AWS-(SNAT|CONNMARK)-CHAIN-\d+$/.test(t.chain)
  if (t.kind !== 'return' && !hop) return undefined
  const dst = rule.matches.find((m) => m.kind === 'dst')
  if (dst && dst.kind === 'dst' && dst.negated === hop) return dst.cidr
  return !dst && t.kind === 'return' && /^AWS-(SNAT|CONNMARK)-CHAIN|^snat-mark$/.test(rule.chain) ? { family: 4, network: 0n, prefix: 0 } : undefined
}

function topicOf(d: RuleDifference, intent: Intent): Topic {
  if (d.kind === 'order') return 'order'
  if (d.layer === 'ip-rule') return 'ip-rule'
  if (d.table === 'mangle') return 'mangle'
  const cidr = exemptCidr(d)
  const has = (list: readonly { cidr: Cidr }[], c: Cidr) => list.some((x) => cidrCovers(x.cidr, c) && cidrCovers(c, x.cidr))
  if (cidr) {
    if (d.kind === 'missing') return has(intent.inputs.excludeCidrs, cidr) ? 'exclude-missing' : 'vpc-cidr-missing'
    return 'exempt-unexpected'
  }
  if (d.kind === 'unexpected' && intent.inputs.externalSnat.value) return 'snat-leftover'
  if (d.kind === 'missing' && !intent.inputs.externalSnat.value) return 'snat-missing'
  return 'other'
}

const RESTART = '`kubectl -n kube-system rollout restart daemonset aws-node` makes ipamd program the chains again from its settings'

function deleteCommand(d: RuleDifference): string | undefined {
  if (d.layer === 'iptables' && d.text.startsWith('-A ')) return `iptables -t ${d.table} ${d.text.replace(/^-A /, '-D ')}`
  if (d.layer === 'ip-rule') {
    const m = /^(\d+):\s+(.*)$/.exec(d.text)
    if (m) return `ip ${d.family === 6 ? '-6 ' : ''}rule del pref ${m[1]} ${m[2]}`
  }
  return undefined
}

function cidrsOf(ds: readonly RuleDifference[]): string {
  const seen = [...new Set(ds.map((d) => exemptCidr(d)).filter((c): c is Cidr => !!c).map(formatCidr))]
  return seen.join(', ')
}

function finding(severity: FindingSeverity, title: string, detail: string, ds: readonly RuleDifference[], fix: string, extra: readonly (SourceRef | undefined)[] = []): Finding {
  const refs: (SourceRef | undefined)[] = []
  for (const d of ds) {
    refs.push(d.ref)
    if (!d.ref && d.intended) refs.push(d.intended)
    refs.push(...d.because)
  }
  return { id: 'vpc-cni-intent', severity, title, detail, evidence: uniqueEvidence([...extra, ...refs]), fix }
}

function lines(ds: readonly RuleDifference[]): string {
  return ds.map((d) => `  ${d.kind === 'missing' ? 'missing:   ' : d.kind === 'unexpected' ? 'unexpected:' : 'order:     '} ${d.text}${d.ref ? `  (${d.ref.artifact}:${d.ref.line})` : ''}`).join('\n')
}

export const vpcCniIntent: Check = {
  id: 'vpc-cni-intent',
  description: 'The VPC CNI settings and the installed rules disagree (the rules the settings imply for the detected CNI era, against the node)',
  run(ctx) {
    const r = ctx.intent()
    if ('none' in r) return { skip: r.none }
    const { intent, diff } = r
    const ds = diff.differences.filter((d) => !d.pod)
    const out: Finding[] = []
    const inputs = intent.inputs
    const era = `${ERA_LABEL[inputs.era.era]} (${inputs.era.because})`
    const by = new Map<Topic, RuleDifference[]>()
    for (const d of ds) { const t = topicOf(d, intent); by.set(t, [...(by.get(t) ?? []), d]) }
    const settingsLine = `Intent: ${describeInputs(inputs)}.`
    const eraEvidence = inputs.era.evidence

    const excl = by.get('exclude-missing')
    if (excl) out.push(finding('error', `AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS is not reflected: ${cidrsOf(excl)} has no RETURN rule`,
      `The setting excludes ${cidrsOf(excl)} from SNAT, but the node's chains do not: pod traffic to it is still marked and SNATed to the node's address. The setting was changed after ipamd programmed the node, or ipamd could not apply it.\n${lines(excl)}\n${settingsLine}`,
      excl, `Check the value ipamd runs with (kubectl -n kube-system get daemonset aws-node -o yaml | grep -A1 EXCLUDE_SNAT); ${RESTART}.`, [inputs.excludeRef]))
    const vpc = by.get('vpc-cidr-missing')
    if (vpc) out.push(finding('error', `VPC CIDR ${cidrsOf(vpc)} is missing from the SNAT exemptions`,
      `IMDS lists ${cidrsOf(vpc)} among the VPC's CIDRs, but the chains have no RETURN for it: pod traffic to that part of the VPC is marked, routed through the primary ENI and SNATed to the node's address (a secondary VPC CIDR associated after ipamd read IMDS, or IMDS unreachable).\n${lines(vpc)}\n${settingsLine}`,
      vpc, `ipamd re-reads IMDS vpc-ipv4-cidr-blocks every 30 s; if the CIDR is not picked up, check \`curl -s http://169.254.169.254/latest/meta-data/network/interfaces/macs/$(curl -s http://169.254.169.254/latest/meta-data/mac)/vpc-ipv4-cidr-blocks\` on the node and ${RESTART}.`))
    const unexpectedExempt = by.get('exempt-unexpected')
    if (unexpectedExempt) out.push(finding('warning', `The node exempts ${cidrsOf(unexpectedExempt) || 'CIDRs'} from SNAT, but the settings do not`,
      `These RETURN rules are not implied by the VPC CIDRs and AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS in the bundle: an exclusion removed from the setting that was never cleaned up, or a CIDR disassociated from the VPC. Pod traffic to it keeps the pod's address.\n${lines(unexpectedExempt)}\n${settingsLine}`,
      unexpectedExempt, `If the exemption is wanted, add it to AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS; otherwise delete it:\n${unexpectedExempt.map(deleteCommand).filter(Boolean).join('\n')}`, [inputs.excludeRef]))
    const leftover = by.get('snat-leftover')
    if (leftover) out.push(finding('error', 'Rules left behind after AWS_VPC_K8S_CNI_EXTERNALSNAT was set to true',
      `EXTERNALSNAT=true means the VPC CNI SNATs nothing and marks nothing, yet these rules are installed: pod traffic is still SNATed to the node's address (or marked and routed through the primary ENI).\n${lines(leftover)}\n${settingsLine}`,
      leftover, `Delete them (the chains themselves stay, empty):\n${leftover.map(deleteCommand).filter(Boolean).join('\n')}\nor ${RESTART}.`, [inputs.externalSnat.ref]))
    const missing = by.get('snat-missing')
    if (missing) out.push(finding('error', 'SNAT or connmark rules missing although AWS_VPC_K8S_CNI_EXTERNALSNAT=false',
      `With EXTERNALSNAT=false the VPC CNI marks off-VPC pod connections and SNATs them to the node's address; these rules are not installed, so ${missing.some((d) => /AWS, SNAT|SNAT --to-source/.test(d.text)) ? 'off-VPC pod traffic leaves with the pod\'s own address (dropped at an internet gateway)' : 'off-VPC traffic of pods on secondary ENIs is not marked, leaves through its own ENI and is SNATed to the primary ENI\'s address, which the VPC drops'}. Typical after EXTERNALSNAT was switched back to false, or when aws-node is not running.\n${lines(missing)}\n${settingsLine}`,
      missing, `${RESTART}; check that the aws-node pod on this node is Running.`, [inputs.externalSnat.ref]))
    const mangle = by.get('mangle')
    if (mangle) out.push(finding('warning', 'The VPC CNI\'s mangle rules differ from what the settings imply',
      `The mangle PREROUTING CONNMARK rules carry the 0x80 mark of NodePort connections and restore it on pod replies, so replies leave through the primary ENI. Without them (or with other marks) NodePort replies from pods on secondary ENIs leave through the wrong ENI.\n${lines(mangle)}\n${settingsLine}`,
      mangle, `${RESTART}.`, [inputs.nodePortSupport.ref]))
    const ipRules = by.get('ip-rule')
    if (ipRules) out.push(finding('error', 'The VPC CNI\'s ip rules differ from what the settings imply',
      `Policy routing sends marked traffic (rule 1024) and traffic of the ENIs' own addresses (32765) to the right table; a missing or different rule sends it out the wrong ENI.\n${lines(ipRules)}\n${settingsLine}`,
      ipRules, `${RESTART}; or add the missing rules by hand (ip rule add pref <prio> …) and delete the others:\n${ipRules.filter((d) => d.kind === 'unexpected').map(deleteCommand).filter(Boolean).join('\n')}`))
    const order = by.get('order')
    if (order) out.push(finding('error', 'The VPC CNI\'s rules are in an order that changes the verdict',
      `${order.map((d) => d.why).join('; ')}.\n${lines(order)}`, order, `${RESTART} (ipamd deletes and re-adds its rules in order).`))
    const other = by.get('other')
    if (other) out.push(finding('warning', 'Rules of the VPC CNI that the settings do not imply',
      `${other.length} rule${other.length === 1 ? '' : 's'} differ from what ${era} writes for these settings.\n${lines(other)}\n${settingsLine}`, other, `${RESTART}.`))
    if (out.length === 0 && diff.notCompared.length > 0) {
      out.push({ id: 'vpc-cni-intent', severity: 'info', title: 'Part of the VPC CNI\'s rules could not be compared', detail: diff.notCompared.join('\n'), evidence: eraEvidence.map(evidenceOf), fix: 'Collect the missing outputs (`natlens collect` runs them all) and run doctor again.' })
    }
    return out
  },
}
