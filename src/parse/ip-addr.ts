// `ip addr`, `ip link`, their `-d` (details) and `-o` (one line) forms, and `ip -j [-d] addr|link` into NetInterface.
// Text: a header line `IDX: NAME[@PEER]: <FLAGS> mtu N … state S …`, then indented lines: `link/ether MAC brd …
// [link-netns NS | link-netnsid N]`, with -d a kind line (`veth`, `vlan protocol 802.1Q id 5 <REORDER_HDR>`,
// `bridge_slave …`), `altname X`, `inet A/P [brd B] scope S [secondary] … LABEL`, `inet6 A/P scope S …`, `valid_lft …`.
import type { SourceRef } from '../model/evidence.js'
import { parseIp } from '../model/ip.js'
import type { InterfaceAddress, NetInterface } from '../model/interfaces.js'
import { lines, type ParseContext } from './context.js'

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

const HEADER = /^(\d+):\s+([^:\s@]+(?:@[^:\s]+)?):\s+<([^>]*)>(.*)$/
/** First words of detail lines that are not a link kind. */
const NOT_A_KIND: ReadonlySet<string> = new Set(['altname', 'prop', 'RX:', 'TX:', 'RX', 'TX', 'alias', 'vf', 'numtxqueues', 'gso_max_size', 'promiscuity', 'addrgenmode', 'cni'])

interface Draft extends Mutable<Omit<NetInterface, 'addresses' | 'flags'>> {
  flags: string[]
  addresses: InterfaceAddress[]
}

/** Parses `ip addr`/`ip link` text or JSON; an interface listed twice (link + addr output in one file) is merged. */
export function parseIpAddr(text: string, ctx: ParseContext): NetInterface[] {
  const parsed = /^\s*\[/.test(text) ? parseJson(text, ctx) : parseText(text, ctx)
  return mergeInterfaces([], parsed)
}

/** Merges interface lists by name: later facts fill what earlier ones lack, addresses are united. */
export function mergeInterfaces(base: readonly NetInterface[], more: readonly NetInterface[]): NetInterface[] {
  const byName = new Map<string, NetInterface>()
  const order: string[] = []
  for (const i of [...base, ...more]) {
    const had = byName.get(i.name)
    if (!had) {
      byName.set(i.name, i)
      order.push(i.name)
      continue
    }
    const addresses = [...had.addresses]
    for (const a of i.addresses) {
      if (!addresses.some((b) => b.address.family === a.address.family && b.address.value === a.address.value && b.prefix === a.prefix)) addresses.push(a)
    }
    const merged: NetInterface = { ...i, ...stripUndefined(had), flags: had.flags.length > 0 ? had.flags : i.flags, addresses }
    byName.set(i.name, merged)
  }
  return order.map((n) => byName.get(n)!)
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}

function parseText(text: string, ctx: ParseContext): NetInterface[] {
  const out: NetInterface[] = []
  let cur: Draft | undefined
  let sawLinkLine = false
  // `ip -o` puts a whole interface (or one address) on a line with `\` where the newlines were.
  const expanded: { line: number; text: string }[] = []
  for (const l of lines(text)) {
    if (/\\\s/.test(l.text) && /^\d+:\s/.test(l.text)) {
      const parts = l.text.split(/\s*\\\s*/)
      const head = parts[0] ?? ''
      const m = /^(\d+):\s+(\S+?)(?::)?\s+(inet6?|link\/\S+)\s+(.*)$/.exec(head)
      if (m && !/<[^>]*>/.test(head)) {
        // `2: eth0    inet 10.0.3.45/20 brd … scope global eth0\       valid_lft …`: an address line of interface eth0.
        expanded.push({ line: l.line, text: `${m[1]}: ${m[2]}: <> ` })
        expanded.push({ line: l.line, text: `    ${m[3]} ${m[4]}` })
      } else {
        expanded.push({ line: l.line, text: head })
      }
      for (const p of parts.slice(1)) if (p.trim() !== '') expanded.push({ line: l.line, text: `    ${p.trim()}` })
    } else {
      expanded.push(l)
    }
  }
  for (const { line, text: raw } of expanded) {
    if (raw.trim() === '') continue
    const ref: SourceRef = { artifact: ctx.artifact, line, text: raw.trim() }
    const h = HEADER.exec(raw)
    if (h) {
      if (cur) out.push(cur)
      cur = headerToDraft(h, ref, ctx)
      sawLinkLine = false
      continue
    }
    if (!cur) {
      ctx.sink.warn('ip-addr.unknown-line', 'line before any interface header', line, raw)
      continue
    }
    const tokens = raw.trim().split(/\s+/)
    const first = tokens[0] ?? ''
    if (first.startsWith('link/')) {
      sawLinkLine = true
      if (tokens[1] && /^[0-9a-f]{2}(?::[0-9a-f]{2})+$/i.test(tokens[1]) && first !== 'link/loopback' && first !== 'link/none') cur.mac = tokens[1].toLowerCase()
      for (let i = 2; i < tokens.length; i++) {
        if (tokens[i] === 'link-netns' || tokens[i] === 'link-netnsid') cur.linkNetns = tokens[++i]
      }
    } else if (first === 'inet' || first === 'inet6') {
      const a = parseAddressTokens(tokens, cur.name, ref, ctx)
      if (a) cur.addresses.push(a)
    } else if (first === 'valid_lft' || first === 'altname' || first === 'prop' || /^\d/.test(first) || first === 'RX:' || first === 'TX:' || first === 'RX' || first === 'TX') {
      // Lifetimes, alternative names and statistics do not change routing or NAT.
    } else if (sawLinkLine && /^[a-z][a-z0-9_]*$/.test(first) && !first.endsWith('_slave') && !NOT_A_KIND.has(first)) {
      // `ip -d`: the line after link/… starts with the link kind.
      if (cur.kind === undefined) cur.kind = first
      if (first === 'vlan') {
        const id = tokens.indexOf('id')
        const n = id >= 0 ? Number(tokens[id + 1]) : NaN
        if (Number.isInteger(n)) cur.vlanId = n
      }
    } else if (first.endsWith('_slave') || NOT_A_KIND.has(first)) {
      // `bridge_slave …`, `bond_slave …`: port details of the master, which the header already names.
    } else {
      ctx.sink.warn('ip-addr.unknown-line', `unknown interface detail ${JSON.stringify(first)}`, line, raw)
    }
  }
  if (cur) out.push(cur)
  return out
}

function headerToDraft(h: RegExpExecArray, ref: SourceRef, ctx: ParseContext): Draft {
  const [, idx, nameAt, flags, rest] = h
  const at = nameAt!.indexOf('@')
  const name = at >= 0 ? nameAt!.slice(0, at) : nameAt!
  const draft: Draft = { name, ifindex: Number(idx), flags: flags ? flags.split(',').filter((f) => f !== '') : [], addresses: [], ref }
  if (at >= 0) {
    const peer = nameAt!.slice(at + 1)
    // `eth0@if3`: the peer (veth) or parent is in another namespace and only its index is known; `@NONE`: no link.
    const m = /^if(\d+)$/.exec(peer)
    if (m) draft.linkIndex = Number(m[1])
    else if (peer !== 'NONE') draft.linkName = peer
  }
  const tokens = (rest ?? '').trim().split(/\s+/)
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]
    const v = tokens[i + 1]
    switch (t) {
      case 'mtu': { const n = Number(v); if (Number.isInteger(n)) draft.mtu = n; i++; break }
      case 'state': if (v !== undefined) draft.state = v; i++; break
      case 'master': if (v !== undefined) draft.master = v; i++; break
      case 'qdisc': case 'mode': case 'group': case 'qlen': case 'link-netnsid': case 'netns':
        if (t === 'link-netnsid' && v !== undefined) draft.linkNetns = v
        i++
        break
      case '': case undefined: break
      default:
        ctx.sink.info('ip-addr.ignored-attribute', `header word ${JSON.stringify(t)} is not modelled`, ref.line, ref.text)
    }
  }
  return draft
}

function parseAddressTokens(tokens: string[], ifname: string, ref: SourceRef, ctx: ParseContext): InterfaceAddress | undefined {
  // `inet 10.0.0.1 peer 10.0.0.2/32 …` puts the prefix on the peer.
  let addrText = tokens[1] ?? ''
  const peerAt = tokens.indexOf('peer')
  if (peerAt === 2 && tokens[3] && !addrText.includes('/')) addrText = `${addrText}/${tokens[3].split('/')[1] ?? (tokens[0] === 'inet' ? '32' : '128')}`
  const [ipText, prefixText] = addrText.split('/')
  const address = parseIp(ipText ?? '')
  const prefix = prefixText === undefined ? (address?.family === 6 ? 128 : 32) : Number(prefixText)
  if (!address || !Number.isInteger(prefix) || prefix < 0 || prefix > (address.family === 4 ? 32 : 128)) {
    ctx.sink.warn('ip-addr.bad-value', `bad address ${addrText}`, ref.line, ref.text)
    return undefined
  }
  const a: Mutable<InterfaceAddress> = { address, prefix, secondary: false, ref }
  const scopeAt = tokens.indexOf('scope')
  if (scopeAt >= 0 && tokens[scopeAt + 1]) a.scope = tokens[scopeAt + 1]
  if (tokens.includes('secondary') || tokens.includes('temporary')) a.secondary = true
  // IPv4 lines end with the label (`eth0`, `eth0:1`); flags like `dynamic`/`noprefixroute` come before it.
  if (tokens[0] === 'inet') {
    const last = tokens[tokens.length - 1]
    if (last && (last === ifname || last.startsWith(`${ifname}:`))) a.label = last
  }
  return a
}

function jsonRef(ctx: ParseContext, value: unknown): SourceRef {
  const text = JSON.stringify(value) ?? ''
  return { artifact: ctx.artifact, line: 0, text: text.length > 400 ? `${text.slice(0, 397)}...` : text }
}

function parseJson(text: string, ctx: ParseContext): NetInterface[] {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (e) {
    ctx.sink.error('ip-addr.bad-json', `not valid JSON: ${(e as Error).message}`)
    return []
  }
  if (!Array.isArray(doc)) {
    ctx.sink.error('ip-addr.bad-json', '`ip -j addr/link` output is a JSON array')
    return []
  }
  const out: NetInterface[] = []
  for (const entry of doc) {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) continue
    const r = entry as Record<string, unknown>
    if (typeof r['ifname'] !== 'string') {
      // `ip -j addr` prints `{}` for interfaces filtered out; nothing to read there.
      if (Object.keys(r).length > 0) ctx.sink.warn('ip-addr.bad-entry', 'interface entry without ifname', 0, JSON.stringify(r).slice(0, 200))
      continue
    }
    const compact = { ifindex: r['ifindex'], ifname: r['ifname'], link: r['link'], link_index: r['link_index'], flags: r['flags'], mtu: r['mtu'], master: r['master'], operstate: r['operstate'], address: r['address'], link_netnsid: r['link_netnsid'], info_kind: (r['linkinfo'] as Record<string, unknown> | undefined)?.['info_kind'] }
    const ref = jsonRef(ctx, compact)
    const d: Draft = { name: r['ifname'], flags: Array.isArray(r['flags']) ? r['flags'].filter((f): f is string => typeof f === 'string') : [], addresses: [], ref }
    if (typeof r['ifindex'] === 'number') d.ifindex = r['ifindex']
    if (typeof r['link_index'] === 'number') d.linkIndex = r['link_index']
    if (typeof r['link'] === 'string') d.linkName = r['link']
    if (typeof r['mtu'] === 'number') d.mtu = r['mtu']
    if (typeof r['operstate'] === 'string') d.state = r['operstate']
    if (typeof r['master'] === 'string') d.master = r['master']
    if (typeof r['address'] === 'string' && r['link_type'] !== 'loopback' && r['link_type'] !== 'none' && /^[0-9a-f]{2}(?::[0-9a-f]{2})+$/i.test(r['address'])) d.mac = r['address'].toLowerCase()
    if (typeof r['link_netnsid'] === 'number' || typeof r['link_netnsid'] === 'string') d.linkNetns = String(r['link_netnsid'])
    const info = r['linkinfo']
    if (typeof info === 'object' && info !== null) {
      const li = info as Record<string, unknown>
      if (typeof li['info_kind'] === 'string') d.kind = li['info_kind']
      const data = li['info_data']
      if (d.kind === 'vlan' && typeof data === 'object' && data !== null && typeof (data as Record<string, unknown>)['id'] === 'number') d.vlanId = (data as Record<string, number>)['id']
    }
    if (Array.isArray(r['addr_info'])) {
      for (const ai of r['addr_info']) {
        if (typeof ai !== 'object' || ai === null) continue
        const a = ai as Record<string, unknown>
        const address = typeof a['local'] === 'string' ? parseIp(a['local']) : undefined
        const prefix = typeof a['prefixlen'] === 'number' ? a['prefixlen'] : undefined
        if (!address || prefix === undefined) {
          ctx.sink.warn('ip-addr.bad-value', 'address without local/prefixlen', 0, JSON.stringify(a).slice(0, 200))
          continue
        }
        const addr: Mutable<InterfaceAddress> = { address, prefix, secondary: a['secondary'] === true || a['temporary'] === true, ref: jsonRef(ctx, { ifname: r['ifname'], ...a }) }
        if (typeof a['scope'] === 'string') addr.scope = a['scope']
        if (typeof a['label'] === 'string') addr.label = a['label']
        d.addresses.push(addr)
      }
    }
    out.push(d)
  }
  return out
}

/** `ip addr` text: interface headers followed by `inet`/`inet6` lines (or `ip -j addr` with addr_info). */
export function looksLikeIpAddr(text: string): boolean {
  const head = text.slice(0, 8192)
  if (/^\s*\[\s*\{/.test(head)) return /"ifname"\s*:/.test(head) && /"addr_info"\s*:/.test(head)
  // `ip -o addr`: one address per line, `2: eth0    inet 10.0.3.45/20 … \ valid_lft …`.
  if (/^\d+:\s+\S+\s+inet6?\s+[0-9a-fA-F:.]+\/\d+.*\\/m.test(head)) return true
  return /^\d+:\s+\S+:\s+<[^>]*>/m.test(head) && /^\s+inet6?\s+[0-9a-fA-F:.]+\/\d+/m.test(head)
}

/** `ip link` text: interface headers and `link/…` lines without addresses (or `ip -j link`). */
export function looksLikeIpLink(text: string): boolean {
  const head = text.slice(0, 8192)
  if (/^\s*\[\s*\{/.test(head)) return /"ifname"\s*:/.test(head) && !/"addr_info"\s*:/.test(head)
  if (!/^\d+:\s+\S+:\s+<[^>]*>/m.test(head)) return false
  return !/^\s+inet6?\s+[0-9a-fA-F:.]+\/\d+/m.test(head)
}
