// `--redact`: consistent pseudonyms for what identifies a machine or an account (hostnames, instance and resource
// ids, account ids, ARNs, MACs) in every file of a bundle; `--redact-ips` also maps IP addresses, prefix-preserving
// (Crypto-PAn's construction: bit i of the output is bit i of the input XOR a keyed function of the first i bits), so
// two addresses share exactly as many leading bits after the mapping as before: CIDR membership, and with it every
// routing and netfilter decision natlens makes, is unchanged.
//
// The key is random per bundle and kept only in memory: the same input maps the same way throughout one bundle,
// and nothing in the bundle allows the mapping to be undone. The manifest records a fingerprint of the key (so
// two files can be seen to come from one redaction), what kinds of things were replaced, and how many.
import { createHash, createHmac, randomBytes } from 'node:crypto'
import { formatIp, maskOf, parseIp, bits, type Family, type IpAddress } from '../model/ip.js'

/**
 * Ranges whose meaning is in the address itself: kept as they are (their first `keep` bits; below that the mapping
 * goes on). 169.254.1.1 is the pod gateway the loader recognises, 169.254.172.0/22 the egress plugin's range,
 * 127/8 loopback, fe80::/64 link-local (the interface id is mapped). Because the mapping is a bijection that fixes
 * these ranges, no other address can land in one.
 */
interface Reserved { readonly family: Family; readonly network: bigint; readonly prefix: number; readonly keep: number; readonly label: string }

function reserved(cidr: string, keep: number | undefined, label: string): Reserved {
  const [a, p] = cidr.split('/')
  const addr = parseIp(a!)!
  return { family: addr.family, network: addr.value, prefix: Number(p), keep: keep ?? bits(addr.family), label }
}

export const RESERVED: readonly Reserved[] = [
  reserved('0.0.0.0/8', undefined, '"this network" 0.0.0.0/8'),
  reserved('127.0.0.0/8', undefined, 'loopback 127.0.0.0/8'),
  reserved('169.254.0.0/16', undefined, 'link-local 169.254.0.0/16 (IMDS, the pod gateway 169.254.1.1, the egress range 169.254.172.0/22)'),
  reserved('224.0.0.0/4', undefined, 'multicast 224.0.0.0/4'),
  reserved('240.0.0.0/4', undefined, 'reserved 240.0.0.0/4 and broadcast'),
  reserved('::/127', undefined, 'unspecified and loopback ::, ::1'),
  reserved('fe80::/10', 64, 'link-local fe80::/64 prefix (interface ids are mapped)'),
  reserved('ff00::/8', undefined, 'multicast ff00::/8'),
  reserved('fd00:ec2::254/128', undefined, 'IMDS fd00:ec2::254'),
  reserved('fd00::ac:0/118', undefined, 'the egress plugin\'s IPv6 range fd00::ac:0/118'),
]

/** Prefix-preserving, bijective map of IPv4 and IPv6 addresses under one key. */
export class IpPseudonymizer {
  private readonly flips = new Map<string, number>()
  private readonly results = new Map<string, bigint>()

  constructor(private readonly key: Buffer) {}

  /** The keyed bit for the node of the address tree reached by the first `length` bits (`prefix`). */
  private flip(family: Family, length: number, prefix: bigint): number {
    const width = bits(family)
    for (const r of RESERVED) {
      if (r.family !== family) continue
      // A proper prefix of a reserved range, or a node inside it above its kept length: no flip, so the range
      // maps onto itself and its first `keep` bits stay.
      if (length < r.prefix) { if (prefix === r.network >> BigInt(width - length)) return 0 }
      else if (length < r.keep && prefix >> BigInt(length - r.prefix) === r.network >> BigInt(width - r.prefix)) return 0
    }
    const k = `${family}/${length}/${prefix.toString(16)}`
    let f = this.flips.get(k)
    if (f === undefined) {
      f = createHmac('sha256', this.key).update(k).digest()[0]! & 1
      this.flips.set(k, f)
    }
    return f
  }

  mapValue(family: Family, value: bigint): bigint {
    const memo = `${family}:${value}`
    const hit = this.results.get(memo)
    if (hit !== undefined) return hit
    const width = bits(family)
    let out = 0n
    for (let i = 0; i < width; i++) {
      const bit = Number((value >> BigInt(width - 1 - i)) & 1n)
      const prefix = i === 0 ? 0n : value >> BigInt(width - i)
      out = (out << 1n) | BigInt(bit ^ this.flip(family, i, prefix))
    }
    this.results.set(memo, out)
    return out
  }

  map(addr: IpAddress): IpAddress {
    const value = this.mapValue(addr.family, addr.value)
    return addr.family === 4 ? { family: 4, value, n: Number(value) } : { family: 6, value }
  }

  /** A network (host bits zero) maps to the network of its mapped address: the mapped members stay inside it. */
  mapNetwork(family: Family, network: bigint, prefix: number): bigint {
    return this.mapValue(family, network) & maskOf(family, prefix)
  }
}

export interface RedactionCounts {
  hostnames: number
  instanceIds: number
  resourceIds: number
  accountIds: number
  arns: number
  macs: number
  ips: number
}

export interface RedactionRecord {
  /** sha256 of the per-bundle key, first 16 hex digits: the key itself is kept nowhere. */
  readonly keyFingerprint: string
  readonly categories: readonly string[]
  readonly ips: 'kept' | 'prefix-preserving'
  readonly reservedKept?: readonly string[]
  readonly counts: RedactionCounts
  /** Files in which something was replaced. */
  readonly files: readonly string[]
  readonly notes: readonly string[]
}

const HEX = '0123456789abcdef'

/** Hostnames an EC2 instance gets (IP-based and resource-based private DNS names, public DNS names). */
const EC2_HOSTNAME = '(?:ip-\\d{1,3}-\\d{1,3}-\\d{1,3}-\\d{1,3}|i-[0-9a-f]{17}|ec2-\\d{1,3}-\\d{1,3}-\\d{1,3}-\\d{1,3})(?:\\.[a-z0-9-]+)*\\.(?:compute\\.internal|ec2\\.internal|compute\\.amazonaws\\.com|amazonaws\\.com)'

export class Redactor {
  readonly counts: RedactionCounts = { hostnames: 0, instanceIds: 0, resourceIds: 0, accountIds: 0, arns: 0, macs: 0, ips: 0 }
  private readonly key: Buffer
  private readonly ipMap: IpPseudonymizer | undefined
  private readonly pseudonyms = new Map<string, string>()
  private readonly files = new Set<string>()
  private readonly notes: string[] = []
  private readonly pattern: RegExp

  constructor(options: { ips: boolean; hostnames?: readonly string[]; key?: Buffer }) {
    this.key = options.key ?? randomBytes(32)
    this.ipMap = options.ips ? new IpPseudonymizer(this.key) : undefined
    const names: string[] = []
    for (const h of options.hostnames ?? []) {
      // A short or generic name would replace ordinary words in the files; EC2 names are caught by their shape.
      if (h.length < 4 || /^(localhost|node|host|worker|debian|ubuntu|ip-[\d-]+)$/i.test(h)) { if (h) this.notes.push(`hostname ${JSON.stringify(h.length < 4 ? '…' : h)} is too short or generic to replace safely; EC2-shaped names are still replaced`); continue }
      names.push(h.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    }
    const alternatives = [
      `(?<host>(?<![A-Za-z0-9_.-])(?:${[EC2_HOSTNAME, ...names].join('|')})(?![A-Za-z0-9_-]))`,
      '(?<arn>\\barn:(?<part>aws[a-z-]*):(?<svc>[a-z0-9-]*):(?<region>[a-z0-9-]*):(?<acct>\\d{12})?:(?<res>[^\\s"\',]+))',
      '(?<ecr>\\b\\d{12}(?=\\.dkr\\.ecr\\.))',
      '(?<acctkey>\\b(?:[Aa]ccount|[Oo]wner)[-_ ]?[Ii][Dd]["\']?\\s*[:=]\\s*["\']?)(?<acctval>\\d{12})\\b',
      '(?<iid>\\bi-(?:[0-9a-f]{17}|[0-9a-f]{8})\\b)',
      '(?<rid>\\b(?:eni|vpc|subnet|sg|eni-attach)-(?:[0-9a-f]{17}|[0-9a-f]{8})\\b)',
      '(?<mac>(?<![0-9A-Fa-f]:|[0-9A-Za-z])[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}(?![0-9A-Za-z]|:[0-9A-Fa-f]))',
      ...(this.ipMap ? [
        // nft -j writes a prefix as {"addr": "10.0.0.0", "len": 16}.
        '(?<nftpre>"addr":\\s*")(?<nftaddr>[0-9A-Fa-f.:]+)(?<nftmid>",\\s*"len":\\s*)(?<nftlen>\\d{1,3})',
        '(?<v4>(?<![\\w.])\\d{1,3}(?:\\.\\d{1,3}){3}(?:\\/\\d{1,2})?(?![\\w.]))',
        '(?<v6>(?<![\\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:\\/\\d{1,3})?(?![\\w:]))',
      ] : []),
    ]
    this.pattern = new RegExp(alternatives.join('|'), 'g')
  }

  /** A stable pseudonym of `kind` for `value`: hex digits from the keyed hash, `length` of them. */
  private pseudo(kind: string, value: string, length: number, digits = HEX): string {
    const k = `${kind}\0${value}`
    let p = this.pseudonyms.get(k)
    if (!p) {
      const h = createHmac('sha256', this.key).update(k).digest()
      p = ''
      for (let i = 0; p.length < length; i++) p += digits[h[i % h.length]! % digits.length]
      this.pseudonyms.set(k, p)
    }
    return p
  }

  private account(acct: string): string {
    this.counts.accountIds++
    return this.pseudo('account', acct, 12, '0123456789')
  }

  private mac(text: string): string {
    const lower = text.toLowerCase()
    const first = parseInt(lower.slice(0, 2), 16)
    // All-zero, broadcast and multicast (group bit set) addresses say nothing about a machine.
    if (lower === '00:00:00:00:00:00' || lower === 'ff:ff:ff:ff:ff:ff' || (first & 1) === 1) return text
    this.counts.macs++
    const h = this.pseudo('mac', lower, 12)
    // A locally administered unicast address, like the ones the lab and veth pairs use.
    const octets = [((parseInt(h.slice(0, 2), 16) & 0xfc) | 0x02).toString(16).padStart(2, '0')]
    for (let i = 2; i < 12; i += 2) octets.push(h.slice(i, i + 2))
    return octets.join(':')
  }

  private ipToken(text: string): string {
    const slash = text.indexOf('/')
    const addrText = slash < 0 ? text : text.slice(0, slash)
    const addr = parseIp(addrText)
    if (!addr || !this.ipMap) return text
    if (slash < 0) { const m = this.ipMap.map(addr); if (m.value !== addr.value) this.counts.ips++; return formatIp(m) }
    const prefix = Number(text.slice(slash + 1))
    if (!Number.isInteger(prefix) || prefix > bits(addr.family)) return text
    return `${this.cidrAddress(addr, prefix)}/${prefix}`
  }

  /** An address written with a prefix: a network keeps its host bits zero, a host address (ip addr's 10.0.3.45/20) is mapped whole. */
  private cidrAddress(addr: IpAddress, prefix: number): string {
    const isNetwork = (addr.value & maskOf(addr.family, prefix)) === addr.value
    const value = isNetwork ? this.ipMap!.mapNetwork(addr.family, addr.value, prefix) : this.ipMap!.mapValue(addr.family, addr.value)
    if (value !== addr.value) this.counts.ips++
    return formatIp({ family: addr.family, value })
  }

  /** Replaces every identifying token of `text`; `file` is recorded when something changed. */
  redactText(text: string, file?: string): string {
    const out = text.replace(this.pattern, (...args: unknown[]) => {
      const whole = args[0] as string
      const g = args[args.length - 1] as Record<string, string | undefined>
      if (g['host'] !== undefined) { this.counts.hostnames++; return `host-${this.pseudo('host', whole.toLowerCase(), 8)}` }
      if (g['arn'] !== undefined) {
        this.counts.arns++
        const acct = g['acct'] ? this.account(g['acct']) : ''
        return `arn:${g['part']}:${g['svc']}:${g['region']}:${acct}:redacted-${this.pseudo('arn-resource', g['res']!, 12)}`
      }
      if (g['ecr'] !== undefined) return this.account(whole)
      if (g['acctval'] !== undefined) return `${g['acctkey']}${this.account(g['acctval'])}`
      if (g['iid'] !== undefined) { this.counts.instanceIds++; return `i-${this.pseudo('instance', whole, whole.length - 2)}` }
      if (g['rid'] !== undefined) {
        this.counts.resourceIds++
        const dash = whole.lastIndexOf('-')
        return `${whole.slice(0, dash)}-${this.pseudo('resource', whole, whole.length - dash - 1)}`
      }
      if (g['mac'] !== undefined) return this.mac(whole)
      if (g['nftaddr'] !== undefined) {
        const addr = parseIp(g['nftaddr'])
        const len = Number(g['nftlen'])
        if (!addr || len > bits(addr.family)) return whole
        return `${g['nftpre']}${this.cidrAddress(addr, len)}${g['nftmid']}${g['nftlen']}`
      }
      if (g['v4'] !== undefined || g['v6'] !== undefined) return this.ipToken(whole)
      return whole
    })
    if (file !== undefined && out !== text) this.files.add(file)
    return out
  }

  /** For binary formats (pcap): a MAC of 6 bytes, mapped as its text form is. */
  mapMacBytes(b: Buffer, offset: number): void {
    const text = [...b.subarray(offset, offset + 6)].map((x) => x.toString(16).padStart(2, '0')).join(':')
    const m = this.mac(text)
    if (m !== text) Buffer.from(m.split(':').map((x) => parseInt(x, 16))).copy(b, offset)
  }

  /** For binary formats: the mapped value of an address (unchanged when IPs are kept). */
  mapIpValue(family: Family, value: bigint): bigint {
    if (!this.ipMap) return value
    const m = this.ipMap.mapValue(family, value)
    if (m !== value) this.counts.ips++
    return m
  }

  get mapsIps(): boolean {
    return this.ipMap !== undefined
  }

  noteFile(file: string): void {
    this.files.add(file)
  }

  note(text: string): void {
    this.notes.push(text)
  }

  record(): RedactionRecord {
    return {
      keyFingerprint: createHash('sha256').update(this.key).digest('hex').slice(0, 16),
      categories: ['hostnames', 'instance ids', 'resource ids (eni-, vpc-, subnet-, sg-)', 'account ids', 'ARNs', 'MACs', ...(this.ipMap ? ['IP addresses (prefix-preserving)'] : [])],
      ips: this.ipMap ? 'prefix-preserving' : 'kept',
      ...(this.ipMap ? { reservedKept: RESERVED.map((r) => r.label) } : {}),
      counts: { ...this.counts },
      files: [...this.files].sort(),
      notes: [...this.notes],
    }
  }
}
