import type { IpAddress } from './ip.js'
import type { SourceRef } from './evidence.js'

export interface InterfaceAddress {
  readonly address: IpAddress
  readonly prefix: number
  readonly scope?: string
  readonly secondary: boolean
  readonly label?: string
  readonly ref: SourceRef
}

export interface NetInterface {
  readonly name: string
  readonly ifindex?: number
  /** `eth0@if3`: the peer's ifindex (veth) or the parent link (vlan). */
  readonly linkIndex?: number
  /** Name of the parent link when known (`vlan.eth.1@eth1`). */
  readonly linkName?: string
  /** `veth`, `vlan`, `dummy`, `bridge`, … from `ip -d link`. */
  readonly kind?: string
  readonly vlanId?: number
  readonly mac?: string
  readonly mtu?: number
  readonly state?: string
  readonly flags: readonly string[]
  readonly master?: string
  /** `link-netns` / `link-netnsid` of a veth whose peer is in another namespace. */
  readonly linkNetns?: string
  readonly addresses: InterfaceAddress[]
  readonly ref: SourceRef
}
