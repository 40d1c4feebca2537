// Walks netfilter base chains on a hook in the kernel's priority order (iptables tables and native nft chains alike),
// following jumps, gotos and returns, applying marks, connmarks and NAT, and recording every decisive step.
import { cidrContains, formatIp, parseCidr, type Family, type IpAddress } from '../model/ip.js'
import {
  BUILTIN_CHAIN_HOOK, IPTABLES_PRIORITY, tableAppliesTo,
  type Chain, type Hook, type Match, type Rule, type Table, type Target,
} from '../model/netfilter.js'
import type { FlowDiff, Step } from '../model/trace.js'
import type { Protocol } from '../model/flow.js'
import type { AddressBook } from './addresses.js'

/** The packet as it moves through the hooks. Marks are unsigned 32-bit. */
export interface Packet {
  src: IpAddress
  dst: IpAddress
  sport: number | null
  dport: number | null
  proto: Protocol
  mark: number
  ctmark: number
  iif: string | undefined
  oif: string | undefined
}

export interface BaseChainRef {
  readonly table: Table
  readonly chain: Chain
  readonly hook: Hook
  readonly priority: number
}

/** Choices the walk must make: kube-proxy's random endpoint rules, nth counters, numgen. */
export class ChoiceScript {
  readonly points: { readonly options: readonly number[] }[] = []
  private pos = 0
  probability = 1
  constructor(private readonly script: readonly number[] = []) {}

  /** Returns the index of the option taken; options are probabilities that sum to 1. */
  choose(options: readonly number[]): number {
    const i = this.pos < this.script.length ? this.script[this.pos]! : 0
    this.points.push({ options })
    this.pos++
    this.probability *= options[i] ?? 0
    return i
  }
  /** The option taken at each choice point so far (the script, then the default 0). */
  get taken(): readonly number[] {
    const out = new Array<number>(this.pos)
    for (let i = 0; i < this.pos; i++) out[i] = i < this.script.length ? this.script[i]! : 0
    return out
  }
}

export interface WalkContext {
  readonly family: Family
  readonly firstPacket: boolean
  /** The tuple as the sender wrote it (conntrack's orig direction), for --ctorigdst and ctstate DNAT. */
  readonly original: { readonly src: IpAddress; readonly dst: IpAddress; readonly sport: number | null; readonly dport: number | null }
  readonly addresses: AddressBook
  readonly choices: ChoiceScript
  readonly steps: Step[]
  readonly warnings: string[]
  /** Set when an unmodelled match or target could have changed the outcome. */
  indeterminate: boolean
  /** Rules evaluated on the nat POSTROUTING hook that did not match, for explaining why nothing SNATed. */
  readonly misses: { rule: Rule; table: Table; failed: Match }[]
  /** Set when a nat chain of the current hook translated the packet (later nat chains of the hook do not run). */
  natBound?: boolean
  /** Where the source address would come from for MASQUERADE, decided by routing before POSTROUTING. */
  masqueradeSource?: (oif: string) => IpAddress | undefined
}

export type HookOutcome = { readonly kind: 'accept' } | { readonly kind: 'drop'; readonly how: 'drop' | 'reject' | 'policy' }

type ChainResult =
  | { kind: 'continue' } // fell off a user chain, or RETURN
  | { kind: 'accept' }
  | { kind: 'drop'; how: 'drop' | 'reject' }

const MAX_DEPTH = 64
const NO_CHAINS: readonly BaseChainRef[] = []
const INDEX_THRESHOLD = 32

/** Per-chain index: rules whose address match is a positive host destination, keyed by that address. */
interface ChainIndex {
  readonly byDst4: Map<bigint, number[]>
  readonly byDst6: Map<bigint, number[]>
  /** Indices of rules the index cannot skip, in order. */
  readonly generic: number[]
  /** byDst lists merged with `generic`, built on first use. */
  readonly merged: WeakMap<number[], number[]>
}

export class Netfilter {
  private readonly hookChains = new Map<string, BaseChainRef[]>()
  /** hookChains by family and hook, without building a key per lookup. */
  private readonly byHook: Record<Family, Partial<Record<Hook, BaseChainRef[]>>> = { 4: {}, 6: {} }
  private readonly indexes = new WeakMap<Chain, ChainIndex>()
  readonly present: { nat: Record<Family, boolean>; mangle: Record<Family, boolean>; any: Record<Family, boolean> }
  private readonly canSnatMemo = new WeakMap<Chain, boolean>()

  constructor(private readonly tables: readonly Table[]) {
    const present = { nat: { 4: false, 6: false }, mangle: { 4: false, 6: false }, any: { 4: false, 6: false } }
    for (const family of [4, 6] as const) {
      for (const table of tables) {
        if (!tableAppliesTo(table.family, family)) continue
        present.any[family] = true
        if (table.origin !== 'nft' && table.name === 'nat') present.nat[family] = true
        if (table.origin !== 'nft' && table.name === 'mangle') present.mangle[family] = true
        if (table.origin === 'nft' && [...table.chains.values()].some((c) => c.type === 'nat')) present.nat[family] = true
        for (const chain of table.chains.values()) {
          const hook = chain.hook ?? (table.origin !== 'nft' ? BUILTIN_CHAIN_HOOK[chain.name] : undefined)
          if (!hook) continue
          const priority = chain.priority ?? IPTABLES_PRIORITY[table.name]?.[hook]
          if (priority === undefined) continue
          const key = `${family}/${hook}`
          let list = this.hookChains.get(key)
          if (!list) this.hookChains.set(key, (list = []))
          list.push({ table, chain, hook, priority })
        }
      }
    }
    // Same priority: iptables (registered at module load) before nft base chains; otherwise the kernel's order.
    for (const list of this.hookChains.values()) list.sort((a, b) => a.priority - b.priority || rank(a.table) - rank(b.table))
    for (const [key, list] of this.hookChains) {
      const [fam, hook] = key.split('/') as [string, Hook]
      this.byHook[Number(fam) as Family][hook] = list
    }
    this.present = present
  }

  private tableByRule?: WeakMap<Rule, Table>

  /** The table a rule belongs to (built once, on first use). */
  tableOf(rule: Rule): Table | undefined {
    if (!this.tableByRule) {
      this.tableByRule = new WeakMap()
      for (const t of this.tables) for (const c of t.chains.values()) for (const r of c.rules) this.tableByRule.set(r, t)
    }
    return this.tableByRule.get(rule)
  }

  baseChains(family: Family, hook: Hook): readonly BaseChainRef[] {
    return this.byHook[family][hook] ?? NO_CHAINS
  }

  /** Runs every base chain of a hook in priority order. nat chains run for the first packet only. */
  runHook(hook: Hook, pkt: Packet, ctx: WalkContext): HookOutcome {
    ctx.natBound = false
    for (const base of this.baseChains(ctx.family, hook)) {
      const isNat = base.table.origin === 'nft' ? base.chain.type === 'nat' : base.table.name === 'nat'
      if (isNat && !ctx.firstPacket) continue
      // nf_nat runs the nat chains of a hook in priority order until one sets up a binding; the rest are skipped.
      if (isNat && ctx.natBound) continue
      const r = this.runChain(base.table, base.chain, pkt, ctx, 0, hook)
      if (r.kind === 'drop') return { kind: 'drop', how: r.how }
      if (r.kind === 'continue') {
        const policy = base.chain.policy ?? 'accept'
        if (policy === 'drop') {
          ctx.steps.push({ kind: 'policy', hook, table: base.table.name, chain: base.chain, policy, summary: `${base.table.name} ${base.chain.name}: policy DROP` })
          return { kind: 'drop', how: 'policy' }
        }
      }
    }
    return { kind: 'accept' }
  }

  private runChain(table: Table, chain: Chain, pkt: Packet, ctx: WalkContext, depth: number, hook: Hook): ChainResult {
    if (depth > MAX_DEPTH) {
      ctx.warnings.push(`${table.name} ${chain.name}: jumps nested deeper than ${MAX_DEPTH}; stopped (a loop?)`)
      ctx.indeterminate = true
      return { kind: 'continue' }
    }
    const order = this.candidates(chain, pkt)
    const n = order ? order.length : chain.rules.length
    for (let k = 0; k < n; k++) {
      const rule = chain.rules[order ? order[k]! : k]!
      const m = this.matchRule(rule, pkt, ctx, hook, table)
      if (m === false) continue
      if (m === 'unknown') {
        if (affectsOutcome(rule.target)) {
          ctx.indeterminate = true
          ctx.steps.push({ kind: 'indeterminate', reason: `cannot tell whether this rule matches: ${unknownMatchText(rule)}`, ref: rule.ref, summary: `${table.name} ${chain.name}: cannot evaluate ${unknownMatchText(rule)}; assumed not to match` })
        }
        continue
      }
      const r = this.apply(rule, table, chain, pkt, ctx, depth, hook)
      if (r) return r
    }
    return { kind: 'continue' }
  }

  /** Rule indices to try, in order. Large chains (KUBE-SERVICES) skip rules for other destination addresses. */
  private candidates(chain: Chain, pkt: Packet): readonly number[] | undefined {
    if (chain.rules.length < INDEX_THRESHOLD) return undefined
    let idx = this.indexes.get(chain)
    if (!idx) this.indexes.set(chain, (idx = buildIndex(chain)))
    const hit = (pkt.dst.family === 4 ? idx.byDst4 : idx.byDst6).get(pkt.dst.value)
    if (!hit) return idx.generic
    let merged = idx.merged.get(hit)
    if (!merged) idx.merged.set(hit, (merged = mergeSorted(hit, idx.generic)))
    return merged
  }

  private matchRule(rule: Rule, pkt: Packet, ctx: WalkContext, hook: Hook, table: Table): boolean | 'unknown' {
    let unknown = false
    for (const m of rule.matches) {
      const r = m.kind === 'nft-set' ? this.matchNftSet(m.keys, m.set, m.negated, table, pkt) : this.matchOne(m, pkt, ctx, hook)
      if (r === false) {
        if (hook === 'postrouting' && this.isNatTable(table)) ctx.misses.push({ rule, table, failed: m })
        return false
      }
      if (r === 'unknown') unknown = true
    }
    return unknown ? 'unknown' : true
  }

  private isNatTable(table: Table): boolean {
    return table.origin === 'nft' ? [...table.chains.values()].some((c) => c.type === 'nat') : table.name === 'nat'
  }

  private matchOne(m: Match, pkt: Packet, ctx: WalkContext, hook: Hook): boolean | 'unknown' {
    const neg = (v: boolean, negated: boolean) => (negated ? !v : v)
    switch (m.kind) {
      case 'src': return neg(cidrContains(m.cidr, pkt.src), m.negated)
      case 'dst': return neg(cidrContains(m.cidr, pkt.dst), m.negated)
      case 'src-range': return neg(pkt.src.family === m.from.family && pkt.src.value >= m.from.value && pkt.src.value <= m.to.value, m.negated)
      case 'dst-range': return neg(pkt.dst.family === m.from.family && pkt.dst.value >= m.from.value && pkt.dst.value <= m.to.value, m.negated)
      case 'in-iface': return neg(ifaceMatches(m.name, m.wildcard, pkt.iif), m.negated)
      case 'out-iface': return neg(ifaceMatches(m.name, m.wildcard, pkt.oif), m.negated)
      case 'protocol': return neg(protocolMatches(m.protocol, pkt.proto), m.negated)
      case 'port': {
        const test = (p: number | null) => p !== null && m.ranges.some((r) => p >= r.from && p <= r.to)
        const v = m.which === 'src' ? test(pkt.sport) : m.which === 'dst' ? test(pkt.dport) : test(pkt.sport) || test(pkt.dport)
        return neg(v, m.negated)
      }
      case 'addrtype': {
        const addr = m.which === 'src' ? pkt.src : pkt.dst
        if (!ctx.addresses.known) {
          // Neither addresses nor the local table in the bundle: only the node's primary address (from the SNAT
          // rule or IMDS) is known to be local. Said in the warnings, not guessed silently.
          const note = 'the node\'s addresses are not in the bundle (no ip addr, no local table): natlens took only its primary address as local for addrtype matches'
          if (!ctx.warnings.includes(note)) ctx.warnings.push(note)
          const t = ctx.addresses.primary && ctx.addresses.primary.value === addr.value ? 'LOCAL' : 'UNICAST'
          return neg(m.types.includes(t), m.negated)
        }
        const limit = m.limitIfaceIn ? pkt.iif : m.limitIfaceOut ? pkt.oif : undefined
        const t = ctx.addresses.addrType(addr, limit)
        return neg(m.types.includes(t), m.negated)
      }
      case 'mark': return neg(((pkt.mark & m.mask) >>> 0) === m.value >>> 0, m.negated)
      case 'connmark': return neg(((pkt.ctmark & m.mask) >>> 0) === m.value >>> 0, m.negated)
      case 'ctstate': {
        const states = new Set<string>()
        states.add(ctx.firstPacket ? 'NEW' : 'ESTABLISHED')
        if (ctx.original.dst.value !== pkt.dst.value || ctx.original.dport !== pkt.dport) states.add('DNAT')
        if (ctx.original.src.value !== pkt.src.value) states.add('SNAT')
        return neg(m.states.some((s) => states.has(s)), m.negated)
      }
      case 'ctaddr': {
        const addr = m.which === 'origsrc' ? ctx.original.src : m.which === 'origdst' ? ctx.original.dst : undefined
        if (!addr) return 'unknown'
        return neg(cidrContains(m.cidr, addr), m.negated)
      }
      case 'ctport': {
        const p = m.which === 'origsrc' ? ctx.original.sport : m.which === 'origdst' ? ctx.original.dport : undefined
        if (p === undefined) return 'unknown'
        return neg(p !== null && m.ranges.some((r) => p >= r.from && p <= r.to), m.negated)
      }
      case 'ctstatus': return 'unknown'
      case 'statistic-random': {
        const p = Math.min(1, Math.max(0, m.probability))
        const taken = ctx.choices.choose([p, 1 - p]) === 0
        return neg(taken, m.negated)
      }
      case 'statistic-nth': {
        const p = 1 / Math.max(1, m.every)
        return neg(ctx.choices.choose([p, 1 - p]) === 0, m.negated)
      }
      case 'comment': return true
      case 'ipset': return 'unknown'
      case 'recent':
        // No earlier packet is known: --rcheck/--update find nothing (session affinity does not apply yet).
        if (m.mode === 'set' || m.mode === 'remove') return !m.negated
        return m.negated
      case 'icmp-type': {
        if (pkt.proto !== 'icmp' && pkt.proto !== 'icmpv6') return m.negated
        const t = m.type.toLowerCase()
        const isEcho = ['any', 'echo-request', '8', '128', '8/0', '128/0'].includes(t)
        return neg(isEcho, m.negated)
      }
      case 'tcp-flags': {
        if (pkt.proto !== 'tcp') return m.negated
        const set = new Set(ctx.firstPacket ? ['SYN'] : ['ACK'])
        const mask = m.mask.map((f) => f.toUpperCase())
        const comp = new Set(m.comp.map((f) => f.toUpperCase()))
        const all = mask.includes('ALL') ? ['SYN', 'ACK', 'FIN', 'RST', 'URG', 'PSH'] : mask
        const v = all.every((f) => set.has(f) === (comp.has(f) || (comp.has('ALL'))))
        return neg(v, m.negated)
      }
      case 'fragment': return m.negated
      case 'opaque': return 'unknown'
    }
    void hook
    return 'unknown'
  }

  /** Applies a matched rule's target. Returns a result when the chain stops here. */
  private apply(rule: Rule, table: Table, chain: Chain, pkt: Packet, ctx: WalkContext, depth: number, hook: Hook): ChainResult | undefined {
    const t = rule.target
    const where = `${table.name} ${chain.name}`
    const stepRule = (action: Extract<Step, { kind: 'rule' }>['action'], summary: string, changes: FlowDiff[] = []) =>
      ctx.steps.push({ kind: 'rule', hook, table: table.name, chain: chain.name, tableOrigin: table.origin, rule, action, changes, summary })
    switch (t.kind) {
      case 'jump': {
        const target = table.chains.get(t.chain)
        if (!target) {
          ctx.warnings.push(`${rule.ref.artifact}:${rule.ref.line}: jump to ${t.chain}, which is not in the dump`)
          ctx.indeterminate = true
          return undefined
        }
        stepRule(t.goto ? 'goto' : 'jump', `${where}: ${t.goto ? 'goto' : 'jump'} ${t.chain}`)
        const r = this.runChain(table, target, pkt, ctx, depth + 1, hook)
        if (r.kind !== 'continue') return r
        // After a goto, RETURN (or the end of the target) returns to this chain's caller.
        return t.goto ? { kind: 'continue' } : undefined
      }
      case 'return':
        stepRule('return', `${where}: RETURN`)
        return { kind: 'continue' }
      case 'accept':
        stepRule('accept', `${where}: ACCEPT`)
        return { kind: 'accept' }
      case 'drop':
        stepRule('drop', `${where}: DROP`)
        return { kind: 'drop', how: 'drop' }
      case 'reject':
        stepRule('reject', `${where}: REJECT${t.with ? ` (${t.with})` : ''}`)
        return { kind: 'drop', how: 'reject' }
      case 'mark': {
        const before = pkt.mark
        pkt.mark = ((pkt.mark & ~t.mask) ^ t.value) >>> 0
        stepRule('mark', `${where}: mark ${hex(before)} → ${hex(pkt.mark)}`, before === pkt.mark ? [] : [{ field: 'mark', before: hex(before), after: hex(pkt.mark) }])
        return undefined
      }
      case 'connmark-set': {
        const before = pkt.ctmark
        pkt.ctmark = ((pkt.ctmark & ~t.mask) ^ t.value) >>> 0
        stepRule('connmark', `${where}: connmark ${hex(before)} → ${hex(pkt.ctmark)}`, before === pkt.ctmark ? [] : [{ field: 'ctmark', before: hex(before), after: hex(pkt.ctmark) }])
        return undefined
      }
      case 'connmark-save': {
        const before = pkt.ctmark
        pkt.ctmark = ((pkt.ctmark & ~t.ctmask) ^ (pkt.mark & t.nfmask)) >>> 0
        stepRule('connmark', `${where}: save mark to connmark ${hex(before)} → ${hex(pkt.ctmark)}`, before === pkt.ctmark ? [] : [{ field: 'ctmark', before: hex(before), after: hex(pkt.ctmark) }])
        return undefined
      }
      case 'connmark-restore': {
        const before = pkt.mark
        pkt.mark = ((pkt.mark & ~t.nfmask) ^ (pkt.ctmark & t.ctmask)) >>> 0
        stepRule('mark', `${where}: restore connmark ${hex(pkt.ctmark)} to mark ${hex(before)} → ${hex(pkt.mark)}`, before === pkt.mark ? [] : [{ field: 'mark', before: hex(before), after: hex(pkt.mark) }])
        return undefined
      }
      case 'mark-from-ct': {
        const before = pkt.mark
        pkt.mark = ((((pkt.ctmark & t.and) | t.or) ^ t.xor) >>> 0)
        stepRule('mark', `${where}: mark set from connmark ${hex(pkt.ctmark)} → ${hex(pkt.mark)}`, before === pkt.mark ? [] : [{ field: 'mark', before: hex(before), after: hex(pkt.mark) }])
        return undefined
      }
      case 'ctmark-expr': {
        const before = pkt.ctmark
        pkt.ctmark = ((((pkt.ctmark & t.and) | t.or) ^ t.xor) >>> 0)
        stepRule('connmark', `${where}: connmark ${hex(before)} → ${hex(pkt.ctmark)}`, before === pkt.ctmark ? [] : [{ field: 'ctmark', before: hex(before), after: hex(pkt.ctmark) }])
        return undefined
      }
      case 'snat': {
        const range = t.to[0]
        if (!range?.minAddr) {
          ctx.warnings.push(`${rule.ref.artifact}:${rule.ref.line}: SNAT without an address; natlens cannot tell the new source`)
          ctx.indeterminate = true
          return { kind: 'accept' }
        }
        const changes: FlowDiff[] = [{ field: 'src', before: formatIp(pkt.src), after: formatIp(range.minAddr) }]
        if (range.maxAddr && range.maxAddr.value !== range.minAddr.value) ctx.warnings.push(`SNAT picks from ${formatIp(range.minAddr)}-${formatIp(range.maxAddr)}; natlens shows the first`)
        pkt.src = range.minAddr
        if (range.ports && pkt.sport !== null) { changes.push({ field: 'sport', before: String(pkt.sport), after: `${range.ports.from}-${range.ports.to}` }); pkt.sport = range.ports.from }
        ctx.natBound = true
        ctx.steps.push({ kind: 'nat', hook, table: table.name, chain: chain.name, tableOrigin: table.origin, rule, nat: 'snat', changes, summary: `${where}: SNAT to ${formatIp(range.minAddr)}${t.randomFully ? ' (random-fully)' : t.random ? ' (random)' : ''}` })
        return { kind: 'accept' }
      }
      case 'masquerade': {
        const src = pkt.oif ? ctx.masqueradeSource?.(pkt.oif) : undefined
        if (!src) {
          ctx.warnings.push(`MASQUERADE on ${pkt.oif ?? 'an unknown interface'}: the interface's address is not in the bundle`)
          ctx.steps.push({ kind: 'nat', hook, table: table.name, chain: chain.name, tableOrigin: table.origin, rule, nat: 'masquerade', changes: [{ field: 'src', before: formatIp(pkt.src), after: `(address of ${pkt.oif ?? '?'})` }], summary: `${where}: MASQUERADE to the address of ${pkt.oif ?? '?'}` })
          ctx.indeterminate = true
          return { kind: 'accept' }
        }
        const changes: FlowDiff[] = [{ field: 'src', before: formatIp(pkt.src), after: formatIp(src) }]
        pkt.src = src
        ctx.natBound = true
        ctx.steps.push({ kind: 'nat', hook, table: table.name, chain: chain.name, tableOrigin: table.origin, rule, nat: 'masquerade', changes, summary: `${where}: MASQUERADE to ${formatIp(src)} (${pkt.oif})` })
        return { kind: 'accept' }
      }
      case 'dnat': {
        const range = t.to[0]
        if (!range?.minAddr && !range?.ports) {
          ctx.indeterminate = true
          ctx.warnings.push(`${rule.ref.artifact}:${rule.ref.line}: DNAT without a destination`)
          return { kind: 'accept' }
        }
        const changes: FlowDiff[] = []
        if (range.minAddr) { changes.push({ field: 'dst', before: formatIp(pkt.dst), after: formatIp(range.minAddr) }); pkt.dst = range.minAddr }
        if (range.ports && pkt.dport !== null) { changes.push({ field: 'dport', before: String(pkt.dport), after: String(range.ports.from) }); pkt.dport = range.ports.from }
        ctx.natBound = true
        ctx.steps.push({ kind: 'nat', hook, table: table.name, chain: chain.name, tableOrigin: table.origin, rule, nat: 'dnat', changes, summary: `${where}: DNAT to ${range.minAddr ? formatIp(range.minAddr) : ''}${range.ports ? `:${range.ports.from}` : ''}` })
        return { kind: 'accept' }
      }
      case 'redirect': {
        const changes: FlowDiff[] = []
        if (t.ports && pkt.dport !== null) { changes.push({ field: 'dport', before: String(pkt.dport), after: String(t.ports.from) }); pkt.dport = t.ports.from }
        ctx.natBound = true
        ctx.steps.push({ kind: 'nat', hook, table: table.name, chain: chain.name, tableOrigin: table.origin, rule, nat: 'redirect', changes, summary: `${where}: REDIRECT to this node${t.ports ? ` port ${t.ports.from}` : ''}` })
        return { kind: 'accept' }
      }
      case 'passive':
      case 'none':
        return undefined
      case 'vmap': {
        const target = this.resolveVmap(t.keys, t.map, table, pkt)
        if (target === 'unknown') {
          ctx.indeterminate = true
          ctx.steps.push({ kind: 'indeterminate', reason: `verdict map @${t.map} keyed by ${t.keys.join(' . ')} is not modelled for this key`, ref: rule.ref, summary: `${where}: vmap @${t.map}: cannot evaluate` })
          return undefined
        }
        if (target === undefined) return undefined
        return this.applyVerdict(target, rule, table, chain, pkt, ctx, depth, hook)
      }
      case 'numgen-vmap': {
        const n = Math.max(1, t.modulus)
        const pick = ctx.choices.choose(new Array(n).fill(1 / n))
        const choice = t.choices.find((c) => c.index === pick)
        if (!choice) return undefined
        return this.applyVerdict(`${choice.goto ? 'goto' : 'jump'} ${choice.chain}`, rule, table, chain, pkt, ctx, depth, hook)
      }
      case 'opaque':
        ctx.indeterminate = true
        ctx.steps.push({ kind: 'indeterminate', reason: `target ${t.name} is not modelled`, ref: rule.ref, summary: `${where}: ${t.name}: not modelled` })
        return undefined
    }
  }

  /** The packet's values for nft selectors (`ip daddr`, `meta l4proto`, `th dport`); undefined for one not modelled. */
  private nftValues(keys: readonly string[], pkt: Packet): { text: string; addr?: IpAddress; port?: number | null }[] | undefined {
    const values: { text: string; addr?: IpAddress; port?: number | null }[] = []
    for (const k of keys) {
      const key = k.trim().replace(/\s+/g, ' ')
      if (key === 'ip daddr' || key === 'ip6 daddr') values.push({ text: formatIp(pkt.dst), addr: pkt.dst })
      else if (key === 'ip saddr' || key === 'ip6 saddr') values.push({ text: formatIp(pkt.src), addr: pkt.src })
      else if (key === 'meta l4proto' || key === 'ip protocol' || key === 'ip6 nexthdr') values.push({ text: pkt.proto })
      else if (key === 'th dport' || key === 'tcp dport' || key === 'udp dport' || key === 'sctp dport') values.push({ text: String(pkt.dport ?? ''), port: pkt.dport })
      else if (key === 'th sport' || key === 'tcp sport' || key === 'udp sport') values.push({ text: String(pkt.sport ?? ''), port: pkt.sport })
      else if (key === 'iifname' || key === 'meta iifname') values.push({ text: pkt.iif ?? '' })
      else if (key === 'oifname' || key === 'meta oifname') values.push({ text: pkt.oif ?? '' })
      else return undefined
    }
    return values
  }

  /** Finds the element of an nft set or map that holds the packet's key (exact, prefix or range elements). */
  private lookupElement(table: Table, setName: string, keys: readonly string[], pkt: Packet): { found: boolean; value?: string } | 'unknown' {
    const set = table.sets.get(setName.replace(/^@/, ''))
    const values = this.nftValues(keys, pkt)
    if (!set || !values) return 'unknown'
    for (const el of set.elements) {
      if (el.key.length !== values.length) continue
      let ok = true
      for (let i = 0; i < values.length && ok; i++) ok = elementPartMatches(el.key[i]!.trim(), values[i]!)
      if (ok) return { found: true, ...(el.value !== undefined ? { value: el.value } : {}) }
    }
    return { found: false }
  }

  private matchNftSet(keys: readonly string[], set: string, negated: boolean, table: Table, pkt: Packet): boolean | 'unknown' {
    const r = this.lookupElement(table, set, keys, pkt)
    if (r === 'unknown') return 'unknown'
    return negated ? !r.found : r.found
  }

  /** Resolves an nft verdict map element for the packet: `10.96.0.10 . tcp . 53 : goto service-…`. */
  private resolveVmap(keys: readonly string[], mapName: string, table: Table, pkt: Packet): string | undefined | 'unknown' {
    const r = this.lookupElement(table, mapName, keys, pkt)
    if (r === 'unknown') return 'unknown'
    return r.found ? r.value : undefined
  }

  private applyVerdict(verdict: string | undefined, rule: Rule, table: Table, chain: Chain, pkt: Packet, ctx: WalkContext, depth: number, hook: Hook): ChainResult | undefined {
    if (!verdict) return undefined
    const [word, arg] = verdict.trim().split(/\s+/)
    const synthetic: Target | undefined =
      word === 'goto' || word === 'jump' ? { kind: 'jump', chain: arg ?? '', goto: word === 'goto' }
        : word === 'accept' ? { kind: 'accept' } : word === 'drop' ? { kind: 'drop' } : word === 'return' ? { kind: 'return' } : word === 'reject' ? { kind: 'reject' } : undefined
    if (!synthetic) return undefined
    return this.apply({ ...rule, target: synthetic }, table, chain, pkt, ctx, depth, hook)
  }

  /** Whether a chain (or anything it jumps to) can translate the source address. */
  canSnat(table: Table, chainName: string, seen = new Set<Chain>()): boolean {
    const chain = table.chains.get(chainName)
    if (!chain) return false
    const memo = this.canSnatMemo.get(chain)
    if (memo !== undefined) return memo
    if (seen.has(chain)) return false
    seen.add(chain)
    let v = false
    for (const r of chain.rules) {
      if (r.target.kind === 'snat' || r.target.kind === 'masquerade') { v = true; break }
      if (r.target.kind === 'jump' && this.canSnat(table, r.target.chain, seen)) { v = true; break }
    }
    this.canSnatMemo.set(chain, v)
    return v
  }

  private readonly snatRuleMemo = new Map<string, boolean>()

  /** Whether any table of the family holds a SNAT or MASQUERADE rule (of one owner, when `ownerKey` names it). */
  hasSnatRule(family: Family, owner?: (rule: Rule, table: Table) => boolean, ownerKey = owner ? 'custom' : 'any'): boolean {
    const key = `${family}/${ownerKey}`
    const memo = this.snatRuleMemo.get(key)
    if (memo !== undefined && ownerKey !== 'custom') return memo
    const v = this.scanSnatRules(family, owner)
    this.snatRuleMemo.set(key, v)
    return v
  }

  private scanSnatRules(family: Family, owner?: (rule: Rule, table: Table) => boolean): boolean {
    for (const table of this.tables) {
      if (!tableAppliesTo(table.family, family)) continue
      for (const c of table.chains.values()) for (const r of c.rules) {
        if ((r.target.kind === 'snat' || r.target.kind === 'masquerade') && (!owner || owner(r, table))) return true
      }
    }
    return false
  }
}

function elementPartMatches(want: string, have: { text: string; addr?: IpAddress; port?: number | null }): boolean {
  if (want === have.text) return true
  if (have.addr) {
    if (want.includes('/')) { const c = parseCidr(want); return !!c && cidrContains(c, have.addr) }
    const dash = want.indexOf('-')
    if (dash > 0) {
      const lo = parseCidr(want.slice(0, dash)), hi = parseCidr(want.slice(dash + 1))
      return !!lo && !!hi && have.addr.value >= lo.network && have.addr.value <= hi.network && lo.family === have.addr.family
    }
    return false
  }
  if (have.port !== undefined && have.port !== null && /^\d+-\d+$/.test(want)) {
    const [a, b] = want.split('-').map(Number)
    return have.port >= a! && have.port <= b!
  }
  // Wildcard interface names: `"eni*"`.
  const unq = want.replace(/^"|"$/g, '')
  if (unq.endsWith('*')) return have.text.startsWith(unq.slice(0, -1))
  return unq === have.text
}

function rank(t: Table): number {
  return t.origin === 'nft' ? 1 : 0
}

function affectsOutcome(t: Target): boolean {
  return t.kind !== 'passive' && t.kind !== 'none'
}

function unknownMatchText(rule: Rule): string {
  const m = rule.matches.find((x) => x.kind === 'opaque' || x.kind === 'ipset' || x.kind === 'ctstatus' || x.kind === 'addrtype')
  if (!m) return rule.ref.text
  if (m.kind === 'opaque') return `-m ${m.module} (${m.text})`
  if (m.kind === 'ipset') return `ipset ${m.set} membership (not in the bundle)`
  if (m.kind === 'addrtype') return 'addrtype (the node\'s addresses are not in the bundle)'
  return rule.ref.text
}

function ifaceMatches(name: string, wildcard: boolean, iface: string | undefined): boolean {
  if (iface === undefined) return false
  return wildcard ? iface.startsWith(name) : iface === name
}

const PROTO_NUM: Record<string, string> = { '6': 'tcp', '17': 'udp', '1': 'icmp', '58': 'icmpv6', '132': 'sctp', 'ipv6-icmp': 'icmpv6', 'icmp6': 'icmpv6' }

function protocolMatches(p: string, proto: Protocol): boolean {
  const name = PROTO_NUM[p] ?? p
  return name === 'all' || name === '0' || name === proto
}

function hex(n: number): string {
  return `0x${(n >>> 0).toString(16)}`
}

function mergeSorted(a: readonly number[], b: readonly number[]): number[] {
  const out: number[] = []
  let i = 0, j = 0
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && a[i]! < b[j]!)) out.push(a[i++]!)
    else out.push(b[j++]!)
  }
  return out
}

function buildIndex(chain: Chain): ChainIndex {
  const byDst4 = new Map<bigint, number[]>()
  const byDst6 = new Map<bigint, number[]>()
  const generic: number[] = []
  chain.rules.forEach((rule, i) => {
    const d = rule.matches.find((m) => m.kind === 'dst')
    if (d && d.kind === 'dst' && !d.negated && d.cidr.prefix === (d.cidr.family === 4 ? 32 : 128)) {
      const map = d.cidr.family === 4 ? byDst4 : byDst6
      let list = map.get(d.cidr.network)
      if (!list) map.set(d.cidr.network, (list = []))
      list.push(i)
    } else {
      generic.push(i)
    }
  })
  return { byDst4, byDst6, generic, merged: new WeakMap() }
}
