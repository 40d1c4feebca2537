// `natlens report`: one self-contained file (HTML, Markdown or JSON) about a node and the flows asked about.
// Built from explain's Explanations (verdicts), inspect's summary, the packet graph, and optional capture and check
// results. makeReport is what the command calls; buildReport and the renderers are the parts.
import type { NodeState } from '../../model/node-state.js'
import type { Flow } from '../../model/flow.js'
import { explain } from '../../engine/explain.js'
import { toDot } from '../graph/dot.js'
import { dotToSvg } from '../graph/svg.js'
import { buildReport, type ReportJson } from './build.js'
import { renderReportHtml } from './html.js'
import { renderReportMarkdown } from './markdown.js'
import type { CaptureComparison, CheckResults, ReportInput } from './input.js'

export type ReportFormat = 'html' | 'md' | 'json'

/** What the report is built from, as `buildReport` takes it, with flows given as flows to explain. */
export type MakeReportOptions = Omit<ReportInput, 'state' | 'flows'> & {
  readonly format: ReportFormat
  readonly flows: readonly { readonly label?: string; readonly flow: Flow }[]
}

export interface MadeReport {
  readonly report: ReportJson
  /** The file's content in the chosen format. */
  readonly text: string
}

export async function makeReport(state: ReportInput['state'], options: MakeReportOptions): Promise<MadeReport> {
  const { format, flows, ...rest } = options
  const report = buildReport({
    ...rest,
    state,
    flows: flows.map(({ label, flow }) => ({ ...(label ? { label } : {}), explanation: explain(state as NodeState, flow) })),
  })
  return { report, text: await renderReport(report, format) }
}

export async function renderReport(report: ReportJson, format: ReportFormat): Promise<string> {
  switch (format) {
    case 'json': return `${JSON.stringify(report, null, 2)}\n`
    case 'md': return renderReportMarkdown(report)
    case 'html': return renderReportHtml(report, { svg: await dotToSvg(toDot(report.graph.model)) })
  }
}

export { buildReport, snatPolicyStatements, type ReportJson, type ReportFlowJson, type PodSectionJson, type ObservedSectionJson, type ProblemsSectionJson } from './build.js'
export { renderReportHtml } from './html.js'
export { renderReportMarkdown } from './markdown.js'
export { selectFlows, givenFlow, type FlowSelection } from './flows.js'
export type { CaptureComparison, CheckResults, EvidenceRef, Finding, ObservedFlow, ReportFlow, ReportInput } from './input.js'
