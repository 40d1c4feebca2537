// The lab's data: what a scenario builds, which flows it sends, what the docs say should happen, and what the kernel did.
import type { CommandRecord } from './kernel.js'

export type LabProto = 'tcp' | 'udp' | 'icmp' | 'icmpv6'
export type LabOrigin = 'pod' | 'host' | 'external' | 'reply'

/** The flow as natlens is asked about it (strings, the shape parseFlow takes). */
export interface LabFlow {
  readonly src: string
  readonly dst: string
  readonly proto: LabProto
  readonly sport: number | null
  readonly dport: number | null
  readonly origin: LabOrigin
  readonly iif?: string
}

/** One possible documented outcome; a flow with a random kube-proxy endpoint has one per endpoint. */
export interface Outcome {
  readonly arrivedAt: string
  readonly egressInterface: string
  readonly sourceSeen: string
  readonly snat: boolean
}

/** What ../shared/docs say the kernel does with the flow (checked against the kernel, independently of natlens). */
export interface Expectation {
  readonly delivered: boolean
  /** Empty when the flow is dropped. */
  readonly outcomes: readonly Outcome[]
  /** Where the expectation comes from (doc section and the rule that decides). */
  readonly why: string
}

export interface LabFlowSpec {
  readonly name: string
  /** Where the client runs: a pod key (`p1`…), `node` (host network) or `vpc` (outside the node). Unused for replies. */
  readonly client: string
  readonly flow: LabFlow
  /** For origin `reply`: the flow whose reply packet (the SYN-ACK) this is; no traffic is sent for it. */
  readonly replyOf?: string
  /** ICMP echo identifier the client uses (the flow's key in conntrack; natlens flows carry no ports for ICMP). */
  readonly icmpId?: number
  readonly expect: Expectation
}

export interface ConntrackTuple {
  readonly src: string
  readonly dst: string
  readonly sport: number | null
  readonly dport: number | null
  /** ICMP echo identifier. */
  readonly id?: number
}

export interface ConntrackObservation {
  readonly proto: string
  readonly state: string | null
  readonly orig: ConntrackTuple
  readonly reply: ConntrackTuple
  readonly mark: number
  readonly line: string
}

/** What the kernel did with the first packet of the flow (or with the reply packet, for origin `reply`). */
export interface Observation {
  /** The packet reached its destination (the pod behind a host veth, or the VPC side of an ENI). */
  readonly delivered: boolean
  readonly sourceSeen: string | null
  readonly sportSeen: number | null
  /** The node interface the packet left through (the first one, when it came back). */
  readonly egressInterface: string | null
  /** Destination address of the packet as it arrived (after DNAT). */
  readonly arrivedAt: string | null
  readonly dportArrived: number | null
  /** The source address differs from what the sender used (SNAT, MASQUERADE, or conntrack reversing a DNAT). */
  readonly snat: boolean | null
  /** The source port differs (--random-fully rewrites it even when the address stays): recorded, not compared. */
  readonly portRewritten: boolean | null
  readonly conntrack?: ConntrackObservation
  /** How each fact was seen: capture file, interface, time, client result. */
  readonly evidence: readonly string[]
}

export interface FlowRecord {
  readonly name: string
  readonly client: string
  readonly flow: LabFlow
  readonly replyOf?: string
  readonly expect: Expectation
  readonly observed: Observation
}

export interface ScenarioRun {
  readonly scenario: string
  readonly title: string
  readonly covers: readonly string[]
  /** The natlens input: a directory of command outputs from the node namespace. */
  readonly bundleDir: string
  /** `tcpdump -i any` in the node namespace for the whole traffic phase. */
  readonly pcap: string
  readonly flows: readonly FlowRecord[]
  /** Every command that built and dumped the node, with exit code and duration (how each artifact was made). */
  readonly commands: readonly CommandRecord[]
  readonly kernel: string
  readonly startedAt: string
  readonly durationMs: number
  /** Settings of the node as built (rp_filter, ip_forward …), recorded because they change what the kernel does. */
  readonly sysctls: Readonly<Record<string, string>>
}
