// Every kind of source natlens reads: how to recognise it by content, which parser reads it, and which slot of
// the node state it fills (two files filling the same slot are a duplicate the loader resolves).
import type { Diagnostic, DiagnosticSink } from '../model/evidence.js'
import type { NodeFacts, Setting, SourceKind } from '../model/node-state.js'
import type { Table } from '../model/netfilter.js'
import type { ParseContext } from '../parse/context.js'
import { formatIp, type Family } from '../model/ip.js'
import { looksLikeIpRule, parseIpRules } from '../parse/ip-rule.js'
import { looksLikeIpRoute, parseIpRoutes } from '../parse/ip-route.js'
import { looksLikeIpAddr, looksLikeIpLink, mergeInterfaces, parseIpAddr } from '../parse/ip-addr.js'
import { looksLikeIptablesList, looksLikeIptablesRules, looksLikeIptablesSave, parseIptablesList, parseIptablesRules, parseIptablesSave } from '../parse/iptables.js'
import { looksLikeNft, parseNftRuleset } from '../parse/nft.js'
import { looksLikeConntrack, looksLikeConntrackStats, parseConntrack, parseConntrackStats } from '../parse/conntrack.js'
import { looksLikeSysctl, parseSysctl } from '../parse/sysctl.js'
import { parseAwsNodeEnv, parseConflist, parseEnvSettings, parseImds, parseIpamdEnis, sniffCniJson } from '../parse/cni.js'
import type { Artifact } from './read.js'

export interface Contribution {
  /** e.g. `netfilter/4/nat/iptables-legacy`, `rules/4`, `routes/4/main`, `interfaces` */
  readonly slot: string
  /** Among files filling the same slot, the higher rank wins (iptables-save over -S over -nvL). */
  readonly rank?: number
  /** Slots that merge every contribution (interfaces, settings, conntrack) instead of choosing one. */
  readonly merge?: boolean
  /** Equal fingerprints mean the same content: no duplicate warning. Computed only when two files meet. */
  readonly fingerprint?: string | (() => string)
  /** Another rendering of what a higher-ranked source shows (nft's view of iptables-nft tables): never a conflict. */
  readonly sameSourceAs?: string
  apply(facts: NodeFacts, diagnostics: Diagnostic[]): void
}

export interface Identification {
  readonly kind?: SourceKind
  readonly rendering?: 'json' | 'text'
  readonly reason?: string
}

const PCAP_MAGICS = new Set([0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1, 0x0a0d0d0a])

function textOf(a: Artifact): string {
  return a.bytes.toString('utf8')
}

export function identify(artifact: Artifact): Identification {
  const b = artifact.bytes
  if (b.length === 0) return { reason: 'empty file' }
  if (b.length >= 4 && PCAP_MAGICS.has(b.readUInt32BE(0))) return { kind: 'capture' }
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) {
    return /\.(pcap|pcapng|cap)\.gz$/i.test(artifact.name) ? { kind: 'capture' } : { reason: 'gzip data that could not be expanded' }
  }
  const head = b.subarray(0, 4096)
  if (head.includes(0)) return { reason: 'binary file of an unknown kind (not a pcap or pcapng capture)' }
  const text = textOf(artifact)
  const trimmed = text.trimStart()
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    if (/"natlensVersion"\s*:/.test(text.slice(0, 2000)) && /"commands"\s*:/.test(text)) return { kind: 'manifest', rendering: 'json' }
    if (/^\{\s*"nftables"\s*:/.test(trimmed)) return { kind: 'nft-ruleset', rendering: 'json' }
    const cni = sniffCniJson(text)
    if (cni) return { kind: cni, rendering: 'json' }
    if (looksLikeIpRule(text)) return { kind: 'ip-rule', rendering: 'json' }
    if (looksLikeIpRoute(text)) return { kind: 'ip-route', rendering: 'json' }
    if (looksLikeIpAddr(text)) return { kind: 'ip-addr', rendering: 'json' }
    if (looksLikeIpLink(text)) return { kind: 'ip-link', rendering: 'json' }
    return { reason: 'JSON of an unknown shape (not ip -j, nft -j, ipamd introspection, a CNI config or a natlens manifest)' }
  }
  if (looksLikeIptablesSave(text)) return { kind: 'iptables-save', rendering: 'text' }
  if (looksLikeIptablesRules(text)) return { kind: 'iptables-rules', rendering: 'text' }
  if (looksLikeIptablesList(text)) return { kind: 'iptables-list', rendering: 'text' }
  if (looksLikeNft(text)) return { kind: 'nft-ruleset', rendering: 'text' }
  if (looksLikeIpRule(text)) return { kind: 'ip-rule', rendering: 'text' }
  if (looksLikeIpRoute(text)) return { kind: 'ip-route', rendering: 'text' }
  if (looksLikeIpAddr(text)) return { kind: 'ip-addr', rendering: 'text' }
  if (looksLikeIpLink(text)) return { kind: 'ip-link', rendering: 'text' }
  if (looksLikeConntrack(text)) return { kind: 'conntrack', rendering: 'text' }
  if (looksLikeConntrackStats(text)) return { kind: 'conntrack-stats', rendering: 'text' }
  const cni = sniffCniJson(text)
  if (cni) return { kind: cni, rendering: 'text' }
  if (looksLikeSysctl(text)) return { kind: 'sysctl', rendering: 'text' }
  return { reason: 'text that matches no known source (ip rule/route/addr/link, iptables-save/-S/-nvL, nft, conntrack, sysctl, VPC CNI files)' }
}

/** `ip -6 rule`, `ip6tables-save`: the file name is only a hint for the family when the content does not say. */
function familyHint(name: string): Family | undefined {
  const base = name.split(/[/:]/).pop() ?? name
  return /(^|[^a-z])(ip6|ip-6|ipv6|6rule|6route)|ip6tables|conntrack6/i.test(base) ? 6 : undefined
}

function tableHint(name: string): string | undefined {
  const base = (name.split(/[/:]/).pop() ?? name).toLowerCase()
  for (const t of ['nat', 'mangle', 'filter', 'raw', 'security']) if (new RegExp(`(^|[^a-z])${t}([^a-z]|$)`).test(base)) return t
  return undefined
}

function ctx(artifact: Artifact, sink: DiagnosticSink, hints: { family?: Family; table?: string } = {}): ParseContext {
  return { artifact: artifact.name, sink, ...hints }
}

function settingsContribution(slot: string, settings: Setting[], into: (f: NodeFacts) => Map<string, Setting>, rank: number): Contribution {
  return {
    slot, merge: true, rank,
    apply(facts, diagnostics) {
      const map = into(facts)
      for (const s of settings) {
        const have = map.get(s.name)
        if (have && have.value !== s.value) {
          diagnostics.push({ severity: 'warning', code: 'settings.disagree', artifact: s.ref.artifact, line: s.ref.line, message: `${s.name}=${s.value} here, but ${have.value} in ${have.ref.artifact}; natlens uses ${have.value}` })
          continue
        }
        if (!have) map.set(s.name, s)
      }
    },
  }
}

/** iptables-nft's own tables also show in `nft list ruleset`. */
export function isIptablesNftView(t: Table): boolean {
  return t.origin === 'nft' && ['filter', 'nat', 'mangle', 'raw', 'security'].includes(t.name) && (t.family === 'ip' || t.family === 'ip6')
}

/**
 * The slot a table fills. iptables tables of the same family and name are one source (two different nat tables in
 * a folder are variants to choose from); `nft list ruleset`'s view of iptables-nft's tables fills that same slot at
 * a lower rank, so the rules are not run twice. The backend becomes part of the slot when `separateBackends` is set
 * (a natlens bundle records iptables-legacy-save and iptables-nft-save separately: both run in the kernel).
 */
function tableSlot(t: Table, separateBackends: boolean): string {
  const fam = t.family === 'ip6' ? 6 : t.family === 'ip' ? 4 : t.family
  if (t.origin === 'nft' && !isIptablesNftView(t)) return `netfilter/${fam}/${t.name}/nft-native`
  const backend = t.origin === 'nft' ? 'iptables-nft' : t.origin
  return separateBackends && backend !== 'iptables' ? `netfilter/${fam}/${t.name}/${backend}` : `netfilter/${fam}/${t.name}/iptables`
}

function tableFingerprint(t: Table): string {
  return [...t.chains.values()].map((c) => `${c.name}:${c.policy ?? ''}:${c.rules.map((r) => JSON.stringify([r.matches, r.target], (_k, v) => (typeof v === 'bigint' ? v.toString() : v))).join('|')}`).join('\n')
}

function tablesContributions(tables: Table[], rank: number, separateBackends: boolean): Contribution[] {
  return tables.map((t) => ({
    slot: tableSlot(t, separateBackends), rank: isIptablesNftView(t) ? rank - 10 : rank, fingerprint: () => tableFingerprint(t),
    ...(isIptablesNftView(t) ? { sameSourceAs: 'iptables-nft' } : {}),
    apply(facts: NodeFacts) { facts.tables.push(t) },
  }))
}

/**
 * What a rule or route says, without where it was read: `ip rule` and `ip -j rule` (natlens collect writes both)
 * parse to the same facts from different text, and must count as the same source, not as two that differ.
 */
function parsedFingerprint(fact: object): string {
  return JSON.stringify(fact, (k, v) => (k === 'ref' ? undefined : typeof v === 'bigint' ? v.toString() : v))
}

export interface ParsedArtifact {
  readonly contributions: Contribution[]
  readonly manifest?: Record<string, unknown>
  /** Set when the file parsed but does not describe the node (e.g. `ip route` run inside a pod). */
  readonly ignored?: string
}

/** The CNI's pod-side gateways: a listing that routes through them was taken inside a pod, not on the node. */
const POD_GATEWAYS = new Set(['169.254.1.1', '169.254.172.1'])
const POD_IFACES = /^(v4if0|v6if0)$/

export function parseArtifact(kind: SourceKind, artifact: Artifact, sink: DiagnosticSink, separateBackends = false): ParsedArtifact {
  const text = textOf(artifact)
  const fam = familyHint(artifact.name)
  const hints = { ...(fam ? { family: fam } : {}) }
  switch (kind) {
    case 'ip-rule': {
      const rules = parseIpRules(text, ctx(artifact, sink, hints))
      const families = new Set(rules.map((r) => r.family))
      if (families.size === 0) families.add(fam ?? 4)
      return {
        contributions: [...families].map((f) => ({
          slot: `rules/${f}`, fingerprint: () => rules.filter((r) => r.family === f).map(parsedFingerprint).join('\n'),
          apply(facts: NodeFacts) { facts.routingRules.push(...rules.filter((r) => r.family === f)) },
        })),
      }
    }
    case 'ip-route': {
      const routes = parseIpRoutes(text, ctx(artifact, sink, hints))
      const podGw = routes.find((r) => (r.via && POD_GATEWAYS.has(formatIp(r.via))) || (r.dev && POD_IFACES.test(r.dev)))
      if (podGw) return { contributions: [], ignored: `describes a pod's network namespace (${podGw.ref.text.trim()}), not the node` }
      const slots = new Map<string, typeof routes>()
      for (const r of routes) {
        const k = `routes/${r.family}/${r.table}`
        let l = slots.get(k)
        if (!l) slots.set(k, (l = []))
        l.push(r)
      }
      const tablesHere = new Set(routes.map((r) => r.table)).size
      return {
        contributions: [...slots].map(([slot, list]) => ({
          // A dump of every table outranks a one-table listing of the same table.
          slot, rank: tablesHere, fingerprint: () => list.map(parsedFingerprint).sort().join('\n'),
          apply(facts: NodeFacts) { facts.routes.push(...list) },
        })),
      }
    }
    case 'ip-addr':
    case 'ip-link': {
      const ifaces = parseIpAddr(text, ctx(artifact, sink, hints))
      const podIf = ifaces.find((i) => POD_IFACES.test(i.name))
      if (podIf) return { contributions: [], ignored: `describes a pod's network namespace (interface ${podIf.name}), not the node` }
      return { contributions: [{ slot: 'interfaces', merge: true, apply(facts) { facts.interfaces = mergeInterfaces(facts.interfaces, ifaces) } }] }
    }
    case 'iptables-save':
      return { contributions: tablesContributions(parseIptablesSave(text, ctx(artifact, sink, hints)), 30, separateBackends) }
    case 'iptables-rules': {
      const table = tableHint(artifact.name)
      return { contributions: tablesContributions(parseIptablesRules(text, ctx(artifact, sink, { ...hints, ...(table ? { table } : {}) })), 20, separateBackends) }
    }
    case 'iptables-list': {
      const table = tableHint(artifact.name)
      return { contributions: tablesContributions(parseIptablesList(text, ctx(artifact, sink, { ...hints, ...(table ? { table } : {}) })), 10, separateBackends) }
    }
    case 'nft-ruleset':
      return { contributions: tablesContributions(parseNftRuleset(text, ctx(artifact, sink, hints)), 25, separateBackends) }
    case 'conntrack': {
      const c = ctx(artifact, sink, hints)
      const entries = parseConntrack(text, c)
      const stats = looksLikeConntrackStats(text) ? parseConntrackStats(text, c) : []
      return { contributions: [{ slot: `conntrack/${artifact.name}`, merge: true, apply(facts) { facts.conntrack.push(...entries); facts.conntrackStats.push(...stats) } }] }
    }
    case 'conntrack-stats': {
      const stats = parseConntrackStats(text, ctx(artifact, sink, hints))
      return { contributions: [{ slot: 'conntrack-stats', merge: true, apply(facts) { facts.conntrackStats.push(...stats) } }] }
    }
    case 'sysctl':
      return { contributions: [settingsContribution('sysctls', parseSysctl(text, ctx(artifact, sink)), (f) => f.sysctls, 0)] }
    case 'networkutils-env':
    case 'ipamd-env':
      return { contributions: [settingsContribution('settings', parseEnvSettings(text, ctx(artifact, sink)), (f) => f.settings, 3)] }
    case 'aws-node-env':
      return { contributions: [settingsContribution('settings', parseAwsNodeEnv(text, ctx(artifact, sink)), (f) => f.settings, 2)] }
    case 'cni-conflist':
      return { contributions: [settingsContribution('settings', parseConflist(text, ctx(artifact, sink)), (f) => f.settings, 1)] }
    case 'imds':
      return { contributions: [settingsContribution('imds', parseImds(text, ctx(artifact, sink)), (f) => f.imds, 0)] }
    case 'ipamd-enis': {
      const enis = parseIpamdEnis(text, ctx(artifact, sink))
      return { contributions: [{ slot: 'ipamd-enis', apply(facts) { facts.ipamdEnis.push(...enis) } }] }
    }
    case 'manifest': {
      try {
        return { contributions: [], manifest: JSON.parse(text) as Record<string, unknown> }
      } catch (e) {
        sink.error('manifest.bad-json', `manifest.json is not valid JSON: ${(e as Error).message}`)
        return { contributions: [] }
      }
    }
    case 'ipamd-eni-configs':
    case 'ipam-checkpoint':
    case 'capture':
      return { contributions: [] }
  }
}
