// Value syntaxes shared by iptables-save, `iptables -S` and `iptables -nvL`: marks, ports, NAT ranges, protocols,
// TCP flags, ICMP types, counters. Each returns undefined on text it does not accept; callers turn that into a
// diagnostic.
import { parseCidr, parseIp, type Cidr, type IpAddress } from '../../model/ip.js'
import type { AddrType, CtState, NatRange, PortRange } from '../../model/netfilter.js'

const MAX_U32 = 0xffffffff

/** An unsigned 32-bit number written in hex (`0x4000`) or decimal (`16384`), as libxtables' strtoul does. */
export function parseU32(text: string): number | undefined {
  if (text.length === 0 || text.length > 12) return undefined
  let v: number
  if (text.length > 2 && text.charCodeAt(0) === 48 && (text.charCodeAt(1) | 32) === 120) {
    v = 0
    for (let i = 2; i < text.length; i++) {
      const c = text.charCodeAt(i)
      let d: number
      if (c >= 48 && c <= 57) d = c - 48
      else if ((c | 32) >= 97 && (c | 32) <= 102) d = (c | 32) - 87
      else return undefined
      v = v * 16 + d
    }
  } else {
    v = 0
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i)
      if (c < 48 || c > 57) return undefined
      v = v * 10 + (c - 48)
    }
  }
  return v <= MAX_U32 ? v : undefined
}

/** `0x4000/0x4000` or `0x4000` (mask defaults to all ones, as in libxt_mark). */
export function parseMarkMask(text: string): { value: number; mask: number } | undefined {
  const slash = text.indexOf('/')
  if (slash < 0) {
    const value = parseU32(text)
    return value === undefined ? undefined : { value, mask: MAX_U32 }
  }
  const value = parseU32(text.slice(0, slash))
  const mask = parseU32(text.slice(slash + 1))
  return value === undefined || mask === undefined ? undefined : { value, mask }
}

export function invertU32(v: number): number {
  return (~v) >>> 0
}

/** A port number 0..65535, decimal only (service names are not resolved: dumps print numbers). */
export function parsePort(text: string): number | undefined {
  if (text.length === 0 || text.length > 5) return undefined
  let v = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 48 || c > 57) return undefined
    v = v * 10 + (c - 48)
  }
  return v <= 65535 ? v : undefined
}

/** Single-port ranges, one object per port: a large dump names the same few ports on most of its rules. */
const SINGLE_PORTS: (PortRange | undefined)[] = []

/** `80`, `1024:65535`, `:1023`, `1024:` (iptables ports); `sep` is `-` for NAT and REDIRECT/MASQUERADE ports. */
export function parsePortRange(text: string, sep = ':'): PortRange | undefined {
  const i = text.indexOf(sep)
  if (i < 0) {
    const p = parsePort(text)
    if (p === undefined) return undefined
    return (SINGLE_PORTS[p] ??= { from: p, to: p })
  }
  const a = i === 0 ? 0 : parsePort(text.slice(0, i))
  const b = i === text.length - 1 ? 65535 : parsePort(text.slice(i + 1))
  if (a === undefined || b === undefined || a > b) return undefined
  return { from: a, to: b }
}

/** multiport lists: `80,443,8000:8080`. */
export function parsePortList(text: string): PortRange[] | undefined {
  const out: PortRange[] = []
  for (const part of text.split(',')) {
    const r = parsePortRange(part)
    if (!r) return undefined
    out.push(r)
  }
  return out
}

/**
 * `--to-source`/`--to-destination` and the `to:` of `-nvL`: `10.0.3.45`, `10.0.0.1-10.0.0.4`, `10.0.3.45:1024-2048`,
 * `:8080`, `[fd00::1]:80`, `[fd00::1]-[fd00::5]:80`, `fd00::1-fd00::5` (libxt_DNAT/SNAT parse_to).
 */
export function parseNatRange(text: string): NatRange | undefined {
  let addrPart: string
  let portPart: string | undefined
  if (text.startsWith('[')) {
    const close = text.lastIndexOf(']')
    if (close < 0) return undefined
    addrPart = text.slice(0, close + 1).replace(/\[|\]/g, '')
    const rest = text.slice(close + 1)
    if (rest.length > 0) {
      if (!rest.startsWith(':')) return undefined
      portPart = rest.slice(1)
    }
  } else if (text.indexOf(':') !== text.lastIndexOf(':')) {
    addrPart = text // bare IPv6 address or range: no port possible without brackets
  } else {
    const colon = text.indexOf(':')
    addrPart = colon < 0 ? text : text.slice(0, colon)
    if (colon >= 0) portPart = text.slice(colon + 1)
  }
  let range: { minAddr?: NatRange['minAddr']; maxAddr?: NatRange['maxAddr']; ports?: PortRange } = {}
  if (addrPart.length > 0) {
    const dash = addrPart.indexOf('-')
    const min = parseIpQuick(dash < 0 ? addrPart : addrPart.slice(0, dash))
    const max = dash < 0 ? min : parseIpQuick(addrPart.slice(dash + 1))
    if (!min || !max || min.family !== max.family) return undefined
    range = { minAddr: min, maxAddr: max }
  }
  if (portPart !== undefined) {
    const ports = parsePortRange(portPart, '-')
    if (!ports) return undefined
    range.ports = ports
  }
  if (!range.minAddr && !range.ports) return undefined
  return range
}

/** Protocol numbers iptables -n prints (1.8.9 prints `6` where 1.8.4 printed `tcp`), mapped to the names -p takes. */
const PROTOCOL_NAMES: Record<string, string> = {
  '0': 'all', '1': 'icmp', '2': 'igmp', '4': 'ipencap', '6': 'tcp', '17': 'udp', '33': 'dccp', '41': 'ipv6',
  '47': 'gre', '50': 'esp', '51': 'ah', '58': 'ipv6-icmp', '94': 'ipip', '112': 'vrrp', '132': 'sctp', '136': 'udplite',
  icmpv6: 'ipv6-icmp', icmp6: 'ipv6-icmp', 'ipv6-icmp': 'ipv6-icmp',
}

/** Lower-case protocol name; known numbers become names so every rendering of one rule agrees. */
export function normalizeProtocol(text: string): string {
  const lower = text.toLowerCase()
  return PROTOCOL_NAMES[lower] ?? lower
}

/** TCP flag bits in the order iptables-save prints them. */
const TCP_FLAGS: readonly [string, number][] = [['FIN', 0x01], ['SYN', 0x02], ['RST', 0x04], ['PSH', 0x08], ['ACK', 0x10], ['URG', 0x20]]

export function tcpFlagsFromNames(text: string): string[] | undefined {
  let bits = 0
  for (const name of text.toUpperCase().split(',')) {
    if (name === 'ALL') { bits |= 0x3f; continue }
    if (name === 'NONE') continue
    const f = TCP_FLAGS.find(([n]) => n === name)
    if (!f) return undefined
    bits |= f[1]
  }
  return tcpFlagsFromBits(bits)
}

export function tcpFlagsFromBits(bits: number): string[] {
  return TCP_FLAGS.filter(([, b]) => (bits & b) !== 0).map(([n]) => n)
}

const ADDR_TYPES = new Set<string>(['UNSPEC', 'UNICAST', 'LOCAL', 'BROADCAST', 'ANYCAST', 'MULTICAST', 'BLACKHOLE', 'UNREACHABLE', 'PROHIBIT', 'THROW', 'NAT', 'XRESOLVE'])

export function parseAddrTypes(text: string): AddrType[] | undefined {
  const out: AddrType[] = []
  for (const part of text.split(',')) {
    const u = part.toUpperCase()
    if (!ADDR_TYPES.has(u)) return undefined
    out.push(u as AddrType)
  }
  return out
}

const CT_STATES = new Set<string>(['NEW', 'ESTABLISHED', 'RELATED', 'INVALID', 'UNTRACKED', 'SNAT', 'DNAT'])

export function parseCtStates(text: string): CtState[] | undefined {
  const out: CtState[] = []
  for (const part of text.split(',')) {
    const u = part.toUpperCase()
    if (!CT_STATES.has(u)) return undefined
    out.push(u as CtState)
  }
  return out
}

/** ICMP type names libxt_icmp knows, as `type` or `type/code`; iptables-save 1.8.9 prints the numbers. */
const ICMP_NAMES: Record<string, string> = {
  'echo-reply': '0', pong: '0', 'destination-unreachable': '3', 'network-unreachable': '3/0', 'host-unreachable': '3/1',
  'protocol-unreachable': '3/2', 'port-unreachable': '3/3', 'fragmentation-needed': '3/4', 'source-route-failed': '3/5',
  'network-unknown': '3/6', 'host-unknown': '3/7', 'network-prohibited': '3/9', 'host-prohibited': '3/10',
  'TOS-network-unreachable': '3/11', 'TOS-host-unreachable': '3/12', 'communication-prohibited': '3/13',
  'host-precedence-violation': '3/14', 'precedence-cutoff': '3/15', 'source-quench': '4', redirect: '5',
  'network-redirect': '5/0', 'host-redirect': '5/1', 'TOS-network-redirect': '5/2', 'TOS-host-redirect': '5/3',
  'echo-request': '8', ping: '8', 'router-advertisement': '9', 'router-solicitation': '10', 'time-exceeded': '11',
  'ttl-zero-during-transit': '11/0', 'ttl-zero-during-reassembly': '11/1', 'parameter-problem': '12',
  'ip-header-bad': '12/0', 'required-option-missing': '12/1', 'timestamp-request': '13', 'timestamp-reply': '14',
  'address-mask-request': '17', 'address-mask-reply': '18', any: 'any',
}

const ICMP6_NAMES: Record<string, string> = {
  'destination-unreachable': '1', 'no-route': '1/0', 'communication-prohibited': '1/1', 'beyond-scope': '1/2',
  'address-unreachable': '1/3', 'port-unreachable': '1/4', 'failed-policy': '1/5', 'reject-route': '1/6',
  'packet-too-big': '2', 'time-exceeded': '3', 'ttl-zero-during-transit': '3/0', 'ttl-zero-during-reassembly': '3/1',
  'parameter-problem': '4', 'bad-header': '4/0', 'unknown-header-type': '4/1', 'unknown-option': '4/2',
  'echo-request': '128', ping: '128', 'echo-reply': '129', pong: '129', 'router-solicitation': '133',
  'router-advertisement': '134', 'neighbour-solicitation': '135', 'neighbor-solicitation': '135',
  'neighbour-advertisement': '136', 'neighbor-advertisement': '136', redirect: '137',
}

/** `8`, `3/4`, `echo-request` → `8`, `3/4`, `8`: one spelling per type so save and -nvL agree. */
export function normalizeIcmpType(text: string, v6: boolean): string | undefined {
  const named = (v6 ? ICMP6_NAMES : ICMP_NAMES)[text]
  if (named !== undefined) return named
  const slash = text.indexOf('/')
  const type = slash < 0 ? text : text.slice(0, slash)
  if (parsePort(type) === undefined || Number(type) > 255) return undefined
  // xt_icmp/ip6t_icmp: type 255 is "any"; iptables-save prints the word, `iptables -nvL` the number.
  if (slash < 0 && Number(type) === 255) return 'any'
  if (slash >= 0) {
    const code = text.slice(slash + 1)
    if (parsePort(code) === undefined || Number(code) > 255) return undefined
    return `${Number(type)}/${Number(code)}`
  }
  return String(Number(type))
}

/**
 * A counter column of `iptables -vL`: exact digits, or rounded with a K/M/G/T suffix (powers of 1000, as
 * iptables' print_num does) when -x was not given. The rounded value is kept as the best estimate.
 */
export function parseListCounter(text: string): bigint | undefined {
  if (text.length === 0) return undefined
  const last = text.charCodeAt(text.length - 1)
  let scale = 1n
  let digits = text
  if (last < 48 || last > 57) {
    const s = text[text.length - 1]
    scale = s === 'K' ? 1000n : s === 'M' ? 1000_000n : s === 'G' ? 1000_000_000n : s === 'T' ? 1000_000_000_000n : s === 'P' ? 1000_000_000_000_000n : 0n
    if (scale === 0n) return undefined
    digits = text.slice(0, -1)
  }
  if (digits.length === 0) return undefined
  for (let i = 0; i < digits.length; i++) {
    const c = digits.charCodeAt(i)
    if (c < 48 || c > 57) return undefined
  }
  return BigInt(digits) * scale
}

/** `[0:0]`, by far the most common counters (every user chain), as one shared value: the model is readonly. */
const ZERO_COUNTERS = { packets: 0n, bytes: 0n }

/** `[12:720]` → counters. */
export function parseBracketCounters(text: string): { packets: bigint; bytes: bigint } | undefined {
  if (text === '[0:0]') return ZERO_COUNTERS
  if (text.length < 5 || text.charCodeAt(0) !== 91 || text.charCodeAt(text.length - 1) !== 93) return undefined
  const colon = text.indexOf(':')
  if (colon < 0) return undefined
  const p = text.slice(1, colon)
  const b = text.slice(colon + 1, -1)
  if (!isDigits(p) || !isDigits(b)) return undefined
  return { packets: BigInt(p), bytes: BigInt(b) }
}

export function isDigits(text: string): boolean {
  if (text.length === 0) return false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 48 || c > 57) return false
  }
  return true
}

/**
 * Strict dotted-quad IPv4 (`10.0.3.45`: four decimal parts 0..255, no leading zeros, as model/ip.ts requires) read
 * with one pass over the characters; -1 when the text is not one. The benchmark of a 160k-rule kube-proxy dump
 * showed the general parser's splits and regular expressions among the top costs, and most addresses in a dump
 * are IPv4.
 */
function fastIpv4(text: string, start: number, end: number): number {
  let value = 0
  let part = 0
  let digits = 0
  let parts = 0
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i)
    if (c === 46) {
      if (digits === 0 || parts === 3) return -1
      value = value * 256 + part
      parts++
      part = 0
      digits = 0
      continue
    }
    if (c < 48 || c > 57) return -1
    if (digits > 0 && part === 0) return -1 // leading zero
    part = part * 10 + (c - 48)
    if (part > 255) return -1
    digits++
  }
  if (digits === 0 || parts !== 3) return -1
  return value * 256 + part
}

/** `parseCidr` of model/ip.ts, with the common IPv4 forms (`10.0.0.0/16`, `10.180.0.1`) read without regexes. */
export function parseCidrQuick(text: string): Cidr | undefined {
  const slash = text.indexOf('/')
  const end = slash < 0 ? text.length : slash
  const addr = fastIpv4(text, 0, end)
  if (addr < 0) return parseCidr(text)
  let prefix = 32
  if (slash >= 0) {
    const n = text.length - slash - 1
    if (n < 1 || n > 2) return parseCidr(text)
    prefix = 0
    for (let i = slash + 1; i < text.length; i++) {
      const c = text.charCodeAt(i)
      if (c < 48 || c > 57) return parseCidr(text)
      prefix = prefix * 10 + (c - 48)
    }
    if (prefix > 32) return undefined
  }
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0
  return { family: 4, network: BigInt((addr & mask) >>> 0), prefix }
}

/** `parseIp` of model/ip.ts with the IPv4 fast path. */
export function parseIpQuick(text: string): IpAddress | undefined {
  const v = fastIpv4(text, 0, text.length)
  return v < 0 ? parseIp(text) : { family: 4, value: BigInt(v) }
}
