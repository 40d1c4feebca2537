#!/usr/bin/env node
// Writes a synthetic `iptables-save` of a kube-proxy (iptables mode, ClusterIP services) node with the VPC CNI's
// rules, for the parser benchmark. Shape from shared/docs/kube-proxy.md §1.3–1.5, §3 and §5: KUBE-SERVICES
// dispatch (shuffled by seed, nodeports rule last), one KUBE-SVC chain per service port (masquerade rule for
// traffic from outside the pod CIDR, then one rule per endpoint with probability 1/(n-i) as the kernel prints it),
// two rules per KUBE-SEP chain (hairpin mark, DNAT), chain names from kube-proxy's exact hash
// (base32(sha256(SPN + proto [+ "ip:port"]))[:16]). Above 1,000 endpoints kube-proxy drops the comments of the
// SVC→SEP and SEP rules (large-cluster mode); so does this generator unless --comments always.
// VPC CNI part: AWS-SNAT-CHAIN-0 / AWS-CONNMARK-CHAIN-0 for node IP 10.0.3.45 and VPC 10.0.0.0/16, and the mangle
// connmark rules. Plain JavaScript so it runs without a build.
//
// usage: node bench/gen-kube-proxy.mjs [--services 5000] [--endpoints 10] [--seed 1] [--out /tmp/kube-proxy.iptables-save.txt]
//                                      [--comments auto|always|never]
import { createHash } from 'node:crypto'
import { closeSync, openSync, writeSync } from 'node:fs'

const args = { services: 5000, endpoints: 10, seed: 1, out: '/tmp/natlens-kube-proxy.iptables-save.txt', comments: 'auto' }
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '')
  if (!(k in args)) { console.error(`unknown option --${k}`); process.exit(2) }
  args[k] = typeof args[k] === 'number' ? Number(process.argv[i + 1]) : process.argv[i + 1]
}

const NODE_IP = '10.0.3.45'
const VPC_CIDR = '10.0.0.0/16'
const POD_CIDR = VPC_CIDR // VPC CNI pods take VPC addresses; kube-proxy's ClusterCIDR detector is given the VPC CIDR.
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

/** RFC 4648 base32 (upper case, no padding needed for the first 16 characters). */
function base32(bytes) {
  let out = ''
  let bits = 0
  let value = 0
  for (const b of bytes) {
    value = (value << 8) | b
    bits += 8
    while (bits >= 5) { out += BASE32[(value >>> (bits - 5)) & 31]; bits -= 5 }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31]
  return out
}

/** kube-proxy portProtoHash / servicePortEndpointChainName. */
export function chainHash(text) {
  return base32(createHash('sha256').update(text).digest()).slice(0, 16)
}

// Self-check against the hashes shared/docs/kube-proxy.md §1.5 lists as verified.
for (const [input, want] of [['ns1/svc1:p80tcp', 'XPGD46QRK7WJZT7O'], ['ns1/svc1:p80tcp10.180.0.1:80', 'SXIVWICOYRO3J4NJ'], ['default/kubernetes:httpstcp', 'NPX46M4PTMTKRN6Y'], ['kube-system/kube-dns:dnsudp', 'TCOU7JCQXEZGVUNU']]) {
  if (chainHash(input) !== want) throw new Error(`hash self-check failed for ${input}: ${chainHash(input)} != ${want}`)
}

/** mulberry32: a small seeded PRNG so a seed always gives the same dump. */
function prng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const rand = prng(args.seed)

function ipv4(n) {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`
}

/** The kernel keeps round(p·2^31) (xt_statistic) and iptables-save prints it back with %.11f. */
function probability(n, i) {
  const p = 1 / (n - i)
  return (Math.round(p * 0x80000000) / 0x80000000).toFixed(11)
}

const S = args.services
const E = args.endpoints
const totalEndpoints = S * E
const withComments = args.comments === 'always' || (args.comments === 'auto' && totalEndpoints <= 1000)

// Service ports: the three every cluster has, then ns-NNNN/svc-NNNNN:pPORT; 10% UDP.
const services = []
const fixed = [['default/kubernetes:https', 'tcp', 443, '172.20.0.1', 443], ['kube-system/kube-dns:dns', 'udp', 53, '172.20.0.10', 53], ['kube-system/kube-dns:dns-tcp', 'tcp', 53, '172.20.0.10', 53]]
let epNext = (10 << 24) | (0 << 16) | (16 << 8) // endpoints from 10.0.16.0 upward, inside the VPC
let cipNext = (172 << 24) | (20 << 16) | (1 << 8) // cluster IPs from 172.20.1.0
for (let s = 0; s < S; s++) {
  let spn, proto, port, clusterIP, targetPort
  if (s < fixed.length) [spn, proto, port, clusterIP, targetPort] = fixed[s]
  else {
    proto = rand() < 0.1 ? 'udp' : 'tcp'
    port = proto === 'udp' ? 5000 + Math.floor(rand() * 1000) : [80, 443, 8080, 9090][Math.floor(rand() * 4)]
    spn = `ns-${String(s % 500).padStart(4, '0')}/svc-${String(s).padStart(5, '0')}:p${port}`
    clusterIP = ipv4(cipNext++)
    targetPort = port === 443 ? 8443 : port
  }
  const eps = []
  for (let e = 0; e < E; e++) eps.push(`${ipv4(epNext++)}:${targetPort}`)
  eps.sort() // kube-proxy orders endpoints by the "IP:port" string
  const hash = chainHash(spn + proto)
  services.push({ spn, proto, port, clusterIP, eps, svc: `KUBE-SVC-${hash}`, seps: eps.map((ep) => `KUBE-SEP-${chainHash(spn + proto + ep)}`) })
}

// ---- assemble the nat table ----
const rules = new Map() // chain -> lines
const add = (chain, line) => { let l = rules.get(chain); if (!l) rules.set(chain, (l = [])); l.push(`-A ${chain} ${line}`) }
const builtins = ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING']
const userChains = new Set(['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-MARK-MASQ', 'KUBE-KUBELET-CANARY', 'KUBE-PROXY-CANARY', 'AWS-SNAT-CHAIN-0', 'AWS-CONNMARK-CHAIN-0'])

// §1.2 jumps (kube-proxy prepends, so they come first), then the VPC CNI's.
add('PREROUTING', '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES')
add('PREROUTING', '-i eni+ -m comment --comment "AWS, outbound connections" -j AWS-CONNMARK-CHAIN-0')
add('PREROUTING', '-m comment --comment "AWS, CONNMARK" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80')
add('OUTPUT', '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES')
add('POSTROUTING', '-m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING')
add('POSTROUTING', '-m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-0')
add('AWS-CONNMARK-CHAIN-0', `-d ${VPC_CIDR} -m comment --comment "AWS CONNMARK CHAIN, VPC CIDR" -j RETURN`)
add('AWS-CONNMARK-CHAIN-0', '-m comment --comment "AWS, CONNMARK" -j CONNMARK --set-xmark 0x80/0x80')
add('AWS-SNAT-CHAIN-0', `-d ${VPC_CIDR} -m comment --comment "AWS SNAT CHAIN" -j RETURN`)
add('AWS-SNAT-CHAIN-0', `! -o vlan+ -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL -j SNAT --to-source ${NODE_IP} --random-fully`)
// §1.3 static chains.
add('KUBE-MARK-MASQ', '-j MARK --set-xmark 0x4000/0x4000')
add('KUBE-POSTROUTING', '-m mark ! --mark 0x4000/0x4000 -j RETURN')
add('KUBE-POSTROUTING', '-j MARK --set-xmark 0x4000/0x0')
add('KUBE-POSTROUTING', '-m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully')

// §1.4 per service port, in iptables-save's canonical option order.
const dispatch = []
for (const s of services) {
  dispatch.push(`-d ${s.clusterIP}/32 -p ${s.proto} -m comment --comment "${s.spn} cluster IP" -m ${s.proto} --dport ${s.port} -j ${s.svc}`)
  userChains.add(s.svc)
  add(s.svc, `! -s ${POD_CIDR} -d ${s.clusterIP}/32 -p ${s.proto} -m comment --comment "${s.spn} cluster IP" -m ${s.proto} --dport ${s.port} -j KUBE-MARK-MASQ`)
  const n = s.eps.length
  for (let i = 0; i < n; i++) {
    const comment = withComments ? `-m comment --comment "${s.spn} -> ${s.eps[i]}" ` : ''
    add(s.svc, i < n - 1 ? `${comment}-m statistic --mode random --probability ${probability(n, i)} -j ${s.seps[i]}` : `${comment}-j ${s.seps[i]}`)
  }
  for (let i = 0; i < n; i++) {
    const sep = s.seps[i]
    const ip = s.eps[i].slice(0, s.eps[i].indexOf(':'))
    const comment = withComments ? `-m comment --comment "${s.spn}" ` : ''
    userChains.add(sep)
    add(sep, `-s ${ip}/32 ${comment}-j KUBE-MARK-MASQ`)
    add(sep, `-p ${s.proto} ${comment}-m ${s.proto} -j DNAT --to-destination ${s.eps[i]}`)
  }
}
// kube-proxy walks a Go map: the dispatch order is random, the nodeports rule stays last.
for (let i = dispatch.length - 1; i > 0; i--) { const j = Math.floor(rand() * (i + 1)); [dispatch[i], dispatch[j]] = [dispatch[j], dispatch[i]] }
for (const d of dispatch) add('KUBE-SERVICES', d)
add('KUBE-SERVICES', '-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS')

// ---- write ----
const fd = openSync(args.out, 'w')
let buf = []
let bufLen = 0
let bytes = 0
const out = (line) => {
  buf.push(line)
  bufLen += line.length + 1
  if (bufLen > 1 << 20) flush()
}
const flush = () => { if (!buf.length) return; const s = `${buf.join('\n')}\n`; writeSync(fd, s); bytes += Buffer.byteLength(s); buf = []; bufLen = 0 }
const stamp = 'Tue Mar  4 10:15:02 2025'
let natRules = 0
out(`# Generated by iptables-save v1.8.4 on ${stamp}`)
out('*mangle')
for (const c of ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']) out(`:${c} ACCEPT [0:0]`)
for (const c of ['KUBE-IPTABLES-HINT', 'KUBE-KUBELET-CANARY', 'KUBE-PROXY-CANARY']) out(`:${c} - [0:0]`)
out('-A PREROUTING -i eth0 -m comment --comment "AWS, primary ENI" -m addrtype --dst-type LOCAL --limit-iface-in -j CONNMARK --set-xmark 0x80/0x80')
out('-A PREROUTING -i eni+ -m comment --comment "AWS, primary ENI" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80')
out('-A PREROUTING -i vlan+ -m comment --comment "AWS, primary ENI" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80')
out('COMMIT')
out(`# Completed on ${stamp}`)
out(`# Generated by iptables-save v1.8.4 on ${stamp}`)
out('*nat')
for (const c of builtins) out(`:${c} ACCEPT [0:0]`)
const sortedUser = [...userChains].sort()
for (const c of sortedUser) out(`:${c} - [0:0]`)
for (const c of [...builtins, ...sortedUser]) for (const l of rules.get(c) ?? []) { out(l); natRules++ }
out('COMMIT')
out(`# Completed on ${stamp}`)
flush()
closeSync(fd)

// §5 step 7 self-check: the nat rule count follows §3.1 (5 static + S·(2+3E)) plus the jumps and the VPC CNI rules.
const expected = 5 + S * (2 + 3 * E) + 3 + 7
if (natRules !== expected) throw new Error(`nat rule count ${natRules} != expected ${expected}`)
console.log(JSON.stringify({ out: args.out, services: S, endpoints: E, seed: args.seed, comments: withComments, natRules, natChains: userChains.size + builtins.length, bytes }))
