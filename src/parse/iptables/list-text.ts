// The extension text at the end of an `iptables -nvL` rule line, as the libxt print functions write it
// (`/* AWS, SNAT */ ADDRTYPE match dst-type !LOCAL to:10.0.3.45 random-fully`), read into the same Match and
// Target values as the iptables-save options, so the engine cannot tell which rendering it was given.
import type { Family } from '../../model/ip.js'
import type { DiagnosticSink } from '../../model/evidence.js'
import type { Match, NatRange, Target } from '../../model/netfilter.js'
import {
  invertU32, normalizeIcmpType, normalizeProtocol, parseAddrTypes, parseCtStates, parseMarkMask, parseNatRange,
  parsePortList, parsePortRange, parseU32, tcpFlagsFromBits, parseCidrQuick as parseCidr, parseIpQuick as parseIp,
} from './values.js'
import { OPAQUE_TARGETS, PASSIVE_TARGETS } from './rule-words.js'

interface Tok {
  readonly t: string
  /** `/* … *\/` comment text, or a double-quoted string (LOG prefixes, u32 programs, helper names). */
  readonly kind: 'word' | 'comment' | 'quoted'
}

export function tokenizeListExtension(text: string): Tok[] {
  const out: Tok[] = []
  let i = 0
  const n = text.length
  while (i < n) {
    const c = text.charCodeAt(i)
    if (c === 32 || c === 9) { i++; continue }
    if (c === 47 && text.charCodeAt(i + 1) === 42) { // "/*"
      const end = text.indexOf('*/', i + 2)
      const stop = end < 0 ? n : end
      out.push({ t: text.slice(i + 2, stop).replace(/^ /, '').replace(/ $/, ''), kind: 'comment' })
      i = end < 0 ? n : end + 2
      continue
    }
    if (c === 34) {
      const end = text.indexOf('"', i + 1)
      const stop = end < 0 ? n : end
      out.push({ t: text.slice(i + 1, stop), kind: 'quoted' })
      i = end < 0 ? n : end + 1
      continue
    }
    let j = i
    while (j < n) { const d = text.charCodeAt(j); if (d === 32 || d === 9) break; j++ }
    // A word glued to a quote (`u32 !"…"`) is rare; keep it as one word.
    out.push({ t: text.slice(i, j), kind: 'word' })
    i = j
  }
  return out
}

export interface ListExtensionEnv {
  readonly sink: DiagnosticSink
  readonly line: number
  readonly text: string
  readonly family: Family | undefined
}

export interface ListExtension {
  matches: Match[]
  target: Target
  comment?: string
  goto: boolean
  family?: Family
}

const ALL_ONES = 0xffffffff
const PORT_WORDS = new Set(['spt', 'spts', 'dpt', 'dpts'])

function stripBang(v: string): { v: string; neg: boolean } {
  return v.startsWith('!') ? { v: v.slice(1), neg: true } : { v, neg: false }
}

/** Words that begin the printed form of a match module; anything else is target text or unknown. */
const MATCH_START = new Set([
  'tcp', 'udp', 'udplite', 'sctp', 'dccp', 'multiport', 'ADDRTYPE', 'mark', 'connmark', 'ctstate', 'ctproto', 'ctorigsrc',
  'ctorigdst', 'ctreplsrc', 'ctrepldst', 'ctorigsrcport', 'ctorigdstport', 'ctreplsrcport', 'ctrepldstport', 'ctstatus',
  'ctexpire', 'ctdir', 'state', 'statistic', 'recent:', 'match-set', 'source', 'destination', 'icmptype', 'icmp',
  'ipv6-icmptype', 'ipv6-icmp', 'MAC', 'PHYSDEV', 'owner', 'socket', 'limit:', 'length', 'helper', 'TTL', 'HL', 'PKTTYPE',
  'u32', 'nfacct-name', 'frag', '#conn', 'connlimit', 'DSCP', 'dscp', 'tos', 'TOS', 'ECN', 'connbytes', 'quota:', 'esp', 'ah',
  'realm', 'cpu', 'rpfilter', 'policy', 'devgroup', 'cgroup', 'STRING', 'TIME', 'tcpmss', 'ipvs', 'cluster', 'connlabel',
])

export class ListExtensionParser {
  i = 0
  readonly matches: Match[] = []
  private comment: string | undefined
  private family: Family | undefined
  private goto = false
  private readonly ranges: NatRange[] = []
  private readonly flags = new Set<string>()
  private targetResult: Target | undefined
  private targetWords: string[] = []
  private unknownWords: string[] = []

  constructor(readonly toks: readonly Tok[], readonly targetName: string, readonly env: ListExtensionEnv) {}

  private peek(k = 0): string | undefined {
    return this.toks[this.i + k]?.t
  }

  private word(): string | undefined {
    const t = this.toks[this.i]
    if (!t) return undefined
    this.i++
    return t.t
  }

  private warn(code: string, message: string): void {
    this.env.sink.warn(code, message, this.env.line, this.env.text)
  }

  private flushUnknown(): void {
    if (this.unknownWords.length === 0) return
    const text = this.unknownWords.join(' ')
    this.warn('iptables.unknown-match', `extension text "${text}" is not a match natlens reads; the rule is kept but cannot be evaluated`)
    this.matches.push({ kind: 'opaque', negated: text.includes('!'), module: this.unknownWords[0]!, text })
    this.unknownWords = []
  }

  parse(): ListExtension {
    while (this.i < this.toks.length) {
      const tok = this.toks[this.i]!
      if (tok.kind === 'comment') {
        this.flushUnknown()
        this.i++
        if (this.comment === undefined) this.comment = tok.t
        this.matches.push({ kind: 'comment', text: tok.t })
        continue
      }
      if (tok.t === '[goto]') { this.i++; this.goto = true; continue }
      const start = this.i
      if (tok.kind === 'word' && this.targetStarts(tok.t)) {
        this.flushUnknown()
        this.readTarget()
        continue
      }
      if (tok.kind === 'word' && this.passiveTextStarts(tok.t)) {
        // "DSCP set 0x10", "TTL set to 5": the target's own text, not the dscp/ttl match of the same spelling.
        this.flushUnknown()
        while (this.i < this.toks.length) this.targetWords.push(this.toks[this.i++]!.t)
        break
      }
      if (tok.kind === 'word' && this.readMatch()) { this.flushUnknown(); continue }
      this.i = start
      if (this.isPassiveOrOpaqueTarget()) {
        // LOG, NFLOG, CT, …: the rest of the line is the target's own text.
        this.flushUnknown()
        while (this.i < this.toks.length) this.targetWords.push(this.toks[this.i++]!.t)
        break
      }
      this.unknownWords.push(tok.kind === 'quoted' ? `"${tok.t}"` : tok.t)
      this.i++
    }
    this.flushUnknown()
    const out: ListExtension = { matches: this.matches, target: this.buildTarget(), goto: this.goto }
    if (this.comment !== undefined) out.comment = this.comment
    if (this.family !== undefined) out.family = this.family
    return out
  }

  /** Whether a word begins the printed text of this rule's passive or opaque target (LOG, NFLOG, CT, DSCP, …). */
  private passiveTextStarts(w: string): boolean {
    if (!this.isPassiveOrOpaqueTarget()) return false
    if (w === this.targetName) return true
    const starts = PASSIVE_TEXT_START[this.targetName]
    return starts !== undefined && starts.some((s) => w.startsWith(s))
  }

  private isPassiveOrOpaqueTarget(): boolean {
    return PASSIVE_TARGETS.has(this.targetName) || OPAQUE_TARGETS.has(this.targetName)
  }

  // ---- targets ----

  private targetStarts(w: string): boolean {
    switch (this.targetName) {
      case 'SNAT': case 'DNAT': return w.startsWith('to:') || w === 'random' || w === 'random-fully' || w === 'persistent'
      case 'MASQUERADE': return w === 'masq' || w === 'random' || w === 'random-fully'
      case 'REDIRECT': return w === 'redir' || w === 'random'
      case 'MARK': return w === 'MARK'
      case 'CONNMARK': return w === 'CONNMARK'
      case 'REJECT': return w === 'reject-with'
      default: return false
    }
  }

  private readTarget(): void {
    const w = this.word()!
    if (w.startsWith('to:')) {
      const r = parseNatRange(w.slice(3))
      if (!r) this.warn('iptables.bad-value', `bad NAT range ${w}`)
      else { this.ranges.push(r); if (r.minAddr) this.noteFamily(r.minAddr.family) }
      return
    }
    if (w === 'random' || w === 'random-fully' || w === 'persistent') { this.flags.add(w); return }
    if (w === 'masq') {
      if (this.peek() === 'ports:') { this.i++; this.flags.add(`ports=${this.word() ?? ''}`) }
      return
    }
    if (w === 'redir') {
      if (this.peek() === 'ports') { this.i++; this.flags.add(`ports=${this.word() ?? ''}`) }
      return
    }
    if (w === 'reject-with') { this.flags.add(`with=${this.word() ?? ''}`); return }
    if (w === 'MARK' || w === 'CONNMARK') this.readMarkTarget(w)
  }

  private readMarkTarget(name: 'MARK' | 'CONNMARK'): void {
    const op = this.word()
    // libxt_MARK / libxt_CONNMARK print "set", "xset v/m", "and ~mask", "or v", "xor v" for xt_MARK's (value, mask).
    const readVal = (): number | undefined => {
      const v = this.word()
      const n = v === undefined ? undefined : parseU32(v.replace(/^~/, ''))
      if (n === undefined) this.warn('iptables.bad-value', `${name} ${op ?? ''}: bad value ${v ?? '(none)'}`)
      return n
    }
    const set = (value: number, mask: number): void => {
      this.targetResult = name === 'MARK' ? { kind: 'mark', value, mask } : { kind: 'connmark-set', value, mask }
    }
    switch (op) {
      case 'set': { const v = readVal(); if (v !== undefined) set(v, ALL_ONES); return }
      case 'xset': {
        const t = this.word()
        const mm = t === undefined ? undefined : parseMarkMask(t)
        if (!mm) { this.warn('iptables.bad-value', `${name} xset: bad value ${t ?? '(none)'}`); return }
        set(mm.value, mm.mask)
        return
      }
      case 'and': { const v = readVal(); if (v !== undefined) set(0, invertU32(v)); return }
      case 'or': { const v = readVal(); if (v !== undefined) set(v, v); return }
      case 'xor': { const v = readVal(); if (v !== undefined) set(v, 0); return }
      case 'save': case 'restore': {
        if (name !== 'CONNMARK') break
        let nfmask = ALL_ONES
        let ctmask = ALL_ONES
        while (this.peek() === 'mask' || this.peek() === 'nfmask' || this.peek() === 'ctmask') {
          const which = this.word()!
          const v = readVal()
          if (v === undefined) return
          if (which === 'mask') { nfmask = v; ctmask = v } else if (which === 'nfmask') nfmask = v
          else ctmask = v
        }
        this.targetResult = op === 'save' ? { kind: 'connmark-save', nfmask, ctmask } : { kind: 'connmark-restore', nfmask, ctmask }
        return
      }
    }
    this.warn('iptables.unknown-target', `${name} ${op ?? ''} is not a form natlens reads`)
    this.targetResult = { kind: 'opaque', name, text: `${name} ${op ?? ''}` }
  }

  private buildTarget(): Target {
    const name = this.targetName
    if (this.targetResult) return this.targetResult
    const flag = (f: string) => this.flags.has(f)
    const valued = (k: string): string | undefined => {
      for (const f of this.flags) if (f.startsWith(`${k}=`)) return f.slice(k.length + 1)
      return undefined
    }
    switch (name) {
      case '': return { kind: 'none' }
      case 'ACCEPT': return { kind: 'accept' }
      case 'DROP': return { kind: 'drop' }
      case 'RETURN': return { kind: 'return' }
      case 'REJECT': { const w = valued('with'); return w ? { kind: 'reject', with: w } : { kind: 'reject' } }
      case 'SNAT': return { kind: 'snat', to: this.ranges, random: flag('random'), randomFully: flag('random-fully'), persistent: flag('persistent') }
      case 'DNAT': return { kind: 'dnat', to: this.ranges, random: flag('random'), persistent: flag('persistent') }
      case 'MASQUERADE': case 'REDIRECT': {
        const p = valued('ports')
        const ports = p ? parsePortRange(p, '-') : undefined
        if (p && !ports) this.warn('iptables.bad-value', `bad ports ${p}`)
        return name === 'MASQUERADE'
          ? { kind: 'masquerade', ...(ports ? { ports } : {}), random: flag('random'), randomFully: flag('random-fully') }
          : { kind: 'redirect', ...(ports ? { ports } : {}), random: flag('random') }
      }
      case 'MARK': case 'CONNMARK':
        this.warn('iptables.unknown-target', `${name} without text natlens reads`)
        return { kind: 'opaque', name, text: this.targetWords.join(' ') }
    }
    if (PASSIVE_TARGETS.has(name)) return { kind: 'passive', name }
    if (OPAQUE_TARGETS.has(name)) {
      this.warn('iptables.unknown-target', `target ${name} is not modelled by natlens; the rule is kept but cannot be evaluated`)
      return { kind: 'opaque', name, text: [name, ...this.targetWords].join(' ') }
    }
    return { kind: 'jump', chain: name, goto: this.goto }
  }

  private noteFamily(f: Family): void {
    if (this.family === undefined) this.family = f
  }

  // ---- matches ----

  /** Reads one printed match at the cursor; false (cursor unchanged) when the word starts none. */
  private readMatch(): boolean {
    let neg = false
    let w = this.peek()!
    if (w === '!') {
      const next = this.peek(1)
      if (next === undefined || !MATCH_START.has(next)) return false
      neg = true
      this.i++
      w = next
    }
    if (!MATCH_START.has(w)) return false
    this.i++
    switch (w) {
      case 'tcp': case 'udp': case 'udplite': case 'sctp': case 'dccp': return this.protoMatch(w)
      case 'multiport': return this.multiport()
      case 'ADDRTYPE': return this.addrtype()
      case 'mark': case 'connmark': return this.markMatch(w)
      case 'ctstate': case 'state': return this.ctstate(neg)
      case 'ctorigsrc': case 'ctorigdst': case 'ctreplsrc': case 'ctrepldst': return this.ctaddr(w, neg)
      case 'ctorigsrcport': case 'ctorigdstport': case 'ctreplsrcport': case 'ctrepldstport': return this.ctport(w, neg)
      case 'ctproto': case 'ctstatus': case 'ctexpire': case 'ctdir': {
        const v = this.word()
        if (v === undefined) return false
        this.matches.push({ kind: 'ctstatus', negated: neg, text: `${w} ${w === 'ctproto' ? normalizeProtocol(v) : v}` })
        return true
      }
      case 'statistic': return this.statistic()
      case 'recent:': return this.recent(neg)
      case 'match-set': {
        const set = this.word()
        const flags = this.word()
        if (set === undefined || flags === undefined) return false
        while (this.peek() === 'return-nomatch' || (this.peek() === '!' && this.peek(1)?.startsWith('update-')) || this.peek()?.startsWith('update-')) this.i++
        this.matches.push({ kind: 'ipset', negated: neg, set, flags })
        return true
      }
      case 'source': case 'destination': return this.iprange(w)
      case 'icmptype': case 'ipv6-icmptype': return this.icmpNumeric(w === 'ipv6-icmptype', neg)
      case 'icmp': case 'ipv6-icmp': return this.icmpWord(w === 'ipv6-icmp')
      case 'nfacct-name': this.word(); return true // counts only; never excludes a packet
      default: return this.opaqueMatch(w, neg)
    }
  }

  private protoMatch(proto: string): boolean {
    // libxt_tcp/udp: "spt:80", "spts:1:1023", "dpt:!80", "flags:0x17/0x02", "option=2"; "tcp" alone has no options.
    for (;;) {
      const w = this.peek()
      if (w === undefined) return true
      const colon = w.indexOf(':')
      const key = colon > 0 ? w.slice(0, colon) : ''
      if (PORT_WORDS.has(key)) {
        this.i++
        const { v, neg } = stripBang(w.slice(colon + 1))
        const r = parsePortRange(v)
        if (!r) { this.warn('iptables.bad-value', `bad port ${w}`); continue }
        this.matches.push({ kind: 'port', which: key.startsWith('s') ? 'src' : 'dst', negated: neg, ranges: [r] })
        continue
      }
      if (key === 'flags' && proto === 'tcp') {
        this.i++
        const { v, neg } = stripBang(w.slice(colon + 1))
        const slash = v.indexOf('/')
        const mask = parseU32(v.slice(0, slash))
        const comp = parseU32(v.slice(slash + 1))
        if (slash < 0 || mask === undefined || comp === undefined) { this.warn('iptables.bad-value', `bad TCP flags ${w}`); continue }
        this.matches.push({ kind: 'tcp-flags', negated: neg, mask: tcpFlagsFromBits(mask), comp: tcpFlagsFromBits(comp) })
        continue
      }
      if (w.startsWith('option=') || w.startsWith('!option=')) {
        this.i++
        this.matches.push({ kind: 'opaque', negated: w.startsWith('!'), module: proto, text: w })
        continue
      }
      return true
    }
  }

  private multiport(): boolean {
    const which = this.word()
    const v = this.word()
    if (v === undefined || (which !== 'dports' && which !== 'sports' && which !== 'ports')) return false
    const { v: list, neg } = stripBang(v)
    const ranges = parsePortList(list)
    if (!ranges) { this.warn('iptables.bad-value', `bad port list ${v}`); return true }
    this.matches.push({ kind: 'port', which: which === 'dports' ? 'dst' : which === 'sports' ? 'src' : 'either', negated: neg, ranges })
    return true
  }

  private addrtype(): boolean {
    if (this.peek() === 'match') this.i++
    const found: { which: 'src' | 'dst'; text: string }[] = []
    let limitIn = false
    let limitOut = false
    for (;;) {
      const w = this.peek()
      if (w === 'src-type' || w === 'dst-type') { this.i++; found.push({ which: w === 'src-type' ? 'src' : 'dst', text: this.word() ?? '' }); continue }
      if (w === 'limit-in') { this.i++; limitIn = true; continue }
      if (w === 'limit-out') { this.i++; limitOut = true; continue }
      break
    }
    for (const f of found) {
      const { v, neg } = stripBang(f.text)
      const types = parseAddrTypes(v)
      if (!types) { this.warn('iptables.bad-value', `bad address type ${f.text}`); continue }
      this.matches.push({ kind: 'addrtype', which: f.which, negated: neg, types, ...(limitIn ? { limitIfaceIn: true } : {}), ...(limitOut ? { limitIfaceOut: true } : {}) })
    }
    return true
  }

  private markMatch(kind: 'mark' | 'connmark'): boolean {
    if (this.peek() !== 'match') return false
    this.i++
    let neg = false
    let v = this.word()
    if (v === '!') { neg = true; v = this.word() }
    if (v === undefined) return false
    const s = stripBang(v)
    const mm = parseMarkMask(s.v)
    if (!mm) { this.warn('iptables.bad-value', `bad mark ${v}`); return true }
    this.matches.push({ kind, negated: neg || s.neg, value: mm.value, mask: mm.mask })
    return true
  }

  private ctstate(neg: boolean): boolean {
    let v = this.word()
    if (v === '!') { neg = true; v = this.word() }
    if (v === undefined) return false
    const s = stripBang(v)
    const states = parseCtStates(s.v)
    if (!states) { this.warn('iptables.bad-value', `bad conntrack state ${v}`); return true }
    this.matches.push({ kind: 'ctstate', negated: neg || s.neg, states })
    return true
  }

  private ctaddr(w: string, neg: boolean): boolean {
    const v = this.word()
    const cidr = v === undefined ? undefined : parseCidr(v)
    if (!cidr) { this.warn('iptables.bad-value', `bad ${w} ${v ?? ''}`); return true }
    this.noteFamily(cidr.family)
    this.matches.push({ kind: 'ctaddr', which: w.slice(2) as 'origsrc' | 'origdst' | 'replsrc' | 'repldst', negated: neg, cidr })
    return true
  }

  private ctport(w: string, neg: boolean): boolean {
    const v = this.word()
    const r = v === undefined ? undefined : parsePortRange(v)
    if (!r) { this.warn('iptables.bad-value', `bad ${w} ${v ?? ''}`); return true }
    this.matches.push({ kind: 'ctport', which: w.slice(2, -4) as 'origsrc' | 'origdst' | 'replsrc' | 'repldst', negated: neg, ranges: [r] })
    return true
  }

  private statistic(): boolean {
    if (this.word() !== 'mode') return false
    const mode = this.word()
    let neg = false
    if (this.peek() === '!') { neg = true; this.i++ }
    if (mode === 'random' && this.peek() === 'probability') {
      this.i++
      const p = Number(this.word())
      if (!(p >= 0 && p <= 1)) { this.warn('iptables.bad-value', 'bad probability'); return true }
      this.matches.push({ kind: 'statistic-random', negated: neg, probability: p })
      return true
    }
    if (mode === 'nth' && this.peek() === 'every') {
      this.i++
      const every = Number(this.word())
      let packet = 0
      if (this.peek() === 'packet') { this.i++; packet = Number(this.word()) }
      this.matches.push({ kind: 'statistic-nth', negated: neg, every, packet })
      return true
    }
    return false
  }

  /** libxt_recent: `recent: CHECK seconds: 10800 reap name: X side: source mask: 255.255.255.255`. */
  private recent(neg: boolean): boolean {
    const modeWord = this.word()
    const mode = modeWord === 'SET' ? 'set' : modeWord === 'CHECK' ? 'rcheck' : modeWord === 'UPDATE' ? 'update' : modeWord === 'REMOVE' ? 'remove' : undefined
    if (!mode) return false
    const s: Record<string, string | boolean> = {}
    for (;;) {
      const w = this.peek()
      if (w === 'seconds:' || w === 'hit_count:' || w === 'name:' || w === 'side:' || w === 'mask:') { this.i++; s[w.slice(0, -1)] = this.word() ?? ''; continue }
      if (w === 'reap' || w === 'TTL-Match') { this.i++; s[w] = true; continue }
      break
    }
    const name = typeof s.name === 'string' ? s.name : 'DEFAULT'
    const parts = [`--${mode}`]
    if (typeof s.seconds === 'string') parts.push(`--seconds ${s.seconds}`)
    if (s.reap) parts.push('--reap')
    if (typeof s.hit_count === 'string') parts.push(`--hitcount ${s.hit_count}`)
    if (s['TTL-Match']) parts.push('--rttl')
    parts.push(`--name ${name}`, `--mask ${typeof s.mask === 'string' ? s.mask : '255.255.255.255'}`, s.side === 'dest' ? '--rdest' : '--rsource')
    this.matches.push({ kind: 'recent', negated: neg, name, mode, text: parts.join(' ') })
    return true
  }

  private iprange(w: 'source' | 'destination'): boolean {
    if (this.peek() !== 'IP' || this.peek(1) !== 'range') return false
    this.i += 2
    let neg = false
    if (this.peek() === '!') { neg = true; this.i++ }
    const v = this.word() ?? ''
    const dash = v.indexOf('-')
    const from = dash > 0 ? parseIp(v.slice(0, dash)) : undefined
    const to = dash > 0 ? parseIp(v.slice(dash + 1)) : undefined
    if (!from || !to) { this.warn('iptables.bad-value', `bad address range ${v}`); return true }
    this.noteFamily(from.family)
    this.matches.push({ kind: w === 'source' ? 'src-range' : 'dst-range', negated: neg, from, to })
    return true
  }

  /** `icmptype 8`, `icmptype 3 code 4`, `ipv6-icmptype 128` (libxt_icmp prints "icmp" then "type N" unspaced). */
  private icmpNumeric(v6: boolean, neg: boolean): boolean {
    const t = this.word()
    if (t === undefined) return false
    return this.icmpCode(t, v6, neg)
  }

  private icmpCode(t: string, v6: boolean, neg: boolean): boolean {
    let text = t
    if (this.peek() === 'code') { this.i++; text = `${t}/${this.word() ?? ''}` } else if (this.peek() === 'codes') { this.i++; text = `${t}/${this.word() ?? ''}` }
    const type = normalizeIcmpType(text, v6)
    if (type === undefined) {
      this.matches.push({ kind: 'opaque', negated: neg, module: v6 ? 'icmp6' : 'icmp', text })
      return true
    }
    this.matches.push({ kind: 'icmp-type', negated: neg, type })
    return true
  }

  /** `icmp !type 3 code 4`, `icmp echo-request`, `icmp !echo-request`, `icmp any`. */
  private icmpWord(v6: boolean): boolean {
    const w = this.word()
    if (w === undefined) return true
    if (w === 'type' || w === '!type') return this.icmpCode(this.word() ?? '', v6, w === '!type')
    if (w === '!') return this.icmpWord(v6)
    const { v, neg } = stripBang(w)
    return this.icmpCode(v, v6, neg)
  }

  /**
   * Modules natlens does not evaluate (owner, socket, physdev, mac, limit, …): their printed words become one opaque
   * match. The words run to the next word that starts a match, a comment or the target's text.
   */
  private opaqueMatch(first: string, neg: boolean): boolean {
    const words = [first]
    while (this.i < this.toks.length) {
      const t = this.toks[this.i]!
      if (t.kind === 'comment') break
      if (t.kind === 'word' && this.passiveTextStarts(t.t) && !(first === 'TTL' && t.t === 'TTL')) break
      if (first === 'owner' && words.length === 1 && (t.t === 'socket' || t.t === 'UID' || t.t === 'GID' || t.t === 'incl.')) {
        // libxt_owner: "owner UID match 0", "owner GID match 0-9", "owner socket exists", "owner incl. suppl. groups".
        const n = t.t === 'socket' ? 2 : 3
        for (let j = 0; j < n && this.i < this.toks.length; j++) words.push(this.toks[this.i++]!.t)
        break
      }
      if (t.kind === 'word' && (MATCH_START.has(t.t) || this.targetStarts(t.t)) && !(first === 'TTL' && t.t === 'TTL') && !(first === 'PKTTYPE')) break
      if (t.kind === 'word' && t.t === '!' && MATCH_START.has(this.toks[this.i + 1]?.t ?? '')) break
      words.push(t.kind === 'quoted' ? `"${t.t}"` : t.t)
      this.i++
      if (first === 'PKTTYPE' && words.length === 3) break
    }
    const module = OPAQUE_MODULE_OF[first] ?? first.toLowerCase()
    this.matches.push({ kind: 'opaque', negated: neg || words.some((w) => w === '!' || w.startsWith('!')), module, text: (neg ? '! ' : '') + words.join(' ') })
    return true
  }
}

/** First words of passive and opaque targets' printed text, where it is not the target's own name. */
const PASSIVE_TEXT_START: Record<string, readonly string[]> = {
  NFLOG: ['nflog-'], CT: ['NOTRACK', 'CT'], NOTRACK: ['NOTRACK', 'CT'], IDLETIMER: ['timeout:'], SET: ['add-set', 'del-set', 'map-set'],
  NFQUEUE: ['NFQUEUE'], TPROXY: ['TPROXY'], ULOG: ['ULOG'],
}

const OPAQUE_MODULE_OF: Record<string, string> = {
  MAC: 'mac', PHYSDEV: 'physdev', 'limit:': 'limit', TTL: 'ttl', HL: 'hl', PKTTYPE: 'pkttype', '#conn': 'connlimit',
  'quota:': 'quota', STRING: 'string', TIME: 'time', DSCP: 'dscp', TOS: 'tos', ECN: 'ecn',
}

export function parseListExtension(text: string, targetName: string, env: ListExtensionEnv): ListExtension {
  return new ListExtensionParser(tokenizeListExtension(text), targetName, env).parse()
}
