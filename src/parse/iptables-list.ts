// `iptables -nvL` / `-nvxL` / `-nL` (and ip6tables) listings, including the EKS log collector's
// `iptables --wait 1 --numeric --verbose --list --table nat` files with their "Total Number of Rules" footer.
// The columns (pkts bytes target prot opt in out source destination) and the libxt extension text are read into
// the same Match and Target values as iptables-save.
import type { Family } from '../model/ip.js'
import type { SourceRef } from '../model/evidence.js'
import type { Counters, Match, Table, TableOrigin } from '../model/netfilter.js'
import type { ParseContext } from './context.js'
import { parseListExtension } from './iptables/list-text.js'
import { KNOWN_TABLES, TableBuilder, builtinHook, tableFromBuiltins } from './iptables/table-builder.js'
import { normalizeProtocol, parseCidrQuick as parseCidr, parseListCounter } from './iptables/values.js'

interface ListLine { no: number; text: string }

interface ChainBlock {
  name: string
  header: ListLine
  policy?: 'accept' | 'drop'
  counters?: Counters
  builtin: boolean
  columns?: Columns
  rules: ListLine[]
}

interface Columns { num: boolean; verbose: boolean }

interface Section { header?: string; chains: ChainBlock[]; footer?: { no: number; count: number } }

const CHAIN_RE = /^Chain (\S+) \((?:policy (\S+)(?: (\S+) packets, (\S+) bytes)?|(\d+) references)\)/

/** Parses `iptables [-t T] -nvL` style listings into tables (one per listing in the file). Never throws. */
export function parseIptablesList(text: string, ctx: ParseContext): Table[] {
  const sections: Section[] = []
  let sec: Section | undefined
  let chain: ChainBlock | undefined
  let origin: TableOrigin = 'iptables'
  let pendingHeader: string | undefined
  const lines = text.split('\n')
  for (let k = 0; k < lines.length; k++) {
    let line = lines[k]!
    if (line.endsWith('\r')) line = line.slice(0, -1)
    const no = k + 1
    if (line.trim().length === 0) continue
    if (line.startsWith('Chain ')) {
      const m = CHAIN_RE.exec(line)
      if (!m) { ctx.sink.warn('iptables.unknown-line', 'chain header natlens cannot read', no, line); chain = undefined; continue }
      const name = m[1]!
      if (!sec || sec.footer || sec.chains.some((c) => c.name === name) || pendingHeader !== undefined) {
        sec = { chains: [], ...(pendingHeader ? { header: pendingHeader } : {}) }
        pendingHeader = undefined
        sections.push(sec)
      }
      chain = { name, header: { no, text: line }, builtin: m[2] !== undefined, rules: [] }
      if (m[2] === 'ACCEPT') chain.policy = 'accept'
      else if (m[2] === 'DROP') chain.policy = 'drop'
      if (m[3] !== undefined && m[4] !== undefined) {
        const p = parseListCounter(m[3])
        const b = parseListCounter(m[4])
        if (p !== undefined && b !== undefined) chain.counters = { packets: p, bytes: b }
      }
      sec.chains.push(chain)
      continue
    }
    const trimmed = line.trimStart()
    if (/^(num\s+)?(pkts\s+bytes\s+)?target\s+prot\s+opt\b/.test(trimmed)) {
      if (chain) chain.columns = { num: trimmed.startsWith('num'), verbose: /\bpkts\b/.test(trimmed) }
      continue
    }
    if (line.startsWith('#')) {
      if (line.startsWith('# Warning: iptables-legacy tables present')) {
        origin = 'iptables-nft'
        ctx.sink.info('iptables.legacy-tables-present', 'iptables-nft reports that iptables-legacy tables exist too; they are not in this listing', no, line)
        continue
      }
      const t = /(?:^#\s*table:?\s+|\s(?:-t\s*|--table[=\s]+))([a-z]+)\b/i.exec(line)
      if (t && KNOWN_TABLES.has(t[1]!.toLowerCase())) pendingHeader = t[1]!.toLowerCase()
      continue
    }
    if (/^=+$/.test(line.trim())) continue
    const total = /^Total Number of Rules:\s*(\d+)/.exec(line)
    if (total) {
      if (sec) sec.footer = { no, count: Number(total[1]) }
      chain = undefined
      continue
    }
    if (!chain) { ctx.sink.warn('iptables.unknown-line', 'line outside any "Chain" block', no, line); continue }
    chain.rules.push({ no, text: line })
  }

  const tables: Table[] = []
  for (const s of sections) {
    const builtins = new Set(s.chains.filter((c) => c.builtin).map((c) => c.name))
    const inferred = tableFromBuiltins(builtins)
    let name = s.header ?? (sections.length === 1 ? ctx.table : undefined) ?? inferred ?? ctx.table ?? 'filter'
    // A partial listing (one chain) fits several tables: the given name stands unless a built-in chain rules it out.
    const fits = [...builtins].every((c) => builtinHook(name, c) !== undefined)
    if (inferred && name !== inferred && !fits) {
      ctx.sink.warn('iptables.table-mismatch', `listing was given as table ${name}, but its built-in chains are those of ${inferred}; read as ${inferred}`, s.chains[0]?.header.no)
      name = inferred
    }
    tables.push(buildSection(s, name, origin, ctx))
  }
  return tables
}

function buildSection(s: Section, name: string, origin: TableOrigin, ctx: ParseContext): Table {
  const first = s.chains[0]!.header
  const t = new TableBuilder(name, origin, ctx.family, { artifact: ctx.artifact, line: first.no, text: first.text })
  for (const c of s.chains) t.declare(c.name, { artifact: ctx.artifact, line: c.header.no, text: c.header.text }, c.policy, c.counters)
  let ruleCount = 0
  let warnedColumns = false
  for (const c of s.chains) {
    const chain = t.chains.get(c.name)!
    const columns = c.columns ?? { num: false, verbose: true }
    if (!columns.verbose && !warnedColumns) {
      warnedColumns = true
      ctx.sink.warn('iptables.list-without-interfaces', `table ${name} was listed without -v: interface matches (-i/-o) are not shown, so every rule carries an opaque interface condition`, c.header.no, c.header.text)
    }
    for (const l of c.rules) {
      ruleCount++
      const r: SourceRef = { artifact: ctx.artifact, line: l.no, text: l.text }
      const parsed = parseListRule(l.text, columns, r, ctx)
      if (!parsed) continue
      t.noteFamily(parsed.family)
      t.append(chain, parsed.draft, r)
    }
  }
  if (s.footer && s.footer.count !== ruleCount) {
    ctx.sink.warn('iptables.rule-count-mismatch', `footer says ${s.footer.count} rules, the listing has ${ruleCount}: the file may be cut short`, s.footer.no)
  }
  return t.finish(ctx.sink, ctx.family ?? 4)
}

const OPT_WORDS = new Set(['--', '-f', '!f', '-?', '!?'])

interface Word { t: string; start: number; end: number }

function words(text: string, limit: number): Word[] {
  const out: Word[] = []
  let i = 0
  while (i < text.length && out.length < limit) {
    while (i < text.length && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++
    if (i >= text.length) break
    const start = i
    while (i < text.length && text.charCodeAt(i) !== 32 && text.charCodeAt(i) !== 9) i++
    out.push({ t: text.slice(start, i), start, end: i })
  }
  return out
}

function addressLike(w: string | undefined): boolean {
  if (w === undefined) return false
  const v = w.startsWith('!') ? w.slice(1) : w
  return v === 'anywhere' || parseCidr(v) !== undefined
}

/** One rule line: counters, target, protocol, fragment, interfaces, addresses, then the extension text. */
function parseListRule(text: string, columns: Columns, r: SourceRef, ctx: ParseContext): { draft: { matches: Match[]; target: import('../model/netfilter.js').Target; counters?: Counters; comment?: string; ref: SourceRef }; family?: Family } | undefined {
  const ws = words(text, 12)
  let k = 0
  if (columns.num) k++
  let counters: Counters | undefined
  if (columns.verbose) {
    const p = ws[k] ? parseListCounter(ws[k]!.t) : undefined
    const b = ws[k + 1] ? parseListCounter(ws[k + 1]!.t) : undefined
    if (p === undefined || b === undefined) { ctx.sink.warn('iptables.unknown-line', 'rule line without packet and byte counters', r.line, text); return undefined }
    counters = { packets: p, bytes: b }
    k += 2
  }
  // Find source and destination: the first two address-like words after the target/prot/opt (and in/out) columns.
  const ifaceCols = columns.verbose ? 2 : 0
  let src = -1
  for (let j = k + 1 + ifaceCols; j + 1 < ws.length && j <= k + 3 + ifaceCols; j++) {
    if (addressLike(ws[j]!.t) && addressLike(ws[j + 1]!.t)) { src = j; break }
  }
  if (src < 0) { ctx.sink.warn('iptables.unknown-line', 'rule line whose source and destination columns natlens cannot find', r.line, text); return undefined }
  const pre = ws.slice(k, src - ifaceCols).map((w) => w.t)
  let targetName = ''
  let prot: string
  let opt = '--'
  if (pre.length === 3) [targetName, prot, opt] = pre as [string, string, string]
  else if (pre.length === 2) {
    if (OPT_WORDS.has(pre[1]!)) [prot, opt] = pre as [string, string]
    else [targetName, prot] = pre as [string, string]
  } else prot = pre[0]!

  const matches: Match[] = []
  let family: Family | undefined
  const addr = (kind: 'src' | 'dst', w: string): void => {
    const neg = w.startsWith('!')
    const v = neg ? w.slice(1) : w
    if (v === 'anywhere') return
    const cidr = parseCidr(v)!
    if (family === undefined) family = cidr.family
    if (cidr.prefix === 0 && !neg) return
    matches.push({ kind, negated: neg, cidr })
  }
  if (columns.verbose) {
    for (const [kind, w] of [['in-iface', ws[src - 2]!.t], ['out-iface', ws[src - 1]!.t]] as const) {
      if (w === '*') continue
      const neg = w.startsWith('!')
      const v = neg ? w.slice(1) : w
      const wildcard = v.endsWith('+')
      matches.push({ kind, negated: neg, name: wildcard ? v.slice(0, -1) : v, wildcard })
    }
  } else {
    matches.push({ kind: 'opaque', negated: false, module: 'interfaces', text: 'iptables -L without -v does not show -i/-o' })
  }
  addr('src', ws[src]!.t)
  addr('dst', ws[src + 1]!.t)
  {
    const neg = prot.startsWith('!')
    const p = normalizeProtocol(neg ? prot.slice(1) : prot)
    if (p !== 'all' || neg) matches.push({ kind: 'protocol', negated: neg, protocol: p })
    if (p === 'ipv6-icmp') family = family ?? 6
  }
  if (opt === '-f' || opt === '!f') matches.push({ kind: 'fragment', negated: opt === '!f' })

  const extText = text.slice(ws[src + 1]!.end)
  const ext = parseListExtension(extText, targetName, { sink: ctx.sink, line: r.line, text, family: ctx.family })
  matches.push(...ext.matches)
  if (family === undefined && ext.family !== undefined) family = ext.family
  const draft: { matches: Match[]; target: import('../model/netfilter.js').Target; counters?: Counters; comment?: string; ref: SourceRef } = { matches, target: ext.target, ref: r }
  if (counters) draft.counters = counters
  if (ext.comment !== undefined) draft.comment = ext.comment
  return { draft, ...(family !== undefined ? { family } : {}) }
}
