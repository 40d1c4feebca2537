// One nft rule (its statements as tokens) into the Match/Target model that iptables rules use too.
// nft writes a rule as a sequence of expressions and statements: `iifname "eni*" counter jump snat-mark`.
// Each relational expression becomes a Match; the verdict or NAT/mark statement becomes the Target.
// A construct natlens does not model stays in the rule as an `opaque` match or target, with a diagnostic.
import type { SourceRef } from '../../model/evidence.js'
import { parseCidr, parseIp, type IpAddress } from '../../model/ip.js'
import type { AddrType, Counters, CtState, Match, NatRange, PortRange, TableFamily, Target } from '../../model/netfilter.js'
import { joinTokens, type Token } from './tokens.js'

export interface RuleSite {
  readonly family: TableFamily
  readonly chain: string
  readonly index: number
  readonly ref: SourceRef
  warn(code: string, message: string): void
  info(code: string, message: string): void
  /** Stores an anonymous set or map in the table and returns the name the rule refers to it by. */
  addAnonymousSet(kind: 'set' | 'map', keys: readonly string[], elements: readonly SetElement[]): string
}

export interface SetElement {
  readonly key: readonly string[]
  readonly value?: string
}

export interface ParsedRule {
  readonly matches: Match[]
  readonly target: Target
  readonly counters?: Counters
  readonly comment?: string
}

const U32 = 0xffffffff

/** Keywords that start a statement or expression: where an unknown construct's text stops. */
const STARTERS: ReadonlySet<string> = new Set([
  'ip', 'ip6', 'meta', 'ct', 'tcp', 'udp', 'udplite', 'sctp', 'dccp', 'th', 'icmp', 'icmpv6', 'fib', 'numgen', 'iifname', 'oifname', 'iif', 'oif',
  'mark', 'counter', 'accept', 'drop', 'return', 'continue', 'jump', 'goto', 'reject', 'snat', 'dnat', 'masquerade', 'redirect', 'log', 'comment',
  'notrack', 'limit', 'quota', 'xt', 'update', 'add', 'delete', 'queue',
])

/** Meta keys nft lets a rule write without `meta`. */
const BARE_META: ReadonlySet<string> = new Set(['mark', 'iif', 'iifname', 'oif', 'oifname', 'iiftype', 'oiftype', 'skuid', 'skgid', 'nftrace', 'pkttype', 'cpu', 'iifgroup', 'oifgroup', 'cgroup', 'random', 'rtclassid', 'priority', 'secmark'])

const RELATIONAL: ReadonlySet<string> = new Set(['==', '!=', 'eq', 'ne', '<', '>', '<=', '>=', 'lt', 'gt', 'le', 'ge', 'in'])
const BINOPS: Record<string, '&' | '|' | '^' | '<<' | '>>'> = { '&': '&', and: '&', '|': '|', or: '|', '^': '^', xor: '^', '<<': '<<', lshift: '<<', '>>': '>>', rshift: '>>' }

interface Selector {
  /** `ip daddr`, `meta mark`, `ct state`, `tcp dport`, `fib daddr . iif type`, `numgen random mod 2`. */
  readonly name: string
  readonly fib?: { readonly which: 'src' | 'dst'; readonly iif: boolean; readonly oif: boolean; readonly result: string }
  readonly numgen?: { readonly modulus: number; readonly offset: number; readonly mode: string }
}

type Value =
  | { readonly kind: 'single'; readonly texts: readonly string[] }
  | { readonly kind: 'set'; readonly elements: readonly SetElement[] }
  | { readonly kind: 'named'; readonly name: string }

/** Reads a number as nft prints it (decimal or 0x hex), up to 32 bits. */
export function nftNumber(text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  const t = text.replace(/^\(+|\)+$/g, '')
  let n: number
  if (/^0x[0-9a-f]+$/i.test(t)) n = Number.parseInt(t.slice(2), 16)
  else if (/^\d+$/.test(t)) n = Number(t)
  else return undefined
  return n <= U32 ? n : undefined
}

export class Cursor {
  pos = 0
  constructor(readonly tokens: readonly Token[]) {}
  get atEnd(): boolean { return this.pos >= this.tokens.length }
  peek(k = 0): string | undefined { return this.tokens[this.pos + k]?.text }
  peekToken(k = 0): Token | undefined { return this.tokens[this.pos + k] }
  next(): string | undefined { return this.tokens[this.pos++]?.text }
  slice(from: number, to = this.pos): readonly Token[] { return this.tokens.slice(from, to) }
}

export function parseRuleStatements(tokens: readonly Token[], site: RuleSite): ParsedRule {
  const c = new Cursor(tokens)
  const matches: Match[] = []
  const effects: { target: Target; text: string }[] = []
  let counters: Counters | undefined
  let comment: string | undefined
  const anon = (kind: 'set' | 'map', keys: readonly string[], elements: readonly SetElement[]): string => site.addAnonymousSet(kind, keys, elements)
  const opaqueFrom = (start: number, why: string): void => {
    // Take tokens up to the next statement keyword so a known verdict after the unknown part is still read.
    while (!c.atEnd && (c.pos === start || !STARTERS.has(c.peek()!) || c.peekToken()!.quoted)) c.next()
    const text = joinTokens(c.slice(start))
    site.warn('nft.unknown-expression', `${why}: ${text}`)
    matches.push({ kind: 'opaque', negated: false, module: c.tokens[start]?.text ?? '?', text })
  }

  while (!c.atEnd) {
    const start = c.pos
    const tok = c.peekToken()!
    const t = tok.text
    if (tok.quoted) { opaqueFrom(start, tok.text.startsWith('{') ? 'JSON expression not modelled' : 'unexpected string'); continue }
    switch (t) {
      case 'counter': {
        c.next()
        if (c.peek() === 'packets' && c.peek(2) === 'bytes') {
          c.next()
          const p = c.next()
          c.next()
          const b = c.next()
          if (p !== undefined && b !== undefined && /^\d+$/.test(p) && /^\d+$/.test(b)) counters = { packets: BigInt(p), bytes: BigInt(b) }
        } else if (c.peek() === 'name') {
          c.next()
          c.next()
        }
        continue
      }
      case 'comment': {
        c.next()
        comment = c.next()
        continue
      }
      case 'accept': case 'drop': case 'return': case 'continue':
        c.next()
        effects.push({ target: t === 'continue' ? { kind: 'none' } : { kind: t }, text: t })
        continue
      case 'jump': case 'goto': {
        c.next()
        const chain = c.next()
        if (chain === undefined) { opaqueFrom(start, `${t} without a chain`); continue }
        effects.push({ target: { kind: 'jump', chain, goto: t === 'goto' }, text: `${t} ${chain}` })
        continue
      }
      case 'reject': {
        c.next()
        let withText: string | undefined
        if (c.peek() === 'with') {
          c.next()
          const kind = c.next() ?? ''
          if (kind === 'tcp') { c.next(); withText = 'tcp reset' } else {
            if (c.peek() === 'type') c.next()
            const what = c.next() ?? ''
            withText = `${kind} ${what}`
          }
        }
        // `port-unreachable` is what a bare `reject` sends (nft -j spells the default out; nft list omits it).
        if (withText && /^icmp(?:v6|x)? port-unreachable$/.test(withText)) withText = undefined
        effects.push({ target: withText ? { kind: 'reject', with: withText } : { kind: 'reject' }, text: joinTokens(c.slice(start)) })
        continue
      }
      case 'snat': case 'dnat': case 'masquerade': case 'redirect': {
        const target = parseNat(c, site)
        if (target) effects.push({ target, text: joinTokens(c.slice(start)) })
        else opaqueFrom(start, `${t} form not modelled`)
        continue
      }
      case 'log': {
        c.next()
        const LOG_ARGS = new Set(['prefix', 'level', 'group', 'snaplen', 'queue-threshold', 'flags'])
        while (!c.atEnd && LOG_ARGS.has(c.peek()!)) {
          const k = c.next()
          c.next()
          if (k === 'flags') while (c.peek() === ',') { c.next(); c.next() }
        }
        effects.push({ target: { kind: 'passive', name: 'log' }, text: joinTokens(c.slice(start)) })
        continue
      }
      case 'notrack':
        c.next()
        effects.push({ target: { kind: 'passive', name: 'notrack' }, text: 'notrack' })
        continue
      case 'update': case 'add': case 'delete': {
        // `update @affinity-X { ip saddr }`: kube-proxy's session-affinity bookkeeping; no effect on this packet.
        if (c.peek(1)?.startsWith('@')) {
          c.next()
          c.next()
          if (c.peek() === '{') skipBraces(c)
          effects.push({ target: { kind: 'passive', name: `${t} set` }, text: joinTokens(c.slice(start)) })
          continue
        }
        opaqueFrom(start, `unknown statement ${t}`)
        continue
      }
      case 'limit': case 'quota': {
        // Rate and byte limits depend on state the dump does not hold.
        c.next()
        while (!c.atEnd && !STARTERS.has(c.peek()!)) c.next()
        matches.push({ kind: 'opaque', negated: false, module: t, text: joinTokens(c.slice(start)) })
        continue
      }
      case 'xt': {
        // iptables-nft rules whose extension nft cannot translate: `xt match "policy"`, `xt target "MASQUERADE"`.
        c.next()
        const which = c.next()
        const name = c.next() ?? '?'
        const text = joinTokens(c.slice(start))
        site.warn('nft.unknown-expression', `iptables extension ${name} is shown untranslated (${text}); read this table from iptables-nft-save instead`)
        if (which === 'target') effects.push({ target: { kind: 'opaque', name, text }, text })
        else matches.push({ kind: 'opaque', negated: false, module: name, text })
        continue
      }
      case 'queue': {
        c.next()
        while (!c.atEnd && !STARTERS.has(c.peek()!)) c.next()
        const text = joinTokens(c.slice(start))
        site.warn('nft.unknown-expression', `queue to userspace is not modelled: ${text}`)
        effects.push({ target: { kind: 'opaque', name: 'queue', text }, text })
        continue
      }
      default:
        break
    }
    const sel = parseSelector(c)
    if (!sel) { opaqueFrom(start, `unknown expression ${JSON.stringify(t)}`); continue }
    const keys = [sel.name]
    const binops: { op: '&' | '|' | '^' | '<<' | '>>'; value: number }[] = []
    let bad = false
    let flagMask: string[] | undefined
    if (sel.name === 'tcp flags' && (c.peek() === '&' || c.peek() === 'and')) {
      // `tcp flags & (fin|syn|rst|ack) == syn`: the mask is a list of flag names, not a number.
      c.next()
      flagMask = tcpFlagsMask(c.next() ?? '')
    }
    while (!c.atEnd && BINOPS[c.peek()!] !== undefined) {
      const op = BINOPS[c.next()!]!
      const v = nftNumber(c.next())
      if (v === undefined) { bad = true; break }
      binops.push({ op, value: v })
    }
    if (bad) { opaqueFrom(start, 'bitwise operation on a value that is not a number'); continue }
    const concat: Selector[] = [sel]
    while (c.peek() === '.') {
      c.next()
      const more = parseSelector(c)
      if (!more) { bad = true; break }
      concat.push(more)
      keys.push(more.name)
    }
    if (bad) { opaqueFrom(start, 'concatenation of an unknown expression'); continue }
    if (c.peek() === 'set') {
      c.next()
      const target = parseSetStatement(sel, c)
      const text = joinTokens(c.slice(start))
      if (!target) { c.pos = start; opaqueFrom(start, 'assignment not modelled'); continue }
      effects.push({ target, text })
      continue
    }
    if (c.peek() === 'vmap') {
      c.next()
      if (sel.numgen && concat.length === 1 && c.peek() === '{') {
        const elements = readBraces(c)
        const choices: { index: number; chain: string; goto: boolean }[] = []
        for (const e of elements) {
          const m = /^(goto|jump) (\S+)$/.exec(e.value ?? '')
          const idx = nftNumber(e.key[0])
          if (m && idx !== undefined && e.key.length === 1) choices.push({ index: idx + sel.numgen.offset, chain: m[2]!, goto: m[1] === 'goto' })
          else site.warn('nft.unknown-expression', `numgen vmap element not modelled: ${e.key.join(' . ')} : ${e.value ?? ''}`)
        }
        effects.push({ target: { kind: 'numgen-vmap', modulus: sel.numgen.modulus, choices }, text: joinTokens(c.slice(start)) })
        continue
      }
      let map: string | undefined
      if (c.peek()?.startsWith('@')) map = c.next()!.slice(1)
      else if (c.peek() === '{') map = anon('map', keys, readBraces(c))
      if (map === undefined || binops.length > 0) { c.pos = start; opaqueFrom(start, 'verdict map form not modelled'); continue }
      effects.push({ target: { kind: 'vmap', keys, map }, text: joinTokens(c.slice(start)) })
      continue
    }
    let op = '=='
    if (c.peek() !== undefined && RELATIONAL.has(c.peek()!)) op = c.next()!
    let value: Value | undefined
    if (c.peek()?.startsWith('@')) value = { kind: 'named', name: c.next()!.slice(1) }
    else if (c.peek() === '{') value = { kind: 'set', elements: readBraces(c) }
    else if (!c.atEnd && c.peek() !== '}' && c.peek() !== ',') {
      const texts = [c.next()!]
      while (c.peek() === ',' && c.peek(1) !== undefined) { c.next(); texts.push(c.next()!) }
      value = { kind: 'single', texts }
    }
    if (!value) { opaqueFrom(start, `expression without a value`); continue }
    const m = flagMask && value.kind === 'single' && (op === '==' || op === '!=')
      ? [{ kind: 'tcp-flags' as const, negated: op === '!=', mask: flagMask, comp: tcpFlagsMask(value.texts.join('|')) }]
      : buildMatch(concat, keys, binops, op, value, site, anon)
    if (!m) {
      c.pos = Math.max(c.pos, start + 1)
      const text = joinTokens(c.slice(start))
      site.warn('nft.unknown-expression', `expression not modelled: ${text}`)
      matches.push({ kind: 'opaque', negated: op === '!=' || op === 'ne', module: sel.name, text })
      continue
    }
    for (const x of m) {
      // `tcp dport 80` implies `meta l4proto tcp`; keep one protocol match per protocol.
      if (x.kind === 'protocol' && matches.some((y) => y.kind === 'protocol' && y.protocol === x.protocol && y.negated === x.negated)) continue
      matches.push(x)
    }
  }

  if (comment !== undefined) matches.push({ kind: 'comment', text: comment })
  const decisive = effects.filter((e) => e.target.kind !== 'passive' && e.target.kind !== 'none')
  let target: Target
  if (decisive.length === 0) target = effects.find((e) => e.target.kind === 'passive')?.target ?? { kind: 'none' }
  else if (decisive.length === 1) target = decisive[0]!.target
  else {
    // Two effects in one rule (`meta mark set 0x1 accept`): the model holds one target per rule.
    const text = decisive.map((e) => e.text).join(' ')
    site.warn('nft.unknown-expression', `rule with several statements (${text}) is not modelled as one target`)
    target = { kind: 'opaque', name: 'statements', text }
  }
  return { matches, target, ...(counters ? { counters } : {}), ...(comment !== undefined ? { comment } : {}) }
}

function skipBraces(c: Cursor): void {
  let depth = 0
  while (!c.atEnd) {
    const t = c.next()
    if (t === '{') depth++
    else if (t === '}') { depth--; if (depth <= 0) return }
  }
}

/** Reads `{ a, b . c : goto x, … }` into elements; per-element `comment`, `timeout`, `expires`, `counter` are dropped. */
export function readBraces(cur: Cursor): SetElement[] {
  const elements: SetElement[] = []
  if (cur.peek() !== '{') return elements
  cur.next()
  let parts: string[][] = [[]]
  let value: string[] | undefined
  const flush = (): void => {
    const key = parts.map((p) => p.join(' ')).filter((p) => p !== '')
    if (key.length > 0) elements.push(value ? { key, value: value.join(' ') } : { key })
    parts = [[]]
    value = undefined
  }
  let depth = 1
  while (!cur.atEnd) {
    const tok = cur.peekToken()!
    const t = tok.text
    cur.next()
    if (t === '\n') continue
    if (t === '{' && !tok.quoted) { depth++; continue }
    if (t === '}' && !tok.quoted) { depth--; if (depth === 0) break; continue }
    if (t === ',' && !tok.quoted && depth === 1) { flush(); continue }
    if (!tok.quoted && (t === 'comment' || t === 'timeout' || t === 'expires')) { cur.next(); continue }
    if (!tok.quoted && t === 'counter') {
      if (cur.peek() === 'packets') { cur.next(); cur.next(); cur.next(); cur.next() }
      continue
    }
    if (value) { value.push(t); continue }
    if (t === ':' && !tok.quoted) { value = []; continue }
    if (t === '.' && !tok.quoted) { parts.push([]); continue }
    parts[parts.length - 1]!.push(t)
  }
  flush()
  return elements
}

function parseSelector(c: Cursor): Selector | undefined {
  const start = c.pos
  const t = c.peek()
  if (t === undefined || c.peekToken()!.quoted) return undefined
  const word = (): string | undefined => {
    const tk = c.peekToken()
    if (!tk || tk.quoted || /^[{};,]$/.test(tk.text)) return undefined
    return c.next()
  }
  switch (t) {
    case 'ip': case 'ip6': case 'icmp': case 'icmpv6': case 'ether': case 'vlan': case 'arp': case 'rt': case 'socket': case 'ipsec': case 'udplite': case 'dccp': case 'ah': case 'esp': case 'frag': case 'hbh': case 'mh': case 'srh': case 'dst': {
      c.next()
      const f = word()
      if (f === undefined) { c.pos = start; return undefined }
      return { name: `${t} ${f}` }
    }
    case 'tcp': case 'udp': case 'sctp': case 'th': {
      c.next()
      const f = word()
      if (f === undefined) { c.pos = start; return undefined }
      if (t === 'tcp' && f === 'option') {
        const opt = word()
        const field = word()
        return { name: `tcp option ${opt ?? ''} ${field ?? ''}`.trim() }
      }
      return { name: `${t} ${f}` }
    }
    case 'meta': {
      c.next()
      const k = word()
      if (k === undefined) { c.pos = start; return undefined }
      return { name: `meta ${k}` }
    }
    case 'ct': {
      c.next()
      const k = word()
      if (k === undefined) { c.pos = start; return undefined }
      if (k === 'original' || k === 'reply') {
        let f = word()
        if (f === 'ip' || f === 'ip6') f = word()
        if (f === undefined) { c.pos = start; return undefined }
        return { name: `ct ${k} ${f}` }
      }
      return { name: `ct ${k}` }
    }
    case 'fib': {
      // `fib FLAG [. FLAG]… RESULT`: flags saddr/daddr/mark/iif/oif, result type/oif/oifname.
      c.next()
      const flags: string[] = []
      const first = word()
      if (first === undefined) { c.pos = start; return undefined }
      flags.push(first)
      while (c.peek() === '.') {
        c.next()
        const f = word()
        if (f === undefined) { c.pos = start; return undefined }
        flags.push(f)
      }
      const result = word()
      const which = flags.includes('saddr') ? 'src' : flags.includes('daddr') ? 'dst' : undefined
      if (!result || !which) { c.pos = start; return undefined }
      return { name: `fib ${flags.join(' . ')} ${result}`, fib: { which, iif: flags.includes('iif'), oif: flags.includes('oif'), result } }
    }
    case 'numgen': {
      c.next()
      const mode = word()
      if (word() !== 'mod') { c.pos = start; return undefined }
      const modulus = nftNumber(word())
      let offset = 0
      if (c.peek() === 'offset') { c.next(); offset = nftNumber(word()) ?? 0 }
      if (modulus === undefined || mode === undefined) { c.pos = start; return undefined }
      return { name: `numgen ${mode} mod ${modulus}${offset ? ` offset ${offset}` : ''}`, numgen: { modulus, offset, mode } }
    }
    default:
      if (BARE_META.has(t)) {
        c.next()
        return { name: `meta ${t}` }
      }
      return undefined
  }
}

const CT_STATES: Record<string, CtState> = { new: 'NEW', established: 'ESTABLISHED', related: 'RELATED', invalid: 'INVALID', untracked: 'UNTRACKED' }
const ADDR_TYPES: ReadonlySet<string> = new Set(['unspec', 'unicast', 'local', 'broadcast', 'anycast', 'multicast', 'blackhole', 'unreachable', 'prohibit', 'throw', 'nat', 'xresolve'])

function valueTexts(v: Value): string[] | undefined {
  if (v.kind === 'single') return [...v.texts]
  if (v.kind === 'set' && v.elements.every((e) => e.key.length === 1 && e.value === undefined)) return v.elements.map((e) => e.key[0]!)
  return undefined
}

function portRange(text: string): PortRange | undefined {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text)
  if (!m) return undefined
  const from = Number(m[1])
  const to = m[2] === undefined ? from : Number(m[2])
  return from <= to && to <= 65535 ? { from, to } : undefined
}

function buildMatch(
  concat: readonly Selector[], keys: readonly string[], binops: readonly { op: string; value: number }[], op: string, value: Value, site: RuleSite,
  anon: (kind: 'set' | 'map', keys: readonly string[], elements: readonly SetElement[]) => string,
): Match[] | undefined {
  const negated = op === '!=' || op === 'ne'
  const equality = op === '==' || op === 'eq' || op === 'in' || negated
  if (value.kind === 'named' && equality && binops.length === 0) return [{ kind: 'nft-set', negated, keys, set: value.name }]
  if (concat.length > 1) {
    if (value.kind === 'set' && equality && binops.length === 0) return [{ kind: 'nft-set', negated, keys, set: anon('set', keys, value.elements) }]
    return undefined
  }
  const sel = concat[0]!
  const name = sel.name
  const texts = valueTexts(value)
  const anonSet = (): Match[] | undefined =>
    value.kind === 'set' && equality && binops.length === 0 ? [{ kind: 'nft-set', negated, keys, set: anon('set', keys, value.elements) }] : undefined

  if (name === 'ip saddr' || name === 'ip daddr' || name === 'ip6 saddr' || name === 'ip6 daddr') {
    if (binops.length > 0 || !equality || !texts) return anonSet()
    if (texts.length !== 1) return anonSet()
    const which = name.endsWith('saddr') ? 'src' : 'dst'
    const t = texts[0]!
    const dash = t.indexOf('-')
    if (dash > 0) {
      const from = parseIp(t.slice(0, dash))
      const to = parseIp(t.slice(dash + 1))
      if (from && to) return [{ kind: which === 'src' ? 'src-range' : 'dst-range', negated, from, to }]
      return undefined
    }
    const cidr = parseCidr(t)
    return cidr ? [{ kind: which, negated, cidr }] : undefined
  }
  if (name === 'meta iifname' || name === 'meta oifname' || name === 'meta iif' || name === 'meta oif') {
    if (binops.length > 0 || !equality || !texts) return undefined
    if (texts.length !== 1) return anonSet()
    const t = texts[0]!
    const wildcard = t.endsWith('*') && !name.endsWith('if')
    return [{ kind: name.includes('iif') ? 'in-iface' : 'out-iface', negated, name: wildcard ? t.slice(0, -1) : t, wildcard }]
  }
  if (name === 'meta l4proto' || name === 'ip protocol' || name === 'ip6 nexthdr') {
    if (binops.length > 0 || !equality || !texts) return undefined
    if (texts.length !== 1) return anonSet()
    return [{ kind: 'protocol', negated, protocol: texts[0]!.toLowerCase() }]
  }
  const port = /^(tcp|udp|sctp|th|udplite|dccp) (dport|sport)$/.exec(name)
  if (port) {
    if (binops.length > 0 || !texts) return undefined
    const which = port[2] === 'dport' ? 'dst' : 'src'
    let ranges: PortRange[] = []
    if (equality) {
      for (const t of texts) {
        const r = portRange(t)
        if (!r) return undefined
        ranges.push(r)
      }
    } else {
      const n = texts.length === 1 ? nftNumber(texts[0]) : undefined
      if (n === undefined) return undefined
      const r = op === '<' || op === 'lt' ? { from: 0, to: n - 1 } : op === '<=' || op === 'le' ? { from: 0, to: n } : op === '>' || op === 'gt' ? { from: n + 1, to: 65535 } : { from: n, to: 65535 }
      if (r.from > r.to) return undefined
      ranges = [r]
    }
    const out: Match[] = []
    // `tcp dport` carries an implicit `meta l4proto tcp` (nft adds the dependency itself).
    if (port[1] !== 'th') out.push({ kind: 'protocol', negated: false, protocol: port[1]! })
    out.push({ kind: 'port', which, negated, ranges })
    return out
  }
  if (name === 'meta mark' || name === 'ct mark') {
    if (!equality || !texts || texts.length !== 1) return undefined
    const v = nftNumber(texts[0])
    if (v === undefined) return undefined
    let mask = U32
    if (binops.length === 1 && binops[0]!.op === '&') mask = binops[0]!.value
    else if (binops.length > 0) return undefined
    return [{ kind: name === 'meta mark' ? 'mark' : 'connmark', negated, value: v, mask }]
  }
  if (name === 'meta random') {
    // iptables-nft's `-m statistic --mode random --probability p` is `meta random & 2147483647 < p*2^31`.
    if (binops.length === 1 && binops[0]!.op === '&' && binops[0]!.value === 0x7fffffff && (op === '<' || op === 'lt') && texts?.length === 1) {
      const n = nftNumber(texts[0])
      if (n !== undefined) return [{ kind: 'statistic-random', negated: false, probability: n / 0x80000000 }]
    }
    return undefined
  }
  if (name === 'ct state') {
    if (binops.length > 0 || !equality || !texts) return undefined
    const states: CtState[] = []
    for (const t of texts) {
      const s = CT_STATES[t.toLowerCase()]
      if (!s) return undefined
      states.push(s)
    }
    return [{ kind: 'ctstate', negated, states }]
  }
  if (name === 'ct status') {
    if (binops.length > 0 || !equality || !texts) return undefined
    // `ct status dnat` is what iptables calls `--ctstate DNAT`.
    if (texts.every((t) => t === 'snat' || t === 'dnat')) return [{ kind: 'ctstate', negated, states: texts.map((t) => t.toUpperCase() as CtState) }]
    return [{ kind: 'ctstatus', negated, text: `status ${texts.join(',')}` }]
  }
  if (name === 'ct direction') {
    if (binops.length > 0 || !equality || !texts) return undefined
    return [{ kind: 'ctstatus', negated, text: `direction ${texts.join(',')}` }]
  }
  const ctTuple = /^ct (original|reply) (saddr|daddr|proto-src|proto-dst)$/.exec(name)
  if (ctTuple) {
    if (binops.length > 0 || !equality || !texts || texts.length !== 1) return undefined
    const which = `${ctTuple[1] === 'original' ? 'orig' : 'repl'}${ctTuple[2] === 'saddr' || ctTuple[2] === 'proto-src' ? 'src' : 'dst'}` as 'origsrc'
    if (ctTuple[2]!.startsWith('proto')) {
      const r = portRange(texts[0]!)
      return r ? [{ kind: 'ctport', which, negated, ranges: [r] }] : undefined
    }
    const cidr = parseCidr(texts[0]!)
    return cidr ? [{ kind: 'ctaddr', which, negated, cidr }] : undefined
  }
  if (sel.fib) {
    if (sel.fib.result !== 'type' || binops.length > 0 || !equality || !texts) return undefined
    const types: AddrType[] = []
    for (const t of texts) {
      if (!ADDR_TYPES.has(t)) return undefined
      types.push(t.toUpperCase() as AddrType)
    }
    const m: Match = { kind: 'addrtype', which: sel.fib.which, negated, types, ...(sel.fib.iif ? { limitIfaceIn: true } : {}), ...(sel.fib.oif ? { limitIfaceOut: true } : {}) }
    return [m]
  }
  if (name === 'icmp type' || name === 'icmpv6 type') {
    if (binops.length > 0 || !equality || !texts || texts.length !== 1) return undefined
    return [{ kind: 'icmp-type', negated, type: texts[0]! }]
  }
  if (name === 'tcp flags') {
    const flagList = (t: string): string[] => t.replace(/[()]/g, '').split(/[|,]/).filter((x) => x !== '').map((x) => x.toUpperCase())
    if (!texts) return undefined
    if (binops.length === 1 && binops[0]!.op === '&') return undefined
    if (binops.length === 0 && equality) {
      // `tcp flags syn / fin,syn,rst,ack` (nft ≥ 1.0.7) or `tcp flags syn` (any of the flags set).
      const slash = texts.indexOf('/')
      if (slash < 0) return [{ kind: 'tcp-flags', negated, mask: flagList(texts.join(',')), comp: flagList(texts.join(',')) }]
      return [{ kind: 'tcp-flags', negated, mask: flagList(texts.slice(slash + 1).join(',')), comp: flagList(texts.slice(0, slash).join(',')) }]
    }
    return undefined
  }
  void site
  return undefined
}

/** `tcp flags & (fin|syn|rst|ack) == syn`: the mask is a parenthesised word, which the generic path cannot read. */
export function tcpFlagsMask(text: string): string[] {
  return text.replace(/[()]/g, '').split('|').filter((x) => x !== '').map((x) => x.toUpperCase())
}

/**
 * The value side of `meta mark set …` / `ct mark set …`: a base (a number, `meta mark`, `ct mark`) and `&`, `|`, `^`
 * with numbers, composed as `((base & and) | or) ^ xor`.
 */
function parseSetStatement(sel: Selector, c: Cursor): Target | undefined {
  let base: 'meta mark' | 'ct mark' | number
  const t = c.peek()?.replace(/^\(+/, '')
  if (t === 'meta' && c.peek(1)?.replace(/\)+$/, '') === 'mark') { c.next(); c.next(); base = 'meta mark' }
  else if (t === 'mark') { c.next(); base = 'meta mark' }
  else if (t === 'ct' && c.peek(1)?.replace(/\)+$/, '') === 'mark') { c.next(); c.next(); base = 'ct mark' }
  else {
    const n = nftNumber(t)
    if (n === undefined) {
      if (sel.name.startsWith('tcp option') || sel.name === 'meta nftrace' || sel.name === 'ct helper' || sel.name === 'ct zone' || sel.name === 'ct event' || sel.name === 'ct timeout' || sel.name === 'meta priority') {
        // MSS clamping, tracing, helpers: no effect on the verdict or the addresses.
        while (!c.atEnd && !STARTERS.has(c.peek()!)) c.next()
        return { kind: 'passive', name: `${sel.name} set` }
      }
      return undefined
    }
    c.next()
    base = n
  }
  let and = U32
  let or = 0
  let xor = 0
  while (!c.atEnd && BINOPS[c.peek()!.replace(/^\(+/, '')] !== undefined) {
    const op = BINOPS[c.next()!.replace(/^\(+/, '')]!
    const v = nftNumber(c.peek())
    if (v === undefined) return undefined
    c.next()
    if (op === '&') { and = (and & v) >>> 0; or = (or & v) >>> 0; xor = (xor & v) >>> 0 }
    else if (op === '|') { or = (or | v) >>> 0; xor = (xor & ~v) >>> 0 }
    else if (op === '^') xor = (xor ^ v) >>> 0
    else return undefined
  }
  if (sel.name === 'meta mark') {
    if (typeof base === 'number') return { kind: 'mark', value: ((((base & and) | or) ^ xor) >>> 0), mask: U32 }
    if (base === 'meta mark') return { kind: 'mark', value: (or ^ xor) >>> 0, mask: (~(and & ~or)) >>> 0 }
    return { kind: 'mark-from-ct', and, or, xor }
  }
  if (sel.name === 'ct mark') {
    if (typeof base === 'number') return { kind: 'connmark-set', value: ((((base & and) | or) ^ xor) >>> 0), mask: U32 }
    if (base === 'ct mark') return { kind: 'ctmark-expr', and, or, xor }
    if (or === 0 && xor === 0) return { kind: 'connmark-save', nfmask: and, ctmask: U32 }
    return undefined
  }
  return undefined
}

function parseNatAddress(text: string, v6: boolean): NatRange | undefined {
  let addrPart = text
  let portPart: string | undefined
  if (text.startsWith('[')) {
    const close = text.indexOf(']')
    if (close < 0) return undefined
    addrPart = text.slice(1, close)
    const rest = text.slice(close + 1)
    if (rest.startsWith(':')) portPart = rest.slice(1)
    else if (rest !== '') return undefined
  } else if (text.startsWith(':')) {
    addrPart = ''
    portPart = text.slice(1)
  } else if (!v6 && !/:.*:/.test(text)) {
    const colon = text.indexOf(':')
    if (colon >= 0) { addrPart = text.slice(0, colon); portPart = text.slice(colon + 1) }
  }
  const range: { minAddr?: IpAddress; maxAddr?: IpAddress; ports?: PortRange } = {}
  if (addrPart !== '') {
    const dash = addrPart.indexOf('-')
    const a = parseIp(dash >= 0 ? addrPart.slice(0, dash) : addrPart)
    const b = dash >= 0 ? parseIp(addrPart.slice(dash + 1)) : a
    if (!a || !b) return undefined
    range.minAddr = a
    range.maxAddr = b
  }
  if (portPart !== undefined) {
    const r = portRange(portPart)
    if (!r) return undefined
    range.ports = r
  }
  return range
}

function parseNat(c: Cursor, site: RuleSite): Target | undefined {
  const start = c.pos
  const kind = c.next() as 'snat' | 'dnat' | 'masquerade' | 'redirect'
  let v6 = site.family === 'ip6'
  if (c.peek() === 'ip' || c.peek() === 'ip6') { v6 = c.next() === 'ip6' }
  let to: NatRange | undefined
  if (c.peek() === 'to') {
    c.next()
    const t = c.next()
    if (t === undefined || c.peek() === 'map' || t === 'ip' || t === 'ip6') { c.pos = start; return undefined }
    to = parseNatAddress(t, v6 || (t.includes('::') && !t.startsWith('[')))
    if (!to) { c.pos = start; return undefined }
  }
  const flags: string[] = []
  while (c.peek() === 'random' || c.peek() === 'fully-random' || c.peek() === 'persistent' || c.peek() === ',' || c.peek() === 'port' || c.peek() === 'prefix') {
    const f = c.next()!
    if (f === ',') continue
    if (f === 'port' || f === 'prefix') { c.pos = start; return undefined }
    flags.push(f)
  }
  const random = flags.includes('random')
  const randomFully = flags.includes('fully-random')
  const persistent = flags.includes('persistent')
  switch (kind) {
    case 'snat':
      if (!to || !to.minAddr) { c.pos = start; return undefined }
      return { kind: 'snat', to: [to], random, randomFully, persistent }
    case 'dnat':
      if (!to) { c.pos = start; return undefined }
      return { kind: 'dnat', to: [to], random, persistent }
    case 'masquerade':
      if (to?.minAddr) { c.pos = start; return undefined }
      return { kind: 'masquerade', ...(to?.ports ? { ports: to.ports } : {}), random, randomFully }
    case 'redirect':
      if (to?.minAddr) { c.pos = start; return undefined }
      return { kind: 'redirect', ...(to?.ports ? { ports: to.ports } : {}), random }
  }
}
