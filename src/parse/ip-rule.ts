// `ip rule show` / `ip -6 rule` (text, also `ip -d rule`) and `ip -j rule` (JSON) into RoutingRule.
// The text form is what iproute2's iprule.c prints: `PRIO:\t[not ]from SRC [to DST] [tos T] [fwmark V[/M]]
// [iif DEV [detached]] [oif DEV [detached]] [uidrange A-B] [ipproto P] [sport A[-B]] [dport A[-B]]
// ACTION [suppress_prefixlength N] [suppress_ifgroup G] [proto P]`.
import type { SourceRef } from '../model/evidence.js'
import { formatCidr, parseCidr, type Cidr, type Family } from '../model/ip.js'
import { normaliseTableName, type RoutingRule, type RuleAction } from '../model/routing.js'
import { lines, type ParseContext } from './context.js'

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

const RULE_LINE = /^\s*(\d+):\s+(.*)$/

/** DSCP class names iproute2 may print for `tos` from /etc/iproute2/rt_dsfield (the value is the whole TOS byte). */
const DSFIELD_NAMES: Record<string, number> = {
  default: 0x00, lowdelay: 0x10, throughput: 0x08, reliability: 0x04, 'mincost': 0x02,
  CS0: 0x00, CS1: 0x20, CS2: 0x40, CS3: 0x60, CS4: 0x80, CS5: 0xa0, CS6: 0xc0, CS7: 0xe0, EF: 0xb8,
  AF11: 0x28, AF12: 0x30, AF13: 0x38, AF21: 0x48, AF22: 0x50, AF23: 0x58,
  AF31: 0x68, AF32: 0x70, AF33: 0x78, AF41: 0x88, AF42: 0x90, AF43: 0x98,
}

/** Reads a number as iproute2 prints it: decimal or `0x` hex. */
export function parseIpNumber(text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  if (/^0x[0-9a-f]+$/i.test(text)) return Number.parseInt(text.slice(2), 16)
  if (/^\d+$/.test(text)) return Number(text)
  return undefined
}

function parseTos(text: string): number | undefined {
  return parseIpNumber(text) ?? DSFIELD_NAMES[text]
}

function parseRange(text: string): { from: number; to: number } | undefined {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text)
  if (!m) return undefined
  const from = Number(m[1])
  const to = m[2] === undefined ? from : Number(m[2])
  return from <= to ? { from, to } : undefined
}

/** `from all` is no selector; `from 10.0.9.88` is a /32 (or /128). */
function parseSelector(text: string): Cidr | 'all' | undefined {
  if (text === 'all') return 'all'
  return parseCidr(text)
}

function fileFamily(text: string, ctx: ParseContext): Family {
  if (ctx.family) return ctx.family
  // One `ip rule` listing is one family; rules without addresses take the family of the others.
  for (const m of text.slice(0, 65536).matchAll(/\b(?:from|to)\s+(\S+)/g)) {
    const c = m[1] === 'all' ? undefined : parseCidr(m[1] ?? '')
    if (c) return c.family
  }
  return 4
}

/** Parses `ip rule show` text or `ip -j rule` JSON (detected by the leading `[`). */
export function parseIpRules(text: string, ctx: ParseContext): RoutingRule[] {
  if (/^\s*\[/.test(text)) return parseIpRulesJson(text, ctx)
  const family = fileFamily(text, ctx)
  const rules: RoutingRule[] = []
  for (const { line, text: raw } of lines(text)) {
    if (raw.trim() === '') continue
    const m = RULE_LINE.exec(raw)
    if (!m) {
      ctx.sink.warn('ip-rule.unknown-line', 'not an `ip rule` line', line, raw)
      continue
    }
    const rule = parseRuleTokens(Number(m[1]), (m[2] ?? '').trim().split(/\s+/), family, { artifact: ctx.artifact, line, text: raw.trim() }, ctx)
    if (rule) rules.push(rule)
  }
  return rules
}

function parseRuleTokens(priority: number, tokens: string[], family: Family, ref: SourceRef, ctx: ParseContext): RoutingRule | undefined {
  const rule: Mutable<RoutingRule> = { family, priority, not: false, l3mdev: false, action: { kind: 'nop' }, ref }
  let action: RuleAction | undefined
  const bad = (what: string): void => ctx.sink.warn('ip-rule.bad-value', what, ref.line, ref.text)
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!
    const next = (): string | undefined => tokens[++i]
    switch (t) {
      case 'not': rule.not = true; break
      case 'from':
      case 'to': {
        const v = next()
        const sel = v === undefined ? undefined : parseSelector(v)
        if (sel === undefined) { bad(`bad ${t} selector ${v ?? ''}`); break }
        if (sel === 'all') break
        if (sel.family !== family) {
          if (ctx.family) ctx.sink.warn('ip-rule.family-mismatch', `IPv${sel.family} selector in an IPv${family} listing`, ref.line, ref.text)
          rule.family = sel.family
        }
        if (t === 'from') rule.from = sel
        else rule.to = sel
        break
      }
      case 'tos':
      case 'dsfield': {
        const v = next()
        const n = v === undefined ? undefined : parseTos(v)
        if (n === undefined) bad(`bad tos ${v ?? ''}`)
        else rule.tos = n
        break
      }
      case 'dscp': {
        // iproute2 ≥ 6.x: DSCP is the upper six bits of the TOS byte.
        const n = parseIpNumber(next())
        if (n === undefined) bad('bad dscp')
        else rule.tos = (n << 2) & 0xff
        break
      }
      case 'fwmark': {
        const v = next() ?? ''
        const [vt, mt] = v.split('/')
        const value = parseIpNumber(vt)
        const mask = mt === undefined ? 0xffffffff : parseIpNumber(mt)
        if (value === undefined || mask === undefined) bad(`bad fwmark ${v}`)
        else rule.fwmark = { value, mask }
        break
      }
      case 'iif':
      case 'oif': {
        const v = next()
        if (v === undefined) { bad(`${t} without a device`); break }
        if (t === 'iif') rule.iif = v
        else rule.oif = v
        if (tokens[i + 1] === '[detached]') {
          i++
          if (t === 'iif') rule.iifDetached = true
          else rule.oifDetached = true
        }
        break
      }
      case 'l3mdev': rule.l3mdev = true; break
      case 'uidrange': {
        const r = parseRange(next() ?? '')
        if (!r) bad('bad uidrange')
        else rule.uidrange = r
        break
      }
      case 'ipproto': {
        const v = next()
        if (v === undefined) bad('ipproto without a protocol')
        else rule.ipproto = v
        break
      }
      case 'sport':
      case 'dport': {
        const r = parseRange(next() ?? '')
        if (!r) bad(`bad ${t}`)
        else if (t === 'sport') rule.sport = r
        else rule.dport = r
        break
      }
      case 'lookup':
      case 'table': {
        const v = next()
        if (v === undefined) { bad('lookup without a table'); break }
        // An l3mdev rule has no table of its own: the VRF device's table is used (`lookup [l3mdev-table]`).
        if (v === '[l3mdev-table]') {
          rule.l3mdev = true
          action = { kind: 'lookup', table: 'l3mdev' }
        } else {
          action = { kind: 'lookup', table: normaliseTableName(v) }
        }
        break
      }
      case 'goto': {
        const n = parseIpNumber(next())
        if (n === undefined) bad('bad goto target')
        else action = { kind: 'goto', priority: n }
        if (tokens[i + 1] === '[unresolved]') i++
        break
      }
      case 'unreachable':
      case 'prohibit':
      case 'blackhole':
      case 'nop':
        action = { kind: t }
        break
      case 'suppress_prefixlength': {
        const n = parseIpNumber(next())
        if (n === undefined) bad('bad suppress_prefixlength')
        else rule.suppressPrefixlength = n
        break
      }
      case 'suppress_ifgroup': {
        const v = next()
        if (v === undefined) bad('suppress_ifgroup without a group')
        else rule.suppressIfgroup = v
        break
      }
      case 'proto':
      case 'protocol': {
        const v = next()
        if (v === undefined) bad('proto without a value')
        else rule.proto = v
        break
      }
      case 'realms':
      case 'flowlabel':
        // Routing realms and IPv6 flow labels do not decide which table a pod's packet uses on EKS nodes.
        ctx.sink.info('ip-rule.ignored-selector', `${t} ${tokens[i + 1] ?? ''} is not modelled`, ref.line, ref.text)
        i++
        break
      case 'map-to':
      case 'nat':
        // Route NAT was removed from Linux in 2.6; a rule that still shows it behaves as a plain lookup.
        ctx.sink.warn('ip-rule.obsolete-nat', `${t} ${tokens[i + 1] ?? ''} (kernel route NAT) is not modelled`, ref.line, ref.text)
        i++
        break
      default:
        ctx.sink.warn('ip-rule.unknown-selector', `unknown word ${JSON.stringify(t)}`, ref.line, ref.text)
    }
  }
  if (!action) {
    ctx.sink.warn('ip-rule.no-action', 'rule without lookup/goto/type: treated as nop', ref.line, ref.text)
    action = { kind: 'nop' }
  }
  rule.action = action
  return rule
}

function jsonRef(ctx: ParseContext, value: unknown): SourceRef {
  const text = JSON.stringify(value) ?? ''
  return { artifact: ctx.artifact, line: 0, text: text.length > 400 ? `${text.slice(0, 397)}...` : text }
}

function parseIpRulesJson(text: string, ctx: ParseContext): RoutingRule[] {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (e) {
    ctx.sink.error('ip-rule.bad-json', `not valid JSON: ${(e as Error).message}`)
    return []
  }
  if (!Array.isArray(doc)) {
    ctx.sink.error('ip-rule.bad-json', '`ip -j rule` output is a JSON array')
    return []
  }
  const family: Family = ctx.family ?? (doc.some((r) => typeof r === 'object' && r !== null && [(r as Record<string, unknown>)['src'], (r as Record<string, unknown>)['dst']].some((a) => typeof a === 'string' && a.includes(':'))) ? 6 : 4)
  const rules: RoutingRule[] = []
  for (const entry of doc) {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      ctx.sink.warn('ip-rule.bad-entry', 'rule entry is not an object', 0, JSON.stringify(entry))
      continue
    }
    const r = entry as Record<string, unknown>
    // Rebuild the text form and read it with the text parser: one set of semantics for both renderings.
    const tokens: string[] = []
    const str = (k: string): string | undefined => (typeof r[k] === 'string' || typeof r[k] === 'number' ? String(r[k]) : undefined)
    if ('not' in r) tokens.push('not')
    const src = str('src')
    tokens.push('from', src === undefined || src === 'all' ? 'all' : str('srclen') !== undefined ? `${src}/${str('srclen')}` : src)
    const dst = str('dst')
    if (dst !== undefined && dst !== 'all') tokens.push('to', str('dstlen') !== undefined ? `${dst}/${str('dstlen')}` : dst)
    if (str('tos') !== undefined) tokens.push('tos', str('tos')!)
    if (str('dscp') !== undefined) tokens.push('dscp', str('dscp')!)
    if (str('fwmark') !== undefined) tokens.push('fwmark', str('fwmask') !== undefined ? `${str('fwmark')}/${str('fwmask')}` : str('fwmark')!)
    if (str('iif') !== undefined) tokens.push('iif', str('iif')!, ...('iif_detached' in r ? ['[detached]'] : []))
    if (str('oif') !== undefined) tokens.push('oif', str('oif')!, ...('oif_detached' in r ? ['[detached]'] : []))
    if ('l3mdev' in r) tokens.push('l3mdev')
    if (str('uid_start') !== undefined) tokens.push('uidrange', `${str('uid_start')}-${str('uid_end') ?? str('uid_start')}`)
    if (str('ipproto') !== undefined) tokens.push('ipproto', str('ipproto')!)
    for (const p of ['sport', 'dport']) {
      if (str(p) !== undefined) tokens.push(p, str(p)!)
      else if (str(`${p}_start`) !== undefined) tokens.push(p, `${str(`${p}_start`)}-${str(`${p}_end`) ?? str(`${p}_start`)}`)
    }
    if (str('table') !== undefined) tokens.push('lookup', str('table')!)
    else if (str('goto') !== undefined) tokens.push('goto', str('goto')!)
    else if (str('action') !== undefined) tokens.push(str('action')!)
    else if ('nop' in r) tokens.push('nop')
    else if ('l3mdev' in r) tokens.push('lookup', '[l3mdev-table]')
    if (str('suppress_prefixlen') !== undefined) tokens.push('suppress_prefixlength', str('suppress_prefixlen')!)
    if (str('suppress_ifgroup') !== undefined) tokens.push('suppress_ifgroup', str('suppress_ifgroup')!)
    if (str('protocol') !== undefined) tokens.push('proto', str('protocol')!)
    const known = new Set(['priority', 'not', 'src', 'srclen', 'dst', 'dstlen', 'tos', 'dscp', 'fwmark', 'fwmask', 'iif', 'iif_detached', 'oif', 'oif_detached',
      'l3mdev', 'uid_start', 'uid_end', 'ipproto', 'sport', 'sport_start', 'sport_end', 'dport', 'dport_start', 'dport_end', 'table', 'goto', 'action', 'nop',
      'suppress_prefixlen', 'suppress_ifgroup', 'protocol', 'realms', 'flowlabel', 'flowlabel_mask', 'flow_to', 'flow_from'])
    const ref = jsonRef(ctx, r)
    for (const k of Object.keys(r)) if (!known.has(k)) ctx.sink.warn('ip-rule.unknown-selector', `unknown key ${JSON.stringify(k)}`, 0, ref.text)
    const priority = typeof r['priority'] === 'number' ? r['priority'] : 0
    if (typeof r['priority'] !== 'number') ctx.sink.warn('ip-rule.bad-value', 'rule without a priority', 0, ref.text)
    const rule = parseRuleTokens(priority, tokens, family, ref, ctx)
    if (rule) rules.push(rule)
  }
  return rules
}

/** Prints a rule the way `ip rule show` does (used for round trips and for showing evidence of derived rules). */
export function formatIpRule(rule: RoutingRule): string {
  const parts: string[] = []
  if (rule.not) parts.push('not')
  parts.push('from', rule.from ? formatSelector(rule.from) : 'all')
  if (rule.to) parts.push('to', formatSelector(rule.to))
  if (rule.tos !== undefined) parts.push('tos', `0x${rule.tos.toString(16).padStart(2, '0')}`)
  if (rule.fwmark) parts.push('fwmark', rule.fwmark.mask === 0xffffffff ? `0x${rule.fwmark.value.toString(16)}` : `0x${rule.fwmark.value.toString(16)}/0x${rule.fwmark.mask.toString(16)}`)
  if (rule.iif) parts.push('iif', rule.iif, ...(rule.iifDetached ? ['[detached]'] : []))
  if (rule.oif) parts.push('oif', rule.oif, ...(rule.oifDetached ? ['[detached]'] : []))
  if (rule.uidrange) parts.push('uidrange', `${rule.uidrange.from}-${rule.uidrange.to}`)
  if (rule.ipproto) parts.push('ipproto', rule.ipproto)
  if (rule.sport) parts.push('sport', rule.sport.from === rule.sport.to ? `${rule.sport.from}` : `${rule.sport.from}-${rule.sport.to}`)
  if (rule.dport) parts.push('dport', rule.dport.from === rule.dport.to ? `${rule.dport.from}` : `${rule.dport.from}-${rule.dport.to}`)
  const a = rule.action
  if (a.kind === 'lookup') parts.push('lookup', rule.l3mdev && a.table === 'l3mdev' ? '[l3mdev-table]' : a.table)
  else if (a.kind === 'goto') parts.push('goto', String(a.priority))
  else parts.push(a.kind)
  if (rule.suppressPrefixlength !== undefined) parts.push('suppress_prefixlength', String(rule.suppressPrefixlength))
  if (rule.suppressIfgroup !== undefined) parts.push('suppress_ifgroup', rule.suppressIfgroup)
  if (rule.proto !== undefined) parts.push('proto', rule.proto)
  return `${rule.priority}:\t${parts.join(' ')}`
}

function formatSelector(c: Cidr): string {
  const s = formatCidr(c)
  // ip prints host prefixes without the length.
  return c.prefix === (c.family === 4 ? 32 : 128) ? s.replace(/\/\d+$/, '') : s
}

/** Cheap content check used by the bundle loader: lines of `PRIO:<tab>from …`. */
export function looksLikeIpRule(text: string): boolean {
  const head = text.slice(0, 4096)
  if (/^\s*\[\s*\{/.test(head)) return /"priority"\s*:/.test(head) && /"(?:src|table|action|goto|nop)"\s*:/.test(head) && !/"dst"\s*:\s*"[^"]*"\s*,\s*"(?:gateway|dev)"/.test(head)
  const ls = head.split(/\r?\n/).filter((l) => l.trim() !== '').slice(0, 20)
  if (ls.length === 0) return false
  const hits = ls.filter((l) => /^\s*\d+:\s+(?:not\s+)?from\s+\S+/.test(l)).length
  return hits >= Math.max(1, Math.ceil(ls.length * 0.6))
}
