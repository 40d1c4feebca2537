// `conntrack -L` (also `-o extended`, `-f ipv6`, /proc/net/nf_conntrack) and `conntrack -S`.
// A flow line is `[ipv4 2 ]PROTO PROTONUM TIMEOUT [STATE] src= dst= sport= dport= [packets= bytes=] [UNREPLIED]
// src= dst= sport= dport= [packets= bytes=] [ASSURED] mark= [secctx=] [zone=] use= [id=]`; the first tuple is the
// original direction, the second the reply (where a NATed connection shows its translated addresses).
import type { ConntrackCpuStats, ConntrackEntry, ConntrackTuple } from '../model/conntrack.js'
import { parseIp, type IpAddress } from '../model/ip.js'
import { lines, type ParseContext } from './context.js'

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/** The tool's own summary line, printed on stderr and often captured with `2>&1`. */
const SUMMARY = /^conntrack v[\d.]+ \(conntrack-tools\): \d+ flow entries have been shown\.\s*$/
const STATS_LINE = /^\s*cpu=\d+\s/
/** Keys that do not change what natlens concludes about a flow. */
const IGNORED_KEYS: ReadonlySet<string> = new Set(['id', 'secctx', 'labels', 'helper', 'delta-time', 'zone-orig', 'zone-reply', 'timestamp', 'start', 'stop'])

interface TupleDraft { src?: IpAddress; dst?: IpAddress; sport?: number; dport?: number; type?: number; code?: number; id?: number; packets?: number; bytes?: number }

export function parseConntrack(text: string, ctx: ParseContext): ConntrackEntry[] {
  const out: ConntrackEntry[] = []
  for (const { line, text: raw } of lines(text)) {
    const t = raw.trim()
    if (t === '' || SUMMARY.test(t) || STATS_LINE.test(raw) || /^\d+$/.test(t)) continue
    const e = parseFlowLine(t, line, ctx)
    if (e) out.push(e)
  }
  return out
}

function parseFlowLine(t: string, line: number, ctx: ParseContext): ConntrackEntry | undefined {
  const ref = { artifact: ctx.artifact, line, text: t }
  const warn = (m: string): void => ctx.sink.warn('conntrack.bad-line', m, line, t)
  const tokens = t.split(/\s+/)
  let i = 0
  let family: 4 | 6 | undefined
  if (tokens[0] === 'ipv4' || tokens[0] === 'ipv6') {
    family = tokens[0] === 'ipv4' ? 4 : 6
    i = 2
  }
  const proto = tokens[i]
  const protoNum = tokens[i + 1]
  if (proto === undefined || !/^[a-z][a-z0-9-]*$/.test(proto) || protoNum === undefined || !/^\d+$/.test(protoNum)) {
    warn('not a conntrack flow line')
    return undefined
  }
  i += 2
  let timeout: number | undefined
  if (tokens[i] !== undefined && /^\d+$/.test(tokens[i]!)) timeout = Number(tokens[i++])
  let state: string | undefined
  if (tokens[i] !== undefined && /^[A-Z_]+$/.test(tokens[i]!)) state = tokens[i++]
  const tuples: TupleDraft[] = []
  const flags: string[] = []
  const entry: { mark?: number; zone?: number; use?: number } = {}
  for (; i < tokens.length; i++) {
    const tok = tokens[i]!
    const flag = /^\[([A-Z_]+)\]$/.exec(tok)
    if (flag) { flags.push(flag[1]!); continue }
    if (tok.startsWith('[')) {
      // `[start=…] [stop=…]` timestamps may contain spaces; skip to the closing bracket.
      while (i < tokens.length && !tokens[i]!.endsWith(']')) i++
      continue
    }
    const eq = tok.indexOf('=')
    if (eq <= 0) { warn(`unexpected ${JSON.stringify(tok)}`); continue }
    const k = tok.slice(0, eq)
    const v = tok.slice(eq + 1)
    if (k === 'src') { tuples.push({}) }
    const cur = tuples[tuples.length - 1]
    const num = /^\d+$/.test(v) ? Number(v) : undefined
    switch (k) {
      case 'src': case 'dst': {
        const a = parseIp(v)
        if (!a) { warn(`bad address ${v}`); break }
        if (cur) cur[k] = a
        break
      }
      case 'sport': case 'dport': case 'type': case 'code': case 'id': case 'packets': case 'bytes':
        if (!cur || num === undefined) { warn(`${k}= outside a tuple or not a number`); break }
        cur[k] = num
        break
      case 'mark': case 'zone': case 'use':
        if (num === undefined) warn(`bad ${k}=${v}`)
        else entry[k] = num
        break
      default:
        if (!IGNORED_KEYS.has(k)) ctx.sink.info('conntrack.ignored-key', `${k}= is not modelled`, line, t)
    }
  }
  if (tuples.length !== 2) { warn(`expected an original and a reply tuple, found ${tuples.length}`); return undefined }
  const icmp = proto === 'icmp' || proto === 'icmpv6'
  const mk = (d: TupleDraft): ConntrackTuple | undefined => {
    if (!d.src || !d.dst) return undefined
    const tuple: Mutable<ConntrackTuple> = { src: d.src, dst: d.dst, sport: d.sport ?? null, dport: d.dport ?? null }
    if (icmp && d.type !== undefined) tuple.icmp = { type: d.type, code: d.code ?? 0, id: d.id ?? 0 }
    return tuple
  }
  const orig = mk(tuples[0]!)
  const reply = mk(tuples[1]!)
  if (!orig || !reply) { warn('tuple without src= or dst='); return undefined }
  const fam = family ?? orig.src.family
  const e: Mutable<ConntrackEntry> = { family: fam, proto, orig, reply, flags, ref }
  if (timeout !== undefined) e.timeout = timeout
  if (state !== undefined) e.state = state
  if (entry.mark !== undefined) e.mark = entry.mark
  if (entry.zone !== undefined) e.zone = entry.zone
  if (entry.use !== undefined) e.use = entry.use
  const [o, r] = tuples as [TupleDraft, TupleDraft]
  if (o.packets !== undefined || r.packets !== undefined) {
    e.counters = { origPackets: o.packets ?? 0, origBytes: o.bytes ?? 0, replyPackets: r.packets ?? 0, replyBytes: r.bytes ?? 0 }
  }
  return e
}

/** `cpu=0 found=0 invalid=12 insert=0 …` lines. Other lines (a flow listing in the same file) are skipped. */
export function parseConntrackStats(text: string, ctx: ParseContext): ConntrackCpuStats[] {
  const out: ConntrackCpuStats[] = []
  for (const { line, text: raw } of lines(text)) {
    if (!STATS_LINE.test(raw)) continue
    const counters: Record<string, number> = {}
    let cpu: number | undefined
    for (const tok of raw.trim().split(/\s+/)) {
      const m = /^([a-z_]+)=(\d+)$/.exec(tok)
      if (!m) { ctx.sink.warn('conntrack.bad-stats', `unexpected ${JSON.stringify(tok)}`, line, raw.trim()); continue }
      if (m[1] === 'cpu') cpu = Number(m[2])
      else counters[m[1]!] = Number(m[2])
    }
    if (cpu !== undefined) out.push({ cpu, counters, ref: { artifact: ctx.artifact, line, text: raw.trim() } })
  }
  return out
}

const FLOW_LINE = /^(?:ipv[46]\s+\d+\s+)?[a-z][a-z0-9-]*\s+\d+\s+(?:\d+\s+)?(?:[A-Z_]+\s+)?src=\S+\s+dst=\S+/

export function looksLikeConntrack(text: string): boolean {
  const ls = text.slice(0, 8192).split(/\r?\n/).filter((l) => l.trim() !== '' && !SUMMARY.test(l.trim()) && !STATS_LINE.test(l)).slice(0, 20)
  if (ls.length === 0) return false
  return ls.filter((l) => FLOW_LINE.test(l.trim())).length >= Math.ceil(ls.length * 0.6)
}

export function looksLikeConntrackStats(text: string): boolean {
  return /^\s*cpu=\d+\s+(?:found|entries|searched)=\d+/m.test(text.slice(0, 8192))
}
