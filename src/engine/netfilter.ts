// Walks netfilter base chains on a hook in the kernel's priority order (iptables tables and native nft chains alike),
// following jumps, gotos and returns, applying marks, connmarks and NAT, and recording every decisive step.
import { cidrContains, formatIp, maskOf, parseCidr, parseIp, type Family, type IpAddress } from '../model/ip.js'
import {
  BUILTIN_CHAIN_HOOK, IPTABLES_PRIORITY, tableAppliesTo,
  type Chain, type Hook, type Match, type PortRange, type Rule, type Table, type Target,
} from '../model/netfilter.js'
import type { Step } from '../model/trace.js'
import { NatStep, PolicyStep, RuleStep, type RuleEffect } from '../model/steps.js'
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

/** A base chain ready to run: whether it is a nat chain (runs for the first packet only, first binding wins). */
interface HookChain extends BaseChainRef {
  readonly isNat: boolean
  readonly compiled: CompiledChain
}

/** Choices the walk must make: kube-proxy's random endpoint rules, nth counters, numgen. */
export class ChoiceScript {
  /** The options (probabilities that sum to 1) of each choice point met, in order. */
  readonly points: (readonly number[])[] = []
  private pos = 0
  probability = 1
  constructor(private readonly script: readonly number[] = []) {}

  /** Returns the index of the option taken. */
  choose(options: readonly number[]): number {
    const i = this.pos < this.script.length ? this.script[this.pos]! : 0
    this.points.push(options)
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
  /**
   * What kept the source from being translated on POSTROUTING, in the order the packet met it: a RETURN out of a
   * chain that can SNAT (the VPC CIDR exemption), or a SNAT-capable rule whose condition failed (`! -o vlan+`).
   */
  readonly exemptions: Exemption[]
  /** Set when a nat chain of the current hook translated the packet (later nat chains of the hook do not run). */
  natBound?: boolean
  /** Where the source address would come from for MASQUERADE, decided by routing before POSTROUTING. */
  masqueradeSource?: (oif: string) => IpAddress | undefined
}

export interface Exemption {
  readonly rule: Rule
  readonly table: Table
  /** The RETURN step's index; -1 for a rule that did not match. */
  readonly stepIndex: number
  /** A mark test (kube-proxy's `! --mark 0x4000` RETURN): it explains a missing SNAT only when nothing else does. */
  readonly gate: boolean
}

/** Conditions whose failure exempts a packet from a SNAT rule (rather than the rule being about other traffic). */
const EXEMPTING_MATCHES = new Set<Match['kind']>(['dst', 'dst-range', 'out-iface', 'addrtype', 'mark', 'connmark', 'ctstate', 'ctaddr'])

export type HookOutcome = { readonly kind: 'accept' } | { readonly kind: 'drop'; readonly how: 'drop' | 'reject' | 'policy' }

/** How a chain ended: fell off its end or RETURNed (continue), or a verdict. */
const enum End { Continue, Accept, Drop, Reject }

const ACCEPT: HookOutcome = { kind: 'accept' }
const DROPPED: HookOutcome = { kind: 'drop', how: 'drop' }
const REJECTED: HookOutcome = { kind: 'drop', how: 'reject' }
const POLICY_DROP: HookOutcome = { kind: 'drop', how: 'policy' }

const MAX_DEPTH = 64
const NO_CHAINS: readonly HookChain[] = []
const INDEX_THRESHOLD = 32

/** Per-chain index: rules whose address match is a positive host destination, keyed by that address. */
interface ChainIndex {
  /** IPv4 host destination, as a number → its rules; `merged` adds `generic` (made on first use). */
  readonly byDst4: Map<number, IndexEntry>
  readonly byDst6: Map<bigint, IndexEntry>
  /** Indices of rules the index cannot skip, in order. */
  readonly generic: number[]
}

interface IndexEntry {
  readonly rules: number[]
  merged?: readonly number[]
}

/**
 * A chain as the walk runs it: jump targets are resolved once, to the compiled chain itself (a chain name is looked
 * up in a table of 100k chains the first time a rule jumps, not on every packet), and big chains are indexed.
 */
interface CompiledChain {
  readonly table: Table
  readonly chain: Chain
  /** The rules' table holds nat chains: failed matches on POSTROUTING are kept to explain a missing SNAT. */
  readonly natTable: boolean
  readonly rules: readonly Rule[]
  /** The chain's name, kept here so a step is recorded without reading the chain. */
  readonly chainName: string
  /** The rules as the walk evaluates them (same order as `rules`). */
  readonly compiled: readonly CompiledRule[]
  /** Per rule: the chain its jump or goto enters (null when the dump does not hold it), resolved on first use. */
  readonly jumps: (CompiledChain | null | undefined)[]
  /** Per rule: the summary data of targets that carry no packet values (jump, RETURN, ACCEPT, …), made once. */
  readonly effects: (RuleEffect | undefined)[]
  /** Whether this chain, or a chain it enters, can translate the source (computed on first use). */
  canSnat?: boolean
  /** Per rule: whether it translates the source or enters a chain that can (computed on first use). */
  readonly snatCapable: (boolean | undefined)[]
  readonly index: ChainIndex | undefined
}

export class Netfilter {
  private readonly hookChains = new Map<string, HookChain[]>()
  /** hookChains by family and hook, without building a key per lookup. */
  private readonly byHook: Record<Family, Partial<Record<Hook, HookChain[]>>> = { 4: {}, 6: {} }
  private readonly compiledChains = new Map<Chain, CompiledChain>()
  private readonly natTables = new Map<Table, boolean>()
  readonly present: { nat: Record<Family, boolean>; mangle: Record<Family, boolean>; any: Record<Family, boolean> }
  private readonly canSnatMemo = new WeakMap<Chain, boolean>()

  constructor(private readonly tables: readonly Table[]) {
    const present = { nat: { 4: false, 6: false }, mangle: { 4: false, 6: false }, any: { 4: false, 6: false } }
    for (const table of tables) this.natTables.set(table, table.origin === 'nft' ? [...table.chains.values()].some((c) => c.type === 'nat') : table.name === 'nat')
    for (const family of [4, 6] as const) {
      for (const table of tables) {
        if (!tableAppliesTo(table.family, family)) continue
        present.any[family] = true
        if (table.origin !== 'nft' && table.name === 'nat') present.nat[family] = true
        if (table.origin !== 'nft' && table.name === 'mangle') present.mangle[family] = true
        if (table.origin === 'nft' && this.natTables.get(table)) present.nat[family] = true
        for (const chain of table.chains.values()) {
          const hook = chain.hook ?? (table.origin !== 'nft' ? BUILTIN_CHAIN_HOOK[chain.name] : undefined)
          if (!hook) continue
          const priority = chain.priority ?? IPTABLES_PRIORITY[table.name]?.[hook]
          if (priority === undefined) continue
          const key = `${family}/${hook}`
          let list = this.hookChains.get(key)
          if (!list) this.hookChains.set(key, (list = []))
          const isNat = table.origin === 'nft' ? chain.type === 'nat' : table.name === 'nat'
          list.push({ table, chain, hook, priority, isNat, compiled: this.compile(table, chain) })
        }
      }
    }
    // Same priority: the kernel puts a newly registered hook ahead of those of equal priority (net/netfilter/core.c
    // nf_hook_entries_grow), so the one registered last runs first. The dump does not say when each was registered:
    // native nft base chains are taken as registered after the iptables tables (kubelet instantiates those at boot,
    // before any pod; kube-proxy and other agents create, and recreate at each start, their nft tables later).
    for (const list of this.hookChains.values()) list.sort((a, b) => a.priority - b.priority || rank(b.table) - rank(a.table))
    for (const [key, list] of this.hookChains) {
      const [fam, hook] = key.split('/') as [string, Hook]
      this.byHook[Number(fam) as Family][hook] = list
    }
    this.present = present
  }

  private compile(table: Table, chain: Chain): CompiledChain {
    let c = this.compiledChains.get(chain)
    if (!c) {
      const n = chain.rules.length
      c = {
        table, chain, natTable: this.natTables.get(table) ?? false, rules: chain.rules, chainName: chain.name, compiled: chain.rules.map((r) => new CompiledRule(r)),
        jumps: new Array(n).fill(undefined), effects: new Array(n).fill(undefined), snatCapable: new Array(n).fill(undefined),
        index: n >= INDEX_THRESHOLD ? buildIndex(chain) : undefined,
      }
      this.compiledChains.set(chain, c)
    }
    return c
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
    const list = this.byHook[ctx.family][hook] ?? NO_CHAINS
    let boundBy: HookChain | undefined
    for (let i = 0; i < list.length; i++) {
      const base = list[i]!
      if (base.isNat && !ctx.firstPacket) continue
      // nf_nat runs the nat chains of a hook in priority order until one sets up a binding; the rest are skipped.
      if (base.isNat && ctx.natBound) {
        if (boundBy && boundBy.priority === base.priority && rank(boundBy.table) !== rank(base.table) && base.chain.rules.length > 0) ctx.warnings.push(sharedPriorityWarning(hook, boundBy, base))
        continue
      }
      const end = this.runChain(base.compiled, pkt, ctx, 0, hook)
      if (base.isNat && ctx.natBound && !boundBy) boundBy = base
      if (end === End.Drop) return DROPPED
      if (end === End.Reject) return REJECTED
      if (end === End.Continue && base.chain.policy === 'drop') {
        ctx.steps.push(new PolicyStep(hook, base.table.name, base.chain, 'drop'))
        return POLICY_DROP
      }
    }
    return ACCEPT
  }

  private runChain(cc: CompiledChain, pkt: Packet, ctx: WalkContext, depth: number, hook: Hook): End {
    if (depth > MAX_DEPTH) {
      ctx.warnings.push(`${cc.table.name} ${cc.chain.name}: jumps nested deeper than ${MAX_DEPTH}; stopped (a loop?)`)
      ctx.indeterminate = true
      return End.Continue
    }
    const rules = cc.compiled
    const order = cc.index ? candidates(cc.index, pkt) : undefined
    const n = order ? order.length : rules.length
    const recordMisses = cc.natTable && hook === 'postrouting'
    for (let k = 0; k < n; k++) {
      const i = order ? order[k]! : k
      const cr = rules[i]!
      const m = this.matchRule(cr, pkt, ctx, cc, i, recordMisses)
      if (m === false) continue
      if (m === UNKNOWN) {
        const rule = cr.rule
        if (affectsOutcome(rule.target)) {
          ctx.indeterminate = true
          ctx.steps.push({ kind: 'indeterminate', reason: `cannot tell whether this rule matches: ${unknownMatchText(rule)}`, ref: rule.ref, summary: `${cc.table.name} ${cc.chain.name}: cannot evaluate ${unknownMatchText(rule)}; assumed not to match` })
        }
        continue
      }
      const end = this.apply(cr.rule, cr.target, cr, cc, i, pkt, ctx, depth, hook)
      if (end !== undefined) return end
    }
    return End.Continue
  }

  private matchRule(cr: CompiledRule, pkt: Packet, ctx: WalkContext, cc: CompiledChain, index: number, recordMisses: boolean): boolean | typeof UNKNOWN {
    let unknown = false
    const n = cr.count
    if (n === 0) return true
    let r = this.test(cr.cond0, cr.negated0, cr.a0, cr.b0, cr.name0, cr.match0!, pkt, ctx, cc)
    if (r === false) return this.missed(cr, cr.match0!, ctx, cc, index, recordMisses)
    if (r === UNKNOWN) unknown = true
    if (n === 1) return unknown ? UNKNOWN : true
    r = this.test(cr.cond1, cr.negated1, cr.a1, cr.b1, cr.name1, cr.match1!, pkt, ctx, cc)
    if (r === false) return this.missed(cr, cr.match1!, ctx, cc, index, recordMisses)
    if (r === UNKNOWN) unknown = true
    const more = cr.more
    for (let i = 0; i < more.length; i++) {
      const c = more[i]!
      r = this.test(c.cond, c.negated, c.a, c.b, c.name, c.match, pkt, ctx, cc)
      if (r === false) return this.missed(cr, c.match, ctx, cc, index, recordMisses)
      if (r === UNKNOWN) unknown = true
    }
    return unknown ? UNKNOWN : true
  }

  /** A condition failed: on nat POSTROUTING, a failed condition of a SNAT-capable rule may be what exempted the packet. */
  private missed(cr: CompiledRule, m: Match, ctx: WalkContext, cc: CompiledChain, index: number, recordMisses: boolean): false {
    if (recordMisses && EXEMPTING_MATCHES.has(m.kind) && this.ruleCanSnat(cc, index)) ctx.exemptions.push({ rule: cr.rule, table: cc.table, stepIndex: -1, gate: m.kind === 'mark' })
    return false
  }

  /** One condition of a rule, from its compiled fields (the common matches) or the match itself. */
  private test(cond: Cond, negated: boolean, a: number, b: number, name: string, m: Match, pkt: Packet, ctx: WalkContext, cc: CompiledChain): boolean | typeof UNKNOWN {
    switch (cond) {
      case Cond.Src4: { const x = pkt.src; return neg(x.family === 4 && ((x.n ?? Number(x.value)) & b) === a, negated) }
      case Cond.Dst4: { const x = pkt.dst; return neg(x.family === 4 && ((x.n ?? Number(x.value)) & b) === a, negated) }
      case Cond.Protocol: return neg(name === 'all' || name === '0' || name === pkt.proto, negated)
      case Cond.DstPort: { const p = pkt.dport; return neg(p !== null && p >= a && p <= b, negated) }
      case Cond.Mark: return neg((pkt.mark & b) === a, negated)
      case Cond.Random: {
        const p = Math.min(1, Math.max(0, (m as Extract<Match, { kind: 'statistic-random' }>).probability))
        return neg(ctx.choices.choose([p, 1 - p]) === 0, negated)
      }
      case Cond.InIface: return neg(ifaceMatches(name, a === 1, pkt.iif), negated)
      case Cond.OutIface: return neg(ifaceMatches(name, a === 1, pkt.oif), negated)
      case Cond.Other: return m.kind === 'nft-set' ? this.matchNftSet(m.keys, m.set, m.negated, cc.table, pkt) : matchOne(m, pkt, ctx)
    }
  }

  /** The chain a rule's jump enters, resolved once per rule. */
  private jumpTarget(cc: CompiledChain, i: number, name: string): CompiledChain | null {
    let next = i >= 0 ? cc.jumps[i] : undefined
    if (next === undefined) {
      const chain = cc.table.chains.get(name)
      next = chain ? this.compile(cc.table, chain) : null
      if (i >= 0) cc.jumps[i] = next
    }
    return next
  }

  /**
   * Applies a matched rule's target (`i` is the rule's index in its chain; -1 for a verdict an nft map chose, which has
   * no compiled rule). Returns how the chain ends when it ends here.
   */
  private apply(rule: Rule, t: Target, cr: CompiledRule | undefined, cc: CompiledChain, i: number, pkt: Packet, ctx: WalkContext, depth: number, hook: Hook): End | undefined {
    // The two targets a kube-proxy Service's walk applies most (jump to an endpoint, DNAT) from the compiled rule.
    if (cr?.kind === 'jump') return this.applyJump(rule, t, cr.jumpChain, cr.goto, cc, i, pkt, ctx, depth, hook)
    if (cr?.kind === 'dnat') return this.applyDnat(rule, cr.dnatAddr, cr.dnatPort >= 0 ? cr.dnatPort : undefined, cc, pkt, ctx, hook)
    const table = cc.table
    const chainName = cc.chainName
    switch (t.kind) {
      case 'jump': return this.applyJump(rule, t, t.chain, t.goto, cc, i, pkt, ctx, depth, hook)
      case 'return':
        ctx.steps.push(new RuleStep(hook, table.name, chainName, table.origin, rule, 'return', this.staticEffect(cc, i, t)))
        if (hook === 'postrouting' && i >= 0 && this.chainCanSnat(cc)) ctx.exemptions.push({ rule, table, stepIndex: ctx.steps.length - 1, gate: rule.matches.some(isMarkMatch) })
        return End.Continue
      case 'accept':
        ctx.steps.push(new RuleStep(hook, table.name, chainName, table.origin, rule, 'accept', this.staticEffect(cc, i, t)))
        return End.Accept
      case 'drop':
        ctx.steps.push(new RuleStep(hook, table.name, chainName, table.origin, rule, 'drop', this.staticEffect(cc, i, t)))
        return End.Drop
      case 'reject':
        ctx.steps.push(new RuleStep(hook, table.name, chainName, table.origin, rule, 'reject', this.staticEffect(cc, i, t)))
        return End.Reject
      case 'mark': {
        const before = pkt.mark
        pkt.mark = ((pkt.mark & ~t.mask) ^ t.value) >>> 0
        ctx.steps.push(new RuleStep(hook, table.name, chainName, table.origin, rule, 'mark', { op: 'mark', before, after: pkt.mark, ctmark: pkt.ctmark }))
        return undefined
      }
      case 'connmark-set': {
        const before = pkt.ctmark
        pkt.ctmark = ((pkt.ctmark & ~t.mask) ^ t.value) >>> 0
        ctx.steps.push(new RuleStep(hook, table.name, chainName, table.origin, rule, 'connmark', { op: 'connmark', before, after: pkt.ctmark, ctmark: pkt.ctmark }))
        return undefined
      }
      case 'connmark-save': {
        const before = pkt.ctmark
        pkt.ctmark = ((pkt.ctmark & ~t.ctmask) ^ (pkt.mark & t.nfmask)) >>> 0
        ctx.steps.push(new RuleStep(hook, table.name, chainName, table.origin, rule, 'connmark', { op: 'save', before, after: pkt.ctmark, ctmark: pkt.ctmark }))
        return undefined
      }
      case 'connmark-restore': {
        const before = pkt.mark
        pkt.mark = ((pkt.mark & ~t.nfmask) ^ (pkt.ctmark & t.ctmask)) >>> 0
        ctx.steps.push(new RuleStep(hook, table.name, chainName, table.origin, rule, 'mark', { op: 'restore', before, after: pkt.mark, ctmark: pkt.ctmark }))
        return undefined
      }
      case 'mark-from-ct': {
        const before = pkt.mark
        pkt.mark = ((((pkt.ctmark & t.and) | t.or) ^ t.xor) >>> 0)
        ctx.steps.push(new RuleStep(hook, table.name, chainName, table.origin, rule, 'mark', { op: 'mark-from-ct', before, after: pkt.mark, ctmark: pkt.ctmark }))
        return undefined
      }
      case 'ctmark-expr': {
        const before = pkt.ctmark
        pkt.ctmark = ((((pkt.ctmark & t.and) | t.or) ^ t.xor) >>> 0)
        ctx.steps.push(new RuleStep(hook, table.name, chainName, table.origin, rule, 'connmark', { op: 'connmark', before, after: pkt.ctmark, ctmark: pkt.ctmark }))
        return undefined
      }
      case 'snat': {
        const range = t.to[0]
        if (!range?.minAddr) {
          ctx.warnings.push(`${rule.ref.artifact}:${rule.ref.line}: SNAT without an address; natlens cannot tell the new source`)
          ctx.indeterminate = true
          return End.Accept
        }
        if (range.maxAddr && range.maxAddr.value !== range.minAddr.value) ctx.warnings.push(`SNAT picks from ${formatIp(range.minAddr)}-${formatIp(range.maxAddr)}; natlens shows the first`)
        const flags = t.randomFully ? 'random-fully' : t.random ? 'random' : undefined
        const ports = range.ports && pkt.sport !== null ? range.ports : undefined
        ctx.steps.push(new NatStep(hook, table.name, chainName, table.origin, rule, 'snat', {
          addrBefore: pkt.src, addrAfter: range.minAddr, portBefore: pkt.sport,
          ...(ports ? { portAfter: ports.from, portTo: ports.to } : {}), ...(flags ? { flags } : {}),
        }))
        pkt.src = range.minAddr
        if (ports) pkt.sport = ports.from
        ctx.natBound = true
        return End.Accept
      }
      case 'masquerade': {
        const src = pkt.oif ? ctx.masqueradeSource?.(pkt.oif) : undefined
        if (!src) {
          ctx.warnings.push(`MASQUERADE on ${pkt.oif ?? 'an unknown interface'}: the interface's address is not in the bundle`)
          ctx.steps.push(new NatStep(hook, table.name, chainName, table.origin, rule, 'masquerade', { addrBefore: pkt.src, portBefore: pkt.sport, ...(pkt.oif ? { oif: pkt.oif } : {}) }))
          ctx.indeterminate = true
          return End.Accept
        }
        ctx.steps.push(new NatStep(hook, table.name, chainName, table.origin, rule, 'masquerade', { addrBefore: pkt.src, addrAfter: src, portBefore: pkt.sport, oif: pkt.oif! }))
        pkt.src = src
        ctx.natBound = true
        return End.Accept
      }
      case 'dnat': return this.applyDnat(rule, t.to[0]?.minAddr, t.to[0]?.ports?.from, cc, pkt, ctx, hook)
      case 'redirect': {
        ctx.steps.push(new NatStep(hook, table.name, chainName, table.origin, rule, 'redirect', { addrBefore: pkt.dst, portBefore: pkt.dport, ...(t.ports ? { portAfter: t.ports.from } : {}) }))
        if (t.ports && pkt.dport !== null) pkt.dport = t.ports.from
        ctx.natBound = true
        return End.Accept
      }
      case 'passive':
      case 'none':
        return undefined
      case 'vmap': {
        const target = this.resolveVmap(t.keys, t.map, table, pkt)
        if (target === UNKNOWN) {
          ctx.indeterminate = true
          ctx.steps.push({ kind: 'indeterminate', reason: `verdict map @${t.map} keyed by ${t.keys.join(' . ')} is not modelled for this key`, ref: rule.ref, summary: `${table.name} ${chainName}: vmap @${t.map}: cannot evaluate` })
          return undefined
        }
        if (target === undefined) return undefined
        return this.applyVerdict(target, rule, cc, pkt, ctx, depth, hook)
      }
      case 'numgen-vmap': {
        const n = Math.max(1, t.modulus)
        const pick = ctx.choices.choose(new Array(n).fill(1 / n))
        const choice = t.choices.find((c) => c.index === pick)
        if (!choice) return undefined
        return this.applyVerdict(`${choice.goto ? 'goto' : 'jump'} ${choice.chain}`, rule, cc, pkt, ctx, depth, hook)
      }
      case 'opaque':
        ctx.indeterminate = true
        ctx.steps.push({ kind: 'indeterminate', reason: `target ${t.name} is not modelled`, ref: rule.ref, summary: `${table.name} ${chainName}: ${t.name}: not modelled` })
        return undefined
    }
  }

  private applyJump(rule: Rule, t: Target, name: string, goto: boolean, cc: CompiledChain, i: number, pkt: Packet, ctx: WalkContext, depth: number, hook: Hook): End | undefined {
    const target = this.jumpTarget(cc, i, name)
    if (!target) {
      ctx.warnings.push(`${rule.ref.artifact}:${rule.ref.line}: jump to ${name}, which is not in the dump`)
      ctx.indeterminate = true
      return undefined
    }
    ctx.steps.push(new RuleStep(hook, cc.table.name, cc.chainName, cc.table.origin, rule, goto ? 'goto' : 'jump', this.staticEffect(cc, i, t)))
    const end = this.runChain(target, pkt, ctx, depth + 1, hook)
    if (end !== End.Continue) return end
    // After a goto, RETURN (or the end of the target) returns to this chain's caller.
    return goto ? End.Continue : undefined
  }

  private applyDnat(rule: Rule, addr: IpAddress | undefined, port: number | undefined, cc: CompiledChain, pkt: Packet, ctx: WalkContext, hook: Hook): End {
    if (!addr && port === undefined) {
      ctx.indeterminate = true
      ctx.warnings.push(`${rule.ref.artifact}:${rule.ref.line}: DNAT without a destination`)
      return End.Accept
    }
    ctx.steps.push(new NatStep(hook, cc.table.name, cc.chainName, cc.table.origin, rule, 'dnat', {
      addrBefore: pkt.dst, portBefore: pkt.dport, ...(addr ? { addrAfter: addr } : {}), ...(port !== undefined ? { portAfter: port } : {}),
    }))
    if (addr) pkt.dst = addr
    if (port !== undefined && pkt.dport !== null) pkt.dport = port
    ctx.natBound = true
    return End.Accept
  }

  private chainCanSnat(cc: CompiledChain): boolean {
    return cc.canSnat ?? (cc.canSnat = this.canSnat(cc.table, cc.chain.name))
  }

  private ruleCanSnat(cc: CompiledChain, i: number): boolean {
    let v = cc.snatCapable[i]
    if (v === undefined) {
      const t = cc.rules[i]!.target
      v = cc.snatCapable[i] = t.kind === 'snat' || t.kind === 'masquerade' || (t.kind === 'jump' && this.canSnat(cc.table, t.chain))
    }
    return v
  }

  /** The summary data of a target that does not depend on the packet, made once per rule. */
  private staticEffect(cc: CompiledChain, i: number, t: Target): RuleEffect {
    const cached = i >= 0 ? cc.effects[i] : undefined
    if (cached) return cached
    const e: RuleEffect = t.kind === 'jump' ? { op: t.goto ? 'goto' : 'jump', chain: t.chain }
      : t.kind === 'reject' ? (t.with ? { op: 'reject', with: t.with } : { op: 'reject' })
        : { op: t.kind === 'return' ? 'return' : t.kind === 'drop' ? 'drop' : 'accept' }
    if (i >= 0) cc.effects[i] = e
    return e
  }

  /** Finds the element of an nft set or map that holds the packet's key (exact, prefix or range elements). */
  private lookupElement(table: Table, setName: string, keys: readonly string[], pkt: Packet): NftElement | null | typeof UNKNOWN {
    const set = this.compiledSet(table, setName)
    const selectors = selectorsOf(keys)
    if (!set || !selectors) return UNKNOWN
    const values = nftValues(selectors, pkt)
    const exact = set.exact.get(values.map((v) => v.text).join(' . '))
    if (exact) return exact
    for (const el of set.scan) {
      if (el.key.length !== values.length) continue
      let ok = true
      for (let i = 0; i < values.length && ok; i++) ok = elementPartMatches(el.key[i]!.trim(), values[i]!)
      if (ok) return el
    }
    return null
  }

  private readonly compiledSets = new Map<Table, Map<string, CompiledSet | null>>()

  /**
   * An nft set or map made ready for lookups: elements whose every part is a plain value (an address, a protocol, a
   * port, an interface name) are found by their key text; prefixes, ranges and wildcards are tried in order.
   * kube-proxy's nftables mode keeps a map of every service; this is the index that stands for its hash.
   */
  private compiledSet(table: Table, name: string): CompiledSet | null {
    let sets = this.compiledSets.get(table)
    if (!sets) this.compiledSets.set(table, (sets = new Map()))
    const bare = name.replace(/^@/, '')
    let c = sets.get(bare)
    if (c === undefined) {
      const set = table.sets.get(bare)
      c = set ? compileSet(set.elements) : null
      sets.set(bare, c)
    }
    return c
  }

  private matchNftSet(keys: readonly string[], set: string, negated: boolean, table: Table, pkt: Packet): boolean | typeof UNKNOWN {
    const r = this.lookupElement(table, set, keys, pkt)
    if (r === UNKNOWN) return UNKNOWN
    return negated ? r === null : r !== null
  }

  /** Resolves an nft verdict map element for the packet: `10.96.0.10 . tcp . 53 : goto service-…`. */
  private resolveVmap(keys: readonly string[], mapName: string, table: Table, pkt: Packet): string | undefined | typeof UNKNOWN {
    const r = this.lookupElement(table, mapName, keys, pkt)
    if (r === UNKNOWN) return UNKNOWN
    return r ? r.value : undefined
  }

  private applyVerdict(verdict: string | undefined, rule: Rule, cc: CompiledChain, pkt: Packet, ctx: WalkContext, depth: number, hook: Hook): End | undefined {
    if (!verdict) return undefined
    const [word, arg] = verdict.trim().split(/\s+/)
    const synthetic: Target | undefined =
      word === 'goto' || word === 'jump' ? { kind: 'jump', chain: arg ?? '', goto: word === 'goto' }
        : word === 'accept' ? { kind: 'accept' } : word === 'drop' ? { kind: 'drop' } : word === 'return' ? { kind: 'return' } : word === 'reject' ? { kind: 'reject' } : undefined
    if (!synthetic) return undefined
    return this.apply({ ...rule, target: synthetic }, synthetic, undefined, cc, -1, pkt, ctx, depth, hook)
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

/** The conditions the walk evaluates from a compiled rule's fields; the rest (Other) through matchOne. */
const enum Cond { Src4, Dst4, Protocol, DstPort, Mark, InIface, OutIface, Random, Other }

/** One condition of a rule in a fixed shape: every rule reads the same fields, whatever its matches. */
class CompiledMatch {
  constructor(readonly cond: Cond, readonly negated: boolean, readonly a: number, readonly b: number, readonly name: string, readonly match: Match) {}
}

/**
 * A rule as the walk evaluates it: its conditions in order, comments left out, the first two held in the rule's own
 * fields. A kube-proxy endpoint rule is then one object to read, not a rule, a list and a match per condition.
 */
class CompiledRule {
  readonly count: number
  readonly cond0: Cond = Cond.Other
  readonly negated0: boolean = false
  readonly a0: number = 0
  readonly b0: number = 0
  readonly name0: string = ''
  readonly match0: Match | undefined = undefined
  readonly cond1: Cond = Cond.Other
  readonly negated1: boolean = false
  readonly a1: number = 0
  readonly b1: number = 0
  readonly name1: string = ''
  readonly match1: Match | undefined = undefined
  readonly more: readonly CompiledMatch[]
  readonly target: Target
  /** The target's kind, and what the common targets need, so applying them reads no other object. */
  readonly kind: Target['kind']
  readonly goto: boolean = false
  readonly jumpChain: string = ''
  /** DNAT: the new address and port (-1: the port is kept). */
  readonly dnatAddr: IpAddress | undefined = undefined
  readonly dnatPort: number = -1

  constructor(readonly rule: Rule) {
    const conds = rule.matches.filter((m) => m.kind !== 'comment').map(compileMatch)
    this.count = conds.length
    const c0 = conds[0], c1 = conds[1]
    if (c0) { this.cond0 = c0.cond; this.negated0 = c0.negated; this.a0 = c0.a; this.b0 = c0.b; this.name0 = c0.name; this.match0 = c0.match }
    if (c1) { this.cond1 = c1.cond; this.negated1 = c1.negated; this.a1 = c1.a; this.b1 = c1.b; this.name1 = c1.name; this.match1 = c1.match }
    this.more = conds.length > 2 ? conds.slice(2) : NO_MATCHES
    const t = rule.target
    this.target = t
    this.kind = t.kind
    if (t.kind === 'jump') { this.goto = t.goto; this.jumpChain = t.chain }
    if (t.kind === 'dnat') { this.dnatAddr = t.to[0]?.minAddr; this.dnatPort = t.to[0]?.ports?.from ?? -1 }
  }
}

const NO_MATCHES: readonly CompiledMatch[] = []

function compileMatch(m: Match): CompiledMatch {
  switch (m.kind) {
    case 'src': case 'dst':
      if (m.cidr.family !== 4) break
      // Network and mask as signed 32-bit integers (small integers to V8), compared after `&`, which gives the same.
      return new CompiledMatch(m.kind === 'src' ? Cond.Src4 : Cond.Dst4, m.negated, (m.cidr.n ?? Number(m.cidr.network)) | 0, (m.cidr.m ?? Number(maskOf(4, m.cidr.prefix))) | 0, '', m)
    case 'protocol': return new CompiledMatch(Cond.Protocol, m.negated, 0, 0, PROTO_NUM[m.protocol] ?? m.protocol, m)
    case 'port':
      if (m.which !== 'dst' || m.ranges.length !== 1) break
      return new CompiledMatch(Cond.DstPort, m.negated, m.ranges[0]!.from, m.ranges[0]!.to, '', m)
    case 'mark':
      // A value with bits outside the mask never matches; matchOne says so.
      if ((m.value & m.mask) !== (m.value | 0)) break
      return new CompiledMatch(Cond.Mark, m.negated, m.value | 0, m.mask | 0, '', m)
    case 'statistic-random': return new CompiledMatch(Cond.Random, m.negated, 0, 0, '', m)
    case 'in-iface': case 'out-iface':
      return new CompiledMatch(m.kind === 'in-iface' ? Cond.InIface : Cond.OutIface, m.negated, m.wildcard ? 1 : 0, 0, m.name, m)
  }
  return new CompiledMatch(Cond.Other, 'negated' in m ? m.negated : false, 0, 0, '', m)
}

/** A match the engine cannot decide from the bundle (an ipset, an unknown module). */
const UNKNOWN = 'unknown' as const

function isMarkMatch(m: Match): boolean {
  return m.kind === 'mark'
}

function neg(v: boolean, negated: boolean): boolean {
  return negated ? !v : v
}

function portIn(p: number | null, ranges: readonly PortRange[]): boolean {
  if (p === null) return false
  for (let i = 0; i < ranges.length; i++) if (p >= ranges[i]!.from && p <= ranges[i]!.to) return true
  return false
}

const ADDRESSES_UNKNOWN = 'the node\'s addresses are not in the bundle (no ip addr, no local table): natlens took only its primary address as local for addrtype matches'
const ALL_TCP_FLAGS = ['SYN', 'ACK', 'FIN', 'RST', 'URG', 'PSH']

function matchOne(m: Match, pkt: Packet, ctx: WalkContext): boolean | typeof UNKNOWN {
  switch (m.kind) {
    case 'src': return neg(cidrContains(m.cidr, pkt.src), m.negated)
    case 'dst': return neg(cidrContains(m.cidr, pkt.dst), m.negated)
    case 'src-range': return neg(pkt.src.family === m.from.family && pkt.src.value >= m.from.value && pkt.src.value <= m.to.value, m.negated)
    case 'dst-range': return neg(pkt.dst.family === m.from.family && pkt.dst.value >= m.from.value && pkt.dst.value <= m.to.value, m.negated)
    case 'in-iface': return neg(ifaceMatches(m.name, m.wildcard, pkt.iif), m.negated)
    case 'out-iface': return neg(ifaceMatches(m.name, m.wildcard, pkt.oif), m.negated)
    case 'protocol': return neg(protocolMatches(m.protocol, pkt.proto), m.negated)
    case 'port': {
      const v = m.which === 'src' ? portIn(pkt.sport, m.ranges) : m.which === 'dst' ? portIn(pkt.dport, m.ranges) : portIn(pkt.sport, m.ranges) || portIn(pkt.dport, m.ranges)
      return neg(v, m.negated)
    }
    case 'addrtype': {
      const addr = m.which === 'src' ? pkt.src : pkt.dst
      if (!ctx.addresses.known) {
        // Neither addresses nor the local table in the bundle: only the node's primary address (from the SNAT
        // rule or IMDS) is known to be local. Said in the warnings, not guessed silently.
        if (!ctx.warnings.includes(ADDRESSES_UNKNOWN)) ctx.warnings.push(ADDRESSES_UNKNOWN)
        const t = ctx.addresses.primary && ctx.addresses.primary.value === addr.value ? 'LOCAL' : 'UNICAST'
        return neg(m.types.includes(t), m.negated)
      }
      const limit = m.limitIfaceIn ? pkt.iif : m.limitIfaceOut ? pkt.oif : undefined
      return neg(m.types.includes(ctx.addresses.addrType(addr, limit)), m.negated)
    }
    case 'mark': return neg(((pkt.mark & m.mask) >>> 0) === m.value >>> 0, m.negated)
    case 'connmark': return neg(((pkt.ctmark & m.mask) >>> 0) === m.value >>> 0, m.negated)
    case 'ctstate': {
      const o = ctx.original
      const dnat = o.dst.value !== pkt.dst.value || o.dport !== pkt.dport
      const snat = o.src.value !== pkt.src.value
      let v = false
      for (const s of m.states) if (s === (ctx.firstPacket ? 'NEW' : 'ESTABLISHED') || (s === 'DNAT' && dnat) || (s === 'SNAT' && snat)) { v = true; break }
      return neg(v, m.negated)
    }
    case 'ctaddr': {
      const addr = m.which === 'origsrc' ? ctx.original.src : m.which === 'origdst' ? ctx.original.dst : undefined
      if (!addr) return UNKNOWN
      return neg(cidrContains(m.cidr, addr), m.negated)
    }
    case 'ctport': {
      const p = m.which === 'origsrc' ? ctx.original.sport : m.which === 'origdst' ? ctx.original.dport : undefined
      if (p === undefined) return UNKNOWN
      return neg(portIn(p, m.ranges), m.negated)
    }
    case 'ctstatus': return UNKNOWN
    case 'statistic-random': {
      const p = Math.min(1, Math.max(0, m.probability))
      return neg(ctx.choices.choose([p, 1 - p]) === 0, m.negated)
    }
    case 'statistic-nth': {
      const p = 1 / Math.max(1, m.every)
      return neg(ctx.choices.choose([p, 1 - p]) === 0, m.negated)
    }
    case 'comment': return true
    case 'ipset': return UNKNOWN
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
      const set = ctx.firstPacket ? 'SYN' : 'ACK'
      const mask = m.mask.map((f) => f.toUpperCase())
      const comp = m.comp.map((f) => f.toUpperCase())
      const all = mask.includes('ALL') ? ALL_TCP_FLAGS : mask
      const v = all.every((f) => (f === set) === (comp.includes(f) || comp.includes('ALL')))
      return neg(v, m.negated)
    }
    case 'fragment': return m.negated
    case 'opaque':
      if (m.module === 'socket') return socketMatch(m.text, pkt, ctx)
      return UNKNOWN
    case 'nft-set': return UNKNOWN
  }
}

/**
 * `-m socket [--transparent] [--nowildcard]` (xt_socket) matches a packet that belongs to a local socket. The first
 * packet of a connection belongs to no established socket, and listeners bound to the wildcard address are ignored
 * unless --nowildcard; a listener bound to the packet's own destination can only be found when that destination is
 * local, and --transparent also wants the socket transparent (a TPROXY proxy's). So the first packet of a forwarded
 * connection, or any first packet under --transparent, does not match (Cilium's proxy-redirect rules in chaining
 * mode); a later packet may belong to a proxy's socket, which the bundle does not show.
 */
function socketMatch(text: string, pkt: Packet, ctx: WalkContext): boolean | typeof UNKNOWN {
  if (!ctx.firstPacket || /--nowildcard/.test(text)) return UNKNOWN
  if (/--transparent/.test(text) || !ctx.addresses.isLocal(pkt.dst)) return false
  return UNKNOWN
}

/** Rule indices to try, in order. Large chains (KUBE-SERVICES) skip rules for other destination addresses. */
function candidates(idx: ChainIndex, pkt: Packet): readonly number[] {
  const dst = pkt.dst
  const hit = dst.family === 4 ? idx.byDst4.get(dst.n ?? Number(dst.value)) : idx.byDst6.get(dst.value)
  if (!hit) return idx.generic
  return hit.merged ?? (hit.merged = mergeSorted(hit.rules, idx.generic))
}

type NftSelector = 'daddr' | 'saddr' | 'proto' | 'dport' | 'sport' | 'iif' | 'oif'
const SELECTORS: Record<string, NftSelector> = {
  'ip daddr': 'daddr', 'ip6 daddr': 'daddr', 'ip saddr': 'saddr', 'ip6 saddr': 'saddr',
  'meta l4proto': 'proto', 'ip protocol': 'proto', 'ip6 nexthdr': 'proto',
  'th dport': 'dport', 'tcp dport': 'dport', 'udp dport': 'dport', 'sctp dport': 'dport',
  'th sport': 'sport', 'tcp sport': 'sport', 'udp sport': 'sport',
  'iifname': 'iif', 'meta iifname': 'iif', 'oifname': 'oif', 'meta oifname': 'oif',
}
const selectorMemo = new WeakMap<readonly string[], readonly NftSelector[] | null>()

/** The selectors of an nft set lookup (`ip daddr . meta l4proto . th dport`); null when one is not modelled. */
function selectorsOf(keys: readonly string[]): readonly NftSelector[] | null {
  let s = selectorMemo.get(keys)
  if (s === undefined) {
    const out: NftSelector[] = []
    for (const k of keys) {
      const sel = SELECTORS[k.trim().replace(/\s+/g, ' ')]
      if (!sel) { out.length = 0; s = null; break }
      out.push(sel)
    }
    if (s === undefined) s = out
    selectorMemo.set(keys, s)
  }
  return s
}

interface NftValue { readonly text: string; readonly addr?: IpAddress; readonly port?: number | null }

/** The packet's values for nft selectors, as set elements spell them. */
function nftValues(selectors: readonly NftSelector[], pkt: Packet): NftValue[] {
  return selectors.map((sel): NftValue => {
    switch (sel) {
      case 'daddr': return { text: formatIp(pkt.dst), addr: pkt.dst }
      case 'saddr': return { text: formatIp(pkt.src), addr: pkt.src }
      case 'proto': return { text: pkt.proto }
      case 'dport': return { text: String(pkt.dport ?? ''), port: pkt.dport }
      case 'sport': return { text: String(pkt.sport ?? ''), port: pkt.sport }
      case 'iif': return { text: pkt.iif ?? '' }
      case 'oif': return { text: pkt.oif ?? '' }
    }
  })
}

type NftElement = { readonly key: readonly string[]; readonly value?: string }

interface CompiledSet {
  /** Elements of plain values by their key text (parts joined with ` . `, addresses in canonical form). */
  readonly exact: Map<string, NftElement>
  /** Elements with a prefix, a range or a wildcard, in listing order. */
  readonly scan: readonly NftElement[]
}

function compileSet(elements: readonly NftElement[]): CompiledSet {
  const exact = new Map<string, NftElement>()
  const scan: NftElement[] = []
  for (const el of elements) {
    const parts: string[] = []
    for (const raw of el.key) {
      const part = raw.trim()
      const unq = part.replace(/^"|"$/g, '')
      if (part.includes('/') || /^\d+-\d+$/.test(part) || unq.endsWith('*') || (part.indexOf('-') > 0 && parseIp(part.slice(0, part.indexOf('-'))))) { parts.length = 0; break }
      const ip = parseIp(part)
      parts.push(ip ? formatIp(ip) : unq)
    }
    if (parts.length === el.key.length && parts.length > 0) {
      const k = parts.join(' . ')
      if (!exact.has(k)) exact.set(k, el)
    } else {
      scan.push(el)
    }
  }
  return { exact, scan }
}

function elementPartMatches(want: string, have: NftValue): boolean {
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

function baseChainName(b: BaseChainRef): string {
  return b.table.origin === 'nft' ? `nft ${b.table.family} ${b.table.name} ${b.chain.name}` : `${b.table.origin} ${b.table.name} ${b.chain.name}`
}

/** The order of two nat chains of equal priority decided the flow, and the dump does not show it. */
function sharedPriorityWarning(hook: Hook, ran: BaseChainRef, skipped: BaseChainRef): string {
  return `${hook}: ${baseChainName(ran)} and ${baseChainName(skipped)} are nat chains of the same priority (${ran.priority}); the kernel runs the one registered last first, and its NAT binding skipped the other. ` +
    'natlens took the nft chain as registered after the iptables table (kubelet creates the iptables tables at boot; kube-proxy recreates its nft base chains whenever it starts)'
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

function mergeSorted(a: readonly number[], b: readonly number[]): number[] {
  const out: number[] = []
  let i = 0, j = 0
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && a[i]! < b[j]!)) out.push(a[i++]!)
    else out.push(b[j++]!)
  }
  return out
}

/** Indexes a big chain by host destination; each address's list is merged with the rules the index cannot skip. */
function buildIndex(chain: Chain): ChainIndex {
  const byDst4 = new Map<number, IndexEntry>()
  const byDst6 = new Map<bigint, IndexEntry>()
  const generic: number[] = []
  chain.rules.forEach((rule, i) => {
    const d = rule.matches.find((m) => m.kind === 'dst')
    if (d && d.kind === 'dst' && !d.negated && d.cidr.prefix === (d.cidr.family === 4 ? 32 : 128)) {
      if (d.cidr.family === 4) {
        const key = d.cidr.n ?? Number(d.cidr.network)
        const e = byDst4.get(key)
        if (e) e.rules.push(i)
        else byDst4.set(key, { rules: [i] })
      } else {
        const e = byDst6.get(d.cidr.network)
        if (e) e.rules.push(i)
        else byDst6.set(d.cidr.network, { rules: [i] })
      }
    } else {
      generic.push(i)
    }
  })
  return { byDst4, byDst6, generic }
}
