import { once } from 'node:events'
import { Args, Flags } from '@oclif/core'
import { ExitCode, NatlensError, type ExitCodeValue } from '../errors.js'
import { SORT_KEYS, flowJson, flowsReport, readFlows, topFlows, writeReportJson, type FlowsReport, type FlowsResult } from '../pcap/conversations.js'
import type { Flow } from '../pcap/flows.js'
import { parseFlowFilter } from '../pcap/filter.js'
import { ProgressBar, problemLine, renderFlowTable } from '../pcap/render-flows.js'
import { NatlensCommand } from './base.js'

/** Stderr shows a progress bar for inputs at least this large (or of unknown size, such as stdin). */
const PROGRESS_MIN_BYTES = 32 * 1024 * 1024
const DEFAULT_TABLE_ROWS = 20

export default class Flows extends NatlensCommand {
  static override summary = 'List the conversations in packet captures: packets and bytes each way, TCP flags, interfaces.'
  static override description = `Reads classic pcap (µs or ns, either byte order; Ethernet, VLAN/QinQ, Linux SLL and SLL2 from \`tcpdump -i any\`, raw IP, BSD loopback) and pcapng (dumpcap, Wireshark, Inspektor Gadget: several sections and interfaces), gzip-compressed or not, from files or standard input (\`-\`). Several files (a rotated set) are read as one capture, in the order of their first packet.

A flow is a bidirectional conversation: protocol, addresses, ports (null for protocols without them). "src" is the side that sent the first packet seen. Bytes are frame lengths on the wire, link-layer header included, as tshark counts them. An ICMP error counts towards the flow its quoted header names (icmpErrors), not as a flow of its own. IPv4/IPv6 fragments join the flow of their first fragment. Tunnels (VXLAN, Geneve, GRE, IP-in-IP) count as their outer conversation; --decap adds the inner ones.

Exit status: 0 when every input was read to its end and decoded; 1 for partial success: an input was cut short or has a corrupt record (reading it stopped there, the flows read up to that point are printed, and "truncated" is true), or some packets are on a link type natlens does not decode; 2 when nothing could be read at all, or on a usage error. Each problem is one line on stderr: \`natlens: <file>: byte <offset>: <what>\`.`

  static override examples = [
    { description: 'The largest conversations in a `tcpdump -i any` capture', command: '<%= config.bin %> <%= command.id %> fixtures/pcap/any-sll2.pcap' },
    { description: 'A dumpcap capture of two interfaces: flows list both', command: '<%= config.bin %> <%= command.id %> fixtures/pcap/lo-and-any.pcapng --sort first' },
    { description: 'Only the UDP flows of one host, as JSON', command: '<%= config.bin %> <%= command.id %> fixtures/pcap/any-sll2.pcap --filter "host 127.0.0.1 and udp" --json' },
    { description: 'A gzip-compressed capture, as the EKS node monitoring agent writes them', command: '<%= config.bin %> <%= command.id %> fixtures/pcap/any-sll2.pcap.gz --top 5' },
    { description: 'A rotated set (tcpdump -C), read as one capture', command: '<%= config.bin %> <%= command.id %> fixtures/pcap/rotated/capture.pcap fixtures/pcap/rotated/capture.pcap1 fixtures/pcap/rotated/capture.pcap2' },
    { description: 'The TCP session inside VXLAN, next to the tunnel itself', command: '<%= config.bin %> <%= command.id %> fixtures/pcap/vxlan-http.pcap --decap' },
    { description: 'From standard input, streaming one JSON object per line', command: 'cat fixtures/pcap/any-sll2.pcap | <%= config.bin %> <%= command.id %> - --ndjson' },
    { description: 'A capture cut short: the flows up to the cut, and exit status 1', command: '<%= config.bin %> <%= command.id %> fixtures/pcap/truncated.pcap' },
  ]

  static override strict = false
  static override args = {
    captures: Args.string({ description: 'pcap or pcapng files (gzip allowed), or - for standard input', required: true }),
  }

  static override flags = {
    top: Flags.integer({ min: 1, summary: `Show the first N flows in --sort order (the table shows ${DEFAULT_TABLE_ROWS} unless told; --json and --ndjson all).` }),
    sort: Flags.option({ options: SORT_KEYS, default: 'bytes' as const, summary: 'Order of the flows.' })(),
    filter: Flags.custom({
      summary: 'Keep flows matching e.g. "host 10.0.3.45 and port 443", "net 10.0.0.0/16 and udp", "proto icmp or dst port 53".',
      parse: async (input: string) => parseFlowFilter(input),
    })(),
    decap: Flags.boolean({ summary: 'Also count the conversations inside VXLAN, Geneve, GRE and IP-in-IP tunnels.' }),
    ndjson: Flags.boolean({
      summary: 'Stream flows as JSON lines while reading (finished flows are written and forgotten), then a summary line.',
      exclusive: ['json'],
    }),
    'idle-timeout': Flags.integer({ min: 1, default: 120, summary: 'With --ndjson: a flow quiet this many seconds (capture time) is written out.' }),
    reader: Flags.option({ options: ['builtin', 'pcap-parser'] as const, default: 'builtin' as const, summary: 'Reader for classic pcap: the built-in one, or the pcap-parser package (µs pcap only).' })(),
    progress: Flags.boolean({ allowNo: true, summary: 'Progress bar on stderr (default: when stderr is a terminal and the input is large).' }),
  }

  /**
   * oclif's logJson colourises and pretty-prints through a tokenizer: minutes and gigabytes for a report of
   * a million flows. The report is written as it is built instead: one flow per line.
   */
  override logJson(json: unknown): void {
    if (this.jsonWritten) return
    // oclif also calls logJson with its error object ({error: …}) when --json is given and parsing fails.
    if (json && typeof json === 'object' && 'error' in json && !('flows' in json)) { process.stdout.write(`${JSON.stringify(json)}\n`); return }
    writeReportJson(json as FlowsReport, (s) => { process.stdout.write(s) })
  }

  /** Set once run() has written the JSON itself, waiting for stdout to drain (a pipe to a slow reader). */
  private jsonWritten = false

  async run(): Promise<FlowsReport> {
    const { argv, flags } = await this.parse(Flows)
    const inputs = argv as string[]
    if (inputs.filter((i) => i === '-').length > 1) throw new NatlensError('standard input (-) can be read only once', 'flows.usage', ExitCode.badInput)
    const json = this.jsonEnabled()
    const top = flags.top ?? (json || flags.ndjson ? undefined : DEFAULT_TABLE_ROWS)
    const bar = flags.progress ?? process.stderr.isTTY === true ? new ProgressBar(process.stderr) : undefined
    const ndjson = new NdjsonWriter()
    const result = await readFlows(inputs, {
      decap: flags.decap,
      reader: flags.reader,
      ...(top !== undefined ? { select: { sort: flags.sort, top } } : {}),
      ...(flags.filter ? { filter: flags.filter } : {}),
      ...(bar ? { onProgress: (p) => { if (p.bytesTotal === undefined || p.bytesTotal >= PROGRESS_MIN_BYTES || flags.progress) bar.update(p.bytesDone, p.bytesTotal, p.packets) } } : {}),
      ...(flags.ndjson ? { onFlow: (f) => ndjson.flow(f), idleTimeoutSec: flags['idle-timeout'], beforeRefill: () => ndjson.flush() } : {}),
    })
    bar?.clear()
    const shown = topFlows(result.flows, flags.sort, top)
    const report = flowsReport(result, shown, flags.sort)
    const outcome = readOutcome(result)
    if (json) {
      await writeReportJson(report, drainingWrite)
      this.jsonWritten = true
    } else if (flags.ndjson) {
      const { flows: _streamed, ...summary } = report
      ndjson.line(JSON.stringify({ type: 'summary', ...summary }))
      await ndjson.flush()
    } else if (outcome.exit !== ExitCode.badInput) {
      this.log(renderFlowTable(shown, { color: process.stdout.isTTY === true && !process.env.NO_COLOR }))
      this.log(summaryLine(result, report, flags.sort, flags.filter?.text))
    }
    for (const w of result.read.warnings) process.stderr.write(`natlens: warning: ${w.artifact}: byte ${w.offset ?? 0}: ${w.message}\n`)
    if (outcome.exit === ExitCode.ok) return report
    // Partial success (1) or failure (2): the output above stands; each problem is one line on stderr, the last
    // through the error, which the base command writes to stderr with or without --json.
    for (const l of outcome.lines.slice(0, -1)) process.stderr.write(`natlens: ${l}\n`)
    throw new NatlensError(outcome.lines.at(-1) ?? 'no packet could be decoded (see the link-type warnings above)',
      outcome.exit === ExitCode.badInput ? 'flows.unreadable' : 'flows.partial', outcome.exit)
  }
}

/** The exit status of a read, and its problem lines (`<file>: byte <offset>: <what>`). */
function readOutcome(result: FlowsResult): { exit: ExitCodeValue; lines: string[] } {
  const lines = result.read.files.map(problemLine).filter((l): l is string => l !== undefined)
  const undecoded = result.read.files.some((f) => f.undecodedPackets > 0)
  if (lines.length === 0 && !undecoded) return { exit: ExitCode.ok, lines }
  // Nothing read at all: every input refused, or every packet on a link type natlens does not decode.
  const nothing = result.read.unreadable || result.read.files.every((f) => f.packets === f.undecodedPackets)
  return { exit: nothing ? ExitCode.badInput : ExitCode.problem, lines }
}

function summaryLine(result: FlowsResult, report: FlowsReport, sort: string, filter: string | undefined): string {
  const files = result.read.files.length
  const matching = filter !== undefined ? `, ${result.flows.length} matching "${filter}"` : ''
  return `${report.flows.length} shown of ${result.flowCount} flows${matching}, by ${sort}; ${result.packets.toLocaleString('en')} packets in ${files} file${files === 1 ? '' : 's'}${result.truncated ? ' (read in part: truncated)' : ''}`
}

/** JSON lines gathered into writes of about 64 KiB (one write per flow costs a system call per flow). */
class NdjsonWriter {
  private pending: string[] = []
  private size = 0
  flow(f: Flow): void {
    this.line(`{"type":"flow",${JSON.stringify(flowJson(f)).slice(1)}`)
  }
  line(text: string): void {
    this.pending.push(text)
    this.size += text.length + 1
    if (this.size >= 65536) this.write()
  }
  private write(): void {
    if (this.pending.length === 0) return
    process.stdout.write(`${this.pending.join('\n')}\n`)
    this.pending = []
    this.size = 0
  }
  /** Writes what is gathered; the promise (when there is one) resolves once stdout has drained. */
  flush(): Promise<void> | undefined {
    this.write()
    return stdoutDrained()
  }
}

/** A promise that stdout has drained, when it has more buffered than its high-water mark (a pipe to a slow reader). */
function stdoutDrained(): Promise<void> | undefined {
  return process.stdout.writableNeedDrain ? once(process.stdout, 'drain').then(() => undefined) : undefined
}

function drainingWrite(chunk: string): Promise<void> | undefined {
  return process.stdout.write(chunk) ? undefined : stdoutDrained() ?? once(process.stdout, 'drain').then(() => undefined)
}
