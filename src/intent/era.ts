// Which generation of the VPC CNI wrote a node's rules (vpc-cni.md §9, §10 pitfall 2). The rules a setting implies
// depend on it, so the intent is always generated for the era the node shows, never for "the latest".
import type { SourceRef } from '../model/evidence.js'
import type { NodeState } from '../model/node-state.js'
import type { Rule, Table } from '../model/netfilter.js'
import type { EraInfo } from './model.js'

/** The IPv4 iptables tables (either backend) of a name. */
export function iptablesTables(state: NodeState, name: string, family: 'ip' | 'ip6' = 'ip'): Table[] {
  return state.tables.filter((t) => t.origin !== 'nft' && t.family === family && t.name === name)
}

export function awsCniNftTable(state: NodeState): Table | undefined {
  return state.tables.find((t) => t.origin === 'nft' && t.name === 'aws-cni')
}

function chainDeclared(state: NodeState, name: string): Table | undefined {
  return iptablesTables(state, 'nat').find((t) => t.chains.has(name))
}

function rulesOf(state: NodeState, table: string, chain: string): Rule[] {
  return iptablesTables(state, table).flatMap((t) => t.chains.get(chain)?.rules ?? [])
}

/** Whether the node runs the VPC CNI at all: its settings, its chains, or its nft table. */
export function vpcCniPresent(state: NodeState): string | undefined {
  const c = state.derived.components.find((x) => x.name === 'vpc-cni')
  if (c) return `its rules (${c.evidence[0] ? `${c.evidence[0].artifact}:${c.evidence[0].line}` : 'AWS-* chains'})`
  for (const [name, s] of state.settings) if (/^AWS_VPC_/.test(name)) return `its settings (${s.ref.artifact})`
  if (awsCniNftTable(state)) return 'table ip aws-cni'
  // The egress plugin's CNI-E4 chains exist only in IPv6 clusters of the VPC CNI (vpc-cni.md §6.2).
  const egress = state.derived.components.find((x) => x.name === 'egress-cni')
  if (egress) return `its egress plugin's chains (${egress.evidence[0] ? `${egress.evidence[0].artifact}:${egress.evidence[0].line}` : 'CNI-E4-*'})`
  return undefined
}

const isBareSnat = (r: Rule) => r.chain === 'POSTROUTING' && r.target.kind === 'snat' && r.comment === 'AWS, SNAT'

/**
 * Tells the era from the rules and chain declarations (settings alone do not say which release wrote the rules).
 * Returns a reason instead when the node has no VPC CNI.
 */
export function detectEra(state: NodeState): EraInfo | { none: string } {
  if (!vpcCniPresent(state)) return { none: 'no VPC CNI settings, AWS-* chains or table ip aws-cni in the bundle' }
  const nat = iptablesTables(state, 'nat')
  const mangle = iptablesTables(state, 'mangle')
  const evidence: SourceRef[] = []
  const snatRules = nat.flatMap((t) => [...t.chains.values()].flatMap((c) => c.rules)).filter((r) => r.target.kind === 'snat' && (r.comment === 'AWS, SNAT' || r.chain.startsWith('AWS-SNAT-CHAIN')))
  const vlanSeen = snatRules.some((r) => r.matches.some((m) => m.kind === 'out-iface' && m.negated && m.name === 'vlan')) ||
    mangle.some((t) => (t.chains.get('PREROUTING')?.rules ?? []).some((r) => r.comment === 'AWS, primary ENI' && r.matches.some((m) => m.kind === 'in-iface' && m.name === 'vlan')))
  const anyAwsRule = snatRules.length > 0 || nat.some((t) => [...t.chains.keys()].some((c) => c.startsWith('AWS-') && (t.chains.get(c)?.rules.length ?? 0) > 0))

  // IPv6 mode: ENABLE_IPv6=true, or no AWS chain at all while the pods are IPv6 (vpc-cni.md §6.1).
  const v6 = state.settings.get('ENABLE_IPv6')
  if (v6?.value === 'true') return { era: 'ipv6', stateNew: false, vlan: true, connmarkChains: false, evidence: [v6.ref], because: 'ENABLE_IPv6=true' }
  const hasAwsChains = nat.some((t) => [...t.chains.keys()].some((c) => c.startsWith('AWS-'))) || !!awsCniNftTable(state)
  const v6Pods = state.derived.pods.filter((p) => p.ip.family === 6 && p.kind !== 'egress-v6')
  if (!hasAwsChains && v6Pods.length > 0 && !state.derived.pods.some((p) => p.ip.family === 4 && p.kind !== 'egress-v4')) {
    return { era: 'ipv6', stateNew: false, vlan: true, connmarkChains: false, evidence: [v6Pods[0]!.ref], because: 'no AWS-* chain and the pods are IPv6' }
  }

  const bare = nat.flatMap((t) => t.chains.get('POSTROUTING')?.rules ?? []).find(isBareSnat)
  const notToVpc = state.routingRules.find((r) => r.family === 4 && r.priority === 1024 && r.not && r.to)
  if (bare || notToVpc) {
    evidence.push((bare ?? notToVpc)!.ref)
    return { era: 'v1.2', stateNew: false, vlan: false, connmarkChains: false, evidence, because: bare ? 'a bare POSTROUTING "AWS, SNAT" rule' : '`1024: not to <VPC> lookup main`' }
  }

  const single0 = rulesOf(state, 'nat', 'AWS-SNAT-CHAIN-0')
  const singleReturn = single0.find((r) => r.target.kind === 'return')
  const numberedHop = single0.find((r) => r.target.kind === 'jump' && r.target.chain === 'AWS-SNAT-CHAIN-1')
  const chain1 = chainDeclared(state, 'AWS-SNAT-CHAIN-1') ?? chainDeclared(state, 'AWS-CONNMARK-CHAIN-1')
  if (!singleReturn && (numberedHop || chain1)) {
    const jump = nat.flatMap((t) => t.chains.get('PREROUTING')?.rules ?? []).find((r) => r.target.kind === 'jump' && r.target.chain === 'AWS-CONNMARK-CHAIN-0')
    const stateNew = !!jump?.matches.some((m) => m.kind === 'ctstate' && m.states.includes('NEW'))
    evidence.push(numberedHop?.ref ?? chain1!.chains.get('AWS-SNAT-CHAIN-1')?.ref ?? chain1!.ref)
    if (jump) evidence.push(jump.ref)
    return {
      era: 'numbered', stateNew, vlan: vlanSeen || !anyAwsRule, connmarkChains: !!chainDeclared(state, 'AWS-CONNMARK-CHAIN-0'), evidence,
      because: `numbered chains (${numberedHop ? 'AWS-SNAT-CHAIN-0 jumps to AWS-SNAT-CHAIN-1' : 'AWS-SNAT-CHAIN-1 is declared'})${stateNew ? '; the connmark jump has -m state --state NEW (≤ v1.12.0)' : ''}`,
    }
  }

  const base = { stateNew: false, vlan: true, connmarkChains: true }
  const nftTable = awsCniNftTable(state)
  if (nftTable) return { era: 'v1.23-nft', ...base, evidence: [nftTable.ref], because: 'table ip aws-cni holds the connmark rules' }
  const connmark0 = rulesOf(state, 'nat', 'AWS-CONNMARK-CHAIN-0')
  const v123 = connmark0.find((r) => r.target.kind === 'return' && r.comment === 'AWS CONNMARK CHAIN')
  if (v123) return { era: 'v1.23-legacy', ...base, evidence: [v123.ref], because: 'connmark RETURN rules commented "AWS CONNMARK CHAIN" (v1.23 iptables backend)' }
  const older = connmark0.find((r) => r.target.kind === 'return' && /^AWS CONNMARK CHAIN, /.test(r.comment ?? ''))
  if (older) return { era: 'single', ...base, evidence: [older.ref], because: 'connmark RETURN rules commented "AWS CONNMARK CHAIN, VPC CIDR" (v1.16.1–v1.22)' }
  const declared = chainDeclared(state, 'AWS-CONNMARK-CHAIN-0')
  if (declared) {
    const c = declared.chains.get('AWS-CONNMARK-CHAIN-0')!
    return { era: 'single', ...base, evidence: [singleReturn?.ref ?? c.ref], because: c.rules.length ? 'single AWS-SNAT-CHAIN-0 and AWS-CONNMARK-CHAIN-0' : 'AWS-CONNMARK-CHAIN-0 is declared (v1.16.1–v1.22 keep it, empty, with EXTERNALSNAT=true)' }
  }
  // No connmark chain in iptables: v1.23 deleted it (EXTERNALSNAT=true, or moved to nft), or it is missing.
  const snat0 = chainDeclared(state, 'AWS-SNAT-CHAIN-0')
  const nftBackend = nat.some((t) => t.origin === 'iptables-nft')
  if (snat0) evidence.push(snat0.chains.get('AWS-SNAT-CHAIN-0')!.ref)
  if (nftBackend) {
    return { era: 'v1.23-nft', ...base, evidence, because: 'AWS-SNAT-CHAIN-0 in iptables-nft without AWS-CONNMARK-CHAIN-0: v1.23 keeps the connmark in nft on nf_tables hosts' }
  }
  return {
    era: 'v1.23-legacy', ...base, evidence,
    because: snat0 ? 'AWS-SNAT-CHAIN-0 without AWS-CONNMARK-CHAIN-0 (v1.23 deletes the connmark chain when EXTERNALSNAT=true)' : 'no AWS-* chain at all: assumed the current release',
  }
}
