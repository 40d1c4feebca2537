// Base chains of one hook with the same priority, one from iptables and one native nft (kube-proxy in nftables mode
// beside the VPC CNI's iptables nat rules, both at -100 in prerouting). The kernel inserts a newly registered hook
// ahead of those of equal priority (net/netfilter/core.c nf_hook_entries_grow), and nf_nat stops at the first nat
// chain that binds: kube-proxy's nat-prerouting, registered after the iptables nat table, DNATs first and the CNI's
// connmark chain never sees a service connection. The kernel lab's v4kpnft scenario showed it (the iptables nat
// PREROUTING counters count only the connections kube-proxy did not DNAT).
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadNodeState } from '../../src/sources/load.js'
import { explain } from '../../src/engine/explain.js'
import { parseFlow, type FlowInput } from '../../src/model/flow.js'
import { toVerdictJson, type VerdictJson } from '../../src/render/verdict-json.js'
import { EXAMPLES } from '../helpers.js'

// `nft list ruleset` of kube-proxy's table, cut down to one ClusterIP with one endpoint in the VPC.
const KUBE_PROXY = `table ip kube-proxy {
	map service-ips {
		type ipv4_addr . inet_proto . inet_service : verdict
		elements = { 172.20.0.10 . tcp . 80 : goto service-SUSTUHLJ-default/web/tcp/http }
	}

	chain mark-for-masquerade {
		meta mark set meta mark | 0x00004000
	}

	chain nat-prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		jump services
	}

	chain services {
		ip daddr . meta l4proto . th dport vmap @service-ips
	}

	chain service-SUSTUHLJ-default/web/tcp/http {
		numgen random mod 1 vmap { 0 : goto endpoint-52FKT4F7-default/web/tcp/http__10.0.20.15/8080 }
	}

	chain endpoint-52FKT4F7-default/web/tcp/http__10.0.20.15/8080 {
		ip saddr 10.0.20.15 jump mark-for-masquerade
		meta l4proto tcp dnat to 10.0.20.15:8080
	}
}
`

describe('nat chains of equal priority: the nft chain (registered last) runs first', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'natlens-hook-order-'))
  for (const f of ['ip-rule.txt', 'ip-route-all.txt', 'iptables-save-mangle.txt', 'iptables-save-nat.txt', 'networkutils-env-settings.json']) {
    await writeFile(join(dir, f), await readFile(join(EXAMPLES, 'default-ipv4', f)))
  }
  await writeFile(join(dir, 'nft-list-ruleset.txt'), KUBE_PROXY)
  const state = await loadNodeState([dir])
  const ex = (input: FlowInput): VerdictJson => {
    const flow = parseFlow(input)
    if (typeof flow === 'string') throw new Error(flow)
    return toVerdictJson(explain(state, flow), state)
  }

  it('a pod on eth1 to a ClusterIP: kube-proxy\'s DNAT binds, AWS-CONNMARK-CHAIN-0 is skipped, table 2 sends it out eth1', () => {
    const v = ex({ src: '10.0.9.88', dst: '172.20.0.10', dport: 80 })
    expect(v).toMatchObject({ verdict: 'forwarded', destinationAfter: '10.0.20.15', egressInterface: 'eth1', sourceAfter: '10.0.9.88', snat: false })
    const pre = v.steps.filter((s) => s.hook === 'prerouting').map((s) => s.summary)
    expect(pre.some((s) => /DNAT to 10\.0\.20\.15:8080/.test(s))).toBe(true)
    expect(pre.some((s) => /AWS-CONNMARK-CHAIN-0|connmark 0x0 → 0x80/.test(s))).toBe(false)
    expect(v.steps.some((s) => s.kind === 'policy-route' && /1536/.test(s.summary))).toBe(true)
    expect(v.warnings.find((w) => w.startsWith('prerouting:'))).toMatch(/nft ip kube-proxy nat-prerouting and iptables-legacy nat PREROUTING are nat chains of the same priority \(-100\); the kernel runs the one registered last first/)
  })

  it('the same pod to the internet: kube-proxy does not bind, so the CNI\'s nat PREROUTING runs and marks 0x80 → eth0', () => {
    const v = ex({ src: '10.0.9.88', dst: '203.0.113.10', dport: 443 })
    expect(v).toMatchObject({ egressInterface: 'eth0', sourceAfter: '10.0.3.45', snat: true })
    expect(v.steps.some((s) => s.hook === 'prerouting' && /connmark 0x0 → 0x80/.test(s.summary))).toBe(true)
    expect(v.warnings.filter((w) => /same priority/.test(w))).toEqual([])
  })
})
