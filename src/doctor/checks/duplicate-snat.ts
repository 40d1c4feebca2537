// Duplicate or shadowed SNAT/MASQUERADE rules: the same translation installed twice (a restarted component that
// appended instead of checking, or both iptables backends), or a translation that can never fire because an
// earlier rule in the same chain takes every packet it would match.
import type { Match, Rule, Table, Target } from '../../model/netfilter.js'
import { canonical, ruleKey, ruleText } from '../../intent/ownership.js'
import type { Check, Finding } from '../model.js'
import { uniqueEvidence } from '../model.js'

const translates = (t: Target) => t.kind === 'snat' || t.kind === 'masquerade'
/** Targets after which no later rule of the chain sees the packet. */
const terminal = (t: Target) => ['accept', 'drop', 'reject', 'return', 'snat', 'masquerade', 'dnat', 'redirect'].includes(t.kind) || (t.kind === 'jump' && t.goto)

function conditions(rule: Rule): string[] {
  return rule.matches.filter((m: Match) => m.kind !== 'comment' && !(m.kind === 'protocol' && m.protocol === 'all')).map(canonical)
}

/** Every packet `later` matches is also matched by `earlier` when earlier's conditions are a subset of later's. */
function covers(earlier: Rule, later: Rule): boolean {
  if (earlier.matches.some((m) => m.kind === 'statistic-random' || m.kind === 'statistic-nth' || m.kind === 'opaque' || m.kind === 'ipset' || m.kind === 'recent')) return false
  const have = new Set(conditions(later))
  return conditions(earlier).every((c) => have.has(c))
}

const describe = (t: Table) => `${t.origin === 'nft' ? `nft ${t.name}` : `${t.origin} ${t.name}`}`

export const duplicateSnat: Check = {
  id: 'duplicate-snat',
  description: 'The same SNAT/MASQUERADE rule installed twice (in one chain or in both iptables backends), or one shadowed by an earlier rule',
  run(ctx) {
    const out: Finding[] = []
    const state = ctx.state
    if (state.tables.length === 0) return { skip: 'no iptables or nft rules in the bundle' }
    const seen = new Map<string, { rule: Rule; table: Table }>()
    for (const table of state.tables) {
      for (const chain of table.chains.values()) {
        chain.rules.forEach((rule, i) => {
          if (!translates(rule.target)) return
          const k = ruleKey(rule, false)
          const key = `${table.family}/${table.name}/${k.chain}/${k.key}`
          const first = seen.get(key)
          if (first) {
            const sameTable = first.table === table
            out.push({
              id: 'duplicate-snat', severity: 'warning',
              title: `${rule.target.kind === 'snat' ? 'SNAT' : 'MASQUERADE'} rule installed twice in ${table.name} ${chain.name}${sameTable ? '' : ` (${describe(first.table)} and ${describe(table)})`}`,
              detail: sameTable
                ? 'The second copy never fires (the first translates the packet and ends the nat walk), but a component that deletes its rule once leaves the other copy behind: the translation survives a setting change.'
                : 'Both iptables backends hold the same translation: the kernel runs both, so whichever runs first at the hook decides, and removing the rule in one backend does not remove it.',
              evidence: uniqueEvidence([first.rule.ref, rule.ref]),
              fix: `Delete the extra copy: ${table.origin === 'nft' ? 'nft delete rule …' : `iptables${table.origin === 'iptables-legacy' ? '-legacy' : table.origin === 'iptables-nft' ? '-nft' : ''} -t ${table.name} -D ${chain.name} ${i + 1}`}`,
            })
            return
          }
          seen.set(key, { rule, table })
          const shadow = chain.rules.slice(0, i).find((e) => terminal(e.target) && covers(e, rule))
          if (shadow) {
            out.push({
              id: 'duplicate-snat', severity: 'warning',
              title: `${rule.target.kind === 'snat' ? 'SNAT' : 'MASQUERADE'} rule in ${table.name} ${chain.name} can never fire`,
              detail: `An earlier rule of the same chain matches every packet this one would (its conditions are a subset) and ends the walk with ${shadow.target.kind.toUpperCase()}: ${ruleText(shadow)}`,
              evidence: uniqueEvidence([shadow.ref, rule.ref]),
              fix: 'Delete the rule that can never fire, or narrow the earlier one, depending on which translation is wanted.',
            })
          }
        })
      }
    }
    return out
  },
}
