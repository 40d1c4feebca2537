// Node states for the doctor and intent tests: the example node of ../shared/examples (default-ipv4) as text, changed
// line by line into the broken states the checks look for, and read through the loader as a bundle would be.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { buildState, type LoadedNode } from '../../src/sources/load.js'
import { EXAMPLES } from '../helpers.js'

export type Files = Record<string, string>

const read = (node: string, file: string) => readFileSync(join(EXAMPLES, node, file), 'utf8')

/** The default-ipv4 example node: two ENIs, four pods, v1.16.1+ single chain, EXTERNALSNAT=false. */
export function exampleFiles(): Files {
  const files: Files = {}
  for (const f of ['ip-rule.txt', 'ip-route-all.txt', 'iptables-save-mangle.txt', 'iptables-save-nat.txt', 'networkutils-env-settings.json']) files[f] = read('default-ipv4', f)
  return files
}

export function stateOf(files: Files): LoadedNode {
  return buildState(Object.entries(files).map(([name, text]) => ({ name, bytes: Buffer.from(text) })), [])
}

/** Replaces one line (found by its start) in a file; throws when it is not there, so a fixture cannot rot silently. */
export function replaceLine(text: string, startsWith: string, by: string | null): string {
  const lines = text.split('\n')
  const i = lines.findIndex((l) => l.startsWith(startsWith))
  if (i < 0) throw new Error(`no line starts with ${startsWith}`)
  if (by === null) lines.splice(i, 1)
  else lines[i] = by
  return lines.join('\n')
}

/** Inserts a line after the first line that starts with `after`. */
export function insertAfter(text: string, after: string, line: string): string {
  const lines = text.split('\n')
  const i = lines.findIndex((l) => l.startsWith(after))
  if (i < 0) throw new Error(`no line starts with ${after}`)
  lines.splice(i + 1, 0, line)
  return lines.join('\n')
}

/** networkutils-env-settings.json with some keys changed. */
export function withSettings(files: Files, change: Record<string, unknown>): Files {
  const doc = JSON.parse(files['networkutils-env-settings.json']!) as Record<string, unknown>
  return { ...files, 'networkutils-env-settings.json': JSON.stringify({ ...doc, ...change }) }
}

export function change(files: Files, file: string, edit: (text: string) => string): Files {
  return { ...files, [file]: edit(files[file]!) }
}

/** IMDS as `path: value` lines, the real path below meta-data/. */
export function imds(cidrs: readonly string[], localIpv4 = '10.0.3.45', mac = '02:5a:1c:3e:44:10'): string {
  return `local-ipv4: ${localIpv4}\nmac: ${mac}\nnetwork/interfaces/macs/${mac}/vpc-ipv4-cidr-blocks: ${cidrs.join('\n')}\n`
}

/** ipamd's /v1/enis (v1.20+ shape): eth1 (device 1, table 2) holds the given pod addresses. */
export function ipamdEnis(eth1Pods: readonly string[]): string {
  const addresses = Object.fromEntries(eth1Pods.map((ip) => [ip, { Address: ip, IPAMKey: { networkName: '', containerID: '', ifName: '' }, IPAMMetadata: { k8sPodNamespace: 'default', k8sPodName: `pod-${ip}` } }]))
  return JSON.stringify({
    0: {
      TotalIPs: 20, AssignedIPs: eth1Pods.length + 2,
      ENIs: {
        'eni-0aaaaaaaaaaaaaaa0': { ID: 'eni-0aaaaaaaaaaaaaaa0', IsPrimary: true, IsTrunk: false, IsEFA: false, DeviceNumber: 0, AvailableIPv4Cidrs: { '10.0.7.201/32': { Cidr: { IP: '10.0.7.201', Mask: '/////w==' }, IPAddresses: { '10.0.7.201': { Address: '10.0.7.201', IPAMMetadata: { k8sPodNamespace: 'default', k8sPodName: 'web' } } }, IsPrefix: false } }, RouteTableID: 254 },
        'eni-0bbbbbbbbbbbbbbb1': { ID: 'eni-0bbbbbbbbbbbbbbb1', IsPrimary: false, IsTrunk: false, IsEFA: false, DeviceNumber: 1, AvailableIPv4Cidrs: Object.fromEntries(eth1Pods.map((ip) => [`${ip}/32`, { Cidr: { IP: ip, Mask: '/////w==' }, IPAddresses: { [ip]: addresses[ip] }, IsPrefix: false }])), RouteTableID: 2 },
      },
    },
  })
}
