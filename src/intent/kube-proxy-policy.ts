// externalTrafficPolicy of a service, as kube-proxy (iptables mode) writes it into KUBE-EXT-<hash> and KUBE-SVL-<hash>
// (kube-proxy.md §1.4, §1.7): Cluster masquerades every external packet and picks any endpoint; Local keeps the
// client's address and picks only endpoints on this node (pods and the node itself short-circuit to KUBE-SVC).
import { createHash } from 'node:crypto'
import { formatIp, sameIp, type IpAddress } from '../model/ip.js'
import type { NodeState } from '../model/node-state.js'
import type { Rule, Table } from '../model/netfilter.js'
import { makeContext } from '../parse/context.js'
import { parseIptablesSave } from '../parse/iptables.js'
import { NatlensError } from '../errors.js'

export type TrafficPolicy = 'Cluster' | 'Local'

export const KUBE_PROXY_ARTIFACT = '(whatif) kube-proxy rules'

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

function base32(buf: Buffer): string {
  let out = ''
  let bits = 0
  let value = 0
  for (const byte of buf) {
    value = (value << 8) | byte
    bits += 8
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
    value &= (1 << bits) - 1
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31]
  return out
}

/** kube-proxy's `portProtoHash`: base32(sha256(servicePortName + protocol))[:16] (kube-proxy.md §1.5). */
export function serviceChainHash(servicePortName: string, protocol: string): string {
  return base32(createHash('sha256').update(servicePortName + protocol).digest()).slice(0, 16)
}

/** The kernel stores round(p·2^31) and iptables-save prints it with %.11f (kube-proxy.md §1.9). */
function probability(n: number, i: number): string {
  return (Math.round((1 / (n - i)) * 2 ** 31) / 2 ** 31).toFixed(11)
}

export interface PolicyRewrite {
  readonly service: string
  readonly hash: string
  readonly before: TrafficPolicy
  readonly after: TrafficPolicy
  /** New contents of KUBE-EXT-<hash> and KUBE-SVL-<hash> (null: delete the chain). */
  readonly chains: ReadonlyMap<string, Rule[] | null>
  /** The rules as iptables-save lines. */
  readonly text: string
  readonly warnings: string[]
}

function serviceNames(nat: Table): string[] {
  const names = new Set<string>()
  for (const c of nat.chains.values()) {
    if (!c.name.startsWith('KUBE-EXT-')) continue
    for (const r of c.rules) {
      const m = /^(?:masquerade traffic|masquerade LOCAL traffic|route LOCAL traffic|pod traffic) for (\S+) external destinations$/.exec(r.comment ?? '')
      if (m) names.add(m[1]!)
    }
  }
  return [...names].sort()
}

/** Finds the service's KUBE-EXT chain by its comments, or by the chain hash for tcp, udp or sctp. */
function findHash(nat: Table, service: string): string | undefined {
  for (const c of nat.chains.values()) {
    if (!c.name.startsWith('KUBE-EXT-')) continue
    if (c.rules.some((r) => (r.comment ?? '').endsWith(` for ${service} external destinations`))) return c.name.slice('KUBE-EXT-'.length)
  }
  for (const proto of ['tcp', 'udp', 'sctp']) {
    const h = serviceChainHash(service, proto)
    if (nat.chains.has(`KUBE-EXT-${h}`)) return h
  }
  return undefined
}

/** kube-proxy's local-traffic detector (kube-proxy.md §1.6), read from the rules it already wrote; none on EKS. */
function localMatch(nat: Table): string | undefined {
  for (const c of nat.chains.values()) {
    for (const r of c.rules) {
      if (/^pod traffic for .* external destinations$/.test(r.comment ?? '')) {
        const text = r.ref.text.replace(/^\s*\[\d+:\d+\]\s+/, '').replace(/^-A \S+\s+/, '').replace(/-m comment --comment ("[^"]*"|\S+)\s*/, '').replace(/\s*-j \S+\s*$/, '').trim()
        if (text) return text
      }
    }
  }
  for (const c of nat.chains.values()) {
    if (!c.name.startsWith('KUBE-SVC-')) continue
    for (const r of c.rules) {
      if (r.target.kind !== 'jump' || r.target.chain !== 'KUBE-MARK-MASQ') continue
      const m = /!\s+(-s|-i)\s+(\S+)/.exec(r.ref.text)
      if (m) return `${m[1]} ${m[2]}`
    }
  }
  return undefined
}

/** The endpoint of a KUBE-SEP chain: its DNAT target. */
function endpointOf(nat: Table, sep: string): IpAddress | undefined {
  for (const r of nat.chains.get(sep)?.rules ?? []) if (r.target.kind === 'dnat' && r.target.to[0]?.minAddr) return r.target.to[0].minAddr
  return undefined
}

/**
 * The KUBE-EXT/KUBE-SVL rules kube-proxy writes for `service` (`ns/name[:port]`) with the given policy. Throws a
 * NatlensError naming the services that do have external destinations when there is no such service.
 */
export function rewriteTrafficPolicy(state: NodeState, nat: Table, service: string, policy: TrafficPolicy): PolicyRewrite {
  const hash = findHash(nat, service)
  if (!hash) {
    const known = serviceNames(nat)
    throw new NatlensError(`no service ${service} with a NodePort, LoadBalancer or external IP in kube-proxy's nat table (KUBE-EXT-* chains)`, 'whatif.unknown-service', 2,
      known.length ? `services with external destinations on this node: ${known.join(', ')}` : 'the bundle has no KUBE-EXT chain: is kube-proxy in iptables mode, and does the service have type NodePort or LoadBalancer?')
  }
  const ext = `KUBE-EXT-${hash}`
  const svc = `KUBE-SVC-${hash}`
  const svl = `KUBE-SVL-${hash}`
  const extRules = nat.chains.get(ext)?.rules ?? []
  const before: TrafficPolicy = extRules.some((r) => /^masquerade LOCAL traffic/.test(r.comment ?? '')) ? 'Local' : 'Cluster'
  const spn = extRules.map((r) => /for (\S+) external destinations$/.exec(r.comment ?? '')?.[1]).find(Boolean) ?? service
  const warnings: string[] = []
  // Endpoints in KUBE-SVC order (kube-proxy writes them sorted by "ip:port").
  const eps = (nat.chains.get(svc)?.rules ?? [])
    .filter((r) => r.target.kind === 'jump' && r.target.chain.startsWith('KUBE-SEP-'))
    .map((r) => {
      const sep = (r.target as { chain: string }).chain
      const ip = endpointOf(nat, sep)
      const comment = r.comment ?? `${spn} -> ${ip ? formatIp(ip) : '?'}`
      const local = !!ip && (state.derived.pods.some((p) => sameIp(p.ip, ip)) || state.interfaces.some((i) => i.addresses.some((a) => sameIp(a.address, ip))))
      return { sep, ip, comment, local }
    })
  const lines: string[] = []
  const chains = new Map<string, Rule[] | null>()
  const declared = [ext]
  if (policy === 'Cluster') {
    lines.push(`-A ${ext} -m comment --comment "masquerade traffic for ${spn} external destinations" -j KUBE-MARK-MASQ`, `-A ${ext} -j ${svc}`)
  } else {
    const detector = localMatch(nat)
    if (detector) lines.push(`-A ${ext} ${detector} -m comment --comment "pod traffic for ${spn} external destinations" -j ${svc}`)
    lines.push(`-A ${ext} -m comment --comment "masquerade LOCAL traffic for ${spn} external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ`)
    lines.push(`-A ${ext} -m comment --comment "route LOCAL traffic for ${spn} external destinations" -m addrtype --src-type LOCAL -j ${svc}`)
    const local = eps.filter((e) => e.local)
    if (local.length > 0) {
      lines.push(`-A ${ext} -j ${svl}`)
      declared.push(svl)
      local.forEach((e, i) => {
        const stat = i < local.length - 1 ? ` -m statistic --mode random --probability ${probability(local.length, i)}` : ''
        lines.push(`-A ${svl} -m comment --comment "${e.comment}"${stat} -j ${e.sep}`)
      })
    } else {
      warnings.push(`${spn} has no endpoint on this node: with externalTrafficPolicy=Local kube-proxy also drops external traffic to it in filter KUBE-EXTERNAL-SERVICES ("has no local endpoints"), which natlens does not add`)
    }
  }
  const text = `*nat\n${declared.map((c) => `:${c} - [0:0]`).join('\n')}\n${lines.join('\n')}\nCOMMIT\n`
  const parsed = parseIptablesSave(text, makeContext(KUBE_PROXY_ARTIFACT))[0]
  for (const c of declared) chains.set(c, parsed?.chains.get(c)?.rules ?? [])
  // KUBE-SVL stays when the cluster IP rule uses it (internalTrafficPolicy=Local).
  if (policy === 'Cluster' && nat.chains.has(svl)) {
    const used = [...nat.chains.values()].some((c) => c.name !== ext && c.name !== svl && c.rules.some((r) => r.target.kind === 'jump' && r.target.chain === svl))
    if (!used) chains.set(svl, null)
  }
  return { service: spn, hash, before, after: policy, chains, text, warnings }
}
