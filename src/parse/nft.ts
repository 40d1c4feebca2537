// nftables state: `nft list ruleset` / `nft list table …` text, `nft -j list ruleset` JSON, and nft transaction input
// (`add rule ip kube-proxy …`, what kube-proxy's nftables mode feeds `nft -f`). All three become Tables (origin 'nft')
// whose rules use the same Match/Target model as iptables; see nft/rule.ts for how each expression is mapped.
import type { Table } from '../model/netfilter.js'
import type { ParseContext } from './context.js'
import { parseNftJson } from './nft/json.js'
import { parseNftText } from './nft/ruleset.js'

export { priorityValue } from './nft/ruleset.js'

export function parseNftRuleset(text: string, ctx: ParseContext): Table[] {
  if (/^\s*\{/.test(text)) return parseNftJson(text, ctx)
  return parseNftText(text, ctx)
}

/**
 * `table ip aws-cni {`, `add rule ip kube-proxy …`, `{"nftables": [` in the first few KB. iptables-save text starts
 * with `*nat` / `:CHAIN` / `-A`, ip and conntrack output never has `table <family> <name> {`.
 */
export function looksLikeNft(text: string): boolean {
  const head = text.slice(0, 8192)
  if (/^\s*\{\s*"nftables"\s*:/.test(head)) return true
  if (/^\s*table\s+(?:(?:ip|ip6|inet|arp|bridge|netdev)\s+)?[\w.-]+\s*\{/m.test(head)) return true
  return /^\s*(?:add|insert|create|flush)\s+(?:table|chain|rule|set|map|element)\s+(?:(?:ip|ip6|inet|arp|bridge|netdev)\s+)?\S+/m.test(head)
}
