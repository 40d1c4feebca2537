// `nft list ruleset` / `nft list table …` (block syntax) and nft transaction input (`add table|chain|set|map|rule|element …`,
// what kube-proxy feeds `nft -f -`) into Tables. Both are read by one token-level parser: a block `table ip x { … }` and
// a command `add rule ip x chain …` end up in the same table builder.
import type { SourceRef } from '../../model/evidence.js'
import { NFT_NAMED_PRIORITY, type Chain, type Hook, type NftSet, type Rule, type Table, type TableFamily } from '../../model/netfilter.js'
import type { ParseContext } from '../context.js'
import { parseRuleStatements, readBraces, Cursor, type SetElement } from './rule.js'
import { joinTokens, NEWLINE, tokenize, type Token } from './tokens.js'

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

const FAMILIES: ReadonlySet<string> = new Set(['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev'])
const HOOKS: ReadonlySet<string> = new Set(['prerouting', 'input', 'forward', 'output', 'postrouting'])
/** Table-level objects natlens does not model; their blocks are skipped with a note. */
const OTHER_OBJECTS: ReadonlySet<string> = new Set(['flowtable', 'counter', 'quota', 'limit', 'secmark', 'synproxy', 'ct'])

interface ChainDraft extends Mutable<Omit<Chain, 'rules'>> { rules: Rule[] }
interface SetDraft extends Mutable<Omit<NftSet, 'elements'>> { elements: { key: readonly string[]; value?: string; ref: SourceRef }[] }
interface TableDraft { name: string; family: TableFamily; chains: Map<string, ChainDraft>; sets: Map<string, SetDraft>; ref: SourceRef; iptablesNft: boolean }

/** Builds tables from nft text; also used by the JSON reader, which renders JSON expressions as nft text first. */
export class TableBuilder {
  readonly tables = new Map<string, TableDraft>()
  constructor(readonly ctx: ParseContext, readonly sourceLines: readonly string[]) {}

  refAt(line: number, fallback?: string): SourceRef {
    const text = line > 0 ? (this.sourceLines[line - 1] ?? '').trim() : ''
    return { artifact: this.ctx.artifact, line, text: text !== '' ? text : fallback ?? '' }
  }

  table(family: TableFamily, name: string, ref: SourceRef): TableDraft {
    const key = `${family} ${name}`
    let t = this.tables.get(key)
    if (!t) {
      t = { name, family, chains: new Map(), sets: new Map(), ref, iptablesNft: false }
      this.tables.set(key, t)
    }
    return t
  }

  findTable(family: TableFamily, name: string, ref: SourceRef): TableDraft {
    const t = this.tables.get(`${family} ${name}`)
    if (t) return t
    this.ctx.sink.warn('nft.missing-object', `table ${family} ${name} is used before it is added`, ref.line, ref.text)
    return this.table(family, name, ref)
  }

  chain(table: TableDraft, name: string, ref: SourceRef): ChainDraft {
    let c = table.chains.get(name)
    if (!c) {
      c = { name, rules: [], ref }
      table.chains.set(name, c)
    }
    return c
  }

  set(table: TableDraft, name: string, kind: 'set' | 'map', ref: SourceRef): SetDraft {
    let s = table.sets.get(name)
    if (!s) {
      s = { name, kind, keyType: '', elements: [], ref }
      table.sets.set(name, s)
    }
    return s
  }

  /** Adds a rule (tokens of its statements) to a chain; `prepend` for `insert rule`. */
  addRule(table: TableDraft, chain: ChainDraft, tokens: readonly Token[], ref: SourceRef, prepend = false, jsonComment?: string, blank?: { match: boolean; target: boolean }): void {
    const index = prepend ? 1 : chain.rules.length + 1
    let anon = 0
    const parsed = parseRuleStatements(tokens, {
      family: table.family, chain: chain.name, index, ref,
      warn: (code, message) => this.ctx.sink.warn(code, message, ref.line, ref.text),
      info: (code, message) => this.ctx.sink.info(code, message, ref.line, ref.text),
      addAnonymousSet: (kind, keys, elements) => {
        anon++
        // A name with spaces cannot collide with a named set.
        const name = `anonymous ${kind} ${anon} of ${chain.name} rule ${index}`
        table.sets.set(name, { name, kind, keyType: keys.join(' . '), elements: elements.map((e) => ({ ...e, ref })), anonymous: true, ref })
        return name
      },
    })
    if (tokens.some((t) => !t.quoted && t.text === 'xt')) table.iptablesNft = true
    const comment = parsed.comment ?? jsonComment
    const matches = jsonComment !== undefined && parsed.comment === undefined ? [...parsed.matches, { kind: 'comment' as const, text: jsonComment }] : [...parsed.matches]
    let target = parsed.target
    if (blank?.match || (blank?.target && target.kind !== 'none')) {
      // nft 1.0.6 prints nothing for an iptables extension it cannot translate; the gap shows as doubled spaces.
      this.ctx.sink.warn('nft.unknown-expression', 'nft printed an iptables-nft match as blank; read this table from iptables-nft-save instead', ref.line, ref.text)
      matches.push({ kind: 'opaque', negated: false, module: 'xt', text: '(iptables extension that nft printed as blank)' })
    }
    if (blank?.target && target.kind === 'none') {
      this.ctx.sink.warn('nft.unknown-expression', 'nft printed an iptables-nft target as blank; read this table from iptables-nft-save instead', ref.line, ref.text)
      target = { kind: 'opaque', name: 'xt', text: '(iptables target that nft printed as blank)' }
    }
    const rule: Rule = {
      table: table.name, chain: chain.name, index, matches, target,
      ...(parsed.counters ? { counters: parsed.counters } : {}), ...(comment !== undefined ? { comment } : {}), ref,
    }
    if (prepend) {
      chain.rules.unshift(rule)
      chain.rules.forEach((r, i) => { (r as Mutable<Rule>).index = i + 1 })
    } else {
      chain.rules.push(rule)
    }
  }

  addElements(set: SetDraft, elements: readonly SetElement[], ref: SourceRef): void {
    for (const e of elements) set.elements.push({ key: e.key, ...(e.value !== undefined ? { value: e.value } : {}), ref })
  }

  finish(): Table[] {
    const out: Table[] = []
    for (const t of this.tables.values()) {
      if (t.iptablesNft) this.ctx.sink.info('nft.iptables-nft-table', `table ${t.family} ${t.name} is managed by iptables-nft; iptables-nft-save shows its rules in full`, t.ref.line, t.ref.text)
      out.push({ name: t.name, family: t.family, origin: 'nft', chains: t.chains as Map<string, Chain>, sets: t.sets as Map<string, NftSet>, ref: t.ref })
    }
    return out
  }
}

/**
 * Reads a base chain's `type nat hook prerouting priority dstnat + 10; policy accept;` (also `device "eth0"`).
 * Named priorities are the kernel's numbers for the ip/ip6/inet families (NFT_NAMED_PRIORITY).
 */
export function applyChainSpec(chain: ChainDraft, words: readonly string[], ref: SourceRef, ctx: ParseContext): void {
  for (let i = 0; i < words.length; i++) {
    const w = words[i]
    switch (w) {
      case 'type': {
        const t = words[++i]
        if (t === 'filter' || t === 'nat' || t === 'route') chain.type = t
        else ctx.sink.warn('nft.unknown-expression', `chain type ${t ?? ''} is not modelled`, ref.line, ref.text)
        break
      }
      case 'hook': {
        const h = words[++i] ?? ''
        if (HOOKS.has(h)) chain.hook = h as Hook
        else ctx.sink.info('nft.ignored-hook', `hook ${h} (not an IP hook) is not walked by natlens`, ref.line, ref.text)
        break
      }
      case 'device': i++; break
      case 'devices': {
        // `devices = { eth0, eth1 }`
        while (i + 1 < words.length && words[i + 1] !== 'priority' && words[i + 1] !== 'policy') i++
        break
      }
      case 'priority': {
        const parts: string[] = []
        while (i + 1 < words.length && !['policy', 'type', 'hook', 'comment', ';'].includes(words[i + 1]!)) parts.push(words[++i]!)
        const p = priorityValue(parts)
        if (p === undefined) ctx.sink.warn('nft.bad-priority', `priority ${parts.join(' ')} is not understood`, ref.line, ref.text)
        else chain.priority = p
        break
      }
      case 'policy': {
        const p = words[++i]
        if (p === 'accept' || p === 'drop') chain.policy = p
        else ctx.sink.warn('nft.unknown-expression', `policy ${p ?? ''}`, ref.line, ref.text)
        break
      }
      case 'comment': i++; break
      case ';': case undefined: break
      default:
        ctx.sink.warn('nft.unknown-expression', `unknown chain property ${JSON.stringify(w)}`, ref.line, ref.text)
    }
  }
}

/** `-90`, `dstnat`, `srcnat - 10`, `filter + 5`, `mangle`. */
export function priorityValue(parts: readonly string[]): number | undefined {
  const joined = parts.join(' ').replace(/\s+/g, ' ').trim()
  const m = /^(-?\d+|[a-z]+)(?: ?([+-]) ?(\d+))?$/.exec(joined)
  if (!m) return undefined
  const base = /^-?\d+$/.test(m[1]!) ? Number(m[1]) : NFT_NAMED_PRIORITY[m[1]!]
  if (base === undefined) return undefined
  if (m[2] === undefined) return base
  return m[2] === '+' ? base + Number(m[3]) : base - Number(m[3])
}

/** Splits the tokens of a block body (`{ … }`) into statements at line ends and `;` outside nested braces. */
function statements(tokens: readonly Token[]): Token[][] {
  const out: Token[][] = []
  let cur: Token[] = []
  let depth = 0
  for (const t of tokens) {
    if (!t.quoted && t.text === '{') depth++
    if (!t.quoted && t.text === '}') depth--
    if (depth === 0 && !t.quoted && (t.text === NEWLINE || t.text === ';')) {
      if (cur.length > 0) out.push(cur)
      cur = []
      continue
    }
    if (t.text !== NEWLINE) cur.push(t)
  }
  if (cur.length > 0) out.push(cur)
  return out
}

/** Index of the `}` that closes the `{` at `open`, or tokens.length when unbalanced. */
function closing(tokens: readonly Token[], open: number): number {
  let depth = 0
  for (let i = open; i < tokens.length; i++) {
    const t = tokens[i]!
    if (t.quoted) continue
    if (t.text === '{') depth++
    else if (t.text === '}') { depth--; if (depth === 0) return i }
  }
  return tokens.length
}

export function parseNftText(text: string, ctx: ParseContext): Table[] {
  const sourceLines = text.split(/\r?\n/)
  const b = new TableBuilder(ctx, sourceLines)
  const { tokens, comments } = tokenize(text)
  // `# Warning: table ip nat is managed by iptables-nft, do not touch!` (nft ≥ 1.0.7 prints it before the table).
  const managed = new Set<string>()
  for (const c of comments) {
    const m = /table (\w+) (\S+) is managed by iptables-nft/.exec(c.text)
    if (m) managed.add(`${m[1]} ${m[2]}`)
  }
  let i = 0
  while (i < tokens.length) {
    const t = tokens[i]!
    if (t.text === NEWLINE || t.text === ';') { i++; continue }
    if (t.quoted) { ctx.sink.warn('nft.unknown-line', 'unexpected string', t.line, b.refAt(t.line).text); i = skipLine(tokens, i); continue }
    if (t.text === 'table') {
      i = readTableBlock(tokens, i, b, ctx)
      continue
    }
    if (['add', 'create', 'insert', 'replace', 'delete', 'destroy', 'flush'].includes(t.text)) {
      i = readCommand(tokens, i, b, ctx)
      continue
    }
    if (t.text === 'define' || t.text === 'include' || t.text === 'list') {
      ctx.sink.warn('nft.unknown-line', `${t.text} statements are not read`, t.line, b.refAt(t.line).text)
      i = skipLine(tokens, i)
      continue
    }
    ctx.sink.warn('nft.unknown-line', `unexpected ${JSON.stringify(t.text)} at top level`, t.line, b.refAt(t.line).text)
    i = skipLine(tokens, i)
  }
  for (const key of managed) {
    const tb = b.tables.get(key)
    if (tb) tb.iptablesNft = true
  }
  return b.finish()
}

/** Skips to the end of the line, or past a `{ … }` block that starts on it. */
function skipLine(tokens: readonly Token[], i: number): number {
  while (i < tokens.length && tokens[i]!.text !== NEWLINE) {
    if (tokens[i]!.text === '{' && !tokens[i]!.quoted) return closing(tokens, i) + 1
    i++
  }
  return i + 1
}

function readFamilyName(tokens: readonly Token[], i: number): { family: TableFamily; name: string | undefined; next: number } {
  const a = tokens[i]
  const b2 = tokens[i + 1]
  if (a && !a.quoted && FAMILIES.has(a.text) && b2 && b2.text !== NEWLINE && b2.text !== '{' && b2.text !== ';') {
    return { family: a.text as TableFamily, name: b2.text, next: i + 2 }
  }
  // The family is optional and defaults to ip.
  return { family: 'ip', name: a && a.text !== NEWLINE && a.text !== '{' ? a.text : undefined, next: i + 1 }
}

function readTableBlock(tokens: readonly Token[], i: number, b: TableBuilder, ctx: ParseContext): number {
  const line = tokens[i]!.line
  const ref = b.refAt(line)
  const { family, name, next } = readFamilyName(tokens, i + 1)
  if (!name || tokens[next]?.text !== '{') {
    ctx.sink.warn('nft.unknown-line', 'table without a name or body', line, ref.text)
    return skipLine(tokens, i)
  }
  const end = closing(tokens, next)
  const table = b.table(family, name, ref)
  readTableBody(tokens.slice(next + 1, end), table, b, ctx)
  return end + 1
}

function readTableBody(body: readonly Token[], table: TableDraft, b: TableBuilder, ctx: ParseContext): void {
  let i = 0
  while (i < body.length) {
    const t = body[i]!
    if (t.text === NEWLINE || t.text === ';') { i++; continue }
    const ref = b.refAt(t.line)
    if (!t.quoted && (t.text === 'chain' || t.text === 'set' || t.text === 'map')) {
      const name = body[i + 1]?.text
      const open = i + 2
      if (name === undefined || body[open]?.text !== '{') {
        ctx.sink.warn('nft.unknown-line', `${t.text} without a body`, t.line, ref.text)
        i = skipLine(body, i)
        continue
      }
      const end = closing(body, open)
      const inner = body.slice(open + 1, end)
      if (t.text === 'chain') readChainBody(inner, table, b.chain(table, name, ref), b, ctx)
      else readSetBody(inner, b.set(table, name, t.text, ref), b, ctx)
      i = end + 1
      continue
    }
    if (!t.quoted && (t.text === 'comment' || t.text === 'flags')) { i = skipLine(body, i); continue }
    if (!t.quoted && OTHER_OBJECTS.has(t.text)) {
      ctx.sink.info('nft.ignored-object', `${joinTokens(body.slice(i, Math.min(i + 3, body.length)))} is not modelled`, t.line, ref.text)
      i = skipLine(body, i)
      continue
    }
    ctx.sink.warn('nft.unknown-line', `unexpected ${JSON.stringify(t.text)} in table ${table.name}`, t.line, ref.text)
    i = skipLine(body, i)
  }
}

const CHAIN_SPEC_START: ReadonlySet<string> = new Set(['type', 'policy', 'devices', 'comment'])

function readChainBody(body: readonly Token[], table: TableDraft, chain: ChainDraft, b: TableBuilder, ctx: ParseContext): void {
  for (const st of statements(body)) {
    const first = st[0]!
    const ref = b.refAt(first.line)
    if (!first.quoted && CHAIN_SPEC_START.has(first.text)) {
      applyChainSpec(chain, st.map((t) => t.text), ref, ctx)
      continue
    }
    b.addRule(table, chain, stripHandle(st), ref, false, undefined, blankExtensions(table, st, b.sourceLines))
  }
}

const IPTABLES_TABLES: ReadonlySet<string> = new Set(['filter', 'nat', 'mangle', 'raw', 'security'])

/**
 * nft 1.0.6 renders an iptables-nft extension it cannot translate (`-m comment`, `-j MASQUERADE` in ip6 tables) as
 * nothing at all, leaving its separator: a line that starts with a space, has two spaces in a row, or ends with one.
 * Only tables iptables-nft writes are checked; native nft output never has these gaps.
 */
function blankExtensions(table: TableDraft, st: readonly Token[], sourceLines: readonly string[]): { match: boolean; target: boolean } | undefined {
  if (!(table.iptablesNft || IPTABLES_TABLES.has(table.name) && (table.family === 'ip' || table.family === 'ip6'))) return undefined
  const first = st[0]!.line
  if (st[st.length - 1]!.line !== first) return undefined
  const raw = (sourceLines[first - 1] ?? '').replace(/\r$/, '').replace(/^\t+/, '').replace(/"(?:[^"\\]|\\.)*"/g, '""')
  const target = / $/.test(raw)
  const match = /^ /.test(raw) || / {2}/.test(raw.trimEnd())
  return match || target ? { match, target } : undefined
}

/** `nft -a` appends `# handle N`, which the tokenizer already dropped as a comment; older dumps may carry `handle N`. */
function stripHandle(st: readonly Token[]): Token[] {
  const out = [...st]
  if (out.length >= 2 && out[out.length - 2]!.text === 'handle' && /^\d+$/.test(out[out.length - 1]!.text)) out.splice(-2)
  return out
}

function readSetBody(body: readonly Token[], set: SetDraft, b: TableBuilder, ctx: ParseContext): void {
  const st = statements(body)
  for (const s of st) {
    const first = s[0]!
    const ref = b.refAt(first.line)
    switch (first.text) {
      case 'type':
      case 'typeof': {
        const words = s.slice(1).map((t) => t.text)
        const colon = words.indexOf(':')
        set.keyType = (colon >= 0 ? words.slice(0, colon) : words).join(' ')
        if (colon >= 0) set.dataType = words.slice(colon + 1).join(' ')
        break
      }
      case 'flags': set.flags = s.slice(1).map((t) => t.text).filter((t) => t !== ','); break
      case 'elements': {
        const open = s.findIndex((t) => t.text === '{')
        if (open < 0) { ctx.sink.warn('nft.unknown-line', 'elements without braces', first.line, ref.text); break }
        const cur = new Cursor(s)
        cur.pos = open
        b.addElements(set, readBraces(cur), ref)
        break
      }
      case 'timeout': case 'size': case 'gc-interval': case 'policy': case 'auto-merge': case 'comment': case 'counter':
        break
      default:
        ctx.sink.warn('nft.unknown-line', `unknown set property ${JSON.stringify(first.text)}`, first.line, ref.text)
    }
  }
}

/** One transaction command: `add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips`. */
function readCommand(tokens: readonly Token[], i: number, b: TableBuilder, ctx: ParseContext): number {
  const line = tokens[i]!.line
  const ref = b.refAt(line)
  // The command ends at the line end, unless a `{ … }` block continues it.
  let end = i
  while (end < tokens.length && tokens[end]!.text !== NEWLINE) {
    if (tokens[end]!.text === '{' && !tokens[end]!.quoted) end = closing(tokens, end)
    end++
  }
  const cmd = tokens.slice(i, end).filter((t) => t.text !== NEWLINE)
  const verb = cmd[0]!.text
  const object = cmd[1]?.text
  const { family, name: tableName, next } = readFamilyName(cmd, 2)
  const warn = (m: string): void => ctx.sink.warn('nft.unknown-line', m, line, ref.text)
  if (!tableName) { warn(`${verb} ${object ?? ''} without a table`); return end + 1 }
  switch (object) {
    case 'table': {
      if (verb === 'delete' || verb === 'destroy') { b.tables.delete(`${family} ${tableName}`); break }
      const t = b.table(family, tableName, ref)
      if (verb === 'flush') for (const c of t.chains.values()) c.rules = []
      break
    }
    case 'chain': {
      const t = b.findTable(family, tableName, ref)
      const chainName = cmd[next]?.text
      if (!chainName) { warn('chain without a name'); break }
      if (verb === 'delete' || verb === 'destroy') { t.chains.delete(chainName); break }
      const c = b.chain(t, chainName, ref)
      if (verb === 'flush') { c.rules = []; break }
      const open = next + 1
      if (cmd[open]?.text === '{') applyChainSpec(c, cmd.slice(open + 1, closing(cmd, open)).map((x) => x.text), ref, ctx)
      break
    }
    case 'set':
    case 'map': {
      const t = b.findTable(family, tableName, ref)
      const setName = cmd[next]?.text
      if (!setName) { warn(`${object} without a name`); break }
      if (verb === 'delete' || verb === 'destroy') { t.sets.delete(setName); break }
      const s = b.set(t, setName, object, ref)
      if (verb === 'flush') { s.elements = []; break }
      const open = next + 1
      if (cmd[open]?.text === '{') readSetBody(cmd.slice(open + 1, closing(cmd, open)), s, b, ctx)
      break
    }
    case 'element': {
      const t = b.findTable(family, tableName, ref)
      const setName = cmd[next]?.text
      const s = setName ? t.sets.get(setName) : undefined
      if (!s) { warn(`element for unknown set ${setName ?? ''}`); break }
      const cur = new Cursor(cmd)
      cur.pos = next + 1
      const elements = readBraces(cur)
      if (verb === 'delete' || verb === 'destroy') {
        const gone = new Set(elements.map((e) => e.key.join(' . ')))
        s.elements = s.elements.filter((e) => !gone.has(e.key.join(' . ')))
      } else {
        b.addElements(s, elements, ref)
      }
      break
    }
    case 'rule': {
      const t = b.findTable(family, tableName, ref)
      const chainName = cmd[next]?.text
      if (!chainName) { warn('rule without a chain'); break }
      const c = t.chains.get(chainName) ?? (ctx.sink.warn('nft.missing-object', `chain ${chainName} is used before it is added`, line, ref.text), b.chain(t, chainName, ref))
      let body = cmd.slice(next + 1)
      if (['position', 'index', 'handle'].includes(body[0]?.text ?? '')) {
        ctx.sink.info('nft.rule-position', `${body[0]!.text} ${body[1]?.text ?? ''} is read as append/prepend`, line, ref.text)
        body = body.slice(2)
      }
      if (verb === 'delete' || verb === 'destroy') { warn('deleting single rules is not modelled'); break }
      b.addRule(t, c, body, ref, verb === 'insert')
      break
    }
    default:
      warn(`${verb} ${object ?? ''} is not modelled`)
  }
  return end + 1
}
