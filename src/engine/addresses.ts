// The node's own addresses, as the kernel knows them: `local` routes in the local table (what addrtype LOCAL and
// local delivery read), falling back to interface addresses when the local table was not collected.
import { cidrContains, ipKey, isMulticast, type Family, type IpAddress } from '../model/ip.js'
import type { AddrType } from '../model/netfilter.js'
import type { NodeState } from '../model/node-state.js'

export class AddressBook {
  /** address key → devices that hold it */
  private readonly local = new Map<string, Set<string>>()
  private readonly broadcast = new Map<string, Set<string>>()
  readonly fromLocalTable: boolean

  constructor(private readonly state: NodeState) {
    for (const r of state.routes) {
      if (r.table !== 'local') continue
      const full = r.dst.prefix === (r.family === 4 ? 32 : 128)
      if (r.type === 'local' && full) add(this.local, ipKey({ family: r.family, value: r.dst.network }), r.dev ?? '')
      if (r.type === 'broadcast' && full) add(this.broadcast, ipKey({ family: r.family, value: r.dst.network }), r.dev ?? '')
    }
    // `local 127.0.0.0/8 dev lo` covers the whole loopback range.
    this.fromLocalTable = this.local.size > 0
    for (const iface of state.interfaces) {
      for (const a of iface.addresses) {
        if (!this.local.has(ipKey(a.address)) || !this.fromLocalTable) add(this.local, ipKey(a.address), iface.name)
      }
    }
  }

  get known(): boolean {
    return this.local.size > 0
  }

  isLocal(addr: IpAddress): boolean {
    if (this.local.has(ipKey(addr))) return true
    return this.inLocalPrefix(addr) !== undefined
  }

  /** Local prefixes wider than a host (`local 127.0.0.0/8 dev lo table local`). */
  private inLocalPrefix(addr: IpAddress): string | undefined {
    for (const r of this.state.routes) {
      if (r.table === 'local' && r.type === 'local' && r.dst.prefix < (r.family === 4 ? 32 : 128) && cidrContains(r.dst, addr)) return r.dev ?? ''
    }
    return undefined
  }

  /** The devices an address is local on (empty when it is not local). */
  devicesOf(addr: IpAddress): string[] {
    const s = this.local.get(ipKey(addr))
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
    if (this.broadcast.has(ipKey(addr))) return 'BROADCAST'
    return 'UNICAST'
  }

  /**
   * The address a host-originated packet or MASQUERADE takes on `dev`: the kernel's inet_select_addr prefers a
   * primary address whose subnet holds the gateway, else the first primary address of global scope.
   */
  preferredSource(dev: string, family: Family, gateway?: IpAddress): IpAddress | undefined {
    const iface = this.state.interfaces.find((i) => i.name === dev)
    if (!iface) return undefined
    const candidates = iface.addresses.filter((a) => a.address.family === family && !a.secondary && (a.scope === undefined || a.scope === 'global'))
    if (gateway) {
      const inSubnet = candidates.find((a) => cidrContains({ family, network: maskNetwork(a.address, a.prefix), prefix: a.prefix }, gateway))
      if (inSubnet) return inSubnet.address
    }
    return candidates[0]?.address ?? iface.addresses.find((a) => a.address.family === family)?.address
  }
}

function maskNetwork(addr: IpAddress, prefix: number): bigint {
  const total = addr.family === 4 ? 32 : 128
  if (prefix === 0) return 0n
  const mask = ((1n << BigInt(prefix)) - 1n) << BigInt(total - prefix)
  return addr.value & mask
}

function add(map: Map<string, Set<string>>, key: string, dev: string): void {
  let s = map.get(key)
  if (!s) map.set(key, (s = new Set()))
  if (dev) s.add(dev)
}
