// IP addresses and prefixes, parsed strictly once and kept as numbers.
// IPv4 is checked as four decimal parts without leading zeros before anything else reads it
// (ipaddr.js alone would accept `10.1` and read `010.0.0.1` as octal); IPv6 goes through ipaddr.js.
import ipaddr from 'ipaddr.js'

export type Family = 4 | 6

export interface IpAddress {
  readonly family: Family
  /** The address as an unsigned integer: 32 bits for IPv4, 128 bits for IPv6. */
  readonly value: bigint
  /** IPv4 only, set by parseIp: the same value as a number, so the engine's hot path does no bigint arithmetic. */
  readonly n?: number
}

export interface Cidr {
  readonly family: Family
  /** Network address with the host bits cleared. */
  readonly network: bigint
  readonly prefix: number
  /** IPv4 only, set by parseCidr: network and mask as unsigned 32-bit numbers. */
  readonly n?: number
  readonly m?: number
}

const V4_PART = /^(?:0|[1-9]\d{0,2})$/

export function parseIpv4Value(text: string): number | undefined {
  const parts = text.split('.')
  if (parts.length !== 4) return undefined
  let value = 0
  for (const part of parts) {
    if (!V4_PART.test(part)) return undefined
    const n = Number(part)
    if (n > 255) return undefined
    value = value * 256 + n
  }
  return value
}

export function parseIp(text: string): IpAddress | undefined {
  if (text.includes(':')) {
    const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text
    if (bare.includes('%')) return undefined
    if (!ipaddr.IPv6.isValid(bare)) return undefined
    const bytes = ipaddr.IPv6.parse(bare).toByteArray()
    let value = 0n
    for (const b of bytes) value = (value << 8n) | BigInt(b)
    return { family: 6, value }
  }
  const v4 = parseIpv4Value(text)
  return v4 === undefined ? undefined : { family: 4, value: BigInt(v4), n: v4 }
}

export function bits(family: Family): number {
  return family === 4 ? 32 : 128
}

function computeMask(total: number, prefix: number): bigint {
  if (prefix === 0) return 0n
  return ((1n << BigInt(prefix)) - 1n) << BigInt(total - prefix)
}

// Masks are computed once: the engine tests prefixes millions of times.
const MASKS_V4 = Array.from({ length: 33 }, (_, p) => computeMask(32, p))
const MASKS_V6 = Array.from({ length: 129 }, (_, p) => computeMask(128, p))

export function maskOf(family: Family, prefix: number): bigint {
  return (family === 4 ? MASKS_V4 : MASKS_V6)[prefix]!
}

/**
 * Parses `10.0.0.0/16`, `10.0.3.45` (a host prefix), `fd00::/8`. With `strictNetwork` a prefix whose
 * host bits are set is refused; otherwise the host bits are cleared, as iptables and ip do.
 * A dotted mask (`10.0.0.0/255.255.0.0`, as some tools print) is accepted when it is contiguous.
 */
export function parseCidr(text: string, options: { strictNetwork?: boolean } = {}): Cidr | undefined {
  const slash = text.indexOf('/')
  const addrText = slash < 0 ? text : text.slice(0, slash)
  const addr = parseIp(addrText)
  if (!addr) return undefined
  let prefix = bits(addr.family)
  if (slash >= 0) {
    const p = text.slice(slash + 1)
    if (/^\d{1,3}$/.test(p)) {
      prefix = Number(p)
    } else if (addr.family === 4) {
      const m = parseIpv4Value(p)
      if (m === undefined) return undefined
      const len = contiguousMaskLength(m)
      if (len === undefined) return undefined
      prefix = len
    } else {
      return undefined
    }
    if (prefix > bits(addr.family)) return undefined
  }
  const mask = maskOf(addr.family, prefix)
  const network = addr.value & mask
  if (options.strictNetwork && network !== addr.value) return undefined
  if (addr.family === 4) return { family: 4, network, prefix, n: Number(network), m: Number(mask) }
  return { family: addr.family, network, prefix }
}

function contiguousMaskLength(mask: number): number | undefined {
  let len = 0
  let seenZero = false
  for (let i = 31; i >= 0; i--) {
    const bit = Math.floor(mask / 2 ** i) % 2
    if (bit === 1) {
      if (seenZero) return undefined
      len++
    } else {
      seenZero = true
    }
  }
  return len
}

export function cidrContains(cidr: Cidr, addr: IpAddress): boolean {
  if (cidr.family !== addr.family) return false
  if (cidr.family === 4) {
    const a = addr.n ?? Number(addr.value)
    const m = cidr.m ?? Number(maskOf(4, cidr.prefix))
    const net = cidr.n ?? Number(cidr.network)
    return ((a & m) >>> 0) === net
  }
  return (addr.value & maskOf(cidr.family, cidr.prefix)) === cidr.network
}

/** True when every address of `inner` lies in `outer`. */
export function cidrCovers(outer: Cidr, inner: Cidr): boolean {
  return outer.family === inner.family && outer.prefix <= inner.prefix &&
    (inner.network & maskOf(outer.family, outer.prefix)) === outer.network
}

export function hostCidr(addr: IpAddress): Cidr {
  return { family: addr.family, network: addr.value, prefix: bits(addr.family) }
}

export function anyCidr(family: Family): Cidr {
  return { family, network: 0n, prefix: 0 }
}

export function formatIp(addr: IpAddress): string {
  if (addr.family === 4) {
    const v = Number(addr.value)
    return `${Math.floor(v / 16777216) % 256}.${Math.floor(v / 65536) % 256}.${Math.floor(v / 256) % 256}.${v % 256}`
  }
  const bytes: number[] = []
  let v = addr.value
  for (let i = 0; i < 16; i++) {
    bytes.unshift(Number(v & 0xffn))
    v >>= 8n
  }
  return ipaddr.fromByteArray(bytes).toString()
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIp({ family: cidr.family, value: cidr.network })}/${cidr.prefix}`
}

export function sameIp(a: IpAddress | undefined, b: IpAddress | undefined): boolean {
  return !!a && !!b && a.family === b.family && a.value === b.value
}

/** A cheap key for maps: `4:167772161`. */
export function ipKey(addr: IpAddress): string {
  return `${addr.family}:${addr.value}`
}

export function nthAddress(cidr: Cidr, n: number): IpAddress {
  const value = cidr.network + BigInt(n)
  return cidr.family === 4 ? { family: 4, value, n: Number(value) } : { family: 6, value }
}

/** Link-local, loopback, multicast and the documentation/benchmark ranges matter when choosing test destinations. */
export function isMulticast(addr: IpAddress): boolean {
  return addr.family === 4 ? (addr.value >> 28n) === 14n : (addr.value >> 120n) === 0xffn
}
