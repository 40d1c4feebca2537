// --redact and --redact-ips: the IP map is a prefix-preserving bijection (so CIDR membership, and every verdict,
// holds after it), fixes the ranges whose meaning is in the address, and is the same throughout one bundle and
// different between bundles; text pseudonyms are consistent and keep the shape parsers expect; a redacted lab
// bundle explains exactly like the original with the addresses mapped; a redacted capture keeps valid checksums.
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { IpPseudonymizer, RESERVED, Redactor } from '../../src/collect/redact.js'
import { redactPcap } from '../../src/collect/pcap-redact.js'
import { formatIp, maskOf, parseIp, type Family } from '../../src/model/ip.js'
import { loadNodeState } from '../../src/sources/load.js'
import { parseFlow } from '../../src/model/flow.js'
import { explain } from '../../src/engine/explain.js'
import { toVerdictJson } from '../../src/render/verdict-json.js'
import { readFixtures } from '../lab/lab-run.js'
import { tmp } from './support.js'

const key = Buffer.alloc(32, 7)
const W = (f: Family) => (f === 4 ? 32 : 128)
const v4 = fc.bigInt({ min: 0n, max: (1n << 32n) - 1n })
const v6 = fc.bigInt({ min: 0n, max: (1n << 128n) - 1n })
/** Addresses that share long prefixes, so the property is tested deep in the tree too. */
const near = (f: Family) => fc.tuple(f === 4 ? v4 : v6, fc.integer({ min: 0, max: W(f) }), f === 4 ? v4 : v6).map(([a, keepBits, b]) => {
  const m = maskOf(f, keepBits)
  return [a, (a & m) | (b & ~m & ((1n << BigInt(W(f))) - 1n))] as const
})

function commonPrefix(f: Family, a: bigint, b: bigint): number {
  for (let i = 0; i < W(f); i++) if (((a ^ b) >> BigInt(W(f) - 1 - i)) & 1n) return i
  return W(f)
}

const inReserved = (f: Family, v: bigint) => RESERVED.some((r) => r.family === f && (v & maskOf(f, r.prefix)) === r.network)

describe('prefix-preserving IP map', () => {
  for (const f of [4, 6] as const) {
    it(`IPv${f}: two addresses share as many leading bits after the map as before (property)`, () => {
      const p = new IpPseudonymizer(key)
      fc.assert(fc.property(near(f), ([a, b]) => commonPrefix(f, a, b) === commonPrefix(f, p.mapValue(f, a), p.mapValue(f, b))), { numRuns: f === 4 ? 3000 : 400 })
    })

    it(`IPv${f}: CIDR membership holds after the map (property)`, () => {
      const p = new IpPseudonymizer(key)
      fc.assert(fc.property(near(f), fc.integer({ min: 0, max: W(f) }), ([net, addr], prefix) => {
        const m = maskOf(f, prefix)
        const network = net & m
        const inside = (addr & m) === network
        return ((p.mapValue(f, addr) & m) === p.mapNetwork(f, network, prefix)) === inside
      }), { numRuns: f === 4 ? 3000 : 400 })
    })

    it(`IPv${f}: reserved ranges stay, and nothing else lands in one (property)`, () => {
      const p = new IpPseudonymizer(key)
      fc.assert(fc.property(f === 4 ? v4 : v6, (a) => inReserved(f, a) === inReserved(f, p.mapValue(f, a))), { numRuns: f === 4 ? 3000 : 300 })
    })
  }

  it('is a bijection on a whole /20 (every address maps to a different one, inside the mapped /20)', () => {
    const p = new IpPseudonymizer(randomBytes(32))
    const base = parseIp('10.0.0.0')!.value
    const seen = new Set<bigint>()
    const net = p.mapNetwork(4, base, 20)
    for (let i = 0n; i < 4096n; i++) {
      const m = p.mapValue(4, base + i)
      expect(m & maskOf(4, 20)).toBe(net)
      seen.add(m)
    }
    expect(seen.size).toBe(4096)
  })

  it('keeps the addresses whose meaning is in the address, maps the interface id of fe80::/64', () => {
    const p = new IpPseudonymizer(randomBytes(32))
    for (const a of ['169.254.1.1', '169.254.169.254', '169.254.172.5', '127.0.0.1', '0.0.0.0', '255.255.255.255', '224.0.0.251', '::1', '::', 'ff02::1', 'fd00:ec2::254', 'fd00::ac:3']) {
      const x = parseIp(a)!
      expect(formatIp(p.map(x)), a).toBe(a)
    }
    const ll = p.map(parseIp('fe80::a8c1:abff:fe12:3456')!)
    expect(formatIp(ll).startsWith('fe80::')).toBe(true)
    expect(formatIp(ll)).not.toBe('fe80::a8c1:abff:fe12:3456')
  })

  it('is the same within a bundle (one key) and differs between bundles (new keys)', () => {
    const a = parseIp('10.0.9.88')!
    expect(new IpPseudonymizer(key).map(a)).toEqual(new IpPseudonymizer(Buffer.from(key)).map(a))
    const others = new Set(Array.from({ length: 20 }, () => formatIp(new IpPseudonymizer(randomBytes(32)).map(a))))
    expect(others.size).toBeGreaterThan(15)
  })
})

describe('text redaction', () => {
  const sample = [
    'link/ether 02:56:c0:fc:7c:41 brd ff:ff:ff:ff:ff:ff permaddr 0A:1B:2C:3D:4E:5F',
    '"address":"02:56:c0:fc:7c:41","broadcast":"ff:ff:ff:ff:ff:ff"',
    'network/interfaces/macs/02:56:c0:fc:7c:41/vpc-ipv4-cidr-blocks: 10.0.0.0/16',
    'instance-id: i-0123456789abcdef0 and old i-12345678',
    'local-hostname: ip-10-0-3-45.us-west-2.compute.internal',
    'AWS_ROLE_ARN=arn:aws:iam::123456789012:role/eks-node-role',
    'image 123456789012.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1.20.0',
    '{"ID":"eni-0a1b2c3d4e5f60789","SubnetID":"subnet-0a1b2c3d4e5f60789","OwnerId": "210987654321"}',
    '[4444444444444:987654321098] -A KUBE-SEP-XYZ -s 10.0.7.201/32 -j KUBE-MARK-MASQ',
    'sha256 3f2a9c1be8d74f06a51c2e9d8b7a6f5e4d3c2b1a0f9e8d7c6b5a49382716a5b4 at 16:05:31.123',
    'multicast 01:00:5e:00:00:fb and 33:33:00:00:00:01 stay',
  ].join('\n')

  it('replaces hostnames, instance and resource ids, account ids, ARNs and MACs, consistently; leaves counters, hashes and times', () => {
    const r = new Redactor({ ips: false, hostnames: ['worker-node-7'], key })
    const out = r.redactText(`${sample}\nworker-node-7 says hello\n`, 'x.txt')
    for (const gone of ['02:56:c0:fc:7c:41', '0A:1B:2C:3D:4E:5F', 'i-0123456789abcdef0', 'i-12345678', 'ip-10-0-3-45', '123456789012', '210987654321', 'eni-0a1b2c3d4e5f60789', 'subnet-0a1b2c3d4e5f60789', 'worker-node-7', 'eks-node-role']) expect(out).not.toContain(gone)
    for (const kept of ['ff:ff:ff:ff:ff:ff', '[4444444444444:987654321098]', '3f2a9c1be8d74f06a51c2e9d8b7a6f5e4d3c2b1a0f9e8d7c6b5a49382716a5b4', '16:05:31.123', '10.0.0.0/16', '10.0.7.201/32', '01:00:5e:00:00:fb', '33:33:00:00:00:01', 'KUBE-SEP-XYZ']) expect(out).toContain(kept)
    // The same MAC gets the same pseudonym everywhere (the IMDS path and the interface stay joined).
    const macs = out.split('\n').slice(0, 3).map((l) => /(?:ether |"address":"|macs\/)([0-9a-f:]{17})/.exec(l)![1])
    expect(new Set(macs).size).toBe(1)
    expect(macs[0]).toMatch(/^[0-9a-f][26ae](:[0-9a-f]{2}){5}$/)
    // Shapes stay: an instance id is still an instance id, an account id 12 digits.
    expect(out).toMatch(/instance-id: i-[0-9a-f]{17} and old i-[0-9a-f]{8}\b/)
    expect(out).toMatch(/arn:aws:iam::\d{12}:redacted-[0-9a-f]{12}/)
    expect(out).toMatch(/image \d{12}\.dkr\.ecr\./)
    expect(r.record()).toMatchObject({ ips: 'kept', files: ['x.txt'], counts: { macs: 4, instanceIds: 2, resourceIds: 2, hostnames: 2, arns: 1, ips: 0 } })
    expect(r.record().counts.accountIds).toBe(3)
  })

  it('with --redact-ips maps addresses and networks; nft JSON prefixes too', () => {
    const r = new Redactor({ ips: true, key })
    const text = '-A AWS-SNAT-CHAIN-0 -d 10.0.0.0/16 -j RETURN\ninet 10.0.3.45/20 brd 10.0.15.255\n{"prefix": {"addr": "10.0.0.0", "len": 16}}\nsrc=2001:db8:a::1 dst=169.254.1.1 fe80::1 ::1\n'
    const out = r.redactText(text)
    const net = /-d (\S+)\/16/.exec(out)![1]!
    const host = /inet (\S+)\/20/.exec(out)![1]!
    const nft = /"addr": "([^"]+)", "len": 16/.exec(out)![1]!
    expect(net).not.toBe('10.0.0.0')
    expect(nft).toBe(net)
    expect((parseIp(net)!.value & ~maskOf(4, 16) & 0xffffffffn)).toBe(0n)
    expect(parseIp(host)!.value & maskOf(4, 16)).toBe(parseIp(net)!.value)
    expect(out).toContain('dst=169.254.1.1')
    expect(out).toContain(' ::1')
    expect(out).not.toContain('2001:db8:a::1')
  })

  it('never throws, and is the identity on text with nothing to redact (property)', () => {
    const r = new Redactor({ ips: true, key })
    fc.assert(fc.property(fc.string({ maxLength: 300 }), (s) => { r.redactText(s); return true }), { numRuns: 2000 })
    fc.assert(fc.property(fc.stringMatching(/^[a-zA-Z ,;=-]{0,200}$/), (s) => r.redactText(s) === s), { numRuns: 500 })
  })
})

/** Everything a flow's verdict says about addresses, mapped the way the bundle was. */
function mapVerdict(v: ReturnType<typeof toVerdictJson>, m: (ip: string | null) => string | null) {
  return { verdict: v.verdict, snat: v.snat, egressInterface: v.egressInterface, sourceAfter: m(v.sourceAfter), destinationAfter: m(v.destinationAfter), branches: v.branches.length }
}

describe('a redacted lab bundle explains like the original', () => {
  const fixtures = readFixtures()
  it('has lab fixtures to work on', () => expect(fixtures.length).toBeGreaterThanOrEqual(12))
  for (const run of fixtures) {
    it(`${run.scenario}: every flow gets the same verdict, with the addresses mapped`, async () => {
      const r = new Redactor({ ips: true, key: randomBytes(32) })
      const dir = tmp('natlens-redact-')
      for (const f of readdirSync(run.bundleDir)) writeFileSync(join(dir, f), r.redactText(readFileSync(join(run.bundleDir, f), 'utf8'), f))
      const [orig, red] = await Promise.all([loadNodeState([run.bundleDir]), loadNodeState([dir])])
      const m = (ip: string | null) => { if (ip === null) return null; const a = parseIp(ip)!; return formatIp({ family: a.family, value: r.mapIpValue(a.family, a.value) }) }
      let checked = 0
      for (const f of run.flows) {
        const flow = parseFlow({ src: f.flow.src, dst: f.flow.dst, proto: f.flow.proto, sport: f.flow.sport, dport: f.flow.dport, origin: f.flow.origin, ...(f.flow.iif ? { iif: f.flow.iif } : {}) })
        const mapped = parseFlow({ src: m(f.flow.src)!, dst: m(f.flow.dst)!, proto: f.flow.proto, sport: f.flow.sport, dport: f.flow.dport, origin: f.flow.origin, ...(f.flow.iif ? { iif: f.flow.iif } : {}) })
        if (typeof flow === 'string' || typeof mapped === 'string') throw new Error(String(flow))
        const ctmark = f.flow.origin === 'reply' ? f.observed.conntrack?.mark : undefined
        const a = toVerdictJson(explain(orig, flow, ctmark !== undefined ? { ctmark } : {}), orig)
        const b = toVerdictJson(explain(red, mapped, ctmark !== undefined ? { ctmark } : {}), red)
        expect(mapVerdict(b, (x) => x), f.name).toEqual(mapVerdict(a, m))
        checked++
      }
      expect(checked).toBe(run.flows.length)
      // Addresses were really replaced: the node's address is gone from the redacted files.
      expect(readdirSync(dir).map((f) => readFileSync(join(dir, f), 'utf8')).join('\n')).not.toContain('10.0.3.45')
    })
  }
})

describe('a redacted capture', () => {
  const tshark = (() => { try { execFileSync('tshark', ['-v'], { stdio: 'ignore' }); return true } catch { return false } })()
  const fields = (file: string) => execFileSync('tshark', ['-r', file, '-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE',
    '-T', 'fields', '-E', 'separator=|', '-e', 'sll.src.eth', '-e', 'ip.src', '-e', 'ip.dst', '-e', 'ipv6.src', '-e', 'ipv6.dst',
    '-e', 'ip.checksum.status', '-e', 'tcp.checksum.status', '-e', 'udp.checksum.status', '-e', 'icmp.checksum.status', '-e', 'icmpv6.checksum.status', '-e', 'tcp.payload', '-e', 'data'], { stdio: ['ignore', 'pipe', 'ignore'] })
    .toString().trim().split('\n').map((l) => l.split('|'))

  it.skipIf(!tshark)('maps link-layer and IP addresses as the text files are mapped, and every checksum that was good stays good', () => {
    const dir = tmp('natlens-redact-pcap-')
    mkdirSync(dir, { recursive: true })
    let packets = 0
    for (const run of readFixtures()) {
      const r = new Redactor({ ips: true, key })
      const red = redactPcap(readFileSync(run.pcap), r)
      expect(red.bytes, run.scenario).toBeDefined()
      const out = join(dir, `${run.scenario}.pcap`)
      writeFileSync(out, red.bytes!)
      const before = fields(run.pcap)
      const after = fields(out)
      expect(after.length).toBe(before.length)
      const mapIp = (s: string) => s.split(',').filter(Boolean).map((x) => { const a = parseIp(x)!; return formatIp({ family: a.family, value: r.mapIpValue(a.family, a.value) }) }).join(',')
      const mapMac = (s: string) => (s ? r.redactText(s) : s)
      before.forEach((b, i) => {
        const a = after[i]!
        expect(a[0], `${run.scenario} #${i + 1} link address`).toBe(mapMac(b[0]!))
        for (const k of [1, 2, 3, 4]) expect(a[k], `${run.scenario} #${i + 1} address field ${k}`).toBe(mapIp(b[k]!))
        // 1 = good: a checksum that was right is still right after the addresses changed.
        for (const k of [5, 6, 7, 8, 9]) if (b[k] === '1') expect(a[k], `${run.scenario} #${i + 1} checksum field ${k}`).toBe('1')
        // Payload bytes are zeroed.
        for (const k of [10, 11]) if (a[k]) expect(/^[0:]*$/.test(a[k]!), `${run.scenario} #${i + 1} payload`).toBe(true)
        packets++
      })
    }
    expect(packets).toBeGreaterThan(300)
  })

  it('keeps only what it can redact: an unknown link type is left out, with the reason', () => {
    const hdr = Buffer.alloc(24)
    hdr.writeUInt32LE(0xa1b2c3d4, 0); hdr.writeUInt16LE(2, 4); hdr.writeUInt16LE(4, 6); hdr.writeUInt32LE(65535, 16); hdr.writeUInt32LE(147, 20)
    const r = redactPcap(hdr, new Redactor({ ips: true, key }))
    expect(r.bytes).toBeUndefined()
    expect(r.note).toMatch(/link type 147/)
  })
})
