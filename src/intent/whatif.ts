// `natlens whatif`: change VPC CNI settings (or a service's externalTrafficPolicy) on paper, rebuild the rules the
// changed settings produce for the node's era, put them in place of the VPC CNI's part of the installed state
// (kube-proxy and everything else stay as they are), and explain each flow on both states.
import { cidrCovers, formatCidr, formatIp, parseCidr, type Cidr } from '../model/ip.js'
import type { SourceRef } from '../model/evidence.js'
import type { NodeFacts, NodeState, Setting } from '../model/node-state.js'
import type { Chain, Rule, Table } from '../model/netfilter.js'
import type { Route, RouteTable, RoutingRule } from '../model/routing.js'
import type { NetInterface } from '../model/interfaces.js'
import { derive } from '../model/derive.js'
import { makeContext } from '../parse/context.js'
import { parseIpRules, formatIpRule } from '../parse/ip-rule.js'
import { parseIpRoutes, formatIpRoute } from '../parse/ip-route.js'
import { NatlensError } from '../errors.js'
import type { CidrInput, Intent, IntentInputs, RandomizeSnat, SgpMode } from './model.js'
import { detectEra, iptablesTables } from './era.js'
import { parseCidrList, readIntentInputs } from './inputs.js'
import { generateIntent } from './generate.js'
import { CNI_IPTABLES_TABLES, isVpcCniRule, ruleKey, ruleText } from './ownership.js'
import { rewriteTrafficPolicy, type TrafficPolicy } from './kube-proxy-policy.js'
import { renderRestore } from './restore.js'

export type SettingChange =
  | { readonly kind: 'externalSnat'; readonly value: boolean; readonly text: string }
  | { readonly kind: 'excludeCidrs'; readonly cidrs: readonly Cidr[]; readonly text: string }
  | { readonly kind: 'randomizeSnat'; readonly value: RandomizeSnat; readonly text: string }
  | { readonly kind: 'sgpMode'; readonly value: SgpMode; readonly text: string }
  | { readonly kind: 'addVpcCidr'; readonly cidr: Cidr; readonly text: string }
  | { readonly kind: 'externalTrafficPolicy'; readonly service: string; readonly value: TrafficPolicy; readonly text: string }

/** The settings `--set` takes, for help texts and error messages. */
export const SETTABLE = [
  'AWS_VPC_K8S_CNI_EXTERNALSNAT=true|false',
  'AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS=<cidr>[,<cidr>…] (empty: none)',
  'AWS_VPC_K8S_CNI_RANDOMIZESNAT=prng|hashrandom|none',
  'POD_SECURITY_GROUP_ENFORCING_MODE=strict|standard',
  'ADD_VPC_CIDR=<cidr> (a CIDR block newly associated with the VPC)',
  'externalTrafficPolicy/<namespace>/<service>[:<port name>]=Cluster|Local',
] as const

/** Parses `NAME=VALUE`; returns an error message for anything else. */
export function parseSettingChange(text: string): SettingChange | string {
  const eq = text.indexOf('=')
  if (eq <= 0) return `--set ${JSON.stringify(text)}: expected NAME=VALUE`
  const rawName = text.slice(0, eq).trim()
  const value = text.slice(eq + 1).trim()
  const name = rawName.toUpperCase().replace(/^AWS_VPC_K8S_CNI_/, '')
  const bad = (what: string) => `--set ${rawName}=${value}: ${what}`
  if (/^externalTrafficPolicy[/:]/i.test(rawName)) {
    const service = rawName.replace(/^externalTrafficPolicy[/:]/i, '')
    if (!/^[^/\s]+\/[^/\s]+$/.test(service)) return bad('name the service as externalTrafficPolicy/<namespace>/<service>[:<port name>]')
    const v = value.toLowerCase()
    if (v !== 'cluster' && v !== 'local') return bad('externalTrafficPolicy is Cluster or Local')
    return { kind: 'externalTrafficPolicy', service, value: v === 'local' ? 'Local' : 'Cluster', text }
  }
  switch (name) {
    case 'EXTERNALSNAT': {
      const v = value.toLowerCase()
      if (v !== 'true' && v !== 'false') return bad('EXTERNALSNAT is true or false')
      return { kind: 'externalSnat', value: v === 'true', text }
    }
    case 'EXCLUDE_SNAT_CIDRS': {
      const { cidrs, bad: wrong } = parseCidrList(value)
      if (wrong.length) return bad(`not IPv4 CIDRs: ${wrong.join(', ')} (the CNI would skip them)`)
      return { kind: 'excludeCidrs', cidrs, text }
    }
    case 'RANDOMIZESNAT': {
      const v = value.toLowerCase()
      if (!['prng', 'hashrandom', 'none'].includes(v)) return bad('RANDOMIZESNAT is prng, hashrandom or none')
      return { kind: 'randomizeSnat', value: v as RandomizeSnat, text }
    }
    case 'POD_SECURITY_GROUP_ENFORCING_MODE': {
      const v = value.toLowerCase()
      if (v !== 'strict' && v !== 'standard') return bad('POD_SECURITY_GROUP_ENFORCING_MODE is strict or standard')
      return { kind: 'sgpMode', value: v, text }
    }
    case 'ADD_VPC_CIDR': {
      const c = value.includes('/') ? parseCidr(value) : undefined
      if (!c || c.family !== 4) return bad('not an IPv4 CIDR (a VPC CIDR block has a prefix length, e.g. 100.64.0.0/16)')
      return { kind: 'addVpcCidr', cidr: c, text }
    }
    default:
      return `--set ${rawName}: natlens cannot change this setting; it knows ${SETTABLE.join('; ')}`
  }
}

const WHATIF: SourceRef = { artifact: '(whatif --set)', line: 0, text: '' }
const ref = (text: string): SourceRef => ({ ...WHATIF, text })

/** The intent inputs with the changes applied. */
export function applyToInputs(inputs: IntentInputs, changes: readonly SettingChange[]): IntentInputs {
  let next: IntentInputs = inputs
  for (const c of changes) {
    switch (c.kind) {
      case 'externalSnat': next = { ...next, externalSnat: { value: c.value, ref: ref(c.text) } }; break
      case 'randomizeSnat': next = { ...next, randomizeSnat: { value: c.value, ref: ref(c.text) } }; break
      case 'sgpMode': next = { ...next, sgpMode: { value: c.value, ref: ref(c.text) } }; break
      case 'excludeCidrs': next = { ...next, excludeCidrs: c.cidrs.map((cidr): CidrInput => ({ cidr, ref: ref(c.text), source: 'whatif' })), excludeRef: ref(c.text) }; break
      case 'addVpcCidr':
        if (!next.vpcCidrs.some((v) => cidrCovers(v.cidr, c.cidr) && cidrCovers(c.cidr, v.cidr))) next = { ...next, vpcCidrs: [...next.vpcCidrs, { cidr: c.cidr, ref: ref(c.text), source: 'whatif' }] }
        break
      case 'externalTrafficPolicy': break
    }
  }
  return next
}

export interface WhatIfState {
  readonly state: NodeState
  readonly before: Intent
  readonly after: Intent
  /** The changes as settings: name, old and new value, where the old one was read. */
  readonly settings: readonly { readonly setting: string; readonly before: string; readonly after: string; readonly ref?: SourceRef }[]
  readonly removed: readonly { readonly ref: SourceRef; readonly text: string; readonly layer: 'iptables' | 'nft' | 'ip-rule' | 'route' }[]
  readonly added: readonly { readonly table: string; readonly text: string; readonly layer: 'iptables' | 'nft' | 'ip-rule' | 'route' }[]
  /** iptables-restore input for the changed backend's tables, and `nft -f` input for table ip aws-cni (or null). */
  readonly restore: { readonly iptables: string; readonly backend: string; readonly nft: string | null; readonly ipRules: readonly string[]; readonly routes: readonly string[] }
  readonly warnings: readonly string[]
}

const cloneChain = (c: Chain, rules: Rule[]): Chain => ({ ...c, rules: rules.map((r, i) => (r.index === i + 1 && r.chain === c.name ? r : { ...r, chain: c.name, index: i + 1 })) })

/** The table of a name that holds the VPC CNI's rules (its backend), else the first of that name. */
function targetTable(state: NodeState, name: string, intent: Intent): Table | undefined {
  const ts = iptablesTables(state, name)
  if (intent.inputs.era.era === 'v1.23-nft') return ts.find((t) => t.origin === 'iptables-nft') ?? ts[0]
  return ts.find((t) => [...t.chains.keys()].some((c) => c.startsWith('AWS-')) || [...t.chains.values()].some((c) => c.rules.some((r) => isVpcCniRule(r, t)))) ?? ts[0]
}

/**
 * Replaces the VPC CNI's rules of one table with the intended ones: AWS-* chains wholesale; in built-in chains the
 * new rules take the place of the first old one (or go at the end, as the CNI appends), so the order relative to
 * kube-proxy's and other components' rules stays as the node has it.
 */
function spliceTable(table: Table, intended: Table | undefined, insertHere: boolean): Table {
  const chains = new Map<string, Chain>()
  for (const c of table.chains.values()) {
    if (c.name.startsWith('AWS-')) continue
    const keep: Rule[] = []
    let at = -1
    c.rules.forEach((r) => {
      if (isVpcCniRule(r, table)) { if (at < 0) at = keep.length; return }
      keep.push(r)
    })
    const add = insertHere ? intended?.chains.get(c.name)?.rules ?? [] : []
    const pos = at < 0 ? keep.length : at
    chains.set(c.name, cloneChain(c, [...keep.slice(0, pos), ...add, ...keep.slice(pos)]))
  }
  if (insertHere && intended) {
    for (const c of intended.chains.values()) {
      if (!c.name.startsWith('AWS-')) continue
      chains.set(c.name, cloneChain({ ...c, ref: table.chains.get(c.name)?.ref ?? c.ref }, c.rules))
    }
  }
  return { ...table, chains }
}

function settingValue(state: NodeState, name: string): Setting | undefined {
  return state.settings.get(name)
}

/** Builds the state the node would have after the changes. */
export function stateAfter(state: NodeState, changes: readonly SettingChange[]): WhatIfState {
  const era = detectEra(state)
  if ('none' in era) throw new NatlensError(`no VPC CNI on this node: ${era.none}`, 'whatif.no-vpc-cni', 2, 'give a bundle with the node\'s iptables-save and the aws-node settings (`natlens collect`)')
  const inputs = readIntentInputs(state, era)
  const before = generateIntent(inputs)
  const afterInputs = applyToInputs(inputs, changes)
  const after = generateIntent(afterInputs)
  const warnings: string[] = []
  if (era.era === 'ipv6' && changes.some((c) => c.kind !== 'externalTrafficPolicy' && c.kind !== 'sgpMode')) warnings.push('the node runs the VPC CNI in IPv6 mode, where these settings install no IPv4 rules')
  if (!afterInputs.externalSnat.value && afterInputs.vpcCidrs.length === 0 && era.era !== 'ipv6') {
    throw new NatlensError('the VPC CIDRs are unknown (no IMDS vpc-ipv4-cidr-blocks and no AWS chain RETURN rules in the bundle), so natlens cannot tell which destinations the SNAT rule would exempt', 'whatif.no-vpc-cidrs', 2, 'add them with --set ADD_VPC_CIDR=<cidr> (once per VPC CIDR block)')
  }

  // Netfilter: the VPC CNI's part replaced by the new intent, in the table that holds it.
  const tables: Table[] = []
  const targets = new Map<string, Table | undefined>(CNI_IPTABLES_TABLES.map((n) => [n, targetTable(state, n, after)]))
  for (const t of state.tables) {
    if (t.origin === 'nft' && t.name === 'aws-cni') continue
    if (t.origin !== 'nft' && t.family === 'ip' && (CNI_IPTABLES_TABLES as readonly string[]).includes(t.name)) {
      const intended = after.tables.find((x) => x.origin !== 'nft' && x.name === t.name)
      tables.push(spliceTable(t, intended, targets.get(t.name) === t))
      continue
    }
    tables.push(t)
  }
  const nftAfter = after.tables.find((t) => t.origin === 'nft' && t.name === 'aws-cni')
  if (nftAfter) tables.push(nftAfter)

  // kube-proxy: externalTrafficPolicy rewrites KUBE-EXT/KUBE-SVL of the service.
  const policies = changes.filter((c): c is Extract<SettingChange, { kind: 'externalTrafficPolicy' }> => c.kind === 'externalTrafficPolicy')
  const settings: WhatIfState['settings'][number][] = []
  const addedPolicy: { table: string; text: string }[] = []
  const removedPolicy: { ref: SourceRef; text: string }[] = []
  for (const p of policies) {
    const i = tables.findIndex((t) => t.origin !== 'nft' && t.family === 'ip' && t.name === 'nat' && t.chains.has('KUBE-SERVICES'))
    if (i < 0) throw new NatlensError('kube-proxy\'s iptables nat rules are not in the bundle', 'whatif.no-kube-proxy', 2, 'externalTrafficPolicy can be changed for kube-proxy in iptables mode')
    const nat = tables[i]!
    const rw = rewriteTrafficPolicy(state, nat, p.service, p.value)
    warnings.push(...rw.warnings)
    settings.push({ setting: `externalTrafficPolicy of ${rw.service}`, before: rw.before, after: rw.after, ...(nat.chains.get(`KUBE-EXT-${rw.hash}`)?.ref ? { ref: nat.chains.get(`KUBE-EXT-${rw.hash}`)!.ref } : {}) })
    if (rw.before === rw.after) { warnings.push(`${rw.service} already has externalTrafficPolicy=${rw.after}`); continue }
    const chains = new Map(nat.chains)
    for (const [name, rules] of rw.chains) {
      for (const r of nat.chains.get(name)?.rules ?? []) removedPolicy.push({ ref: r.ref, text: ruleText(r) })
      if (rules === null) { chains.delete(name); continue }
      const old = nat.chains.get(name)
      chains.set(name, cloneChain({ name, rules: [], ref: old?.ref ?? rules[0]?.ref ?? { artifact: '(whatif)', line: 0, text: `:${name} - [0:0]` } }, rules))
      for (const r of rules) addedPolicy.push({ table: 'nat', text: ruleText(r) })
    }
    tables[i] = { ...nat, chains }
  }

  // Security groups for pods: the mode decides the branch pods' veth name, route table and ip rules (vpc-cni.md §5).
  const sgp = changes.filter((c) => c.kind === 'sgpMode').at(-1) as Extract<SettingChange, { kind: 'sgpMode' }> | undefined
  let routingRules = state.routingRules
  let routes = state.routes
  let interfaces = state.interfaces
  const ipRulesAdded: string[] = []
  const routesAdded: string[] = []
  const removedRouting: { ref: SourceRef; text: string; layer: 'ip-rule' | 'route' }[] = []
  if (sgp) {
    const r = rewriteSgpMode(state, inputs, sgp.value)
    routingRules = r.rules
    routes = r.routes
    interfaces = r.interfaces
    ipRulesAdded.push(...r.addedRules)
    routesAdded.push(...r.addedRoutes)
    removedRouting.push(...r.removed)
    warnings.push(...r.warnings)
  }

  // Settings and IMDS as the changed node would show them, so explain's reasons and derived facts agree.
  const settingsMap = new Map(state.settings)
  const set = (name: string, value: string, text: string, shown = value) => {
    const old = settingValue(state, name)
    settings.push({ setting: name, before: old?.value ?? '(not in the bundle)', after: shown, ...(old ? { ref: old.ref } : {}) })
    settingsMap.set(name, { name, value, ref: ref(text) })
  }
  for (const c of changes) {
    if (c.kind === 'externalSnat') set('AWS_VPC_K8S_CNI_EXTERNALSNAT', String(c.value), c.text)
    if (c.kind === 'randomizeSnat') set('AWS_VPC_K8S_CNI_RANDOMIZESNAT', c.value, c.text)
    if (c.kind === 'sgpMode') set('POD_SECURITY_GROUP_ENFORCING_MODE', c.value, c.text)
    if (c.kind === 'excludeCidrs') set('AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS', c.cidrs.map(formatCidr).join(','), c.text)
  }
  const imds = new Map(state.imds)
  const added = changes.filter((c): c is Extract<SettingChange, { kind: 'addVpcCidr' }> => c.kind === 'addVpcCidr')
  if (added.length) {
    const all = afterInputs.vpcCidrs.map((c) => formatCidr(c.cidr)).join('\n')
    for (const k of [...imds.keys()]) if (/(^|\/)vpc-ipv4-cidr-blocks$/.test(k)) imds.delete(k)
    imds.set('network/interfaces/macs/(whatif)/vpc-ipv4-cidr-blocks', { name: 'vpc-ipv4-cidr-blocks', value: all, ref: ref(added.map((c) => c.text).join(' ')) })
    settings.push({ setting: 'VPC CIDR blocks (IMDS vpc-ipv4-cidr-blocks)', before: inputs.vpcCidrs.map((c) => formatCidr(c.cidr)).join(', ') || '(unknown)', after: afterInputs.vpcCidrs.map((c) => formatCidr(c.cidr)).join(', '), ...(inputs.vpcCidrs[0]?.ref ? { ref: inputs.vpcCidrs[0].ref } : {}) })
  }

  const facts: NodeFacts = {
    interfaces, routingRules: [...routingRules].sort((a, b) => a.family - b.family || a.priority - b.priority), routes, tables,
    conntrack: state.conntrack, conntrackStats: state.conntrackStats, settings: settingsMap, sysctls: state.sysctls, imds, ipamdEnis: state.ipamdEnis,
  }
  const routeTables = new Map<string, RouteTable>()
  for (const r of routes) {
    const key = r.family === 6 ? `${r.table} (IPv6)` : r.table
    let t = routeTables.get(key)
    if (!t) routeTables.set(key, (t = { name: key, routes: [] }))
    t.routes.push(r)
  }
  const next: NodeState = { ...state, ...facts, derived: derive(facts), routeTables }

  // What changed, rule by rule (by meaning), and the text to apply.
  const cniRules = (s: NodeState) => s.tables.flatMap((t) => [...t.chains.values()].flatMap((c) => c.rules.filter((r) => isVpcCniRule(r, t)).map((r) => ({ r, t }))))
  const keyOf = (x: { r: Rule; t: Table }) => `${x.t.origin === 'nft' ? 'nft' : x.t.name}/${x.r.chain}/${ruleKey(x.r, false).key}`
  const oldRules = cniRules(state)
  const newRules = cniRules(next)
  const oldKeys = new Set(oldRules.map(keyOf))
  const newKeys = new Set(newRules.map(keyOf))
  const removed: WhatIfState['removed'][number][] = [
    ...oldRules.filter((x) => !newKeys.has(keyOf(x))).map((x) => ({ ref: x.r.ref, text: ruleText(x.r), layer: x.t.origin === 'nft' ? 'nft' as const : 'iptables' as const })),
    ...removedPolicy.map((x) => ({ ...x, layer: 'iptables' as const })),
    ...removedRouting,
  ]
  const addedRules: WhatIfState['added'][number][] = [
    ...newRules.filter((x) => !oldKeys.has(keyOf(x))).map((x) => ({ table: x.t.origin === 'nft' ? 'aws-cni' : x.t.name, text: ruleText(x.r), layer: x.t.origin === 'nft' ? 'nft' as const : 'iptables' as const })),
    ...addedPolicy.map((x) => ({ ...x, layer: 'iptables' as const })),
    ...ipRulesAdded.map((text) => ({ table: 'rules', text, layer: 'ip-rule' as const })),
    ...routesAdded.map((text) => ({ table: 'routes', text, layer: 'route' as const })),
  ]
  const backendTable = targets.get('nat') ?? targets.get('mangle')
  const backend = backendTable?.origin ?? 'iptables-legacy'
  const restoreTables = next.tables.filter((t) => t.origin === backend && t.family === 'ip')
  const restore = renderRestore(restoreTables)
  if (restore.unrestorable.length) warnings.push(`${restore.unrestorable.length} rule${restore.unrestorable.length === 1 ? '' : 's'} came from listings that are not iptables-save text and cannot be written back into the restore input`)
  for (const n of after.inputs.notes) if (!warnings.includes(n)) warnings.push(n)
  if (changes.some((c) => c.kind === 'sgpMode')) warnings.push('POD_SECURITY_GROUP_ENFORCING_MODE applies to branch pods set up after the change: existing pods keep their setup until they are recreated')
  return {
    state: next, before, after, settings, removed, added: addedRules,
    restore: { iptables: restore.text, backend, nft: after.nftText, ipRules: ipRulesAdded, routes: routesAdded },
    warnings,
  }
}

interface SgpRewrite {
  rules: RoutingRule[]
  routes: Route[]
  interfaces: NetInterface[]
  addedRules: string[]
  addedRoutes: string[]
  removed: { ref: SourceRef; text: string; layer: 'ip-rule' | 'route' }[]
  warnings: string[]
}

/**
 * Branch pods as the CNI sets them up in the other mode (vpc-cni.md §5): strict uses a `vlan<hash>` veth, the pod
 * route in table 100+N, `10: iif vlan.eth.N` and `10: iif vlan<hash>` rules and the local rule at 20; standard uses
 * the normal prefix, the route in main, `512: to pod` and `1536: from pod lookup 100+N`, and local at 0.
 */
function rewriteSgpMode(state: NodeState, inputs: IntentInputs, mode: SgpMode): SgpRewrite {
  const prefix = inputs.vethPrefix.value
  const branch = state.derived.pods.filter((p) => (p.kind === 'sgp-strict' || p.kind === 'sgp-standard') && p.ip.family === 4)
  const out: SgpRewrite = { rules: [...state.routingRules], routes: [...state.routes], interfaces: [...state.interfaces], addedRules: [], addedRoutes: [], removed: [], warnings: [] }
  if (branch.length === 0) { out.warnings.push('no security-group (branch) pod on this node: the mode changes nothing here'); return out }
  const ruleCtx = makeContext('(whatif) ip rule', { family: 4 })
  const routeCtx = makeContext('(whatif) ip route', { family: 4 })
  const dropRule = (pred: (r: RoutingRule) => boolean) => {
    out.rules = out.rules.filter((r) => { if (r.family === 4 && pred(r)) { out.removed.push({ ref: r.ref, text: formatIpRule(r), layer: 'ip-rule' }); return false } return true })
  }
  const addRules = (text: string) => {
    for (const r of parseIpRules(`${text}\n`, ruleCtx)) { out.rules.push(r); out.addedRules.push(formatIpRule(r)) }
  }
  const dropRoute = (pred: (r: Route) => boolean) => {
    out.routes = out.routes.filter((r) => { if (pred(r)) { out.removed.push({ ref: r.ref, text: formatIpRoute(r), layer: 'route' }); return false } return true })
  }
  const addRoutes = (text: string) => {
    for (const r of parseIpRoutes(`${text}\n`, routeCtx)) { out.routes.push(r); out.addedRoutes.push(formatIpRoute(r)) }
  }
  const rename = (from: string, to: string) => {
    out.interfaces = out.interfaces.map((i) => (i.name === from ? { ...i, name: to } : i))
  }
  let changed = 0
  for (const p of branch) {
    const isStrict = p.kind === 'sgp-strict'
    if ((mode === 'strict') === isStrict) continue
    const ip = formatIp(p.ip)
    const vlan = p.eni
    const table = p.table
    if (!p.hostVeth || !vlan?.startsWith('vlan.') || !table) { out.warnings.push(`branch pod ${ip}: its veth, VLAN or table is not in the bundle; left as it is`); continue }
    // Host veth names are <prefix> + the first 11 hex characters of sha1("<namespace>.<pod>") (vpc-cni.md §4.3).
    const hash = p.hostVeth.slice(-11)
    changed++
    if (mode === 'strict') {
      const veth = `vlan${hash}`
      dropRule((r) => (r.priority === 512 && !!r.to && r.to.network === p.ip.value && r.to.prefix === 32) || (r.priority === 1536 && !!r.from && r.from.network === p.ip.value && r.from.prefix === 32))
      dropRoute((r) => r.family === 4 && r.dst.prefix === 32 && r.dst.network === p.ip.value && r.dev === p.hostVeth)
      addRoutes(`${ip} dev ${veth} table ${table} scope link`)
      addRules(`10:\tfrom all iif ${vlan} lookup ${table}\n10:\tfrom all iif ${veth} lookup ${table}`)
      rename(p.hostVeth, veth)
    } else {
      const veth = `${prefix}${hash}`
      dropRule((r) => r.priority === 10 && (r.iif === vlan || r.iif === p.hostVeth))
      dropRoute((r) => r.family === 4 && r.dst.prefix === 32 && r.dst.network === p.ip.value && r.dev === p.hostVeth)
      addRoutes(`${ip} dev ${veth} scope link`)
      addRules(`512:\tfrom all to ${ip} lookup main\n1536:\tfrom ${ip} lookup ${table}`)
      rename(p.hostVeth, veth)
    }
  }
  if (changed === 0) return out
  // The local rule: strict moves it from 0 to 20 (so pod-to-pod traffic on the node goes through the trunk).
  const strictLeft = mode === 'strict'
  const hasLocal = (prio: number) => out.rules.some((r) => r.family === 4 && r.priority === prio && !r.from && !r.to && !r.iif && r.action.kind === 'lookup' && r.action.table === 'local')
  if (strictLeft && hasLocal(0) && !hasLocal(20)) {
    dropRule((r) => r.priority === 0 && !r.from && !r.to && r.action.kind === 'lookup' && r.action.table === 'local')
    addRules('20:\tfrom all lookup local')
  } else if (!strictLeft && hasLocal(20) && !hasLocal(0)) {
    dropRule((r) => r.priority === 20 && !r.from && !r.to && r.action.kind === 'lookup' && r.action.table === 'local')
    addRules('0:\tfrom all lookup local')
  }
  return out
}

