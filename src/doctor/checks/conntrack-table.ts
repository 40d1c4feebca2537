// Conntrack table near full, or insert failures: a full table drops new connections (the kernel logs "nf_conntrack:
// table full, dropping packet"); insert_failed counts connections whose NAT tuple clashed with another one at the
// same moment (the SNAT source-port race that --random-fully makes rare).
import type { SourceRef } from '../../model/evidence.js'
import type { Check, Finding } from '../model.js'
import { uniqueEvidence } from '../model.js'

const WARN = 0.75
const ERROR = 0.9

export const conntrackTable: Check = {
  id: 'conntrack-table',
  description: 'The conntrack table near its limit (nf_conntrack_count / nf_conntrack_max), or insert failures and drops in conntrack -S',
  run(ctx) {
    const state = ctx.state
    const s = state.sysctls
    const max = s.get('net.netfilter.nf_conntrack_max') ?? s.get('net.nf_conntrack_max')
    const count = s.get('net.netfilter.nf_conntrack_count')
    const stats = state.conntrackStats
    if (!max && stats.length === 0) return { skip: 'neither net.netfilter.nf_conntrack_max (sysctl -a) nor conntrack -S is in the bundle' }
    const out: Finding[] = []
    if (max) {
      const limit = Number(max.value)
      const used = count ? Number(count.value) : state.conntrack.length
      const usedRef: SourceRef | undefined = count?.ref ?? state.conntrack[0]?.ref
      const ratio = limit > 0 ? used / limit : 0
      if (limit > 0 && ratio >= WARN) {
        out.push({
          id: 'conntrack-table', severity: ratio >= ERROR ? 'error' : 'warning',
          title: `The conntrack table is ${Math.round(ratio * 100)}% full (${used} of ${limit})`,
          detail: `${count ? 'net.netfilter.nf_conntrack_count' : `conntrack -L lists ${used} entries (the count when it was collected)`} against net.netfilter.nf_conntrack_max ${limit}. When the table is full the kernel drops the first packet of every new connection ("nf_conntrack: table full, dropping packet" in dmesg); SNATed pod traffic fails first because every connection needs an entry.`,
          evidence: uniqueEvidence([count?.ref ?? usedRef, max.ref]),
          fix: `Raise the limit (sysctl -w net.netfilter.nf_conntrack_max=${Math.max(limit * 2, 131072)}; kube-proxy sets it from --conntrack-max-per-core), and find what opens so many connections (conntrack -L | awk '{print $5}' | sort | uniq -c | sort -rn | head).`,
        })
      }
    }
    const sum = (k: string) => stats.reduce((n, c) => n + (c.counters[k] ?? 0), 0)
    const failed = sum('insert_failed')
    const drop = sum('drop')
    const early = sum('early_drop')
    if (failed + drop + early > 0) {
      const worst = stats.filter((c) => (c.counters['insert_failed'] ?? 0) + (c.counters['drop'] ?? 0) + (c.counters['early_drop'] ?? 0) > 0).map((c) => c.ref)
      out.push({
        id: 'conntrack-table', severity: 'warning',
        title: `conntrack reports ${failed} insert failure${failed === 1 ? '' : 's'}, ${drop} drop${drop === 1 ? '' : 's'} and ${early} early drop${early === 1 ? '' : 's'}`,
        detail: 'insert_failed counts connections that lost a race for the same conntrack tuple: two connections SNATed to the same source port at the same moment (common without --random-fully, and for UDP DNS through kube-proxy). drop and early_drop count packets dropped because the table was full.',
        evidence: uniqueEvidence(worst.slice(0, 4)),
        fix: 'Make every SNAT/MASQUERADE use --random-fully (AWS_VPC_K8S_CNI_RANDOMIZESNAT=prng; kube-proxy adds it when iptables supports it); raise nf_conntrack_max if drops come with a full table.',
      })
    }
    return out
  },
}
