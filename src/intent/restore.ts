// A node's iptables tables written back as iptables-restore input (iptables-save layout), so a predicted state can be
// applied as it is: `iptables-legacy-restore < file` (or -nft) replaces every table the file names.
import type { Table } from '../model/netfilter.js'
import { BUILTIN_CHAIN_HOOK } from '../model/netfilter.js'
import { ruleText } from './ownership.js'

const TABLE_ORDER = ['raw', 'mangle', 'nat', 'filter', 'security']
const BUILTIN_ORDER = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']

export interface RestoreText {
  readonly text: string
  /** Rules whose source was not iptables-save or `iptables -S` text (e.g. `-nvL` listings) cannot be written back. */
  readonly unrestorable: readonly string[]
}

/** iptables-restore input for the given iptables tables (one backend, one family). */
export function renderRestore(tables: readonly Table[]): RestoreText {
  const out: string[] = []
  const unrestorable: string[] = []
  const sorted = [...tables].sort((a, b) => TABLE_ORDER.indexOf(a.name) - TABLE_ORDER.indexOf(b.name))
  for (const t of sorted) {
    out.push(`*${t.name}`)
    const chains = [...t.chains.values()]
    const builtins = chains.filter((c) => BUILTIN_CHAIN_HOOK[c.name]).sort((a, b) => BUILTIN_ORDER.indexOf(a.name) - BUILTIN_ORDER.indexOf(b.name))
    const user = chains.filter((c) => !BUILTIN_CHAIN_HOOK[c.name]).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    for (const c of builtins) out.push(`:${c.name} ${(c.policy ?? 'accept').toUpperCase()} [0:0]`)
    for (const c of user) out.push(`:${c.name} - [0:0]`)
    for (const c of [...builtins, ...user]) {
      for (const r of c.rules) {
        const line = ruleText(r)
        if (line.startsWith(`-A ${c.name} `) || line === `-A ${c.name}`) out.push(line)
        else {
          unrestorable.push(`${r.ref.artifact}:${r.ref.line}: ${line}`)
          out.push(`# natlens: cannot write back (not iptables-save text): ${line}`)
        }
      }
    }
    out.push('COMMIT')
  }
  return { text: out.length ? `${out.join('\n')}\n` : '', unrestorable }
}
