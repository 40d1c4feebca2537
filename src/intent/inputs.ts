// The inputs the VPC CNI reads when it programs a node (vpc-cni.md §2, §7, §8): its settings, IMDS, the node's
// primary interface and address, its pods and ENIs. Each input keeps where it was read; when the bundle does not
// hold it, the default the CNI uses (or what the installed rules show) is taken and the note says so.
import { formatCidr, parseCidr, parseIp, sameIp, type Cidr, type IpAddress } from '../model/ip.js'
import type { SourceRef } from '../model/evidence.js'
import type { NodeState, Setting } from '../model/node-state.js'
import type { CidrInput, EraInfo, Input, IntentInputs, IntentPod, RandomizeSnat, SgpMode } from './model.js'
import { iptablesTables } from './era.js'

/** Splits a CIDR list as the CNI does (commas; natlens also takes spaces and newlines); bad entries are returned apart. */
export function parseCidrList(value: string, family: 4 | 6 = 4): { cidrs: Cidr[]; bad: string[] } {
  const cidrs: Cidr[] = []
  const bad: string[] = []
  for (const t of value.split(/[\s,]+/).map((x) => x.trim()).filter(Boolean)) {
    // The CNI reads each entry with net.ParseCIDR: a prefix length is required.
    const c = t.includes('/') ? parseCidr(t) : undefined
    if (!c || c.family !== family) bad.push(t)
    else if (!cidrs.some((x) => x.network === c.network && x.prefix === c.prefix)) cidrs.push(c)
  }
  return { cidrs, bad }
}

/** `AWS_VPC_K8S_CNI_RANDOMIZESNAT` as `typeOfSNAT()` reads it: prng, unset or invalid → prng. */
export function randomizeOf(value: string | undefined): RandomizeSnat {
  const v = (value ?? '').trim().toLowerCase()
  if (v === 'hashrandom' || v === '1') return 'hashrandom'
  if (v === 'none' || v === '0') return 'none'
  return 'prng'
}

export function parseMark(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const v = value.trim()
  const n = /^0x[0-9a-f]+$/i.test(v) ? parseInt(v.slice(2), 16) : /^\d+$/.test(v) ? Number(v) : NaN
  return Number.isInteger(n) && n > 0 && n <= 0xffffffff ? n : undefined
}

const bool = (s: Setting | undefined): boolean | undefined => (s === undefined || s.value.trim() === '' ? undefined : s.value.trim().toLowerCase() === 'true')

function input<T>(value: T, ref?: SourceRef, assumed?: string): Input<T> {
  return { value, ...(ref ? { ref } : {}), ...(assumed ? { assumed } : {}) }
}

/** Every IMDS `…vpc-ipv4-cidr-blocks` value (one per MAC; all list the VPC's CIDRs). */
function imdsVpcCidrs(state: NodeState): CidrInput[] {
  const out: CidrInput[] = []
  for (const [key, s] of state.imds) {
    if (!/(^|\/)vpc-ipv4-cidr-blocks$/.test(key)) continue
    for (const c of parseCidrList(s.value).cidrs) if (!out.some((x) => x.cidr.network === c.network && x.cidr.prefix === c.prefix)) out.push({ cidr: c, ref: s.ref, source: 'imds' })
  }
  return out
}

function sameCidr(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.network === b.network && a.prefix === b.prefix
}

/** The inputs of the intent for a node whose rules were written by `era`. */
export function readIntentInputs(state: NodeState, era: EraInfo): IntentInputs {
  const notes: string[] = []
  const s = state.settings
  const d = state.derived

  const localIpv4 = state.imds.get('local-ipv4')
  const imdsIp = localIpv4 ? parseIp(localIpv4.value.trim()) : undefined
  const nodeIp = imdsIp && imdsIp.family === 4
    ? input<IpAddress | undefined>(imdsIp, localIpv4!.ref)
    : d.primaryAddress
      ? input<IpAddress | undefined>(d.primaryAddress, d.primaryRef, 'IMDS local-ipv4 is not in the bundle: the primary address natlens derived was used')
      : input<IpAddress | undefined>(undefined, undefined, 'the node\'s primary IPv4 address is unknown (no IMDS local-ipv4, no SNAT rule, no addresses)')
  if (nodeIp.assumed) notes.push(nodeIp.assumed)

  const primaryInterface = d.primaryInterface ? input(d.primaryInterface, d.primaryRef) : input('eth0', undefined, 'the primary interface is unknown: assumed eth0')
  if (primaryInterface.assumed) notes.push(primaryInterface.assumed)

  // Exclusions: the setting when the bundle has it (an empty value means none), else what the chains show.
  const exclSetting = s.get('AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS')
  let excludeCidrs: CidrInput[]
  if (exclSetting) {
    const { cidrs, bad } = parseCidrList(exclSetting.value)
    // The CNI logs and skips invalid and IPv6 entries (vpc-cni.md §7).
    if (bad.length) notes.push(`AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS entries the CNI skips (not IPv4 CIDRs): ${bad.join(', ')}`)
    excludeCidrs = cidrs.map((cidr) => ({ cidr, ref: exclSetting.ref, source: 'setting' as const }))
  } else {
    excludeCidrs = d.excludeCidrs.filter((c) => c.cidr.family === 4).map((c) => ({ cidr: c.cidr, ref: c.ref, source: 'chains' as const }))
    if (d.components.some((c) => c.name === 'vpc-cni')) notes.push('AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS is not in the bundle: the exclusions were read from the installed chains')
  }

  let vpcCidrs = imdsVpcCidrs(state)
  if (vpcCidrs.length === 0) {
    vpcCidrs = d.vpcCidrs.filter((c) => c.cidr.family === 4 && !excludeCidrs.some((e) => sameCidr(e.cidr, c.cidr)))
      .map((c) => ({ cidr: c.cidr, ref: c.ref, source: 'chains' as const }))
    if (era.era !== 'ipv6') notes.push(vpcCidrs.length
      ? `IMDS vpc-ipv4-cidr-blocks is not in the bundle: the VPC CIDRs were read from the installed chains (${vpcCidrs.map((c) => formatCidr(c.cidr)).join(', ')}), so a CIDR missing from every chain cannot be noticed`
      : 'the VPC CIDRs are unknown (no IMDS vpc-ipv4-cidr-blocks, no AWS chain RETURN rules)')
  }

  const extSetting = s.get('AWS_VPC_K8S_CNI_EXTERNALSNAT')
  let externalSnat: Input<boolean>
  const ext = bool(extSetting)
  if (ext !== undefined) externalSnat = input(ext, extSetting!.ref)
  else {
    const snat = iptablesTables(state, 'nat').flatMap((t) => [...t.chains.values()].flatMap((c) => c.rules)).find((r) => r.target.kind === 'snat' && (r.comment === 'AWS, SNAT' || r.chain.startsWith('AWS-SNAT-CHAIN')))
    externalSnat = input(!snat, snat?.ref, `AWS_VPC_K8S_CNI_EXTERNALSNAT is not in the bundle: ${snat ? 'false, as the installed SNAT rule shows' : 'true, as no AWS SNAT rule is installed'}`)
    if (era.era !== 'ipv6') notes.push(externalSnat.assumed!)
  }

  const rnd = s.get('AWS_VPC_K8S_CNI_RANDOMIZESNAT')
  let randomizeSnat: Input<RandomizeSnat>
  if (rnd) randomizeSnat = input(randomizeOf(rnd.value), rnd.ref)
  else {
    const snat = iptablesTables(state, 'nat').flatMap((t) => [...t.chains.values()].flatMap((c) => c.rules)).find((r) => r.target.kind === 'snat' && (r.comment === 'AWS, SNAT' || r.chain.startsWith('AWS-SNAT-CHAIN')))
    const t = snat?.target
    const seen: RandomizeSnat = t && t.kind === 'snat' ? (t.randomFully ? 'prng' : t.random ? 'hashrandom' : 'none') : 'prng'
    randomizeSnat = input(seen, snat?.ref, `AWS_VPC_K8S_CNI_RANDOMIZESNAT is not in the bundle: ${snat ? `${seen}, as the installed SNAT rule shows` : 'prng, the default'}`)
  }

  const cm = s.get('AWS_VPC_K8S_CNI_CONNMARK')
  const cmValue = parseMark(cm?.value)
  const connmark = cmValue !== undefined ? input(cmValue, cm!.ref)
    : d.connmark !== undefined ? input(d.connmark, undefined, 'AWS_VPC_K8S_CNI_CONNMARK is not in the bundle: the mark the installed chains set')
      : input(0x80, undefined, 'AWS_VPC_K8S_CNI_CONNMARK is not in the bundle: the default 0x80')

  const vp = s.get('AWS_VPC_K8S_CNI_VETHPREFIX')
  const vethPrefix = vp && vp.value.trim() ? input(vp.value.trim(), vp.ref) : input(d.vethPrefix ?? 'eni', undefined, 'AWS_VPC_K8S_CNI_VETHPREFIX is not in the bundle: the prefix of the host veths')

  const np = s.get('AWS_VPC_CNI_NODE_PORT_SUPPORT')
  const nodePortSupport = input(bool(np) ?? true, np?.ref, np ? undefined : 'AWS_VPC_CNI_NODE_PORT_SUPPORT is not in the bundle: the default true')

  const esc = s.get('AWS_EXTERNAL_SERVICE_CIDRS')
  const externalServiceCidrs = esc ? parseCidrList(esc.value).cidrs.map((cidr) => ({ cidr, ref: esc.ref, source: 'setting' as const })) : []

  const mode = s.get('POD_SECURITY_GROUP_ENFORCING_MODE')
  const sgpMode = input<SgpMode>(mode?.value.trim() === 'standard' ? 'standard' : 'strict', mode?.ref, mode ? undefined : 'POD_SECURITY_GROUP_ENFORCING_MODE is not in the bundle: the default strict')

  return {
    era, nodeIp, primaryInterface, vpcCidrs, excludeCidrs, ...(exclSetting ? { excludeRef: exclSetting.ref } : {}),
    externalSnat, randomizeSnat, connmark, vethPrefix, nodePortSupport, externalServiceCidrs, sgpMode,
    pods: intentPods(state), enis: d.enis, notes,
  }
}

/**
 * The node's pods that get ip rules: the egress plugin's legs get none, and a pod known only from a 512 rule while
 * the routes were collected is no pod at all (the rule was left behind).
 */
function intentPods(state: NodeState): IntentPod[] {
  const routesKnown = state.routes.length > 0
  const out: IntentPod[] = []
  for (const pod of state.derived.pods) {
    if (pod.kind === 'egress-v4' || pod.kind === 'egress-v6') continue
    if (routesKnown && !pod.hostVeth) continue
    let table = pod.table
    let tableRef: SourceRef | undefined
    if (table) tableRef = state.routingRules.find((r) => r.from && r.from.network === pod.ip.value && r.action.kind === 'lookup' && r.action.table === table)?.ref ?? pod.ref
    else if (pod.kind !== 'sgp-strict') {
      // ipamd knows which ENI holds the address even when the pod's 1536 rule is gone (after an ipamd restart).
      const eni = state.ipamdEnis.find((e) => !e.primary && e.addresses.some((a) => sameIp(a.address, pod.ip)))
      if (eni) {
        const t = eni.routeTableId ?? (eni.deviceNumber !== undefined ? eni.deviceNumber + 1 : undefined)
        if (t !== undefined) { table = String(t); tableRef = eni.ref }
      }
    }
    out.push({ pod, ...(table ? { table } : {}), ...(tableRef ? { tableRef } : {}) })
  }
  return out
}
