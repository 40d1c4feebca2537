// A flow as the user asks about it: the first packet of a connection, as the pod, process or client sent it.
import { formatIp, parseIp, type IpAddress } from './ip.js'

export type Protocol = 'tcp' | 'udp' | 'icmp' | 'icmpv6' | 'sctp'

/**
 * Where the packet enters the node's path:
 * - `pod`: from a pod, arriving on its host veth (PREROUTING, then FORWARD or INPUT);
 * - `host`: from a host-network process (OUTPUT, then POSTROUTING);
 * - `external`: arriving on an ENI from outside (NodePort, hostPort, direct to a pod);
 * - `reply`: a later packet of an established connection (nat does not run; connmark decides the route).
 */
export type FlowOrigin = 'pod' | 'host' | 'external' | 'reply'

export interface Flow {
  readonly src: IpAddress
  readonly dst: IpAddress
  readonly proto: Protocol
  /** null for protocols without ports. */
  readonly sport: number | null
  readonly dport: number | null
  /** The interface the packet arrives on; found from the state when not given. */
  readonly iif?: string
  readonly origin?: FlowOrigin
}

export interface FlowInput {
  src: string
  dst: string
  proto?: string
  sport?: number | string | null
  dport?: number | string | null
  iif?: string
  origin?: string
}

const PROTOCOLS = new Set<Protocol>(['tcp', 'udp', 'icmp', 'icmpv6', 'sctp'])
const ORIGINS = new Set<FlowOrigin>(['pod', 'host', 'external', 'reply'])

/** Reads a flow from strings (flags, CSV, JSON); returns an error message instead of throwing. */
export function parseFlow(input: FlowInput): Flow | string {
  const src = parseIp(String(input.src ?? '').trim())
  if (!src) return `source ${JSON.stringify(input.src)} is not an IP address`
  const dst = parseIp(String(input.dst ?? '').trim())
  if (!dst) return `destination ${JSON.stringify(input.dst)} is not an IP address`
  if (src.family !== dst.family) return `source ${input.src} and destination ${input.dst} are of different address families`
  let proto = (input.proto ?? 'tcp').toString().trim().toLowerCase() as Protocol
  if ((proto as string) === 'icmp6' || (proto as string) === 'ipv6-icmp') proto = 'icmpv6'
  if (proto === 'icmp' && src.family === 6) proto = 'icmpv6'
  if (!PROTOCOLS.has(proto)) return `protocol ${JSON.stringify(input.proto)} is not one of tcp, udp, icmp, icmpv6, sctp`
  const hasPorts = proto === 'tcp' || proto === 'udp' || proto === 'sctp'
  const port = (v: unknown, fallback: number | null, what: string): number | null | string => {
    if (!hasPorts) return null
    if (v === undefined || v === null || v === '') return fallback
    const n = Number(v)
    if (!Number.isInteger(n) || n < 0 || n > 65535) return `${what} ${JSON.stringify(v)} is not a port number`
    return n
  }
  const sport = port(input.sport, 40000, 'source port')
  if (typeof sport === 'string') return sport
  const dport = port(input.dport, proto === 'udp' ? 53 : 443, 'destination port')
  if (typeof dport === 'string') return dport
  let origin: FlowOrigin | undefined
  if (input.origin !== undefined && input.origin !== '') {
    if (!ORIGINS.has(input.origin as FlowOrigin)) return `origin ${JSON.stringify(input.origin)} is not one of pod, host, external, reply`
    origin = input.origin as FlowOrigin
  }
  return { src, dst, proto, sport, dport, ...(input.iif ? { iif: input.iif } : {}), ...(origin ? { origin } : {}) }
}

export function formatFlow(f: Flow): string {
  const ep = (a: IpAddress, p: number | null) => (p === null ? formatIp(a) : a.family === 6 ? `[${formatIp(a)}]:${p}` : `${formatIp(a)}:${p}`)
  return `${f.proto} ${ep(f.src, f.sport)} → ${ep(f.dst, f.dport)}`
}
