// What a report is built from. The explanations come from `explain` (the same objects `natlens explain` renders);
// captures compared against predictions (`natlens analyze`) and checks (`natlens doctor`) are optional inputs:
// without them the report says the section was not run and how to get it.
import type { NodeState } from '../../model/node-state.js'
import type { Explanation } from '../../model/trace.js'
import type { VerdictJson } from '../verdict-json.js'

export interface ReportFlow {
  /** How the flow was chosen, e.g. `10.0.9.88 (eth1) → 203.0.113.10 (the internet)`. */
  readonly label?: string
  readonly explanation: Explanation
}

export interface EvidenceRef { readonly file: string; readonly line: number; readonly text: string }

/** Evidence from a capture (`record`: packet number) or a file (`line`). */
export interface EvidenceItem { readonly file: string; readonly line?: number; readonly record?: number; readonly text: string }

type FlowTuple = { readonly src: string; readonly sport: number | null; readonly dst: string; readonly dport: number | null; readonly proto: string }

/**
 * One connection seen in a capture (or in conntrack), next to natlens's prediction for its first packet: the shape of
 * `natlens analyze --json`'s flows (src/analyze/analyze.ts AnalyzedFlowJson), of which the report reads this much.
 */
export interface ObservedFlow {
  /** The connection as the pod (or client) sent it: the pre-NAT leg. */
  readonly flow: FlowTuple
  readonly observed: {
    readonly snat: boolean
    /** The source the packet carried where it left (after any SNAT). */
    readonly sourceAfter: string
    readonly destinationAfter: string
    readonly egressInterface: string | null
    readonly ingressInterface?: string | null
    readonly evidence: readonly EvidenceItem[]
  }
  /** `toVerdictJson(explain(state, flow))`: the same verdict `natlens explain --json` gives. */
  readonly predicted: VerdictJson
  readonly agree: boolean
  /** Why they disagree, when they do. */
  readonly diagnosis: { readonly kind: string; readonly text: string; readonly evidence: readonly EvidenceItem[] } | null
  readonly packets?: number
}

/** Captures compared with predictions (`natlens analyze`'s AnalysisJson is one). */
export interface CaptureComparison {
  readonly captures: readonly { readonly file: string; readonly packets?: number; readonly truncated?: boolean }[]
  readonly flows: readonly ObservedFlow[]
  /** Connections whose other leg was not found. */
  readonly unpaired?: readonly { readonly flow: FlowTuple; readonly seenOn: readonly string[]; readonly why: string; readonly packets: number }[]
  readonly findings?: readonly { readonly kind: string; readonly text: string; readonly evidence: readonly EvidenceItem[] }[]
}

/** A problem a check found: the shape of `natlens doctor`'s findings (src/doctor/model.ts Finding). */
export interface Finding {
  /** The check that found it, e.g. `snat.missing-connmark`. */
  readonly id: string
  readonly severity: 'error' | 'warning' | 'info'
  /** One line a person reads first. */
  readonly title: string
  readonly detail?: string
  readonly evidence: readonly EvidenceRef[]
  /** What to do. */
  readonly fix?: string
}

/** The checks that ran and what they found: `natlens doctor`'s DoctorReport is one. */
export interface CheckResults {
  /** Every check that ran, found something or not. */
  readonly checked: readonly string[]
  readonly skipped?: readonly { readonly id: string; readonly reason: string }[]
  readonly findings: readonly Finding[]
}

export interface ReportInput {
  readonly state: NodeState & { readonly manifest?: Record<string, unknown>; readonly captures?: readonly { readonly artifact: string }[] }
  readonly flows: readonly ReportFlow[]
  /** What the report was built from, as given on the command line (bundle paths). */
  readonly inputs: readonly string[]
  /** Capture files given with --pcap (compared or not). */
  readonly captures?: readonly string[]
  readonly analysis?: CaptureComparison
  readonly checks?: CheckResults
  /** Which flow the graph highlights (index into `flows`); default: the first SNATed flow, else the first. */
  readonly graphFlow?: number
  /** natlens's version, for the report's footer. */
  readonly version?: string
}
