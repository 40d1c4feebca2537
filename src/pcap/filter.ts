// `--filter` expressions over flows, in tcpdump's words: `host 10.0.3.45`, `net 10.0.0.0/16`, `port 443`,
// `proto udp` (or just `udp`), `src host …`/`dst port …`, combined with `and`, `or`, `not` (and binds
// tighter than or; no parentheses). Matching is on aggregated flows, so it costs nothing per packet.
import { cidrContains, parseCidr, parseIp, type Cidr } from '../model/ip.js'
import { ExitCode, NatlensError } from '../errors.js'
import type { Flow } from './flows.js'
import { protoNumber } from './packet.js'

type Side = 'either' | 'src' | 'dst'
type Term =
  | { kind: 'net'; side: Side; cidr: Cidr }
  | { kind: 'port'; side: Side; port: number }
  | { kind: 'proto'; proto: number }
  | { kind: 'not'; term: Term }

/** A filter in disjunctive normal form: any of the groups, each of which needs all its terms. */
export interface FlowFilter {
  readonly text: string
  readonly anyOf: Term[][]
}

const PROTO_WORDS = new Set(['tcp', 'udp', 'icmp', 'icmpv6', 'sctp', 'gre', 'esp', 'ah', 'igmp'])

function filterError(text: string, what: string): NatlensError {
  return new NatlensError(`--filter "${text}": ${what}`, 'flows.bad-filter', ExitCode.badInput,
    'write e.g. "host 10.0.3.45 and port 443", "net 10.0.0.0/16 and udp", "proto icmp or dst port 53"')
}

export function parseFlowFilter(text: string): FlowFilter {
  const words = text.trim().split(/\s+/).filter(Boolean)
  if (words.length === 0) throw filterError(text, 'the filter is empty')
  const anyOf: Term[][] = [[]]
  let i = 0
  const term = (): Term => {
    const w = words[i++]?.toLowerCase()
    if (w === undefined) throw filterError(text, 'it ends where a term (host, net, port, proto) was expected')
    if (w === 'not' || w === '!') return { kind: 'not', term: term() }
    let side: Side = 'either'
    let kw = w
    if (w === 'src' || w === 'dst') {
      side = w
      kw = words[i++]?.toLowerCase() ?? ''
    }
    if (kw === 'host' || kw === 'net') {
      const v = words[i++]
      if (v === undefined) throw filterError(text, `"${kw}" needs an address`)
      const cidr = kw === 'host' && !v.includes('/') ? hostCidr(v) : parseCidr(v)
      if (!cidr) throw filterError(text, `"${v}" is not an IP address or CIDR`)
      return { kind: 'net', side, cidr }
    }
    if (kw === 'port') {
      const v = words[i++]
      if (v === undefined || !/^\d{1,5}$/.test(v) || Number(v) > 65535) throw filterError(text, `"${v ?? ''}" is not a port number`)
      return { kind: 'port', side, port: Number(v) }
    }
    if (side !== 'either') throw filterError(text, `"${w}" must be followed by host, net or port`)
    if (kw === 'proto') {
      const v = words[i++]
      const n = v === undefined ? undefined : protoNumber(v)
      if (n === undefined) throw filterError(text, `"${v ?? ''}" is not a protocol name or number`)
      return { kind: 'proto', proto: n }
    }
    if (PROTO_WORDS.has(kw)) return { kind: 'proto', proto: protoNumber(kw) as number }
    throw filterError(text, `"${w}" is not a filter term (host, net, port, proto, tcp, udp, …)`)
  }
  anyOf[0].push(term())
  while (i < words.length) {
    const op = words[i++].toLowerCase()
    if (op === 'and' || op === '&&') anyOf[anyOf.length - 1].push(term())
    else if (op === 'or' || op === '||') anyOf.push([term()])
    else throw filterError(text, `expected "and" or "or" before "${words[i - 1]}"`)
  }
  return { text, anyOf }
}

function hostCidr(text: string): Cidr | undefined {
  const ip = parseIp(text)
  return ip ? { family: ip.family, network: ip.value, prefix: ip.family === 4 ? 32 : 128 } : undefined
}

function termMatches(t: Term, f: Flow): boolean {
  switch (t.kind) {
    case 'not':
      return !termMatches(t.term, f)
    case 'proto':
      return f.protoNumber === t.proto
    case 'port':
      return (t.side !== 'dst' && f.sport === t.port) || (t.side !== 'src' && f.dport === t.port)
    case 'net': {
      const inNet = (addr: string): boolean => {
        const ip = parseIp(addr)
        return ip !== undefined && cidrContains(t.cidr, ip)
      }
      return (t.side !== 'dst' && inNet(f.src)) || (t.side !== 'src' && inNet(f.dst))
    }
  }
}

export function flowMatches(filter: FlowFilter, f: Flow): boolean {
  return filter.anyOf.some((group) => group.every((t) => termMatches(t, f)))
}
