import { Flags } from '@oclif/core'
import { NatlensCommand, bundleArgs, bundleFlags, flowFlags } from './base.js'
import { loadNodeState } from '../sources/load.js'
import { readFlowList } from '../sources/flow-list.js'
import { parseFlow, type Flow } from '../model/flow.js'
import { explain } from '../engine/explain.js'
import { representativeFlows } from '../engine/representative.js'
import { toVerdictJson, type VerdictJson } from '../render/verdict-json.js'
import { renderExplanation, renderVerdictTable } from '../render/explain-text.js'
import { NatlensError } from '../errors.js'
import { flowLogReport, type FlowLogExplanation } from '../doctor/flow-log.js'

export default class Explain extends NatlensCommand {
  static override summary = 'Explain whether a flow is SNATed on the node, to which source, out of which interface, and which rule decided.'
  static override description = `Walks the packet through the node's netfilter hooks (raw, mangle, nat; iptables and nft in priority order) and its policy routing (ip rules, route tables) as the kernel does, and prints the verdict with the rule and line that decided it.

The input is a bundle from \`natlens collect\`, the EKS log collector's tarball, or any directory or list of files holding pasted outputs (ip rule, ip route show table all, iptables-save, nft list ruleset, …).`
  static override examples = [
    { description: 'A pod on the primary ENI talking to the internet', command: '<%= config.bin %> <%= command.id %> fixtures/example-node --src 10.0.7.201 --dst 203.0.113.10 --dport 443' },
    { description: 'A pod on a secondary ENI to an address inside the VPC, as JSON', command: '<%= config.bin %> <%= command.id %> fixtures/example-node --src 10.0.9.88 --dst 10.0.20.15 --dport 5432 --json' },
    { description: 'Every pod against representative destinations', command: '<%= config.bin %> <%= command.id %> fixtures/example-node --all-pods' },
    { description: 'Flows listed in a CSV file (src,dst,proto,sport,dport)', command: '<%= config.bin %> <%= command.id %> fixtures/example-node --flows fixtures/example-flows.csv' },
    { description: 'Which address a VPC Flow Log record shows (default format)', command: '<%= config.bin %> <%= command.id %> fixtures/example-node --flow-log-line "2 123456789012 eni-0a1b2c3d4e5f6a7b8 10.0.3.45 10.0.20.15 41234 5432 6 12 1840 1700000000 1700000060 ACCEPT OK"' },
    { description: 'A record in a custom format with pkt-srcaddr', command: '<%= config.bin %> <%= command.id %> fixtures/example-node --flow-log-format \'${version} ${interface-id} ${srcaddr} ${pkt-srcaddr} ${dstaddr} ${dstport} ${protocol} ${action}\' --flow-log-line "5 eni-0f1e2d3c4b5a69788 10.0.6.120 10.0.9.88 10.0.20.15 5432 6 ACCEPT"' },
  ]
  static override strict = false
  static override args = bundleArgs
  static override flags = {
    ...bundleFlags,
    ...flowFlags,
    ctmark: Flags.string({ summary: 'Connection mark of an established connection (origin reply), e.g. 0x80.' }),
    flows: Flags.string({ summary: 'A CSV or JSON file of flows to explain.' }),
    'all-pods': Flags.boolean({ summary: 'Explain every pod against representative destinations.' }),
    steps: Flags.boolean({ summary: 'Show the step table (default for one flow).', allowNo: true }),
    'flow-log-line': Flags.string({ summary: 'A VPC Flow Log record: say whether its address is the node\'s SNAT, the pod\'s own, or the secondary-address behaviour.' }),
    'flow-log-format': Flags.string({ summary: 'The record\'s format, e.g. \'${version} ${srcaddr} ${pkt-srcaddr} …\' (default: the version 2 default format, or a header line before the record).', dependsOn: ['flow-log-line'] }),
  }

  async run(): Promise<VerdictJson | VerdictJson[] | FlowLogExplanation> {
    const { argv, flags } = await this.parse(Explain)
    const state = await loadNodeState(argv as string[], { prefer: flags.file ?? [] })
    if (flags['flow-log-line']) { const r = flowLogReport(state, flags['flow-log-line'], flags['flow-log-format']); this.log(r.text); return r.result }
    const labelled: { label?: string; flow: Flow }[] = []
    if (flags['all-pods']) labelled.push(...representativeFlows(state))
    if (flags.flows) labelled.push(...(await readFlowList(flags.flows)).map((flow) => ({ flow })))
    if (flags.src || flags.dst) {
      if (!flags.src || !flags.dst) throw new NatlensError('--src and --dst go together', 'usage.flow', 2, 'natlens explain BUNDLE --src 10.0.7.201 --dst 203.0.113.10')
      const f = parseFlow({ src: flags.src, dst: flags.dst, proto: flags.proto, sport: flags.sport, dport: flags.dport, ...(flags.iif ? { iif: flags.iif } : {}), ...(flags.origin ? { origin: flags.origin } : {}) })
      if (typeof f === 'string') throw new NatlensError(f, 'usage.flow', 2)
      labelled.push({ flow: f })
    }
    if (labelled.length === 0) {
      throw flags['all-pods']
        ? new NatlensError('--all-pods found no pod in the bundle (no pod routes or 512 ip rules)', 'usage.no-pods', 2, 'natlens inspect BUNDLE shows what was read; give a flow with --src and --dst')
        : new NatlensError('no flow to explain', 'usage.flow', 2, 'give --src and --dst, --flows FILE, or --all-pods')
    }
    const ctmark = flags.ctmark !== undefined ? Number(flags.ctmark) : undefined
    if (ctmark !== undefined && !Number.isInteger(ctmark)) throw new NatlensError(`--ctmark ${flags.ctmark} is not a number`, 'usage.ctmark', 2)
    // A --flows list of connections repeats flows but for the source port: those reuse one walk.
    const options = { reuse: true, ...(ctmark !== undefined ? { ctmark } : {}) }
    const results = labelled.map(({ label, flow }) => ({ ...(label ? { label } : {}), verdict: toVerdictJson(explain(state, flow, options), state) }))
    // Exit 1 when a flow could not be decided (src/errors.ts): a script should not take it for an answer.
    if (results.some((r) => r.verdict.verdict === 'insufficient-info')) process.exitCode = 1
    if (results.length === 1) {
      this.log(renderExplanation(results[0]!.verdict, { steps: flags.steps ?? true }))
      return results[0]!.verdict
    }
    this.log(renderVerdictTable(results))
    if (flags.steps) for (const r of results) this.log(`\n${renderExplanation(r.verdict)}`)
    if (state.derived.snatPolicy) this.log(`\nSNAT policy: ${state.derived.snatPolicy}`)
    return results.map((r) => r.verdict)
  }
}
