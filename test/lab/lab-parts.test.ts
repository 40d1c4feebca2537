// The lab's own pieces, without root: the names and rule text it programs are the ones ../shared documents, and its
// conntrack and capture readers decode real output of this machine's tools (stored in the fixtures).
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it, vi } from 'vitest'
import { egressV4Chain, egressV6Chain, endpointChainName, eui64LinkLocal, hostVethName, nftChainName, serviceChainHash } from './names.js'
import { addCiliumChaining, addEgressV4, addKubeProxyBase, addService, addVpcCni, emptyProgram, kubeProxyNftables, renderProgram, type CniRuleConfig } from './rules.js'
import { parseConntrackLines } from './observe.js'
import { readCapture } from './capture.js'
import { FIXTURES_DIR } from './lab-run.js'
import { OWNED_NAMESPACES } from './scenarios.js'
import { preflight } from './kernel.js'

const SHARED = fileURLToPath(new URL('../../../shared/', import.meta.url))
const example = (p: string) => fs.readFileSync(path.join(SHARED, 'examples/node-states', p), 'utf8')
const ruleLines = (text: string, prefix: RegExp) => text.split('\n').map((l) => l.replace(/^\[\d+:\d+\] /, '').trim()).filter((l) => prefix.test(l))
const base: CniRuleConfig = { era: 'v1.20', nodeIp: '10.0.3.45', primaryInterface: 'eth0', vpcCidrs: ['10.0.0.0/16'], excludeCidrs: [], externalSnat: false, randomizeSnat: 'prng' }

describe('names the CNI and kube-proxy compute', () => {
  it('match the values in ../shared (veths, egress chains, kube-proxy hashes)', () => {
    expect(hostVethName('eni', 'default', 'web-7d9c6b5f4-2xkqz')).toBe('eni212428e8e5c')
    expect(hostVethName('eni', 'default', 'api-6f7b8d9c5-q8wzt')).toBe('enie90ff0f6268')
    expect(hostVethName('eni', 'payments', 'ledger-7f8d9c6b5-kq2xv')).toBe('enif2e75028f15')
    expect(egressV4Chain('3f2a9c1be8d74f06a51c2e9d8b7a6f5e4d3c2b1a0f9e8d7c6b5a49382716a5b4')).toBe('CNI-E4-2a82b03e3c75f4403ec11')
    // The same hash with the E6- prefix (utils.MustFormatChainNameWithPrefix hashes name + ID only).
    expect(egressV6Chain('3f2a9c1be8d74f06a51c2e9d8b7a6f5e4d3c2b1a0f9e8d7c6b5a49382716a5b4')).toBe('CNI-E6-2a82b03e3c75f4403ec11')
    expect(eui64LinkLocal('00:1b:21:3c:9d:f8')).toBe('fe80::21b:21ff:fe3c:9df8')
    expect(serviceChainHash('ns1/svc1:p80', 'tcp')).toBe('XPGD46QRK7WJZT7O')
    expect(endpointChainName('ns1/svc1:p80', 'tcp', '10.180.0.1:80')).toBe('KUBE-SEP-SXIVWICOYRO3J4NJ')
    expect(serviceChainHash('default/kubernetes:https', 'tcp')).toBe('NPX46M4PTMTKRN6Y')
    expect(serviceChainHash('kube-system/kube-dns:dns', 'udp')).toBe('TCOU7JCQXEZGVUNU')
    // nftables mode (kube-proxy.md §2.3).
    expect(nftChainName('service-', 'ns1/svc1/tcp/p80')).toBe('service-ULMVA6XW-ns1/svc1/tcp/p80')
    expect(nftChainName('endpoint-', 'ns1/svc1/tcp/p80__10.180.0.1/80')).toBe('endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80')
    expect(nftChainName('service-', 'default/kubernetes/tcp/https')).toBe('service-2QRHZV4L-default/kubernetes/tcp/https')
    expect(nftChainName('service-', 'kube-system/kube-dns/udp/dns')).toBe('service-FY5PMXPG-kube-system/kube-dns/udp/dns')
    expect(nftChainName('service-', 'riset/hellopod-np-svc/tcp/')).toBe('service-P6J77WGM-riset/hellopod-np-svc/tcp/')
  })

  it('says why it cannot run when not root (the lab test then skips with that reason)', async () => {
    const spy = vi.spyOn(process as { getuid: () => number }, 'getuid').mockReturnValue(1000)
    try {
      expect(await preflight()).toMatch(/needs root/)
    } finally {
      spy.mockRestore()
    }
  })

  it('only lab namespaces of its own scheme are ever owned', () => {
    expect(OWNED_NAMESPACES.test('nl-v4cur-node')).toBe(true)
    expect(OWNED_NAMESPACES.test('nl-v6-p2')).toBe(true)
    for (const other of ['nl-explore-3271', 'nl-ipt-explore', 'nl-v4cur-node2', 'default', 'nl-parse-7957-vpc']) expect(OWNED_NAMESPACES.test(other)).toBe(false)
  })
})

describe('rule text the lab programs', () => {
  it('v1.20 era: the AWS nat and mangle rules equal ../shared/examples default-ipv4 line for line', () => {
    const p = emptyProgram()
    addKubeProxyBase(p)
    addVpcCni(p, base)
    const mangle = p.mangle.render()
    const nat = p.nat.render()
    expect(ruleLines(nat, /^-A .*AWS/)).toEqual(ruleLines(example('default-ipv4/iptables-save-nat.txt'), /^-A .*AWS/))
    expect(ruleLines(mangle, /^-A PREROUTING/)).toEqual(ruleLines(example('default-ipv4/iptables-save-mangle.txt'), /^-A PREROUTING/))
    // kube-proxy's static chains and jumps, in the same order as in the example.
    expect(ruleLines(nat, /^-A (PREROUTING|OUTPUT|POSTROUTING|KUBE-MARK-MASQ|KUBE-POSTROUTING)/)).toEqual(ruleLines(example('default-ipv4/iptables-save-nat.txt'), /^-A (PREROUTING|OUTPUT|POSTROUTING|KUBE-MARK-MASQ|KUBE-POSTROUTING)/))
  })

  it('numbered era: the chain hops equal the numbered example (which is v1.12.1+: no state match on the jump)', () => {
    const p = emptyProgram()
    addVpcCni(p, { ...base, era: 'v1.12.0' })
    const ours = ruleLines(renderProgram(p), /^-A AWS-/)
    expect(ours).toEqual(ruleLines(example('default-ipv4/iptables-save-nat.v1.12.1-v1.16.0-numbered.txt'), /^-A AWS-/))
    expect(ruleLines(p.nat.render(), /^-A PREROUTING -i eni\+/)).toEqual(['-A PREROUTING -i eni+ -m comment --comment "AWS, outbound connections" -m state --state NEW -j AWS-CONNMARK-CHAIN-0'])
  })

  it('v1.23 nft era: the aws-cni table equals the example apart from counters and mark padding', () => {
    const p = emptyProgram()
    const { nft } = addVpcCni(p, { ...base, era: 'v1.23-nft' })
    const norm = (t: string) => t.replace(/counter packets \d+ bytes \d+/g, 'counter').replace(/0x0*80\b/g, '0x80').split('\n').map((l) => l.trim()).filter(Boolean)
    expect(norm(nft!)).toEqual(norm(example('default-ipv4/nft-list-table-ip-aws-cni.v1.23-nft-host.txt')))
    expect(ruleLines(renderProgram(p), /^-A (POSTROUTING|AWS-SNAT)/)).toEqual(ruleLines(example('default-ipv4/iptables-save-nat.v1.23-nft-host.txt'), /^-A (POSTROUTING -m comment --comment "AWS|AWS-SNAT)/))
  })

  it('EXTERNALSNAT=true: both chains declared, no AWS rule in nat', () => {
    const p = emptyProgram()
    addVpcCni(p, { ...base, externalSnat: true })
    const text = renderProgram(p)
    expect(text).toContain(':AWS-SNAT-CHAIN-0 - [0:0]')
    expect(text).toContain(':AWS-CONNMARK-CHAIN-0 - [0:0]')
    expect(ruleLines(text.split('*nat')[1]!, /^-A /)).toEqual([])
  })

  it('egress-v4 chains equal ../shared/examples ipv6-egress-v4', () => {
    const p = emptyProgram()
    addEgressV4(p, [
      { v4: '169.254.172.2', chain: 'CNI-E4-2a82b03e3c75f4403ec11', containerId: '3f2a9c1be8d74f06a51c2e9d8b7a6f5e4d3c2b1a0f9e8d7c6b5a49382716a5b4' },
      { v4: '169.254.172.3', chain: 'CNI-E4-f1f7300bd0cf86c42d367', containerId: '9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4938271605f4e3d2c1b0a9f8e7d6c5b4a3' },
    ], '10.0.3.45', 'prng')
    const text = renderProgram(p)
    expect(ruleLines(text, /^-A (POSTROUTING|CNI-E4)/).sort()).toEqual(ruleLines(example('ipv6-egress-v4/iptables-save-nat.txt'), /^-A /).sort())
    expect(ruleLines(text, /^-A FORWARD/)).toEqual(ruleLines(example('ipv6-egress-v4/iptables-save-filter.txt'), /^-A FORWARD/))
  })

  it('Cilium chaining: every CILIUM rule reads back verbatim from iptables-legacy-save, feeders first in their chains', () => {
    for (const [id, masquerade] of [['v4cilium', undefined], ['v4ciliummasq', { nativeRoutingCidr: '10.0.0.0/16', egressInterface: 'eth0', hostMasqueradeIp: '10.0.3.45' }]] as const) {
      const p = emptyProgram()
      addKubeProxyBase(p)
      addVpcCni(p, base)
      addCiliumChaining(p, masquerade ? { masquerade } : {})
      // Per table (iptables-save prints the tables in another order than the lab writes them), rules in order.
      const byTable = (text: string) => Object.fromEntries(text.split('\n*').slice(1).map((t) => [t.split('\n')[0], ruleLines(t, /^-A .*(CILIUM|cilium)/)]))
      const saveText = fs.readFileSync(path.join(FIXTURES_DIR, id, 'bundle', 'iptables-legacy-save.txt'), 'utf8')
      const ours = byTable('\n' + renderProgram(p))
      expect(byTable(saveText)).toEqual(ours)
      // Ten feeders, each the first rule of its built-in chain (ahead of kube-proxy's and the VPC CNI's jumps).
      const save = saveText.split('\n*').slice(1)
      const firsts = save.flatMap((t) => [...new Set(ruleLines(t, /^-A (PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) /).map((l) => l.split(' ')[1]))].map((c) => ruleLines(t, new RegExp(`^-A ${c} `))[0]!))
      expect(firsts.filter((l) => l.includes('cilium-feeder:'))).toHaveLength(10)
      expect(firsts.filter((l) => !l.includes('cilium-feeder:'))).toEqual([])
      expect(ours.nat!.filter((l) => l.includes('MASQUERADE')).length).toBe(masquerade ? 1 : 0)
    }
  })

  it('a kube-proxy service is written in iptables-save form (the default/kubernetes example, endpoint chains aside)', () => {
    const p = emptyProgram()
    addService(p, { name: 'default/kubernetes:https', clusterIp: '172.20.0.1', port: 443, targetPort: 443, endpoints: [{ ip: '10.0.40.7', local: false }, { ip: '10.0.20.15', local: false }] })
    const sep = (l: string) => l.replace(/KUBE-SEP-[A-Z0-9]{16}/g, 'KUBE-SEP-X')
    const mine = ruleLines(renderProgram(p), /^-A /).map(sep)
    const theirs = ruleLines(example('default-ipv4/iptables-save-nat.txt'), /kubernetes:https/).map(sep)
    expect(mine.sort()).toEqual(theirs.sort())
  })
})

describe('kube-proxy nftables mode: the transaction the lab feeds nft -f', () => {
  const transaction = fs.readFileSync(path.join(SHARED, 'examples/kube-proxy/nft-transaction.TestOverallNFTablesRules.txt'), 'utf8')
  const lines = (t: string) => t.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
  const [baseRules, perService] = transaction.split('# ---- per-service part')
  // The test's services use a ClusterCIDR detector (10.0.0.0/8); the lab's EKS node has none (kube-proxy.md §1.6).
  const detector = (l: string) => / ip saddr != 10\.0\.0\.0\/8 jump mark-for-masquerade$/.test(l)

  it('base rules equal kube-proxy\'s baseRules line for line', () => {
    expect(lines(kubeProxyNftables({ serviceCidr: '172.30.0.0/16', nodePortIps: ['192.168.0.2'], services: [] }))).toEqual(lines(baseRules!))
  })

  it('a ClusterIP with two endpoints and an external IP, and a NodePort service, equal TestOverallNFTablesRules (svc4, svc3)', () => {
    const ours = lines(kubeProxyNftables({
      serviceCidr: '172.30.0.0/16', nodePortIps: ['192.168.0.2'], services: [
        { name: 'ns3/svc3:p80', clusterIp: '172.30.0.43', port: 80, targetPort: 80, nodePort: 3003, endpoints: [{ ip: '10.180.0.3', local: false }] },
        { name: 'ns4/svc4:p80', clusterIp: '172.30.0.44', port: 80, targetPort: 80, loadBalancerIp: '192.168.99.33', endpoints: [{ ip: '10.180.0.5', local: false }, { ip: '10.180.0.4', local: false }] },
      ],
    })).slice(lines(baseRules!).length)
    const theirs = lines(perService!.split('# svc3')[1]!.split('# svc5')[0]!).filter((l) => !detector(l))
    expect([...ours].sort()).toEqual([...theirs].sort())
  })
})

describe('readers of real tool output', () => {
  it('parses conntrack -L lines of every protocol and family into original and reply tuples', () => {
    const text = [
      'tcp      6 118 TIME_WAIT src=10.0.9.88 dst=203.0.113.10 sport=41003 dport=8080 src=203.0.113.10 dst=10.0.3.45 sport=8080 dport=13793 [ASSURED] mark=128 use=1',
      'icmp     1 29 src=10.0.7.201 dst=203.0.113.10 type=8 code=0 id=19969 src=203.0.113.10 dst=10.0.3.45 type=0 code=0 id=13883 mark=128 use=1',
      'udp      17 26 src=10.0.9.88 dst=192.168.50.10 sport=41005 dport=8081 [UNREPLIED] src=192.168.50.10 dst=10.0.3.45 sport=8081 dport=55557 mark=128 use=1',
      'tcp      6 119 TIME_WAIT src=2001:db8:a:0:9b3e::1 dst=2001:db8:ffff::10 sport=41001 dport=8080 src=2001:db8:ffff::10 dst=2001:db8:a:0:9b3e::1 sport=8080 dport=41001 [ASSURED] mark=0 use=1',
      'conntrack v1.4.7 (conntrack-tools): 4 flow entries have been shown.',
    ].join('\n')
    const e = parseConntrackLines(text)
    expect(e).toHaveLength(4)
    expect(e[0]).toMatchObject({ proto: 'tcp', state: 'TIME_WAIT', mark: 128, orig: { src: '10.0.9.88', sport: 41003 }, reply: { dst: '10.0.3.45', dport: 13793 } })
    expect(e[1]).toMatchObject({ proto: 'icmp', state: null, orig: { id: 19969, sport: null }, reply: { id: 13883 } })
    expect(e[2]).toMatchObject({ proto: 'udp', reply: { src: '192.168.50.10', dport: 55557 } })
    expect(e[3]!.orig.src).toBe('2001:db8:a:0:9b3e::1')
  })

  it('decodes tcpdump -i any (LINUX_SLL2) captures of both families, and the same capture in the other byte order', () => {
    const pcap = path.join(FIXTURES_DIR, 'v6', 'node.pcap')
    const packets = readCapture(pcap)
    expect(packets.some((p) => p.family === 6 && p.proto === 'tcp' && p.src === '2001:db8:a:0:9b3e::1')).toBe(true)
    expect(packets.some((p) => p.family === 4 && p.src === '10.0.3.45' && p.pktType === 4)).toBe(true)
    expect(packets.some((p) => p.proto === 'icmpv6' && p.icmpType === 128)).toBe(true)
    // Swap the record headers' byte order (the packet bytes stay network order) and read it again.
    const b = Buffer.from(fs.readFileSync(pcap))
    const swap32 = (o: number) => b.writeUInt32BE(b.readUInt32LE(o), o)
    const swap16 = (o: number) => b.writeUInt16BE(b.readUInt16LE(o), o)
    swap32(0); swap16(4); swap16(6); swap32(8); swap32(12); swap32(16); swap32(20)
    let o = 24
    while (o + 16 <= b.length) { const incl = b.readUInt32LE(o + 8); for (const k of [0, 4, 8, 12]) swap32(o + k); o += 16 + incl }
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'natlens-lab-pcap-')), 'be.pcap')
    fs.writeFileSync(file, b)
    expect(readCapture(file)).toEqual(packets)
  })
})
