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

export interface MakeReportOptions {
  readonly format: ReportFormat
  readonly flows: readonly { readonly label?: string; readonly flow: Flow }[]
  readonly inputs: readonly string[]
  readonly captures?: readonly string[]
  readonly analysis?: CaptureComparison
  readonly checks?: CheckResults
  readonly graphFlow?: number
  readonly version?: string
}

export interface MadeReport {
  readonly report: ReportJson
  /** The file's content in the chosen format. */
  readonly text: string
}

export async function makeReport(state: ReportInput['state'], options: MakeReportOptions): Promise<MadeReport> {
  const report = buildReport({
    state,
    flows: options.flows.map(({ label, flow }) => ({ ...(label ? { label } : {}), explanation: explain(state as NodeState, flow) })),
    inputs: options.inputs,
    ...(options.captures ? { captures: options.captures } : {}),
    ...(options.analysis ? { analysis: options.analysis } : {}),
    ...(options.checks ? { checks: options.checks } : {}),
    ...(options.graphFlow !== undefined ? { graphFlow: options.graphFlow } : {}),
    ...(options.version ? { version: options.version } : {}),
  })
  return { report, text: await renderReport(report, options.format) }
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
