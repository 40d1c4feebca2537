import { Flags } from '@oclif/core'
import { NatlensCommand, bundleArgs, bundleFlags } from './base.js'
import { loadNodeState } from '../sources/load.js'
import { analyze, type AnalysisJson } from '../analyze/analyze.js'
import { writeAnnotatedPcapng } from '../analyze/annotate.js'
import { renderAnalysis } from '../render/analyze-text.js'
import { NatlensError, ExitCode } from '../errors.js'

export default class Analyze extends NatlensCommand {
  static override summary = 'Set what a capture and conntrack show against what the node\'s rules predict, flow by flow.'
  static override description = `Pairs the legs of each connection across NAT (the pod's veth before, the ENI after) by TCP sequence numbers, IPv4 IDs, ICMP sequence and payload, reads conntrack's entries as observations too, and runs explain on each flow. A disagreement comes with a diagnosis: rules changed since the capture, another component rewrote the packet, the capture point could not see a leg, asymmetric routing.

A bundle made with \`natlens collect --capture\` carries its own capture; --pcap adds more.`
  static override examples = [
    { description: 'A lab node and its `tcpdump -i any` capture', command: '<%= config.bin %> <%= command.id %> test/lab/fixtures/v4cur/bundle --pcap test/lab/fixtures/v4cur/node.pcap' },
    { description: 'As JSON', command: '<%= config.bin %> <%= command.id %> test/lab/fixtures/v4kp/bundle --pcap test/lab/fixtures/v4kp/node.pcap --json' },
  ]
  static override strict = false
  static override args = bundleArgs
  static override flags = {
    ...bundleFlags,
    pcap: Flags.string({ summary: 'A capture to analyze (pcap or pcapng, gzip allowed); repeatable.', multiple: true }),
    'write-pcapng': Flags.string({ summary: 'Write the capture annotated with a comment per packet naming its flow and verdict.' }),
  }

  async run(): Promise<AnalysisJson> {
    const { argv, flags } = await this.parse(Analyze)
    const state = await loadNodeState(argv as string[], { prefer: flags.file ?? [] })
    const captures = [...state.captures.filter((c) => c.path).map((c) => c.path!), ...(flags.pcap ?? [])]
    if (captures.length === 0) throw new NatlensError('no capture: the bundle has none and no --pcap was given', 'analyze.no-capture', ExitCode.badInput, 'natlens collect --capture 30s, or pass --pcap FILE')
    const result = await analyze(state, captures)
    if (flags['write-pcapng']) await writeAnnotatedPcapng(captures, result, flags['write-pcapng'], state)
    this.log(renderAnalysis(result))
    if (result.disagreeing > 0 || result.unpaired.length > 0) process.exitCode = ExitCode.problem
    return result
  }
}
