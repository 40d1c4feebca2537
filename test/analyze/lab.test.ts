// analyze on every kernel-lab run: the `tcpdump -i any` capture taken on the node while the traffic ran, and the
// bundle dumped right after (conntrack included). Every flow the lab sent must be paired with what the kernel did
// and agree with the rules; altered states (rules changed after the capture, a foreign nft NAT the bundle does not
// show) must come out as disagreements with the right diagnosis.
import { describe, expect, it } from 'vitest'
import { cp, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadNodeState } from '../../src/sources/load.js'
import { analyze, type AnalysisJson } from '../../src/analyze/analyze.js'
import { writeAnnotatedPcapng } from '../../src/analyze/annotate.js'
import { PacketSource } from '../../src/pcap/index.js'
import { REPO } from '../helpers.js'

const LAB = join(REPO, 'test', 'lab', 'fixtures')

interface Observation {
  name: string
  flow: { src: string; dst: string; proto: string; sport?: number; dport?: number; origin: string }
  observed: { delivered: boolean; sourceSeen: string | null; egressInterface: string | null; arrivedAt: string | null }
}

async function run(scenario: string, bundle = join(LAB, scenario, 'bundle')): Promise<AnalysisJson> {
  const state = await loadNodeState([bundle])
  return analyze(state, [join(LAB, scenario, 'node.pcap')])
}

const scenarios = (await readdir(LAB)).filter((d) => !d.startsWith('.')).sort()

describe('analyze pairs every lab flow with what the kernel did, and agrees with the rules', () => {
  it('covers every lab scenario', () => expect(scenarios.length).toBeGreaterThanOrEqual(12))
  it.each(scenarios)('%s', async (scenario) => {
    const a = await run(scenario)
    const obs = JSON.parse(await readFile(join(LAB, scenario, 'observations.json'), 'utf8')).flows as Observation[]
    expect(a.disagreeing, JSON.stringify(a.flows.filter((f) => !f.agree).map((f) => [f.flow, f.diagnosis?.text]), null, 1)).toBe(0)
    let checked = 0
    for (const o of obs) {
      if (!o.observed.delivered || o.flow.origin === 'reply' || !o.observed.sourceSeen) continue
      const f = a.flows.find((x) => x.flow.src === o.flow.src && x.flow.dst === o.flow.dst && x.flow.proto === (o.flow.proto === 'icmp' && o.flow.src.includes(':') ? 'icmpv6' : o.flow.proto) &&
        (o.flow.sport === undefined || x.flow.sport === o.flow.sport || x.flow.proto.startsWith('icmp')))
      expect(f, `${scenario} ${o.name}: no analyzed flow`).toBeDefined()
      expect(f!.observed.sourceAfter, `${scenario} ${o.name}`).toBe(o.observed.sourceSeen)
      if (o.observed.arrivedAt) expect(f!.observed.destinationAfter, `${scenario} ${o.name}`).toBe(o.observed.arrivedAt)
      if (o.observed.egressInterface && f!.observed.egressInterface) expect(f!.observed.egressInterface, `${scenario} ${o.name}`).toBe(o.observed.egressInterface)
      checked++
    }
    expect(checked).toBeGreaterThan(0)
  })
})

describe('altered states come out as disagreements with the right diagnosis', () => {
  it('rules changed after the capture: the SNAT rule is gone from the bundle, the capture and conntrack still show it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'natlens-analyze-'))
    await cp(join(LAB, 'v4nft', 'bundle'), dir, { recursive: true })
    const save = join(dir, 'iptables-nft-save.txt')
    await writeFile(save, (await readFile(save, 'utf8')).split('\n').filter((l) => !l.includes('"AWS, SNAT"')).join('\n'))
    const a = await run('v4nft', dir)
    const off = a.flows.filter((f) => f.observed.snat && f.observed.sourceAfter === '10.0.3.45' && !f.flow.src.startsWith('10.0.3.'))
    expect(off.length).toBeGreaterThan(0)
    for (const f of off) {
      expect(f.agree).toBe(false)
      expect(f.diagnosis?.kind).toBe('rules-changed')
      expect(f.diagnosis?.evidence.some((e) => e.file.endsWith('conntrack.txt') || e.text.includes('after NAT'))).toBe(true)
    }
    await rm(dir, { recursive: true })
  })

  it('a foreign nft NAT that the bundle does not show (as in an EKS log collector bundle): diagnosed as another component', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'natlens-analyze-'))
    await cp(join(LAB, 'v4foreign', 'bundle'), dir, { recursive: true })
    await rm(join(dir, 'nft-list-ruleset.txt'))
    const a = await run('v4foreign', dir)
    const f = a.flows.find((x) => x.flow.dst === '198.51.100.10' && x.flow.src === '10.0.7.201')!
    expect(f.observed.sourceAfter).toBe('10.0.3.46')
    expect(f.predicted.sourceAfter).toBe('10.0.3.45')
    expect(f.agree).toBe(false)
    expect(f.diagnosis?.kind).toBe('foreign-nat')
    expect(f.diagnosis?.text).toMatch(/nft/)
    // With the nft listing the same capture agrees: natlens runs the foreign chain first, as nf_nat does.
    const whole = await run('v4foreign')
    expect(whole.disagreeing).toBe(0)
    await rm(dir, { recursive: true })
  })
})

describe('--write-pcapng', () => {
  it('writes the capture back with a comment per packet naming its flow and verdict, readable as pcapng', async () => {
    const state = await loadNodeState([join(LAB, 'v4cur', 'bundle')])
    const pcap = join(LAB, 'v4cur', 'node.pcap')
    const a = await analyze(state, [pcap])
    const out = join(await mkdtemp(join(tmpdir(), 'natlens-annotate-')), 'annotated.pcapng')
    const written = await writeAnnotatedPcapng([pcap], a, out, state)
    let read = 0
    const r = await new PacketSource([out]).forEach(() => { read++ })
    expect(r.truncated).toBe(false)
    expect(read).toBe(written)
    const bytes = await readFile(out)
    expect(bytes.includes(Buffer.from('natlens: tcp 10.0.7.201:41001 → 203.0.113.10:8080; observed SNAT to 10.0.3.45 out eth0'))).toBe(true)
    expect(bytes.includes(Buffer.from('agree'))).toBe(true)
  })
})

describe('analyze --json', () => {
  it('keeps the documented shape (schemas/analyze.schema.json, predicted = explain\'s verdict object)', async () => {
    const { default: AjvModule } = await import('ajv')
    const Ajv = (AjvModule as unknown as { default?: unknown }).default ?? AjvModule
    const ajv = new (Ajv as new (o: object) => { addSchema: (s: object) => void; compile: (s: object) => ((d: unknown) => boolean) & { errors?: unknown } })({ allErrors: true, strict: false })
    ajv.addSchema(JSON.parse(await readFile(join(REPO, 'schemas', 'explain.schema.json'), 'utf8')))
    const validate = ajv.compile(JSON.parse(await readFile(join(REPO, 'schemas', 'analyze.schema.json'), 'utf8')))
    const a = JSON.parse(JSON.stringify(await run('v4kp')))
    expect(validate(a), JSON.stringify(validate.errors)).toBe(true)
    expect(a.flows.length).toBeGreaterThan(5)
  })
})
