// Reads a bundle in any form (natlens directory or .tar.gz, the EKS log collector's tarball, loose files) into
// NodeState. Files are recognised by their content, never by their name. When two files give the same source (two
// different nat tables), one is used, the other is listed with the reason, and `--file` chooses.
import { DiagnosticSink, type Diagnostic } from '../model/evidence.js'
import { emptyFacts, type ArtifactInfo, type NodeFacts, type NodeState, type SourceKind } from '../model/node-state.js'
import type { Table } from '../model/netfilter.js'
import type { RouteTable } from '../model/routing.js'
import { derive } from '../model/derive.js'
import { NatlensError } from '../errors.js'
import { readInputs, type Artifact, type ReadLimits } from './read.js'
import { identify, type Contribution, parseArtifact } from './formats.js'

export interface LoadOptions {
  /** `--file NAME`: artifacts to prefer when two give the same source (matched against the end of the name). */
  readonly prefer?: readonly string[]
  readonly limits?: ReadLimits
}

/** A capture found in the bundle (natlens `collect --capture`, or a pcap given beside the state). */
export interface CaptureRef {
  readonly artifact: string
  readonly path?: string
  readonly bytes: Buffer
}

export interface LoadedNode extends NodeState {
  readonly captures: CaptureRef[]
  readonly manifest?: Record<string, unknown>
}

export async function loadNodeState(inputs: readonly string[], options: LoadOptions = {}): Promise<LoadedNode> {
  if (inputs.length === 0) throw new NatlensError('no input given', 'input.none', 2, 'name a bundle directory, a .tar.gz, or the files to read, e.g. `natlens inspect fixtures/example-node`')
  const read = await readInputs(inputs, options.limits)
  if (read.artifacts.length === 0) {
    const why = read.diagnostics.map((d) => `${d.artifact}: ${d.message}`).join('; ')
    throw new NatlensError(`nothing could be read${why ? `: ${why}` : ''}`, 'input.unreadable', 2)
  }
  return buildState(read.artifacts, read.diagnostics, options)
}

/** Builds the state from artifacts already in memory (tests, the collector). */
export function buildState(artifacts: readonly Artifact[], readDiagnostics: readonly Diagnostic[], options: LoadOptions = {}): LoadedNode {
  const facts: NodeFacts = emptyFacts()
  const diagnostics: Diagnostic[] = [...readDiagnostics]
  const infos = new Map<string, { info: ArtifactInfo }>()
  const present = new Set<SourceKind>()
  const captures: CaptureRef[] = []
  let manifest: Record<string, unknown> | undefined

  // 1. Identify and parse each artifact into contributions, each filling a slot.
  const separateBackends = artifacts.some((a) => identify(a).kind === 'manifest')
  const later = laterStatePrefixes(artifacts)
  const bySlot = new Map<string, { artifact: Artifact; kind: SourceKind; contribution: Contribution; rank: number }[]>()
  for (const artifact of artifacts) {
    const setAside = later.find((p) => artifact.name.startsWith(p))
    if (setAside) {
      infos.set(artifact.name, { info: { artifact: artifact.name, used: false, reason: `the state taken again after the capture (manifest.json "after"): set aside, not counted twice; give the ${setAside.slice(setAside.search(/[^/:]+\/$/))} folder on its own to read it`, bytes: artifact.bytes.length } })
      continue
    }
    const id = identify(artifact)
    if (!id.kind) {
      infos.set(artifact.name, { info: { artifact: artifact.name, used: false, reason: id.reason ?? 'not recognised as any node-state source', bytes: artifact.bytes.length } })
      continue
    }
    if (id.kind === 'capture') {
      captures.push({ artifact: artifact.name, bytes: artifact.bytes, ...(artifact.path ? { path: artifact.path } : {}) })
      present.add('capture')
      infos.set(artifact.name, { info: { artifact: artifact.name, kind: 'capture', used: true, bytes: artifact.bytes.length } })
      continue
    }
    const sink = new DiagnosticSink(artifact.name)
    const parsed = parseArtifact(id.kind, artifact, sink, separateBackends)
    diagnostics.push(...sink.items)
    if (id.kind === 'manifest' && parsed.manifest) manifest = parsed.manifest
    infos.set(artifact.name, { info: { artifact: artifact.name, kind: id.kind, ...(id.rendering ? { rendering: id.rendering } : {}), used: !parsed.ignored, ...(parsed.ignored ? { reason: parsed.ignored } : {}), bytes: artifact.bytes.length } })
    for (const c of parsed.contributions) {
      let list = bySlot.get(c.slot)
      if (!list) bySlot.set(c.slot, (list = []))
      list.push({ artifact, kind: id.kind, contribution: c, rank: c.rank ?? 0 })
    }
  }

  // iptables dumps whose backend is not stated join the slot of the one backend the bundle states for that table.
  resolveUnknownBackends(bySlot)

  // 2. One contribution per slot; merging slots (interfaces, settings, conntrack) take all.
  const prefer = options.prefer ?? []
  const preferred = (name: string) => prefer.some((p) => name === p || name.endsWith(`/${p}`) || name.endsWith(p))
  const usedNames = new Set<string>()
  const lostNames = new Map<string, string>()
  for (const [slot, list] of bySlot) {
    const merging = list[0]!.contribution.merge === true
    let chosen = list
    const oneArtifact = new Set(list.map((x) => x.artifact.name)).size === 1
    if (!merging && list.length > 1 && !oneArtifact) {
      const fp = (c: Contribution) => (typeof c.fingerprint === 'function' ? c.fingerprint() : c.fingerprint)
      const distinct = new Set(list.filter((x) => !x.contribution.sameSourceAs).map((x) => fp(x.contribution) ?? x.artifact.name))
      const sorted = [...list].sort((a, b) =>
        Number(preferred(b.artifact.name)) - Number(preferred(a.artifact.name)) || b.rank - a.rank ||
        a.artifact.name.length - b.artifact.name.length || a.artifact.name.localeCompare(b.artifact.name))
      chosen = [sorted[0]!]
      if (distinct.size > 1) {
        const others = sorted.slice(1).map((x) => x.artifact.name)
        diagnostics.push({
          severity: 'warning', code: 'bundle.duplicate-source', artifact: sorted[0]!.artifact.name,
          message: `${describeSlot(slot)} is given by ${sorted.length} files that differ; used ${sorted[0]!.artifact.name}, not ${others.join(', ')} (choose with --file)`,
        })
        for (const o of others) lostNames.set(o, `${describeSlot(slot)}: ${sorted[0]!.artifact.name} was used instead (choose with --file)`)
      } else {
        for (const x of sorted.slice(1)) lostNames.set(x.artifact.name, x.contribution.sameSourceAs
          ? `${describeSlot(slot)}: iptables-nft's own table, read from ${sorted[0]!.artifact.name} instead`
          : `${describeSlot(slot)}: same content as ${sorted[0]!.artifact.name}`)
      }
    }
    for (const c of chosen) {
      c.contribution.apply(facts, diagnostics)
      present.add(c.kind)
      usedNames.add(c.artifact.name)
    }
  }
  for (const [name, reason] of lostNames) {
    if (usedNames.has(name)) continue
    const entry = infos.get(name)
    if (entry) entry.info = { ...entry.info, used: false, reason }
  }

  // 3. Order: rules by priority (stable), route tables by name.
  facts.routingRules.sort((a, b) => a.family - b.family || a.priority - b.priority)
  const routeTables = new Map<string, RouteTable>()
  for (const r of facts.routes) {
    const key = r.family === 6 ? `${r.table} (IPv6)` : r.table
    let t = routeTables.get(key)
    if (!t) routeTables.set(key, (t = { name: key, routes: [] }))
    t.routes.push(r)
  }
  const derived = derive(facts)
  return {
    ...facts, artifacts: [...infos.values()].map((x) => x.info), present, diagnostics, derived, routeTables, captures,
    ...(manifest ? { manifest } : {}),
  }
}

/**
 * `natlens collect --capture` takes the state twice, before and after the capture, and keeps the second copy in
 * the folder its manifest names (`"after": {"dir": "after/"}`). Read together, the two copies would double every
 * rule, route and conntrack entry, so the folder is set aside here: the state before the capture is the bundle's
 * state, and the later one can be read on its own. Returns the name prefixes to set aside (inside a tarball too).
 */
function laterStatePrefixes(artifacts: readonly Artifact[]): string[] {
  const out: string[] = []
  for (const a of artifacts) {
    if (!/(^|[/:])manifest\.json$/.test(a.name) || identify(a).kind !== 'manifest') continue
    let dir: unknown
    try { dir = (JSON.parse(a.bytes.toString('utf8')) as { after?: { dir?: unknown } }).after?.dir } catch { continue }
    if (typeof dir !== 'string' || !/^[A-Za-z0-9_.-]+\/$/.test(dir)) continue
    out.push(`${a.name.slice(0, a.name.length - 'manifest.json'.length)}${dir}`)
  }
  return out
}

function resolveUnknownBackends(bySlot: Map<string, { contribution: Contribution }[]>): void {
  for (const [slot, list] of [...bySlot]) {
    const m = /^netfilter\/(\d)\/([^/]+)\/iptables$/.exec(slot)
    if (!m) continue
    const explicit = [...bySlot.keys()].filter((k) => k.startsWith(`netfilter/${m[1]}/${m[2]}/`) && k !== slot && !k.endsWith('/nft-native'))
    if (explicit.length !== 1) continue
    bySlot.get(explicit[0]!)!.push(...(list as never[]))
    bySlot.delete(slot)
  }
}

function describeSlot(slot: string): string {
  const parts = slot.split('/')
  const fam = (f?: string) => (f === '6' ? 'IPv6' : 'IPv4')
  switch (parts[0]) {
    case 'netfilter': return `the ${parts[2]} table (${fam(parts[1])}${parts[3] && parts[3] !== 'iptables' ? `, ${parts[3]}` : ''})`
    case 'rules': return `ip rule (${fam(parts[1])})`
    case 'routes': return `route table ${parts[2]} (${fam(parts[1])})`
    default: return slot
  }
}

export type { Table }
