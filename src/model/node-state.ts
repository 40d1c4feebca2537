// NodeState: everything natlens read about one node, and what follows from it.
import type { Cidr, IpAddress } from './ip.js'
import type { Diagnostic, SourceRef } from './evidence.js'
import type { NetInterface } from './interfaces.js'
import type { Route, RouteTable, RoutingRule } from './routing.js'
import type { Table } from './netfilter.js'
import type { ConntrackCpuStats, ConntrackEntry } from './conntrack.js'

/** What a file was recognised as (by its content, not its name). */
export type SourceKind =
  | 'ip-rule' | 'ip-route' | 'ip-addr' | 'ip-link'
  | 'iptables-save' | 'iptables-rules' | 'iptables-list'
  | 'nft-ruleset'
  | 'conntrack' | 'conntrack-stats'
  | 'ipamd-enis' | 'ipamd-eni-configs' | 'networkutils-env' | 'ipamd-env'
  | 'cni-conflist' | 'ipam-checkpoint' | 'aws-node-env' | 'imds' | 'sysctl'
  | 'manifest' | 'capture'

/** A CNI setting, sysctl or IMDS value, with where it was read. */
export interface Setting {
  readonly name: string
  readonly value: string
  readonly ref: SourceRef
}

export interface ArtifactInfo {
  readonly artifact: string
  readonly kind?: SourceKind
  /** `json` or `text` rendering, when it matters. */
  readonly rendering?: 'json' | 'text'
  readonly used: boolean
  /** Why it was ignored, or which other artifact won. */
  readonly reason?: string
  readonly bytes: number
}

/** The facts, as parsed. */
export interface NodeFacts {
  interfaces: NetInterface[]
  /** IPv4 and IPv6 rules, each family in priority order (ties in listing order, as the kernel keeps them). */
  routingRules: RoutingRule[]
  routes: Route[]
  /** iptables and nft tables of every family. */
  tables: Table[]
  conntrack: ConntrackEntry[]
  conntrackStats: ConntrackCpuStats[]
  /** aws-node settings (AWS_VPC_K8S_CNI_*, ENABLE_*, …) from introspection, the conflist, or the aws-node env. */
  settings: Map<string, Setting>
  /** `net.ipv4.ip_forward`, `net.ipv4.conf.eth0.rp_filter`, … with dots. */
  sysctls: Map<string, Setting>
  /** IMDS values keyed by their path below meta-data/, e.g. `local-ipv4`, `network/interfaces/macs/<mac>/vpc-ipv4-cidr-blocks`. */
  imds: Map<string, Setting>
  /** ENIs as ipamd reports them (`/v1/enis`). */
  ipamdEnis: IpamdEni[]
}

export interface IpamdEni {
  readonly id: string
  readonly primary: boolean
  readonly trunk: boolean
  readonly deviceNumber?: number
  readonly routeTableId?: number
  readonly addresses: readonly { readonly address: IpAddress; readonly pod?: string; readonly namespace?: string }[]
  readonly ref: SourceRef
}

/** One pod IP in ipamd's checkpoint (`/var/run/aws-node/ipam.json`, format `vpc-cni-ipam/1`). */
export interface IpamAllocation {
  readonly address: IpAddress
  readonly containerId?: string
  readonly ifName?: string
  readonly networkName?: string
  readonly pod?: string
  readonly namespace?: string
  readonly ref: SourceRef
}

export type ComponentName = 'vpc-cni' | 'kube-proxy' | 'egress-cni' | 'portmap' | 'calico' | 'cilium' | 'flannel' | 'ip-masq-agent' | 'docker' | 'unknown'

export interface Component {
  readonly name: ComponentName
  /** e.g. `v1.16.1+ single chain`, `iptables mode`. */
  readonly era?: string
  readonly detail?: string
  readonly evidence: readonly SourceRef[]
}

/**
 * `egress-v4`: the IPv4 leg (v4if0, 169.254.172.0/22) the egress plugin gives an IPv6 pod; `egress-v6`: the IPv6 leg
 * (v6if0, fd00::ac:0/118) it gives an IPv4 pod (ENABLE_V6_EGRESS). Both sit behind a `veth…` host device.
 */
export type PodKind = 'pod' | 'sgp-strict' | 'sgp-standard' | 'egress-v4' | 'egress-v6'

export interface Pod {
  readonly ip: IpAddress
  readonly hostVeth?: string
  /** The ENI interface whose table the pod's from-rule points at; the primary interface when there is none. */
  readonly eni?: string
  readonly table?: string
  readonly kind: PodKind
  readonly name?: string
  readonly ref: SourceRef
}

export interface Eni {
  readonly interface: string
  readonly primary: boolean
  readonly table?: string
  readonly address?: IpAddress
  readonly trunk: boolean
  readonly ref: SourceRef
}

export interface CidrFact {
  readonly cidr: Cidr
  readonly source: 'imds' | 'snat-chain' | 'connmark-chain' | 'ip-rule' | 'setting'
  readonly ref: SourceRef
}

export interface Derived {
  primaryInterface?: string
  primaryAddress?: IpAddress
  primaryRef?: SourceRef
  enis: Eni[]
  pods: Pod[]
  vpcCidrs: CidrFact[]
  excludeCidrs: CidrFact[]
  components: Component[]
  vethPrefix?: string
  connmark?: number
  /** One sentence: "traffic from pods to anything outside … leaves as …". */
  snatPolicy?: string
  inconsistencies: Diagnostic[]
}

export interface NodeState extends NodeFacts {
  readonly artifacts: ArtifactInfo[]
  /** Which kinds of source were read; explain names the missing ones in its warnings. */
  readonly present: Set<SourceKind>
  readonly diagnostics: Diagnostic[]
  derived: Derived
  routeTables: Map<string, RouteTable>
}

export function emptyFacts(): NodeFacts {
  return {
    interfaces: [], routingRules: [], routes: [], tables: [], conntrack: [], conntrackStats: [],
    settings: new Map(), sysctls: new Map(), imds: new Map(), ipamdEnis: [],
  }
}
