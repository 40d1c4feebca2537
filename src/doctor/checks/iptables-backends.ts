// iptables-legacy and nf_tables both holding rules: the kernel runs both at every hook, each at its own priority,
// so a component reading one backend (iptables-legacy-save) does not see what the other does to the same packet.
import type { Hook, Table } from '../../model/netfilter.js'
import { prepare } from '../../engine/explain.js'
import type { Check } from '../model.js'
import { uniqueEvidence } from '../model.js'

const HOOKS: readonly Hook[] = ['prerouting', 'input', 'forward', 'output', 'postrouting']

const backendOf = (t: Table): 'legacy' | 'nf_tables' | undefined => (t.origin === 'iptables-legacy' ? 'legacy' : t.origin === 'iptables-nft' || t.origin === 'nft' ? 'nf_tables' : undefined)
const populated = (t: Table) => [...t.chains.values()].some((c) => c.rules.length > 0)
const label = (t: Table) => (t.origin === 'nft' ? `nft table ${t.family} ${t.name}` : `${t.origin} ${t.family === 'ip6' ? 'ip6tables ' : ''}${t.name}`)

export const iptablesBackends: Check = {
  id: 'iptables-backends',
  description: 'iptables-legacy and nf_tables (iptables-nft or native nft) both hold rules; which one the kernel runs first at each hook',
  run(ctx) {
    const state = ctx.state
    const legacy = state.tables.filter((t) => backendOf(t) === 'legacy' && populated(t))
    const nft = state.tables.filter((t) => backendOf(t) === 'nf_tables' && populated(t))
    if (legacy.length === 0 && nft.length === 0) return { skip: 'no iptables or nft rules in the bundle' }
    if (legacy.length === 0 || nft.length === 0) return []
    const netfilter = prepare(state).netfilter
    const perHook: string[] = []
    for (const family of [4, 6] as const) {
      for (const hook of HOOKS) {
        const chains = netfilter.baseChains(family, hook).filter((b) => b.chain.rules.length > 0 && backendOf(b.table))
        if (new Set(chains.map((b) => backendOf(b.table))).size < 2) continue
        perHook.push(`  ${family === 6 ? 'IPv6 ' : ''}${hook}: ${chains.map((b) => `${label(b.table)} ${b.chain.name} (priority ${b.priority}, ${b.chain.rules.length} rule${b.chain.rules.length === 1 ? '' : 's'})`).join(' → ')}`)
      }
    }
    const firstRule = (t: Table) => [...t.chains.values()].find((c) => c.rules.length > 0)?.rules[0]?.ref
    const owners = (ts: Table[]) => [...new Set(ts.map(label))].join(', ')
    return [{
      id: 'iptables-backends',
      severity: 'warning',
      title: 'iptables-legacy and nf_tables both hold rules',
      detail: `The kernel runs every base chain of both backends, in priority order at each hook (at equal priority the one registered last runs first: the kernel inserts a new hook ahead of those of equal priority, and the dump does not say which came last). Components that use different backends do not see each other's rules: kube-proxy and the VPC CNI must agree on one.\n  legacy: ${owners(legacy)}\n  nf_tables: ${owners(nft)}\n${perHook.length ? `Hooks where both run:\n${perHook.join('\n')}` : 'No hook has base chains with rules in both backends.'}`,
      evidence: uniqueEvidence([...legacy.map(firstRule), ...nft.map(firstRule)]),
      fix: 'Run every component in one iptables mode (the host\'s: nft on AL2023, Bottlerocket and Ubuntu 22+; legacy on AL2). The VPC CNI image follows the host through iptables-wrapper; kube-proxy follows its own image. After moving a component, flush the rules it left in the other backend (list them with `iptables-legacy-save` or `iptables-nft-save`).',
    }]
  },
}
