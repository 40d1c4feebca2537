// Checks the kernel's observations against what ../shared/docs say (the lab checking itself, natlens not involved).
import type { FlowRecord } from './model.js'

/** Empty when the observation is one of the documented outcomes; otherwise what differs. */
export function expectationMismatches(r: FlowRecord): string[] {
  const o = r.observed
  const e = r.expect
  if (!e.delivered) {
    return o.delivered || o.egressInterface !== null ? [`expected the kernel to drop it (${e.why}), but it left through ${o.egressInterface} and arrived at ${o.arrivedAt}`] : []
  }
  if (!o.delivered) return [`expected delivery, but ${o.egressInterface ? `it left through ${o.egressInterface} and ` : ''}nothing arrived (${o.evidence.join('; ')})`]
  const outcome = e.outcomes.find((x) => x.arrivedAt === o.arrivedAt)
  if (!outcome) return [`arrived at ${o.arrivedAt}, expected ${e.outcomes.map((x) => x.arrivedAt).join(' or ')}`]
  const out: string[] = []
  if (outcome.egressInterface !== o.egressInterface) out.push(`egress ${o.egressInterface}, expected ${outcome.egressInterface}`)
  if (outcome.sourceSeen !== o.sourceSeen) out.push(`source seen ${o.sourceSeen}, expected ${outcome.sourceSeen}`)
  if (outcome.snat !== o.snat) out.push(`source address ${o.snat ? 'rewritten' : 'kept'} (${o.sourceSeen}), expected ${outcome.snat ? 'rewritten' : 'kept'}`)
  return out
}
