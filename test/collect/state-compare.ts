// "Reads identically": what natlens knows about a node, without where it read it (file names, lines), without what
// changes from one second to the next (rule counters, the conntrack table and its size), in a form toEqual compares.
import type { LoadedNode } from '../../src/sources/load.js'

const VOLATILE = new Set(['ref', 'refs', 'evidence', 'counters', 'packets', 'bytes', 'artifact', 'line'])

function plain(x: unknown): unknown {
  return JSON.parse(JSON.stringify(x, (k, v) => (VOLATILE.has(k) ? undefined : typeof v === 'bigint' ? v.toString() : v instanceof Map ? Object.fromEntries(v) : v instanceof Set ? [...v].sort() : v)))
}

export function canonicalState(s: LoadedNode): unknown {
  const settings = (m: Map<string, { value: string }>, skip?: RegExp) => Object.fromEntries([...m].filter(([k]) => !skip?.test(k)).map(([k, v]) => [k, v.value]).sort())
  return plain({
    routingRules: s.routingRules,
    routes: [...s.routes].map((r) => JSON.stringify(plain(r))).sort(),
    tables: s.tables.map((t) => ({ family: t.family, name: t.name, origin: t.origin, chains: [...t.chains.values()].map((c) => ({ name: c.name, policy: c.policy, rules: c.rules.map((r) => ({ matches: r.matches, target: r.target })) })) }))
      .sort((a, b) => `${a.family}${a.name}${a.origin}`.localeCompare(`${b.family}${b.name}${b.origin}`)),
    interfaces: [...s.interfaces].sort((a, b) => a.name.localeCompare(b.name)).map((i) => ({ name: i.name, kind: i.kind, mac: i.mac, mtu: i.mtu, addresses: i.addresses })),
    sysctls: settings(s.sysctls, /nf_conntrack_count/),
    settings: settings(s.settings),
    imds: settings(s.imds),
    present: [...s.present].sort(),
    derived: { primaryInterface: s.derived.primaryInterface, primaryAddress: s.derived.primaryAddress, pods: s.derived.pods, enis: s.derived.enis, vpcCidrs: s.derived.vpcCidrs, snatPolicy: s.derived.snatPolicy },
  })
}
