// What the VPC CNI's settings imply for a node: the era of the CNI that wrote the rules, the inputs it reads
// (settings, IMDS, the node's addresses and pods), and the rules it would install, as natlens model values.
import type { Cidr, Family, IpAddress } from '../model/ip.js'
import type { SourceRef } from '../model/evidence.js'
import type { Eni, Pod } from '../model/node-state.js'
import type { Rule, Table } from '../model/netfilter.js'
import type { RoutingRule } from '../model/routing.js'

/**
 * The generations of the VPC CNI's IPv4 data path (vpc-cni.md §9). Each writes different rules for the same settings.
 * - `v1.2`: one bare POSTROUTING SNAT rule and `1024: not to <VPC> lookup main`;
 * - `numbered`: v1.3–v1.16.0, AWS-SNAT-CHAIN-0..N (and AWS-CONNMARK-CHAIN-0..N from v1.8.0);
 * - `single`: v1.16.1–v1.22, one AWS-SNAT-CHAIN-0 / AWS-CONNMARK-CHAIN-0 with RETURN rules;
 * - `v1.23-legacy`: v1.23+ with iptables-legacy (connmark RETURN comments `AWS CONNMARK CHAIN`);
 * - `v1.23-nft`: v1.23+ on an nf_tables host: connmark in `table ip aws-cni`, the rest in iptables-nft;
 * - `ipv6`: ENABLE_IPv6 clusters: no IPv4 SNAT, connmark or mangle rules at all (§6.1).
 */
export type CniEra = 'v1.2' | 'numbered' | 'single' | 'v1.23-legacy' | 'v1.23-nft' | 'ipv6'

export const ERA_LABEL: Record<CniEra, string> = {
  'v1.2': 'VPC CNI ≤ v1.2 (bare POSTROUTING SNAT rule)',
  numbered: 'VPC CNI v1.3–v1.16.0 (numbered AWS-SNAT-CHAIN-0..N)',
  single: 'VPC CNI v1.16.1–v1.22 (single AWS-SNAT-CHAIN-0 with RETURN rules)',
  'v1.23-legacy': 'VPC CNI v1.23+ with iptables-legacy',
  'v1.23-nft': 'VPC CNI v1.23+ on nf_tables (connmark in table ip aws-cni)',
  ipv6: 'VPC CNI in IPv6 mode (no IPv4 SNAT rules)',
}

export interface EraInfo {
  readonly era: CniEra
  /** Numbered era: the connmark jump still has `-m state --state NEW` (≤ v1.12.0). */
  readonly stateNew: boolean
  /** `! -o vlan+` in the SNAT rule and the mangle `-i vlan+` rule (v1.7.0+). */
  readonly vlan: boolean
  /** AWS-CONNMARK-CHAIN-* exist (v1.8.0+). */
  readonly connmarkChains: boolean
  /** The era was read from these rules or chain declarations. */
  readonly evidence: readonly SourceRef[]
  /** How the era was told (or why it was assumed). */
  readonly because: string
}

/** A value the intent depends on, with where it was read; `assumed` says why a default was used instead. */
export interface Input<T> {
  readonly value: T
  readonly ref?: SourceRef
  readonly assumed?: string
}

export interface CidrInput {
  readonly cidr: Cidr
  readonly ref?: SourceRef
  /** `imds`, `setting`, or read back from the installed chains when IMDS is not in the bundle. */
  readonly source: 'imds' | 'setting' | 'chains' | 'whatif'
}

export type RandomizeSnat = 'prng' | 'hashrandom' | 'none'
export type SgpMode = 'strict' | 'standard'

export interface IntentInputs {
  readonly era: EraInfo
  readonly nodeIp: Input<IpAddress | undefined>
  readonly primaryInterface: Input<string>
  readonly vpcCidrs: readonly CidrInput[]
  readonly excludeCidrs: readonly CidrInput[]
  /** Where the exclusion list came from (the setting, or the chains when the setting is not in the bundle). */
  readonly excludeRef?: SourceRef
  readonly externalSnat: Input<boolean>
  readonly randomizeSnat: Input<RandomizeSnat>
  readonly connmark: Input<number>
  readonly vethPrefix: Input<string>
  readonly nodePortSupport: Input<boolean>
  readonly externalServiceCidrs: readonly CidrInput[]
  readonly sgpMode: Input<SgpMode>
  /** Pods that get ip rules (not the egress plugin's 169.254.172.x legs), as the node shows them. */
  readonly pods: readonly IntentPod[]
  readonly enis: readonly Eni[]
  /** Assumptions and gaps, one sentence each. */
  readonly notes: readonly string[]
}

export interface IntentPod {
  readonly pod: Pod
  /** Route table of the ENI the pod's address belongs to (`2`, `101`…); undefined for the primary ENI. */
  readonly table?: string
  /** Where the table came from: the pod's own 1536 rule, or ipamd's /v1/enis. */
  readonly tableRef?: SourceRef
}

/** One line of generated text, with the inputs that made the CNI write it. */
export interface IntentLine {
  readonly why: string
  readonly because: readonly SourceRef[]
}

export interface IntentIpRule {
  readonly rule: RoutingRule
  /** Present on some nodes of the era and absent on others (32765 rules before v1.23): never reported missing. */
  readonly optional: boolean
  /** Per-pod rules (512, 1536, 10): the `pod-ip-rules` check reports these. */
  readonly pod?: IpAddress
  readonly why: string
  readonly because: readonly SourceRef[]
}

export interface Intent {
  readonly inputs: IntentInputs
  /** iptables-restore input (iptables-save layout), family 4: `*mangle`, `*nat`. Empty in IPv6 mode. */
  readonly iptablesText: string
  /** `table ip aws-cni { … }` for the v1.23 nft era with EXTERNALSNAT=false; null otherwise. */
  readonly nftText: string | null
  /** The two texts parsed back with natlens's own parsers (one semantics for installed and intended rules). */
  readonly tables: readonly Table[]
  /** Why each line of iptablesText (1-based, by line number) was written. */
  readonly iptablesLines: ReadonlyMap<number, IntentLine>
  readonly nftLines: ReadonlyMap<number, IntentLine>
  readonly ipRules: readonly IntentIpRule[]
  /** The artifact names the generated texts carry in evidence. */
  readonly artifacts: { readonly iptables: string; readonly nft: string; readonly ipRules: string }
}

export type Layer = 'iptables' | 'nft' | 'ip-rule'

/** One disagreement between what the settings imply and what the node has. */
export interface RuleDifference {
  readonly kind: 'missing' | 'unexpected' | 'order'
  readonly layer: Layer
  readonly family: Family
  /** `nat`, `mangle`, `aws-cni`, or `rules` for ip rules. */
  readonly table: string
  readonly chain: string
  /** The rule as iptables-save, nft or `ip rule` prints it. */
  readonly text: string
  /** The installed rule (unexpected, order). */
  readonly ref?: SourceRef
  /** The intended rule's line in the generated text (missing, order). */
  readonly intended?: SourceRef
  readonly why: string
  /** The settings and facts the intended rule follows from. */
  readonly because: readonly SourceRef[]
  /** The per-pod ip rule this is about (512, 1536, 10). */
  readonly pod?: IpAddress
  /** The netfilter rule itself (installed for unexpected and order, intended for missing). */
  readonly rule?: Rule
  /** The ip rule itself. */
  readonly ipRule?: RoutingRule
}

export interface IntentDiff {
  readonly era: EraInfo
  readonly differences: readonly RuleDifference[]
  /** Parts not compared, with the reason (e.g. the nft ruleset was not collected). */
  readonly notCompared: readonly string[]
}
