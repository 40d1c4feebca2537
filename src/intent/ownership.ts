// Which of a node's rules are the VPC CNI's: the part `diffIntent` compares and `whatif` replaces. Everything else
// (kube-proxy, other CNIs, hand-written rules, the kernel's default ip rules) is left alone.
import { formatCidr, formatIp, type Cidr } from '../model/ip.js'
import type { Match, Rule, Table, Target } from '../model/netfilter.js'
import type { RoutingRule } from '../model/routing.js'
import { ownerOfRule } from '../model/owner.js'

/** The VPC CNI's IPv4 iptables rules live in these tables (vpc-cni.md §2, §3). */
export const CNI_IPTABLES_TABLES = ['nat', 'mangle'] as const

export function isVpcCniRule(rule: Rule, table: Table): boolean {
  if (table.origin === 'nft') return table.name === 'aws-cni'
  if (table.family !== 'ip' || !(CNI_IPTABLES_TABLES as readonly string[]).includes(table.name)) return false
  return ownerOfRule(rule, table) === 'vpc-cni'
}

/** Priorities the CNI writes ip rules at (vpc-cni.md §4.1); 32765 is shared with the AMI and never "unexpected". */
export function isVpcCniIpRule(r: RoutingRule): boolean {
  const lookup = r.action.kind === 'lookup' ? r.action.table : undefined
  const host = (c: Cidr | undefined) => !!c && c.prefix === (c.family === 4 ? 32 : 128)
  switch (r.priority) {
    case 10: return !!r.iif && !!lookup
    case 512: return host(r.to) && !r.from && lookup === 'main'
    case 1024: return (!!r.fwmark || (r.not && !!r.to)) && lookup === 'main'
    case 1535: return !!r.to && lookup === 'main'
    case 1536: return host(r.from) && !!lookup
    default: return false
  }
}

/**
 * A rule's meaning without its comment, counters or position, for comparing installed and intended rules. Numbered
 * chains are compared as one (`AWS-SNAT-CHAIN-*`): the hops only chain the CIDR tests, their numbering does not
 * change the verdict.
 */
export function ruleKey(rule: Rule, numbered: boolean): { chain: string; key: string } {
  const chain = numbered ? normaliseChain(rule.chain) : rule.chain
  const matches = rule.matches
    .filter((m) => m.kind !== 'comment' && !(m.kind === 'protocol' && !m.negated && (m.protocol === 'all' || m.protocol === '0')))
    .map((m) => canonical(m as Match))
    .sort()
  const target = rule.target.kind === 'jump' && numbered ? canonical({ ...rule.target, chain: normaliseChain(rule.target.chain) } as Target) : canonical(rule.target)
  return { chain, key: `${matches.join(' ')} => ${target}` }
}

export function normaliseChain(name: string): string {
  return name.replace(/^(AWS-(?:SNAT|CONNMARK)-CHAIN)-\d+$/, '$1-*')
}

/** A stable text for a model value: keys sorted, addresses and CIDRs printed, cached numeric fields left out. */
export function canonical(v: unknown): string {
  if (v === null || v === undefined) return 'null'
  if (typeof v === 'bigint') return v.toString()
  if (typeof v !== 'object') return JSON.stringify(v)
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`
  const o = v as Record<string, unknown>
  if ('family' in o && 'network' in o && 'prefix' in o) return formatCidr(o as unknown as Cidr)
  if ('family' in o && 'value' in o && typeof o['value'] === 'bigint') return formatIp(o as never)
  return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${k}:${canonical(o[k])}`).join(',')}}`
}

/** The rule as iptables-save would print it (counters stripped), or nft's line. */
export function ruleText(rule: Rule): string {
  return rule.ref.text.replace(/^\s*\[\d+:\d+\]\s+/, '').trim()
}

/** Terminal targets that end the chain the same way: consecutive rules with the same one can swap places. */
export function commuteClass(t: Target): string | undefined {
  return t.kind === 'return' || t.kind === 'accept' || t.kind === 'drop' ? t.kind : undefined
}
