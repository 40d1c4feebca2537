// Intent vs state: the rules the VPC CNI's settings imply for the node's era, against the rules the node has.
// Compared by meaning (chain, matches and target; not comments, counters or the order of rules that cannot change
// the verdict, such as the single chain's RETURN rules, which are inserted at position 1 and so come reversed).
import { formatIp, ipKey } from '../model/ip.js'
import type { SourceRef } from '../model/evidence.js'
import type { NodeState } from '../model/node-state.js'
import type { Rule, Table } from '../model/netfilter.js'
import type { RoutingRule } from '../model/routing.js'
import { formatIpRule } from '../parse/ip-rule.js'
import type { Intent, IntentDiff, IntentLine, Layer, RuleDifference } from './model.js'
import { awsCniNftTable, iptablesTables } from './era.js'
import { CNI_IPTABLES_TABLES, commuteClass, isVpcCniIpRule, isVpcCniRule, ruleKey, ruleText } from './ownership.js'

interface Keyed { rule: Rule; chain: string; key: string }

function keyed(rules: readonly Rule[], numbered: boolean): Keyed[] {
  return rules.map((rule) => ({ rule, ...ruleKey(rule, numbered) }))
}

/** Sorts runs of consecutive rules that end the chain the same way (they commute), so only real reorderings differ. */
function canonicalOrder(list: readonly Keyed[]): string[] {
  const out: string[] = []
  let run: string[] = []
  let cls: string | undefined
  const flush = () => { out.push(...run.sort()); run = [] }
  for (const k of list) {
    const c = commuteClass(k.rule.target)
    if (c === undefined || c !== cls) flush()
    cls = c
    if (c === undefined) out.push(k.key)
    else run.push(k.key)
  }
  flush()
  return out
}

function lineInfo(lines: ReadonlyMap<number, IntentLine>, rule: Rule): IntentLine {
  return lines.get(rule.ref.line) ?? { why: 'written by the VPC CNI for these settings', because: [] }
}

/**
 * Compares one layer (iptables tables of one name, or the nft table) chain by chain: a multiset of rule meanings,
 * then the order where the multisets agree.
 */
function compareRules(layer: Layer, table: string, installed: readonly Rule[], intended: readonly Rule[], lines: ReadonlyMap<number, IntentLine>, numbered: boolean): RuleDifference[] {
  const out: RuleDifference[] = []
  const have = keyed(installed, numbered)
  const want = keyed(intended, numbered)
  const chains = [...new Set([...want.map((k) => k.chain), ...have.map((k) => k.chain)])]
  for (const chain of chains) {
    const h = have.filter((k) => k.chain === chain)
    const w = want.filter((k) => k.chain === chain)
    const used = new Set<Keyed>()
    const missing: Keyed[] = []
    for (const x of w) {
      const m = h.find((y) => !used.has(y) && y.key === x.key)
      if (m) used.add(m)
      else missing.push(x)
    }
    for (const x of missing) {
      const info = lineInfo(lines, x.rule)
      out.push({ kind: 'missing', layer, family: 4, table, chain, text: ruleText(x.rule), intended: x.rule.ref, why: info.why, because: info.because, rule: x.rule })
    }
    for (const y of h.filter((k) => !used.has(k))) {
      out.push({ kind: 'unexpected', layer, family: 4, table, chain, text: ruleText(y.rule), ref: y.rule.ref, why: unexpectedWhy(y, w), because: [], rule: y.rule })
    }
    if (missing.length === 0 && used.size === h.length && !numbered) {
      const a = canonicalOrder(h)
      const b = canonicalOrder(w)
      const i = a.findIndex((k, j) => k !== b[j])
      if (i >= 0) {
        const misplaced = h.find((k) => k.key === a[i])!
        const intendedRule = w.find((k) => k.key === a[i])!
        const info = lineInfo(lines, intendedRule.rule)
        out.push({
          kind: 'order', layer, family: 4, table, chain, text: ruleText(misplaced.rule), ref: misplaced.rule.ref, intended: intendedRule.rule.ref,
          why: `the VPC CNI's rules in ${chain} are in an order that changes the verdict (${info.why})`, because: info.because, rule: misplaced.rule,
        })
      }
    }
  }
  return out
}

function unexpectedWhy(y: Keyed, wantInChain: readonly Keyed[]): string {
  if (wantInChain.length === 0) return `the settings imply no rule in ${y.rule.chain}: left behind by an earlier configuration or release`
  return 'not implied by the settings: left behind, or written for other settings'
}

function ipRuleKey(r: RoutingRule): string {
  const c = (x: RoutingRule['from']) => (x ? `${x.family}:${x.network}/${x.prefix}` : '')
  const a = r.action.kind === 'lookup' ? `lookup ${r.action.table}` : r.action.kind === 'goto' ? `goto ${r.action.priority}` : r.action.kind
  return [r.family, r.priority, r.not, c(r.from), c(r.to), r.iif ?? '', r.oif ?? '', r.fwmark ? `${r.fwmark.value}/${r.fwmark.mask}` : '', a].join('|')
}

/** The rules the settings imply, against the installed ones; empty when they agree. */
export function diffIntent(state: NodeState, intent: Intent): IntentDiff {
  const era = intent.inputs.era
  const notCompared: string[] = []
  const differences: RuleDifference[] = []
  const numbered = era.era === 'numbered'

  for (const name of CNI_IPTABLES_TABLES) {
    const installedTables = iptablesTables(state, name)
    const intended = intent.tables.filter((t) => t.origin !== 'nft' && t.name === name)
    const intendedRules = intended.flatMap((t) => [...t.chains.values()].flatMap((c) => c.rules))
    if (installedTables.length === 0) {
      if (intendedRules.length > 0) notCompared.push(`the ${name} table was not collected: its ${intendedRules.length} VPC CNI rule${intendedRules.length === 1 ? '' : 's'} could not be compared`)
      continue
    }
    const installed = installedTables.flatMap((t) => [...t.chains.values()].flatMap((c) => c.rules.filter((r) => isVpcCniRule(r, t))))
    differences.push(...compareRules('iptables', name, installed, intendedRules, intent.iptablesLines, numbered))
  }

  const nftInstalled = awsCniNftTable(state)
  const nftIntended = intent.tables.find((t) => t.origin === 'nft' && t.name === 'aws-cni')
  if (nftInstalled || nftIntended) {
    if (!nftInstalled && !state.present.has('nft-ruleset')) {
      notCompared.push('`nft list ruleset` was not collected: the v1.23 connmark rules in table ip aws-cni could not be compared (the EKS log collector does not run it; `natlens collect` does)')
    } else {
      const rules = (t: Table | undefined) => (t ? [...t.chains.values()].flatMap((c) => c.rules) : [])
      differences.push(...compareRules('nft', 'aws-cni', rules(nftInstalled), rules(nftIntended), intent.nftLines, false))
    }
  }

  differences.push(...diffIpRules(state, intent, notCompared))
  return { era, differences, notCompared }
}

function diffIpRules(state: NodeState, intent: Intent, notCompared: string[]): RuleDifference[] {
  const out: RuleDifference[] = []
  for (const family of [4, 6] as const) {
    const want = intent.ipRules.filter((r) => r.rule.family === family)
    const have = state.routingRules.filter((r) => r.family === family)
    if (have.length === 0) {
      if (want.some((w) => !w.optional)) notCompared.push(`\`ip ${family === 6 ? '-6 ' : ''}rule\` was not collected: the VPC CNI's ${family === 6 ? 'IPv6 ' : ''}ip rules could not be compared`)
      continue
    }
    const haveKeys = new Map<string, RoutingRule[]>()
    for (const r of have) {
      const k = ipRuleKey(r)
      haveKeys.set(k, [...(haveKeys.get(k) ?? []), r])
    }
    const matched = new Set<RoutingRule>()
    for (const w of want) {
      const hit = (haveKeys.get(ipRuleKey(w.rule)) ?? []).find((r) => !matched.has(r))
      if (hit) { matched.add(hit); continue }
      if (w.optional) continue
      out.push({ kind: 'missing', layer: 'ip-rule', family, table: 'rules', chain: String(w.rule.priority), text: formatIpRule(w.rule), intended: w.rule.ref, why: w.why, because: w.because, ipRule: w.rule, ...(w.pod ? { pod: w.pod } : {}) })
    }
    const wantKeys = new Set(want.map((w) => ipRuleKey(w.rule)))
    const podIps = new Set(intent.inputs.pods.map((p) => ipKey(p.pod.ip)))
    for (const r of have) {
      if (matched.has(r) || wantKeys.has(ipRuleKey(r)) || !isVpcCniIpRule(r)) continue
      const addr = r.priority === 512 ? r.to : r.priority === 1536 ? r.from : undefined
      const pod = addr ? { family: addr.family, value: addr.network } : undefined
      const why = pod && !podIps.has(ipKey(pod))
        ? `${formatIp(pod)} is not a pod on this node (no host route through a pod veth): the rule was left behind when the pod went away`
        : r.priority === 1024 ? `the settings imply \`fwmark ${intentMark(intent)}\`, not this rule` : 'not implied by the settings and pods: left behind, or written for other settings'
      out.push({ kind: 'unexpected', layer: 'ip-rule', family, table: 'rules', chain: String(r.priority), text: formatIpRule(r), ref: r.ref, why, because: [], ipRule: r, ...(pod ? { pod } : {}) })
    }
  }
  return out
}

function intentMark(intent: Intent): string {
  const m = intent.inputs.connmark.value
  return `0x${m.toString(16)}/0x${m.toString(16)}`
}

/** `file:line` of a piece of evidence. */
export function where(ref: SourceRef): string {
  return ref.line > 0 ? `${ref.artifact}:${ref.line}` : ref.artifact
}
