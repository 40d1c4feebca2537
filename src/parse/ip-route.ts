// `ip route show table all`, `ip -6 route …`, single-table listings and `ip -j route …` into Route.
// Text lines are `[TYPE] DST [key value | flag]…` (iproute2 iproute.c print_route); a multipath route continues on
// lines that start with whitespace: `\tnexthop via A dev D weight N [onlink] [dead] [linkdown]`.
// In a single-table listing (`ip route show table 2`) the `table` keyword is absent: the table comes from ctx.table.
import type { SourceRef } from '../model/evidence.js'
import { anyCidr, formatCidr, formatIp, parseCidr, parseIp, type Family, type IpAddress } from '../model/ip.js'
import { normaliseTableName, type Nexthop, type Route, type RouteType } from '../model/routing.js'
import { lines, type ParseContext } from './context.js'

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

const ROUTE_TYPES: ReadonlySet<string> = new Set(['unicast', 'local', 'broadcast', 'anycast', 'multicast', 'unreachable', 'blackhole', 'prohibit', 'throw', 'nat'])

/** Route metrics and attributes that do not change where a packet goes: read and dropped without a diagnostic. */
const IGNORED_WITH_VALUE: ReadonlySet<string> = new Set([
  'mtu', 'advmss', 'rtt', 'rttvar', 'reordering', 'window', 'cwnd', 'initcwnd', 'initrwnd', 'ssthresh', 'realms', 'rto_min',
  'hoplimit', 'features', 'quickack', 'congctl', 'fastopen_no_cookie', 'pref', 'expires', 'nhid', 'error', 'age', 'users', 'used', 'ipid',
  'cache', 'ttl-propagate', 'mark',
])
const IGNORED_FLAGS: ReadonlySet<string> = new Set(['pervasive', 'notify', 'offload', 'trap', 'rt_offload', 'rt_trap', 'rt_offload_failed', 'unresolved', 'cloned', 'lock'])

function parseIpNumber(text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  if (/^0x[0-9a-f]+$/i.test(text)) return Number.parseInt(text.slice(2), 16)
  if (/^\d+$/.test(text)) return Number(text)
  return undefined
}

interface NexthopDraft { via?: IpAddress; dev?: string; weight: number; onlink: boolean; dead: boolean; linkdown: boolean }

/** Parses text or JSON (detected by the leading `[`). */
export function parseIpRoutes(text: string, ctx: ParseContext): Route[] {
  if (/^\s*\[/.test(text)) return parseIpRoutesJson(text, ctx)
  const defaultTable = normaliseTableName(ctx.table ?? 'main')
  const routes: Route[] = []
  let current: Mutable<Route> | undefined
  let currentHops: Nexthop[] | undefined
  const flush = (): void => {
    if (current) {
      if (currentHops && currentHops.length > 0) current.nexthops = currentHops
      routes.push(current)
    }
    current = undefined
    currentHops = undefined
  }
  for (const { line, text: raw } of lines(text)) {
    if (raw.trim() === '') continue
    const tokens = raw.trim().split(/\s+/)
    if (/^\s/.test(raw)) {
      // A continuation line of a multipath route.
      if (tokens[0] === 'nexthop' && current) {
        const hop = parseNexthopTokens(tokens.slice(1), { artifact: ctx.artifact, line, text: raw.trim() }, ctx)
        ;(currentHops ??= []).push(hop)
        continue
      }
      ctx.sink.warn('ip-route.unknown-line', 'indented line that is not a `nexthop` of the route above', line, raw)
      continue
    }
    flush()
    current = parseRouteTokens(tokens, { artifact: ctx.artifact, line, text: raw.trim() }, defaultTable, ctx)
  }
  flush()
  return routes
}

function parseNexthopTokens(tokens: string[], ref: SourceRef, ctx: ParseContext): Nexthop {
  const hop: NexthopDraft = { weight: 1, onlink: false, dead: false, linkdown: false }
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!
    switch (t) {
      case 'via': {
        let v = tokens[++i]
        if (v === 'inet' || v === 'inet6') v = tokens[++i]
        const a = v === undefined ? undefined : parseIp(v)
        if (!a) ctx.sink.warn('ip-route.bad-value', `bad gateway ${v ?? ''}`, ref.line, ref.text)
        else hop.via = a
        break
      }
      case 'dev': hop.dev = tokens[++i]; break
      case 'weight': {
        const n = parseIpNumber(tokens[++i])
        if (n === undefined) ctx.sink.warn('ip-route.bad-value', 'bad weight', ref.line, ref.text)
        else hop.weight = n
        break
      }
      case 'onlink': hop.onlink = true; break
      case 'dead': hop.dead = true; break
      case 'linkdown': hop.linkdown = true; break
      default:
        if (IGNORED_FLAGS.has(t)) break
        if (IGNORED_WITH_VALUE.has(t) || t === 'realms') { i++; break }
        ctx.sink.warn('ip-route.unknown-attribute', `unknown nexthop word ${JSON.stringify(t)}`, ref.line, ref.text)
    }
  }
  return hop
}

function parseRouteTokens(tokens: string[], ref: SourceRef, defaultTable: string, ctx: ParseContext): Mutable<Route> | undefined {
  let i = 0
  let type: RouteType = 'unicast'
  if (ROUTE_TYPES.has(tokens[0] ?? '')) {
    type = tokens[0] as RouteType
    i++
  }
  const dstText = tokens[i++]
  if (dstText === undefined) {
    ctx.sink.warn('ip-route.unknown-line', 'route without a destination', ref.line, ref.text)
    return undefined
  }
  // Attributes first: `default` needs the family of the gateway or of `pref` (printed for IPv6 only).
  const draft: { dev?: string; via?: IpAddress; src?: IpAddress; scope?: string; proto?: string; metric: number; onlink: boolean; linkdown: boolean; table?: string; tos?: number; v6hint: boolean } =
    { metric: 0, onlink: false, linkdown: false, v6hint: false }
  const bad = (what: string): void => ctx.sink.warn('ip-route.bad-value', what, ref.line, ref.text)
  for (; i < tokens.length; i++) {
    const t = tokens[i]!
    switch (t) {
      case 'dev': draft.dev = tokens[++i]; break
      case 'via': {
        let v = tokens[++i]
        if (v === 'inet' || v === 'inet6') v = tokens[++i]
        const a = v === undefined ? undefined : parseIp(v)
        if (!a) bad(`bad gateway ${v ?? ''}`)
        else draft.via = a
        break
      }
      case 'src': {
        const a = parseIp(tokens[++i] ?? '')
        if (!a) bad(`bad src ${tokens[i] ?? ''}`)
        else draft.src = a
        break
      }
      case 'from': {
        // `from ::/0` source-specific IPv6 routes; not used on EKS nodes.
        ctx.sink.info('ip-route.ignored-attribute', `source-specific route (from ${tokens[i + 1] ?? ''}) read as a plain route`, ref.line, ref.text)
        i++
        break
      }
      case 'table': draft.table = normaliseTableName(tokens[++i] ?? defaultTable); break
      case 'scope': draft.scope = tokens[++i]; break
      case 'proto': draft.proto = tokens[++i]; break
      case 'metric':
      case 'priority': {
        const n = parseIpNumber(tokens[++i])
        if (n === undefined) bad('bad metric')
        else draft.metric = n
        break
      }
      case 'tos':
      case 'dsfield': {
        const n = parseIpNumber(tokens[++i])
        if (n === undefined) bad('bad tos')
        else draft.tos = n
        break
      }
      case 'onlink': draft.onlink = true; break
      case 'linkdown': draft.linkdown = true; break
      case 'dead': break
      case 'pref': draft.v6hint = true; i++; break
      case 'encap':
        ctx.sink.warn('ip-route.unknown-attribute', 'lightweight-tunnel encapsulation is not modelled; the rest of the line is skipped', ref.line, ref.text)
        i = tokens.length
        break
      default:
        if (IGNORED_FLAGS.has(t)) break
        if (IGNORED_WITH_VALUE.has(t)) {
          if (tokens[i + 1] === 'lock') i++
          i++
          break
        }
        ctx.sink.warn('ip-route.unknown-attribute', `unknown route word ${JSON.stringify(t)}`, ref.line, ref.text)
    }
  }
  const addrFamily = draft.via?.family ?? draft.src?.family
  let dst = dstText === 'default' ? undefined : parseCidr(dstText)
  if (dstText !== 'default' && !dst) {
    ctx.sink.warn('ip-route.bad-value', `bad destination ${dstText}`, ref.line, ref.text)
    return undefined
  }
  // `via inet6 fe80::1` on an IPv4 route (RFC 5549) leaves the route IPv4; the destination decides.
  const family: Family = dst?.family ?? ctx.family ?? (draft.v6hint ? 6 : addrFamily) ?? 4
  dst ??= anyCidr(family)
  const route: Mutable<Route> = {
    family, table: draft.table ?? defaultTable, type, dst, metric: draft.metric, onlink: draft.onlink, linkdown: draft.linkdown, ref,
  }
  if (draft.dev !== undefined) route.dev = draft.dev
  if (draft.via) route.via = draft.via
  if (draft.src) route.src = draft.src
  if (draft.scope !== undefined) route.scope = draft.scope
  if (draft.proto !== undefined) route.proto = draft.proto
  if (draft.tos !== undefined) route.tos = draft.tos
  return route
}

function jsonRef(ctx: ParseContext, value: unknown): SourceRef {
  const text = JSON.stringify(value) ?? ''
  return { artifact: ctx.artifact, line: 0, text: text.length > 400 ? `${text.slice(0, 397)}...` : text }
}

function parseIpRoutesJson(text: string, ctx: ParseContext): Route[] {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (e) {
    ctx.sink.error('ip-route.bad-json', `not valid JSON: ${(e as Error).message}`)
    return []
  }
  if (!Array.isArray(doc)) {
    ctx.sink.error('ip-route.bad-json', '`ip -j route` output is a JSON array')
    return []
  }
  const defaultTable = normaliseTableName(ctx.table ?? 'main')
  const routes: Route[] = []
  const known = new Set(['type', 'dst', 'gateway', 'via', 'dev', 'table', 'protocol', 'scope', 'prefsrc', 'metric', 'flags', 'metrics', 'nexthops', 'tos',
    'pref', 'expires', 'nhid', 'src', 'from', 'error', 'encap', 'cache', 'cacheinfo'])
  for (const entry of doc) {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      ctx.sink.warn('ip-route.bad-entry', 'route entry is not an object', 0, JSON.stringify(entry))
      continue
    }
    const r = entry as Record<string, unknown>
    const ref = jsonRef(ctx, r)
    for (const k of Object.keys(r)) if (!known.has(k)) ctx.sink.warn('ip-route.unknown-attribute', `unknown key ${JSON.stringify(k)}`, 0, ref.text)
    // Rebuild the text form (one set of semantics for both renderings).
    const tokens: string[] = []
    const str = (v: unknown): string | undefined => (typeof v === 'string' || typeof v === 'number' ? String(v) : undefined)
    if (str(r['type']) !== undefined) tokens.push(str(r['type'])!)
    tokens.push(str(r['dst']) ?? '')
    tokens.push(...gatewayTokens(r))
    if (str(r['dev']) !== undefined) tokens.push('dev', str(r['dev'])!)
    if (str(r['table']) !== undefined) tokens.push('table', str(r['table'])!)
    if (str(r['protocol']) !== undefined) tokens.push('proto', str(r['protocol'])!)
    if (str(r['scope']) !== undefined) tokens.push('scope', str(r['scope'])!)
    if (str(r['prefsrc']) !== undefined) tokens.push('src', str(r['prefsrc'])!)
    if (str(r['metric']) !== undefined) tokens.push('metric', str(r['metric'])!)
    if (str(r['tos']) !== undefined) tokens.push('tos', str(r['tos'])!)
    if (str(r['pref']) !== undefined) tokens.push('pref', str(r['pref'])!)
    if (str(r['src']) !== undefined) tokens.push('from', str(r['src'])!)
    if (Array.isArray(r['flags'])) for (const f of r['flags']) if (typeof f === 'string') tokens.push(f)
    if (r['encap'] !== undefined) tokens.push('encap')
    const route = parseRouteTokens(tokens.filter((t) => t !== ''), ref, defaultTable, ctx)
    if (!route) continue
    if (Array.isArray(r['nexthops'])) {
      const hops: Nexthop[] = []
      for (const h of r['nexthops']) {
        if (typeof h !== 'object' || h === null) continue
        const hr = h as Record<string, unknown>
        const ht: string[] = [...gatewayTokens(hr)]
        if (str(hr['dev']) !== undefined) ht.push('dev', str(hr['dev'])!)
        if (str(hr['weight']) !== undefined) ht.push('weight', str(hr['weight'])!)
        if (Array.isArray(hr['flags'])) for (const f of hr['flags']) if (typeof f === 'string') ht.push(f)
        hops.push(parseNexthopTokens(ht, ref, ctx))
      }
      if (hops.length > 0) route.nexthops = hops
    }
    routes.push(route)
  }
  return routes
}

function gatewayTokens(r: Record<string, unknown>): string[] {
  if (typeof r['gateway'] === 'string') return ['via', r['gateway']]
  const via = r['via']
  if (typeof via === 'object' && via !== null && typeof (via as Record<string, unknown>)['host'] === 'string') return ['via', (via as Record<string, string>)['host']!]
  return []
}

/** Prints a route like `ip route show table all` (round trips and evidence of derived routes). */
export function formatIpRoute(route: Route): string {
  const parts: string[] = []
  if (route.type !== 'unicast') parts.push(route.type)
  const host = route.dst.prefix === (route.family === 4 ? 32 : 128)
  parts.push(route.dst.prefix === 0 ? 'default' : host ? formatIp({ family: route.family, value: route.dst.network }) : formatCidr(route.dst))
  if (route.tos !== undefined) parts.push('tos', `0x${route.tos.toString(16)}`)
  if (route.via) parts.push('via', ...(route.via.family !== route.family ? [route.via.family === 6 ? 'inet6' : 'inet'] : []), formatIp(route.via))
  if (route.dev) parts.push('dev', route.dev)
  if (route.table !== 'main') parts.push('table', route.table)
  if (route.proto) parts.push('proto', route.proto)
  if (route.scope) parts.push('scope', route.scope)
  if (route.src) parts.push('src', formatIp(route.src))
  if (route.metric !== 0 || route.family === 6) parts.push('metric', String(route.metric))
  if (route.onlink) parts.push('onlink')
  if (route.linkdown) parts.push('linkdown')
  const out = [parts.join(' ')]
  for (const h of route.nexthops ?? []) {
    const hp = ['\tnexthop']
    if (h.via) hp.push('via', formatIp(h.via))
    if (h.dev) hp.push('dev', h.dev)
    hp.push('weight', String(h.weight))
    if (h.onlink) hp.push('onlink')
    if (h.dead) hp.push('dead')
    if (h.linkdown) hp.push('linkdown')
    out.push(hp.join(' '))
  }
  return out.join('\n')
}

const ROUTE_LINE = /^(?:(?:unicast|local|broadcast|anycast|multicast|unreachable|blackhole|prohibit|throw|nat)\s+)?(?:default|[0-9a-fA-F:.]+(?:\/\d+)?)(?:\s+(?:via|dev|table|proto|scope|src|metric|tos|mtu)\b|\s*$)/

/** Cheap content check: most non-indented lines look like `DST [via …] dev …`. */
export function looksLikeIpRoute(text: string): boolean {
  const head = text.slice(0, 4096)
  if (/^\s*\[\s*\{/.test(head)) return /"dst"\s*:/.test(head) && !/"priority"\s*:/.test(head) && !/"ifname"\s*:/.test(head)
  const ls = head.split(/\r?\n/).filter((l) => l.trim() !== '' && !/^\s/.test(l)).slice(0, 20)
  if (ls.length === 0) return false
  // An `ip rule` line starts with `PRIO:` and an iptables line with `-A`/`*`/`:`; neither matches ROUTE_LINE.
  const hits = ls.filter((l) => ROUTE_LINE.test(l) && !/^\d+:/.test(l)).length
  return hits >= Math.max(1, Math.ceil(ls.length * 0.6))
}
