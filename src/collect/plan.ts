// What `natlens collect` gathers, as data: one entry per item (its file in the bundle, the argv or endpoint that
// makes it, whether it needs root, its timeout, the conditions under which it runs). The runner, the read-only
// allowlist test and the POSIX sh collector script are all generated from this one list, so the three cannot drift.
//
// Everything here only reads: `ip … show`, `*-save`, `nft list`, `conntrack -L/-S`, `sysctl -a` (read, filtered),
// HTTP GETs to the node's own loopback endpoints and IMDS, reading files, and tcpdump writing to standard output.

/** `state` items are taken before and again after a capture (drift shows); `once` items are taken once. */
export type Phase = 'state' | 'once'

/**
 * `netns` items describe a network namespace and run inside the one `--netns` names; `host` items (files, the
 * aws-node process) belong to the machine and are skipped under `--netns`.
 */
export type Scope = 'netns' | 'host'

export type Condition =
  /** The command is on PATH. */
  | { readonly kind: 'command'; readonly command: string }
  /** None of these commands is on PATH (the fallback to the unsuffixed `iptables-save`). */
  | { readonly kind: 'no-command'; readonly commands: readonly string[] }
  /** A path exists; `missing` says what its absence means. `node` paths are on the node's filesystem (--host-root). */
  | { readonly kind: 'path'; readonly path: string; readonly missing: string; readonly node?: boolean }

interface ItemBase {
  /** Stable id (the file name without extension, unless several files come from one item). */
  readonly id: string
  /** Path inside the bundle (`cni/net.d/*` for a directory of files). */
  readonly file: string
  /** What it is, for people (progress lines, the script's comments). */
  readonly what: string
  readonly needsRoot: boolean
  readonly timeoutMs: number
  readonly phase: Phase
  readonly scope: Scope
  readonly conditions: readonly Condition[]
}

export interface CommandItem extends ItemBase {
  readonly kind: 'command'
  readonly argv: readonly string[]
  /** Keep only the lines matching this POSIX ERE (also valid as a JavaScript RegExp): `sysctl -a` is mostly noise. */
  readonly keepLines?: string
  /** The output counts as empty (no file is written) unless a line matches this ERE; `empty` says what that means. */
  readonly content?: { readonly pattern: string; readonly empty: string }
  /** Stop reading after this many lines (`--conntrack-limit`); the manifest marks the file truncated. */
  readonly maxLines?: number
}

export interface HttpItem extends ItemBase {
  readonly kind: 'http'
  readonly endpoint: 'ipamd' | 'kubeProxy'
  /** Path below the endpoint's base URL. */
  readonly path: string
}

/** IMDSv2: a session token (PUT), then GETs below `meta-data/`; written as `path: value` lines. */
export interface ImdsItem extends ItemBase {
  readonly kind: 'imds'
  readonly paths: readonly string[]
  /** Read for every MAC listed under `network/interfaces/macs/`. */
  readonly perInterface: readonly string[]
}

export interface FileItem extends ItemBase {
  readonly kind: 'files'
  /** A file, or a directory whose regular files are all copied (`glob`). */
  readonly path: string
  readonly glob: boolean
  readonly maxBytes: number
}

/** Settings from the environment of a running process, by name allowlist only. */
export interface ProcessEnvItem extends ItemBase {
  readonly kind: 'process-env'
  /** `/proc/<pid>/comm` of the process. */
  readonly comm: string
  /** ERE a `NAME=value` line must match to be kept. */
  readonly keep: string
  /** ERE (case-insensitive) that drops a line whatever `keep` says: credentials. */
  readonly drop: string
}

export interface CaptureItem extends ItemBase {
  readonly kind: 'capture'
  readonly argv: readonly string[]
}

export type PlanItem = CommandItem | HttpItem | ImdsItem | FileItem | ProcessEnvItem | CaptureItem

export interface Endpoints {
  /** IMDS base URL. */
  readonly imds: string
  /** ipamd introspection (vpc-cni.md §8: `INTROSPECTION_BIND_ADDRESS`, default 127.0.0.1:61679). */
  readonly ipamd: string
  /** kube-proxy's metrics server, which answers `/proxyMode` (default bind 127.0.0.1:10249). */
  readonly kubeProxy: string
}

export const DEFAULT_ENDPOINTS: Endpoints = {
  imds: 'http://169.254.169.254',
  ipamd: 'http://127.0.0.1:61679',
  kubeProxy: 'http://127.0.0.1:10249',
}

export interface CaptureOptions {
  readonly durationMs: number
  readonly iface: string
  /** A BPF expression, passed to tcpdump as one argument. */
  readonly filter?: string
  readonly snaplen: number
  readonly maxPackets: number
  readonly maxBytes: number
}

export interface PlanOptions {
  readonly conntrackLimit: number
  readonly capture?: CaptureOptions
}

/**
 * Headers only: LINUX_SLL2 (20) + IPv6 (40) + TCP with every option (60) = 120 bytes; an ICMP error quoting an
 * IPv6 header and 8 bytes fits too (20 + 40 + 8 + 40 + 8).
 */
export const DEFAULT_SNAPLEN = 128
export const DEFAULT_CONNTRACK_LIMIT = 100_000
export const DEFAULT_MAX_PACKETS = 1_000_000
export const DEFAULT_MAX_BYTES = 200 * 1024 * 1024

/** The sysctls that change what the kernel does with a flow: forwarding, reverse-path filter, SNAT port range, conntrack size. */
export const SYSCTL_KEEP = '^(net\\.ipv4\\.ip_forward|net\\.ipv4\\.conf\\.[^.]+\\.(rp_filter|src_valid_mark)|net\\.ipv4\\.ip_local_port_range|net\\.netfilter\\.nf_conntrack_(max|count|buckets)|net\\.nf_conntrack_max|net\\.ipv6\\.conf\\.(all|default)\\.forwarding) = '

/**
 * aws-node settings kept from ipamd's environment: the names `isCniSettingName` (src/parse/cni.ts) accepts, as an
 * ERE over `NAME=value` lines so the sh script filters exactly as the Node collector does (a test holds the two
 * together). Nothing else of the environment is ever read into the bundle.
 */
export const CNI_SETTING_LINE = '^(AWS_VPC_[A-Za-z0-9_]*|ENABLE_[A-Za-z0-9_]*|DISABLE_[A-Za-z0-9_]*|WARM_[A-Za-z0-9_]*|MINIMUM_IP_TARGET|MAX_ENI|POD_SECURITY_GROUP_ENFORCING_MODE|AWS_EXTERNAL_SERVICE_CIDRS|INTROSPECTION_BIND_ADDRESS|POD_MTU|IP_COOLDOWN_PERIOD|NETWORK_POLICY_ENFORCING_MODE|ANNOTATE_POD_IP|VPC_CNI_VERSION|AWS_MANAGE_ENIS_NON_SCHEDULABLE|CLUSTER_NAME|AWS_VPC_K8S_CNI_LOGLEVEL|AWS_VPC_K8S_PLUGIN_LOG_LEVEL)='
/** Whatever the allowlist says, a name that reads like a credential is dropped (matched case-insensitively). */
export const CREDENTIAL_LINE = '^[^=]*(SECRET|TOKEN|PASSW|CREDENTIAL|ACCESS_KEY|PRIVATE|SESSION|AUTH|CERT|_KEY=)'

/** IMDS paths below `meta-data/` (vpc-cni.md §8: what ipamd itself reads). */
export const IMDS_PATHS = ['mac', 'local-ipv4', 'instance-id', 'instance-type', 'local-hostname', 'placement/availability-zone'] as const
export const IMDS_INTERFACE_PATHS = [
  'device-number', 'interface-id', 'local-ipv4s', 'subnet-ipv4-cidr-block', 'vpc-ipv4-cidr-blocks', 'vpc-ipv6-cidr-blocks',
  'ipv4-prefix', 'ipv6-prefix', 'ipv6s', 'subnet-ipv6-cidr-blocks', 'network-card', 'subnet-id', 'vpc-id', 'security-group-ids',
] as const

/** ipamd introspection paths (identical v1.7–v1.23; `/v1/pods` is gone since 2020, so it is not asked). */
export const IPAMD_PATHS = ['enis', 'eni-configs', 'networkutils-env-settings', 'ipamd-env-settings'] as const

const S = 1000
const IPTABLES_CONTENT = { pattern: '^\\*', empty: 'no tables in this backend' }

function command(id: string, file: string, argv: string[], what: string, extra: Partial<Omit<CommandItem, 'kind' | 'id' | 'file' | 'argv' | 'what'>> = {}): CommandItem {
  return { kind: 'command', id, file, argv, what, needsRoot: false, timeoutMs: 10 * S, phase: 'state', scope: 'netns', conditions: [], ...extra }
}

const has = (c: string): Condition => ({ kind: 'command', command: c })

/** The iptables dumps: both backends when present (a node can hold rules in both, and both run in the kernel). */
function iptablesItems(): CommandItem[] {
  const out: CommandItem[] = []
  for (const [fam, prefix, procNames] of [[4, 'iptables', '/proc/net/ip_tables_names'], [6, 'ip6tables', '/proc/net/ip6_tables_names']] as const) {
    // Counters (-c) show which rules traffic actually hit. 160k rules take seconds (minutes with the nft backend).
    const common = { needsRoot: true, timeoutMs: 180 * S, content: IPTABLES_CONTENT }
    // The legacy tables exist only when the x_tables module for the family is loaded; without it there is nothing to
    // read, and not running the command keeps the collector from ever causing a module load.
    out.push(command(`${prefix}-legacy-save`, `${prefix}-legacy-save.txt`, [`${prefix}-legacy-save`, '-c'], `IPv${fam} iptables rules, legacy backend, with counters`,
      { ...common, conditions: [has(`${prefix}-legacy-save`), { kind: 'path', path: procNames, missing: `no legacy ${prefix} tables (${procNames} is absent: the module is not loaded)` }] }))
    out.push(command(`${prefix}-nft-save`, `${prefix}-nft-save.txt`, [`${prefix}-nft-save`, '-c'], `IPv${fam} iptables rules, nf_tables backend, with counters`,
      { ...common, conditions: [has(`${prefix}-nft-save`)] }))
    // iptables before 1.8 has one unsuffixed binary.
    out.push(command(`${prefix}-save`, `${prefix}-save.txt`, [`${prefix}-save`, '-c'], `IPv${fam} iptables rules (iptables older than 1.8), with counters`,
      { ...common, conditions: [has(`${prefix}-save`), { kind: 'no-command', commands: [`${prefix}-legacy-save`, `${prefix}-nft-save`] }] }))
  }
  return out
}

export function collectionPlan(options: PlanOptions): PlanItem[] {
  const ct = { needsRoot: true, timeoutMs: 30 * S, maxLines: options.conntrackLimit, conditions: [has('conntrack')] }
  const items: PlanItem[] = [
    // Heavy items first: the runner starts them in this order, so the long ones overlap the short ones.
    ...iptablesItems(),
    command('nft-list-ruleset', 'nft-list-ruleset.txt', ['nft', 'list', 'ruleset'], 'nftables ruleset (native tables such as the CNI\'s `table ip aws-cni`, and iptables-nft\'s)',
      { needsRoot: true, timeoutMs: 180 * S, conditions: [has('nft')], content: { pattern: '^table ', empty: 'no nftables tables' } }),
    command('nft-j-list-ruleset', 'nft-j-list-ruleset.json', ['nft', '-j', 'list', 'ruleset'], 'nftables ruleset as JSON',
      { needsRoot: true, timeoutMs: 180 * S, conditions: [has('nft')], content: { pattern: '"table"', empty: 'no nftables tables' } }),
    command('conntrack', 'conntrack.txt', ['conntrack', '-L'], 'IPv4 connection tracking table', ct),
    command('conntrack6', 'conntrack6.txt', ['conntrack', '-L', '-f', 'ipv6'], 'IPv6 connection tracking table', ct),
    command('conntrack-S', 'conntrack-S.txt', ['conntrack', '-S'], 'conntrack statistics per CPU (drops, insert failures)', { needsRoot: true, conditions: [has('conntrack')] }),
    command('ip-d-j-addr', 'ip-d-j-addr.json', ['ip', '-d', '-j', 'addr'], 'interfaces and addresses', { conditions: [has('ip')] }),
    command('ip-d-j-link', 'ip-d-j-link.json', ['ip', '-d', '-j', 'link'], 'links with details (veth, vlan, MACs)', { conditions: [has('ip')] }),
    command('ip-rule', 'ip-rule.txt', ['ip', 'rule'], 'IPv4 policy routing rules', { conditions: [has('ip')] }),
    command('ip-j-rule', 'ip-j-rule.json', ['ip', '-j', 'rule'], 'IPv4 policy routing rules as JSON', { conditions: [has('ip')] }),
    command('ip-6-rule', 'ip-6-rule.txt', ['ip', '-6', 'rule'], 'IPv6 policy routing rules', { conditions: [has('ip')] }),
    command('ip-6-j-rule', 'ip-6-j-rule.json', ['ip', '-6', '-j', 'rule'], 'IPv6 policy routing rules as JSON', { conditions: [has('ip')] }),
    // `-4`: without it iproute2 dumps both families for `table all`, which would duplicate the IPv6 file.
    command('ip-route-all', 'ip-route-all.txt', ['ip', '-4', 'route', 'show', 'table', 'all'], 'IPv4 routes of every table', { conditions: [has('ip')] }),
    command('ip-j-route-all', 'ip-j-route-all.json', ['ip', '-4', '-j', 'route', 'show', 'table', 'all'], 'IPv4 routes of every table as JSON', { conditions: [has('ip')] }),
    command('ip-6-route-all', 'ip-6-route-all.txt', ['ip', '-6', 'route', 'show', 'table', 'all'], 'IPv6 routes of every table', { conditions: [has('ip')] }),
    command('ip-6-j-route-all', 'ip-6-j-route-all.json', ['ip', '-6', '-j', 'route', 'show', 'table', 'all'], 'IPv6 routes of every table as JSON', { conditions: [has('ip')] }),
    command('sysctl', 'sysctl.txt', ['sysctl', '-a'], 'ip_forward, rp_filter per interface, conntrack size, local port range',
      { conditions: [has('sysctl')], keepLines: SYSCTL_KEEP }),
    ...IPAMD_PATHS.map((p): HttpItem => ({
      kind: 'http', id: `ipamd-${p}`, file: `ipamd/${p}.json`, what: `ipamd introspection /v1/${p}`, endpoint: 'ipamd', path: `/v1/${p}`,
      needsRoot: false, timeoutMs: 1 * S, phase: 'once', scope: 'netns', conditions: [],
    })),
    {
      kind: 'http', id: 'kube-proxy-mode', file: 'kube-proxy-mode.txt', what: 'kube-proxy mode (iptables, ipvs, nftables)', endpoint: 'kubeProxy', path: '/proxyMode',
      needsRoot: false, timeoutMs: 1 * S, phase: 'once', scope: 'netns', conditions: [],
    },
    {
      kind: 'imds', id: 'imds', file: 'imds.txt', what: 'IMDSv2: primary MAC and address, VPC CIDR blocks and interfaces', paths: IMDS_PATHS, perInterface: IMDS_INTERFACE_PATHS,
      needsRoot: false, timeoutMs: 1 * S, phase: 'once', scope: 'netns', conditions: [],
    },
    {
      kind: 'files', id: 'cni-net-d', file: 'cni/net.d/*', what: 'CNI configuration (/etc/cni/net.d)', path: '/etc/cni/net.d', glob: true, maxBytes: 1024 * 1024,
      needsRoot: false, timeoutMs: 5 * S, phase: 'once', scope: 'host', conditions: [{ kind: 'path', path: '/etc/cni/net.d', missing: 'no /etc/cni/net.d on this host', node: true }],
    },
    {
      kind: 'files', id: 'ipam-checkpoint', file: 'aws-node/ipam.json', what: 'ipamd checkpoint (/var/run/aws-node/ipam.json)', path: '/var/run/aws-node/ipam.json', glob: false, maxBytes: 16 * 1024 * 1024,
      needsRoot: false, timeoutMs: 5 * S, phase: 'once', scope: 'host', conditions: [{ kind: 'path', path: '/var/run/aws-node/ipam.json', missing: 'no /var/run/aws-node/ipam.json (aws-node does not run here)', node: true }],
    },
    {
      kind: 'process-env', id: 'aws-node-env', file: 'aws-node-env.txt', what: 'aws-node settings from ipamd\'s environment (CNI setting names only)', comm: 'aws-k8s-agent',
      keep: CNI_SETTING_LINE, drop: CREDENTIAL_LINE, needsRoot: true, timeoutMs: 5 * S, phase: 'once', scope: 'host', conditions: [],
    },
  ]
  if (options.capture) items.push({ ...captureItem(options.capture) })
  return items
}

/** tcpdump writing pcap to standard output, so the collector bounds its size exactly and writes the file itself. */
export function captureItem(c: CaptureOptions): CaptureItem {
  // `timeout` ends tcpdump by itself even if the collector were killed; the collector normally stops it first.
  const safety = Math.ceil(c.durationMs / 1000) + 30
  // -n: no name lookups (no traffic of the collector's own); -U: whole packets reach the pipe as they come.
  const argv = ['timeout', '-s', 'TERM', String(safety), 'tcpdump', '-n', '-U', '-i', c.iface, '-s', String(c.snaplen), '-c', String(c.maxPackets), '-w', '-', ...(c.filter ? [c.filter] : [])]
  return {
    kind: 'capture', id: 'capture', file: 'capture.pcap', what: `packet capture on ${c.iface}${c.filter ? ` (${c.filter})` : ''}`, argv,
    needsRoot: true, timeoutMs: c.durationMs + 60 * S, phase: 'once', scope: 'netns', conditions: [has('tcpdump')],
  }
}

/** Every argv an item can run (the capture's and the commands'); used by the read-only allowlist test. */
export function argvOf(item: PlanItem): readonly string[] | undefined {
  return item.kind === 'command' || item.kind === 'capture' ? item.argv : undefined
}

/** Why an item that needs root was skipped (the same words in the Node collector and the sh script). */
export function needsRootReason(item: PlanItem): string {
  const why = item.kind === 'capture' ? 'packet capture' : item.kind === 'process-env' ? 'reading another process\'s environment' : 'netfilter and conntrack are readable only with CAP_NET_ADMIN'
  return `needs root (${why}); run natlens collect with sudo`
}

export function missingCommandReason(item: PlanItem, command: string): string {
  return item.kind === 'capture' ? `tcpdump is not installed on this node (Amazon Linux 2023 images ship without it): ${TCPDUMP_INSTALL}; collecting the state without a capture` : `${command} is not installed`
}

export function fallbackReason(commands: readonly string[]): string {
  return `${commands.join(' and ')} read the tables instead (iptables 1.8+)`
}

export function hostItemReason(netns: string): string {
  return `belongs to the host, not to namespace ${netns}; run without --netns for it`
}

/** How to install tcpdump, for the message when it is missing (AL2023 images ship without it). */
export const TCPDUMP_INSTALL = 'install it with `sudo dnf install -y tcpdump` (Amazon Linux 2023), `sudo yum install -y tcpdump` (Amazon Linux 2) or `sudo apt-get install -y tcpdump`; on Bottlerocket use the admin container'
