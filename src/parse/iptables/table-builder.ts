// Assembles the tables of one iptables dump: chains in the order the dump lists them, rules numbered per chain,
// built-in chains tied to their hook and the kernel's priority, and jumps checked against the declared chains.
import type { Family } from '../../model/ip.js'
import type { DiagnosticSink, SourceRef } from '../../model/evidence.js'
import {
  BUILTIN_CHAIN_HOOK, IPTABLES_PRIORITY,
  type Chain, type Counters, type Hook, type Match, type Rule, type Table, type TableOrigin, type Target,
} from '../../model/netfilter.js'

interface ChainDraft {
  name: string
  hook?: Hook
  priority?: number
  type?: 'filter' | 'nat' | 'route'
  policy?: 'accept' | 'drop'
  counters?: Counters
  rules: Rule[]
  ref: SourceRef
  /** Rules were inserted or deleted out of order: renumber at the end. */
  renumber: boolean
  /** The jump and goto targets every rule that jumps here shares (see JumpCache). */
  jumpTarget: Target | undefined
  gotoTarget: Target | undefined
}

export interface RuleDraft {
  readonly matches: readonly Match[]
  readonly target: Target
  readonly counters?: Counters
  readonly comment?: string
}

export const KNOWN_TABLES = new Set(['filter', 'nat', 'mangle', 'raw', 'security'])

/**
 * The table a listing without a table name shows, from its built-in chains: nat has PREROUTING, INPUT, OUTPUT and
 * POSTROUTING, mangle all five, raw PREROUTING and OUTPUT, filter (and security) INPUT, FORWARD and OUTPUT.
 */
export function tableFromBuiltins(builtins: ReadonlySet<string>): string | undefined {
  const has = (c: string) => builtins.has(c)
  if (has('PREROUTING') && has('FORWARD') && has('POSTROUTING')) return 'mangle'
  if (has('PREROUTING') && has('OUTPUT') && !has('INPUT') && !has('POSTROUTING')) return 'raw'
  // A partial listing (`iptables -S POSTROUTING`): nat is where natlens' questions are.
  if (has('PREROUTING') || has('POSTROUTING')) return 'nat'
  if (has('FORWARD') || has('INPUT')) return 'filter'
  return undefined
}

/** The hook of a built-in chain in a table, or undefined for user chains (nat has no FORWARD, raw no INPUT, …). */
const BUILTIN_NAMES = new Set(Object.keys(BUILTIN_CHAIN_HOOK))

export function builtinHook(table: string, chain: string): Hook | undefined {
  if (!BUILTIN_NAMES.has(chain)) return undefined
  const hook = BUILTIN_CHAIN_HOOK[chain]
  if (!hook) return undefined
  return IPTABLES_PRIORITY[table]?.[hook] !== undefined ? hook : undefined
}

export class TableBuilder {
  readonly chains = new Map<string, ChainDraft>()
  /** The chain the previous rule went to (see applyCommand). */
  lastChain: ChainDraft | undefined
  /** Jumps to chains that were not declared when the rule was read (see RuleWordsEnv.jumps). */
  readonly jumps = new Map<string, Target>()
  private removedAny = false
  /** Set when every rule came through RuleWordsParser, which records undeclared jumps in `jumps` as it reads. */
  jumpsTracked = false
  /** Family seen in addresses of this table (4 or 6), decided at the end when the dump does not say. */
  sawFamily: Family | undefined

  constructor(readonly name: string, public origin: TableOrigin, public family: Family | undefined, readonly ref: SourceRef) {}

  noteFamily(f: Family | undefined): void {
    if (f !== undefined && this.sawFamily === undefined) this.sawFamily = f
  }

  declare(name: string, ref: SourceRef, policy?: 'accept' | 'drop', counters?: Counters): ChainDraft {
    let c = this.chains.get(name)
    if (!c) {
      c = { name, rules: [], ref, renumber: false, jumpTarget: undefined, gotoTarget: undefined }
      const hook = builtinHook(this.name, name)
      if (hook) {
        c.hook = hook
        c.priority = IPTABLES_PRIORITY[this.name]?.[hook]
        c.type = this.name === 'nat' ? 'nat' : this.name === 'mangle' && hook === 'output' ? 'route' : 'filter'
      }
      this.chains.set(name, c)
    }
    if (policy) c.policy = policy
    if (counters) c.counters = counters
    return c
  }

  /** `:CHAIN - [0:0]` in restore input empties the chain (iptables-restore --noflush semantics). */
  flush(name: string): void {
    const c = this.chains.get(name)
    if (c) c.rules.length = 0
  }

  remove(name: string): boolean {
    if (this.lastChain?.name === name) this.lastChain = undefined
    this.removedAny = true
    return this.chains.delete(name)
  }

  append(chain: ChainDraft, draft: RuleDraft, ref: SourceRef): void {
    chain.rules.push(makeRule(this.name, chain.name, chain.rules.length + 1, draft, ref))
  }

  /** `-I CHAIN [n]`: insert before position n (1-based, default 1). */
  insert(chain: ChainDraft, position: number, draft: RuleDraft, ref: SourceRef): void {
    const at = Math.max(0, Math.min(chain.rules.length, position - 1))
    chain.rules.splice(at, 0, makeRule(this.name, chain.name, at + 1, draft, ref))
    chain.renumber = true
  }

  finish(sink: DiagnosticSink, defaultFamily: Family): Table {
    const chains = new Map<string, Chain>()
    for (const c of this.chains.values()) {
      const rules = c.renumber ? c.rules.map((r, i) => (r.index === i + 1 ? r : { ...r, index: i + 1 })) : c.rules
      const chain = { name: c.name, hook: c.hook, priority: c.priority, type: c.type, policy: c.policy, counters: c.counters, rules, ref: c.ref } as Chain
      chains.set(c.name, chain)
    }
    // Jumps read while their chain was declared point at a chain that still exists unless one was deleted (-X), so
    // the rules are only walked when an undeclared jump or a deletion was seen (a large dump has 110k jumps).
    const check = !this.jumpsTracked || this.jumps.size > 0 || this.removedAny
    for (const c of chains.values()) {
      if (!check) break
      for (const r of c.rules) {
        if (r.target.kind === 'jump' && !chains.has(r.target.chain)) {
          sink.warn('iptables.undeclared-chain', `${this.name} ${c.name} rule ${r.index} ${r.target.goto ? 'goes to' : 'jumps to'} chain ${r.target.chain}, which this dump does not declare`, r.ref.line, r.ref.text)
        }
      }
    }
    const family = this.family ?? this.sawFamily ?? defaultFamily
    return { name: this.name, family: family === 6 ? 'ip6' : 'ip', origin: this.origin, chains, sets: new Map(), ref: this.ref }
  }
}

function makeRule(table: string, chain: string, index: number, d: RuleDraft, ref: SourceRef): Rule {
  // Every rule gets the same property order (optional ones present or undefined), so the engine sees one shape.
  return { table, chain, index, matches: d.matches, target: d.target, counters: d.counters, comment: d.comment, ref } as Rule
}
