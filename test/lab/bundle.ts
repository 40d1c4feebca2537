// The natlens input: the node namespace's state dumped with the commands an operator (or the EKS log collector) runs,
// plus the CNI settings the scenario represents (ipamd introspection shape) and an IMDS file.
import fs from 'node:fs'
import path from 'node:path'
import { inNs, type CommandRecord } from './kernel.js'

interface Dump {
  readonly file: string
  readonly command: string
  readonly args: readonly string[]
  /** Written only when the output holds something (iptables backends with no tables print nothing). */
  readonly onlyIfContent?: boolean
  readonly filter?: (text: string) => string
}

// The sysctls that change what the kernel does with a flow (forwarding, reverse-path filter, SNAT port range, conntrack size).
const SYSCTL_KEEP = /^(net\.ipv4\.ip_forward|net\.ipv4\.conf\.[^.]+\.rp_filter|net\.ipv4\.ip_local_port_range|net\.netfilter\.nf_conntrack_(max|count)|net\.nf_conntrack_max|net\.ipv6\.conf\.(all|default)\.forwarding|net\.ipv4\.conf\.[^.]+\.src_valid_mark)\s*=/

const DUMPS: readonly Dump[] = [
  { file: 'ip-rule.txt', command: 'ip', args: ['rule'] },
  { file: 'ip-6-rule.txt', command: 'ip', args: ['-6', 'rule'] },
  { file: 'ip-route-all.txt', command: 'ip', args: ['route', 'show', 'table', 'all'] },
  { file: 'ip-6-route-all.txt', command: 'ip', args: ['-6', 'route', 'show', 'table', 'all'] },
  { file: 'ip-d-addr.txt', command: 'ip', args: ['-d', 'addr'] },
  { file: 'ip-d-j-addr.json', command: 'ip', args: ['-d', '-j', 'addr'] },
  { file: 'ip-d-j-link.json', command: 'ip', args: ['-d', '-j', 'link'] },
  { file: 'ip-j-rule.json', command: 'ip', args: ['-j', 'rule'] },
  { file: 'ip-j-route-all.json', command: 'ip', args: ['-j', 'route', 'show', 'table', 'all'] },
  { file: 'iptables-legacy-save.txt', command: 'iptables-legacy-save', args: ['-c'], onlyIfContent: true },
  { file: 'iptables-nft-save.txt', command: 'iptables-nft-save', args: ['-c'], onlyIfContent: true },
  { file: 'ip6tables-legacy-save.txt', command: 'ip6tables-legacy-save', args: ['-c'], onlyIfContent: true },
  { file: 'ip6tables-nft-save.txt', command: 'ip6tables-nft-save', args: ['-c'], onlyIfContent: true },
  { file: 'nft-list-ruleset.txt', command: 'nft', args: ['list', 'ruleset'], onlyIfContent: true },
  { file: 'conntrack.txt', command: 'conntrack', args: ['-L'] },
  { file: 'conntrack6.txt', command: 'conntrack', args: ['-L', '-f', 'ipv6'] },
  { file: 'conntrack-S.txt', command: 'conntrack', args: ['-S'] },
  { file: 'sysctl.txt', command: 'sysctl', args: ['-a'], filter: (t) => t.split('\n').filter((l) => SYSCTL_KEEP.test(l)).join('\n') + '\n' },
]

export interface CniSettings {
  /** `/v1/networkutils-env-settings` (keys alphabetical, as Go's JSON encoder writes a map). */
  readonly networkutils: Record<string, unknown>
  /** A few `/v1/ipamd-env-settings` keys, when the scenario depends on them (IPv6, SGP, custom networking). */
  readonly ipamd?: Record<string, unknown>
  /** IMDS values, written as `key: value` lines. */
  readonly imds: Record<string, string>
}

/** Dumps the node namespace into `dir`; returns how each file was made. */
export async function writeBundle(nodeNs: string, dir: string, settings: CniSettings): Promise<CommandRecord[]> {
  fs.mkdirSync(dir, { recursive: true })
  const records: CommandRecord[] = []
  for (const d of DUMPS) {
    const r = await inNs(nodeNs, d.command, d.args, { check: false, timeoutMs: 10_000 })
    records.push({ command: `${d.command} ${d.args.join(' ')} > ${d.file}`, exitCode: r.exitCode, durationMs: r.durationMs, stderr: r.stderr.slice(0, 2000) })
    if (r.failed) continue
    const text = d.filter ? d.filter(r.stdout) : r.stdout
    if (d.onlyIfContent && !/\S/.test(text)) continue
    fs.writeFileSync(path.join(dir, d.file), text)
  }
  const sorted = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1)))
  fs.writeFileSync(path.join(dir, 'networkutils-env-settings.json'), JSON.stringify(sorted(settings.networkutils)) + '\n')
  if (settings.ipamd) fs.writeFileSync(path.join(dir, 'ipamd-env-settings.json'), JSON.stringify(sorted(settings.ipamd)) + '\n')
  fs.writeFileSync(path.join(dir, 'imds.txt'), Object.entries(settings.imds).map(([k, v]) => `${k}: ${v}`).join('\n') + '\n')
  return records
}
