// The node's own addresses, as the kernel knows them: `local` routes in the local table (what addrtype LOCAL and
// local delivery read), falling back to interface addresses when the local table was not collected.
import { cidrContains, isMulticast, type Family, type IpAddress } from '../model/ip.js'
import type { AddrType } from '../model/netfilter.js'
import type { NodeState } from '../model/node-state.js'
import type { NetInterface } from '../model/interfaces.js'

export class AddressBook {
  /** address key → devices that hold it */
  /** Keyed by `family * 2^128 + value`-free scheme: one map per family, bigint keys compare by value. */
  private readonly local = new Map<bigint, Set<string>>()
  private readonly local6 = new Map<bigint, Set<string>>()
  private readonly broadcast = new Map<bigint, Set<string>>()
  readonly fromLocalTable: boolean
  /** `local 127.0.0.0/8 dev lo table local`: local prefixes wider than one host. */
  private readonly localPrefixes: { cidr: import('../model/ip.js').Cidr; dev: string }[] = []

  constructor(private readonly state: NodeState) {
    for (const r of state.routes) {
      if (r.table !== 'local') continue
      const full = r.dst.prefix === (r.family === 4 ? 32 : 128)
      if (r.type === 'local' && full) add(r.family === 4 ? this.local : this.local6, r.dst.network, r.dev ?? '')
      if (r.type === 'broadcast' && full && r.family === 4) add(this.broadcast, r.dst.network, r.dev ?? '')
    }
    for (const r of state.routes) {
      if (r.table === 'local' && r.type === 'local' && r.dst.prefix < (r.family === 4 ? 32 : 128)) this.localPrefixes.push({ cidr: r.dst, dev: r.dev ?? '' })
    }
    this.fromLocalTable = this.local.size + this.local6.size > 0
    for (const iface of state.interfaces) {
      for (const a of iface.addresses) {
        const map = a.address.family === 4 ? this.local : this.local6
        if (!map.has(a.address.value) || !this.fromLocalTable) add(map, a.address.value, iface.name)
      }
    }
  }

  /** The node's primary address as derived (IMDS local-ipv4, the AWS SNAT rule), known even without addresses. */
  get primary(): IpAddress | undefined {
    return this.state.derived.primaryAddress
  }

  get known(): boolean {
    return this.local.size + this.local6.size > 0
  }

  private mapOf(addr: IpAddress): Map<bigint, Set<string>> {
    return addr.family === 4 ? this.local : this.local6
  }

  isLocal(addr: IpAddress): boolean {
    if (this.mapOf(addr).has(addr.value)) return true
    return this.inLocalPrefix(addr) !== undefined
  }

  /** Local prefixes wider than a host (`local 127.0.0.0/8 dev lo table local`). */
  private inLocalPrefix(addr: IpAddress): string | undefined {
    for (const p of this.localPrefixes) if (cidrContains(p.cidr, addr)) return p.dev
    return undefined
  }

  /** The devices an address is local on (empty when it is not local). */
  devicesOf(addr: IpAddress): string[] {
    const s = this.mapOf(addr).get(addr.value)
    if (s) return [...s]
    const d = this.inLocalPrefix(addr)
    return d === undefined ? [] : [d]
  }

  /** `-m addrtype --dst-type X [--limit-iface-in]`: the kernel asks the FIB for the address's type, optionally on one device. */
  addrType(addr: IpAddress, limitDev?: string): AddrType {
    if (isMulticast(addr)) return 'MULTICAST'
    const localDevs = this.devicesOf(addr)
    if (localDevs.length > 0) {
      if (limitDev === undefined) return 'LOCAL'
      // Addresses on lo are reachable through every device for this check; otherwise the device must hold it.
      if (localDevs.includes(limitDev) || localDevs.includes('lo')) return 'LOCAL'
      return 'UNICAST'
    }
    if (addr.family === 4 && addr.value === 0xffffffffn) return 'BROADCAST'
    if (addr.family === 4 && this.broadcast.has(addr.value)) return 'BROADCAST'
    return 'UNICAST'
  }

  /**
   * The address a host-originated packet or MASQUERADE takes on `dev`: the kernel's inet_select_addr prefers a
   * primary address whose subnet holds the gateway, else the first primary address of global scope.
   */
  preferredSource(dev: string, family: Family, gateway?: IpAddress): IpAddress | undefined {
    const iface = this.state.interfaces.find((i) => i.name === dev)
    const own = iface ? this.globalAddresses(iface.addresses, family) : this.localTableAddresses(dev, family).map((address) => ({ address, prefix: family === 4 ? 32 : 128 }))
    if (gateway) {
      const inSubnet = own.find((a) => cidrContains({ family, network: maskNetwork(a.address, a.prefix), prefix: a.prefix }, gateway))
      if (inSubnet) return inSubnet.address
    }
    if (own[0]) return own[0].address
    // A device without an address of its own (a pod's host veth): inet_select_addr takes the first address of
    // universe scope on any device, in ifindex order.
    const byIndex = [...this.state.interfaces].sort((a, b) => (a.ifindex ?? 1e9) - (b.ifindex ?? 1e9))
    for (const i of byIndex) {
      const g = this.globalAddresses(i.addresses, family)[0]
      if (g) return g.address
    }
    if (byIndex.length === 0) {
      // No interface listing: the local table's addresses, primary interface first.
      const primary = this.state.derived.primaryInterface
      const fromPrimary = primary ? this.localTableAddresses(primary, family)[0] : undefined
      return fromPrimary ?? this.localTableAddresses(undefined, family)[0]
    }
    return undefined
  }

  private globalAddresses(addrs: NetInterface['addresses'], family: Family): { address: IpAddress; prefix: number }[] {
    return addrs.filter((a) => a.address.family === family && !a.secondary && (a.scope === undefined || a.scope === 'global') && !isLoopbackOrLinkLocal(a.address))
  }

  /** Addresses known from `local … dev D` routes in the local table (when `ip addr` was not collected). */
  private localTableAddresses(dev: string | undefined, family: Family): IpAddress[] {
    const out: IpAddress[] = []
    for (const r of this.state.routes) {
      if (r.table !== 'local' || r.type !== 'local' || r.family !== family || r.dst.prefix !== (family === 4 ? 32 : 128)) continue
      if (dev !== undefined && r.dev !== dev) continue
      const a: IpAddress = family === 4 ? { family, value: r.dst.network, n: Number(r.dst.network) } : { family, value: r.dst.network }
      if (!isLoopbackOrLinkLocal(a)) out.push(a)
    }
    return out
  }
}

function isLoopbackOrLinkLocal(a: IpAddress): boolean {
  if (a.family === 4) return (a.value >> 24n) === 127n || (a.value >> 16n) === 0xa9fen
  return a.value === 1n || (a.value >> 118n) === 0x3fan
}

function maskNetwork(addr: IpAddress, prefix: number): bigint {
  const total = addr.family === 4 ? 32 : 128
  if (prefix === 0) return 0n
  const mask = ((1n << BigInt(prefix)) - 1n) << BigInt(total - prefix)
  return addr.value & mask
}

function add(map: Map<bigint, Set<string>>, key: bigint, dev: string): void {
  let s = map.get(key)
  if (!s) map.set(key, (s = new Set()))
  if (dev) s.add(dev)
}
