import { Flags } from '@oclif/core'
import { NatlensCommand } from './base.js'
import { collect, previewCollection, type CollectSummary, type PlanRow } from '../collect/collect.js'
import { parseDuration, parseSize } from '../collect/flags.js'
import { progressLine, renderSummary } from '../collect/render.js'
import { DEFAULT_CONNTRACK_LIMIT, DEFAULT_ENDPOINTS, DEFAULT_MAX_BYTES, DEFAULT_MAX_PACKETS, DEFAULT_SNAPLEN } from '../collect/plan.js'
import { ExitCode } from '../errors.js'
import { runHttpJobs, type HttpJob } from '../collect/http.js'

export default class Collect extends NatlensCommand {
  static override summary = 'Gather what inspect, explain, analyze and report need from this node into one bundle, quickly and read-only.'
  static override description = `Run it on a worker node as root: in an SSM session, or in \`kubectl debug node/NAME -it --profile=sysadmin --image=IMAGE\` (the host's network and processes; give --host-root /host so the CNI files are read from the node). It lists ip addresses, links, rules and routes of every table (IPv4 and IPv6, text and JSON), dumps iptables through every backend that holds rules (legacy and nf_tables, with counters), the nftables ruleset, conntrack (bounded by --conntrack-limit) and its statistics, the sysctls that matter, ipamd's introspection endpoints, the CNI configuration and checkpoint, aws-node's CNI settings (setting names only), IMDSv2 (skipped at once off EC2), and kube-proxy's mode. Commands run in parallel, each with a timeout; a failing or missing one is recorded in manifest.json and the rest goes on. Nothing on the node is changed.

--capture 30s runs tcpdump beside the state collection (headers only unless --snaplen says otherwise), bounded by --max-packets and --max-size too, and takes the state again afterwards (in after/) so that drift shows. Ctrl-C or SIGTERM ends the capture early and still writes a complete bundle; a second Ctrl-C stops everything and writes what there is.

  sudo natlens collect                          # natlens-<host>-<time>.tar.gz in the current directory
  sudo natlens collect -o /tmp --quiet          # the same name, in /tmp; -o DIR/ or -o FILE.tar.gz to choose
  sudo natlens collect --capture 30s --filter "host 10.0.9.88"
  sudo natlens collect --netns NAME             # the state of a named network namespace

--redact replaces hostnames, instance and resource ids, account ids, ARNs and MACs with consistent pseudonyms; --redact-ips also maps IP addresses, prefix-preserving, so every CIDR still contains what it contained and explain gives the same verdicts. Without root, the items that need it are listed and the rest is collected.`

  static override examples = [
    { description: 'What would be collected here, and what skipped and why (nothing is run)', command: '<%= config.bin %> <%= command.id %> --plan' },
    { description: 'The plan for a capture of one pod\'s traffic, as JSON', command: '<%= config.bin %> <%= command.id %> --plan --capture 30s --filter "host 10.0.9.88" --json' },
    { description: 'The plan with IMDS and the IPv6 conntrack table left out, from a kubectl debug node shell (the node\'s files under /host)', command: '<%= config.bin %> <%= command.id %> --plan --skip imds,conntrack6 --host-root /host' },
  ]

  static override flags = {
    output: Flags.string({ char: 'o', summary: 'Where to write: DIR (a new directory), FILE.tar.gz, or an existing directory to put natlens-<host>-<time>.tar.gz in (default: that name in the current directory).' }),
    netns: Flags.string({ summary: 'Collect inside this named network namespace (ip netns exec); host files are then skipped.' }),
    capture: Flags.custom<number>({ summary: 'Capture packets this long beside the state collection, e.g. 30s, 2m.', parse: async (s) => parseDuration(s) })(),
    iface: Flags.string({ summary: 'Interface to capture on (default any).', dependsOn: ['capture'] }),
    filter: Flags.string({ summary: 'BPF filter for the capture, e.g. "host 10.0.9.88 and tcp port 443".', dependsOn: ['capture'] }),
    snaplen: Flags.integer({ summary: `Bytes kept per packet (default ${DEFAULT_SNAPLEN}: headers only).`, min: 64, max: 262_144, dependsOn: ['capture'] }),
    'max-packets': Flags.integer({ summary: `End the capture after this many packets (default ${DEFAULT_MAX_PACKETS}).`, min: 1, dependsOn: ['capture'] }),
    'max-size': Flags.custom<number>({ summary: `End the capture before the pcap grows past this size, e.g. 50M (default ${DEFAULT_MAX_BYTES / 1024 / 1024}M).`, parse: async (s) => parseSize(s), dependsOn: ['capture'] })(),
    'conntrack-limit': Flags.integer({ summary: 'Keep at most this many conntrack entries per family.', min: 1, default: DEFAULT_CONNTRACK_LIMIT }),
    redact: Flags.boolean({ summary: 'Replace hostnames, instance/resource/account ids, ARNs and MACs with consistent pseudonyms.' }),
    'redact-ips': Flags.boolean({ summary: 'Also map IP addresses, prefix-preserving (CIDR membership still holds). Implies --redact.' }),
    'host-root': Flags.string({ summary: 'Where the node\'s filesystem is mounted, for its CNI files (kubectl debug node mounts it at /host).', default: '/' }),
    skip: Flags.string({ summary: 'Leave items out, by id or file name, comma-separated (e.g. imds,conntrack on a node with millions of connections).', multiple: true, delimiter: ',' }),
    quiet: Flags.boolean({ char: 'q', summary: 'No progress lines on stderr.' }),
    plan: Flags.boolean({ summary: 'Print what would be collected and what skipped, and why; run nothing.' }),
    'http-child': Flags.boolean({ hidden: true, summary: 'Internal: read HTTP jobs on stdin and answer on stdout (run inside a namespace).' }),
    'imds-url': Flags.string({ hidden: true, default: DEFAULT_ENDPOINTS.imds, summary: 'IMDS base URL (tests).' }),
    'ipamd-url': Flags.string({ hidden: true, default: DEFAULT_ENDPOINTS.ipamd, summary: 'ipamd introspection base URL.' }),
    'kube-proxy-url': Flags.string({ hidden: true, default: DEFAULT_ENDPOINTS.kubeProxy, summary: 'kube-proxy metrics base URL.' }),
  }

  /** The namespace side of the HTTP reads (src/collect/collect.ts httpChildArgv), for the single executable. */
  private async httpChild(): Promise<PlanRow[]> {
    const chunks: Buffer[] = []
    for await (const c of process.stdin) chunks.push(c as Buffer)
    process.stdout.write(JSON.stringify(await runHttpJobs(JSON.parse(Buffer.concat(chunks).toString('utf8')) as HttpJob[])))
    return []
  }

  async run(): Promise<CollectSummary | PlanRow[]> {
    const { flags } = await this.parse(Collect)
    if (flags['http-child']) return this.httpChild()
    const capture = flags.capture === undefined ? undefined : { durationMs: flags.capture, iface: flags.iface ?? 'any', snaplen: flags.snaplen ?? DEFAULT_SNAPLEN, maxPackets: flags['max-packets'] ?? DEFAULT_MAX_PACKETS, maxBytes: flags['max-size'] ?? DEFAULT_MAX_BYTES, ...(flags.filter ? { filter: flags.filter } : {}) }
    const common = { ...(flags.netns ? { netns: flags.netns } : {}), ...(flags.skip ? { skip: flags.skip } : {}), hostRoot: flags['host-root'], conntrackLimit: flags['conntrack-limit'], ...(capture ? { capture } : {}), endpoints: { imds: flags['imds-url'], ipamd: flags['ipamd-url'], kubeProxy: flags['kube-proxy-url'] } }
    if (flags.plan) {
      const rows = previewCollection(common)
      this.log(rows.map((r) => `${r.runs ? 'run ' : 'skip'}  ${r.file.padEnd(30)} ${r.source}${r.needsRoot ? '  [root]' : ''}${r.reason ? `\n      ${r.reason}` : ''}`).join('\n'))
      return rows
    }
    // First Ctrl-C/SIGTERM ends the capture (or, without one, the collection); the second stops everything.
    const endCapture = new AbortController()
    const abort = new AbortController()
    let signals = 0
    const onSignal = (sig: NodeJS.Signals) => { signals++; if (signals === 1 && capture) endCapture.abort(sig); else if (signals <= 2) abort.abort(sig); else process.exit(130) }
    process.on('SIGINT', onSignal).on('SIGTERM', onSignal)
    try {
      const summary = await collect({
        ...common, natlensVersion: this.config.version, ...(flags.output ? { output: flags.output } : {}),
        ...(flags.redact || flags['redact-ips'] ? { redact: { ips: flags['redact-ips'] } } : {}),
        endCapture: endCapture.signal, abort: abort.signal,
        ...(flags.quiet ? {} : { onProgress: (e) => { const l = progressLine(e); if (l) process.stderr.write(`${l}\n`) } }),
      })
      this.log(renderSummary(summary))
      if (summary.interrupted) process.exitCode = ExitCode.problem
      return summary
    } finally {
      process.off('SIGINT', onSignal).off('SIGTERM', onSignal)
    }
  }
}
