import { Flags } from '@oclif/core'
import { NatlensCommand, bundleArgs, bundleFlags, flowFlags, writeOutput } from './base.js'
import { loadNodeState } from '../sources/load.js'
import { analyze } from '../analyze/analyze.js'
import { runDoctor } from '../doctor/index.js'
import { makeReport, selectFlows, type ReportJson } from '../render/report/index.js'

export default class Report extends NatlensCommand {
  static override summary = 'Write one self-contained report of a node: its SNAT policy, every pod\'s flows with their traces and evidence, and the packet path as a graph.'
  static override description = `The report holds the node in summary (components and their eras, ENIs, pods, VPC CIDRs), the SNAT policy in plain words with the rule and line it comes from, each flow's verdict exactly as \`natlens explain\` gives it (with the step table and the raw rule text), the packet path through the hooks, chains, ip rules and route tables with one flow highlighted, captures compared with the predictions (as \`natlens analyze\`; captures in the bundle and --pcap), the problems \`natlens doctor\` finds, and the files it was built from (manifest, redaction).

Without --src/--dst or --flows, every pod is explained against representative destinations (as \`explain --all-pods\`). HTML is one file with inline CSS and SVG that fetches nothing when opened; Markdown is for a ticket; JSON (schemas/report.schema.json) is for tools.`
  static override examples = [
    { description: 'Markdown for a ticket, every pod of the example node', command: '<%= config.bin %> <%= command.id %> fixtures/example-node --format md' },
    { description: 'One flow, as JSON for tools', command: '<%= config.bin %> <%= command.id %> fixtures/example-node --src 10.0.9.88 --dst 203.0.113.10 --format json' },
    { description: 'The HTML page on standard output (-o report.html writes it to a file)', command: '<%= config.bin %> <%= command.id %> fixtures/example-node --flows fixtures/example-flows.csv --format html' },
    { description: 'A lab node with its capture: observed vs predicted, in Markdown', command: '<%= config.bin %> <%= command.id %> test/lab/fixtures/v4cur/bundle --pcap test/lab/fixtures/v4cur/node.pcap --format md' },
  ]
  static override enableJsonFlag = false
  static override strict = false
  static override args = bundleArgs
  static override flags = {
    ...bundleFlags,
    ...flowFlags,
    flows: Flags.string({ summary: 'A CSV or JSON file of flows to explain.' }),
    'all-pods': Flags.boolean({ summary: 'Every pod against representative destinations (the default when no flow is given).' }),
    pcap: Flags.string({ summary: 'A capture taken on the node, to compare with the predictions (repeatable).', multiple: true }),
    format: Flags.option({ options: ['html', 'md', 'json'] as const, default: 'html', summary: 'html (one self-contained page), md (Markdown for a ticket) or json.' })(),
    output: Flags.string({ char: 'o', summary: 'Write the report to this file instead of standard output.' }),
  }

  async run(): Promise<ReportJson> {
    const { argv, flags } = await this.parse(Report)
    const state = await loadNodeState(argv as string[], { prefer: flags.file ?? [] })
    const flows = await selectFlows(state, { ...flags, ...(flags.flows ? { flowsFile: flags.flows } : {}), allPods: flags['all-pods'] })
    // Captures in the bundle (natlens collect --capture) and given with --pcap are compared as `natlens analyze` does.
    const captures = [...state.captures.filter((c) => c.path).map((c) => c.path!), ...(flags.pcap ?? [])]
    const analysis = captures.length ? await analyze(state, captures) : undefined
    const { report, text } = await makeReport(state, { format: flags.format, flows, inputs: argv as string[], captures: flags.pcap ?? [], ...(analysis ? { analysis } : {}), checks: runDoctor(state), version: this.config.version })
    if (!(await writeOutput(flags.output, text))) return report
    const s = report.summary
    this.log(`wrote ${flags.output} (${flags.format}, ${Math.ceil(Buffer.byteLength(text) / 1024)} KB): node ${s.nodeAddress ?? '?'}, ${s.flows} flows (${s.snat} SNATed, ${s.keptAddress} keep their address, ${s.undecided} undecided, ${s.dropped} dropped), ${s.problems ?? 0} problem${s.problems === 1 ? '' : 's'} found${s.disagreements !== null ? `, ${s.disagreements} captured connection${s.disagreements === 1 ? '' : 's'} disagreeing` : ''}`)
    return report
  }
}
