#!/usr/bin/env node
// Writes a `tcpdump -i any` style capture (LINUX_SLL2, nanosecond pcap) of N TCP connections from the example node's
// pods to internet hosts, each seen twice as the node sees it: arriving on the pod's host veth with the pod address,
// leaving eth0 SNATed to 10.0.3.45 with a new source port (same ISN, same IPv4 IDs, same payload). Replies are
// captured on both legs too. Deterministic; prints the truth (connections, packets) as JSON.
// usage: node bench/gen-nat-pcap.mjs OUT.pcap [--connections 100000] [--data 4]
import { openSync, writeSync, closeSync } from 'node:fs'

const out = process.argv[2]
const args = { connections: 100000, data: 4 }
for (let i = 3; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = Number(process.argv[i + 1])
if (!out) { console.error('usage: gen-nat-pcap.mjs OUT.pcap [--connections N] [--data N]'); process.exit(2) }

// The example node: ifindex 2 = eth0; pod veths 5..8 (bench/analyze.mjs writes the matching `ip -j link`).
const PODS = [[0x0a0007c9, 5], [0x0a000c09, 6], [0x0a000958, 7], [0x0a000e03, 8]] // 10.0.7.201, 10.0.12.9, 10.0.9.88, 10.0.14.3
const NODE = 0x0a00032d // 10.0.3.45
const fd = openSync(out, 'w')
const chunks = []
let pending = 0
function flush() { if (chunks.length) { writeSync(fd, Buffer.concat(chunks)); chunks.length = 0; pending = 0 } }
function push(b) { chunks.push(b); pending += b.length; if (pending > 4 << 20) flush() }

const gh = Buffer.alloc(24)
gh.writeUInt32LE(0xa1b23c4d, 0); gh.writeUInt16LE(2, 4); gh.writeUInt16LE(4, 6); gh.writeUInt32LE(262144, 16); gh.writeUInt32LE(276, 20)
push(gh)

let seed = 42
const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0)
let packets = 0
let tNs = 1_764_000_000n * 1_000_000_000n

function packet(ifindex, outgoing, src, dst, sport, dport, flags, seq, ack, ipId, payload) {
  const ipLen = 20 + 20 + payload
  const rec = Buffer.alloc(16 + 20 + ipLen)
  tNs += 1000n
  rec.writeUInt32LE(Number(tNs / 1_000_000_000n), 0); rec.writeUInt32LE(Number(tNs % 1_000_000_000n), 4)
  rec.writeUInt32LE(20 + ipLen, 8); rec.writeUInt32LE(20 + ipLen, 12)
  // SLL2: protocol, reserved, ifindex, arphrd, packet type, addr len, addr
  rec.writeUInt16BE(0x0800, 16); rec.writeUInt32BE(ifindex, 20); rec.writeUInt16BE(1, 24); rec.writeUInt8(outgoing ? 4 : 0, 26); rec.writeUInt8(6, 27)
  const ip = 36
  rec.writeUInt8(0x45, ip); rec.writeUInt16BE(ipLen, ip + 2); rec.writeUInt16BE(ipId & 0xffff, ip + 4); rec.writeUInt8(64, ip + 8); rec.writeUInt8(6, ip + 9)
  rec.writeUInt32BE(src >>> 0, ip + 12); rec.writeUInt32BE(dst >>> 0, ip + 16)
  const tcp = ip + 20
  rec.writeUInt16BE(sport, tcp); rec.writeUInt16BE(dport, tcp + 2); rec.writeUInt32BE(seq >>> 0, tcp + 4); rec.writeUInt32BE(ack >>> 0, tcp + 8)
  rec.writeUInt8(0x50, tcp + 12); rec.writeUInt8(flags, tcp + 13); rec.writeUInt16BE(65535, tcp + 14)
  for (let i = 0; i < payload; i++) rec[tcp + 20 + i] = (seq + i) & 0xff
  push(rec)
  packets++
}

for (let c = 0; c < args.connections; c++) {
  const [pod, veth] = PODS[c % PODS.length]
  const dst = (203 << 24) | (0 << 16) | (113 << 8) | (1 + (c % 250))
  // conntrack keeps NAT tuples unique: (destination, translated port) never repeats.
  const sport = 1024 + (Math.floor(c / 500) % 64000), natPort = 1024 + (Math.floor(c / 250) % 64000), dport = 443
  const isn = rnd(), risn = rnd()
  let id = rnd() & 0xffff, rid = rnd() & 0xffff
  // Each packet twice: the pod leg (veth, pod address) and the ENI leg (eth0, node address), in that order outbound,
  // the reverse inbound.
  const fwd = (flags, seq, ack, len) => { packet(veth, false, pod, dst, sport, dport, flags, seq, ack, id, len); packet(2, true, NODE, dst, natPort, dport, flags, seq, ack, id, len); id++ }
  const rev = (flags, seq, ack, len) => { packet(2, false, dst, NODE, dport, natPort, flags, seq, ack, rid, len); packet(veth, true, dst, pod, dport, sport, flags, seq, ack, rid, len); rid++ }
  fwd(0x02, isn, 0, 0)
  rev(0x12, risn, isn + 1, 0)
  fwd(0x10, isn + 1, risn + 1, 0)
  let s = isn + 1, r = risn + 1
  for (let d = 0; d < args.data; d++) { fwd(0x18, s, r, 100); s += 100; rev(0x18, r, s, 200); r += 200 }
  fwd(0x11, s, r, 0)
  rev(0x11, r, s + 1, 0)
}
flush()
closeSync(fd)
console.log(JSON.stringify({ connections: args.connections, pairs: args.connections, packets }))
