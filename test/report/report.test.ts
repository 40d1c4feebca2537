// Reports for every example node (../shared/examples/node-states) and every stored kernel lab scenario
// (test/lab/fixtures/*): the node address, the SNAT policy sentence with its rule, every flow's verdict equal to
// explain's for the same flow, every rule cited with file:line and its raw text, the inputs that were set aside,
// and (for the lab) what the capture showed next to the prediction.
import { describe, expect, it } from 'vitest'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadNodeState, type LoadedNode } from '../../src/sources/load.js'
import { explain } from '../../src/engine/explain.js'
import { representativeFlows } from '../../src/engine/representative.js'
import { parseFlow, type Flow } from '../../src/model/flow.js'
import { formatIp } from '../../src/model/ip.js'
import { toVerdictJson, type VerdictJson } from '../../src/render/verdict-json.js'
import { analyze } from '../../src/analyze/analyze.js'
import { runDoctor } from '../../src/doctor/index.js'
import { buildReport, renderReportHtml, renderReportMarkdown, type ReportJson } from '../../src/render/report/index.js'
import { escapeHtml } from '../../src/render/report/html.js'
import { toDot, dotToSvg } from '../../src/render/graph/index.js'
import { EXAMPLES, REPO } from '../helpers.js'
import { noExternalReferences, reportSchema } from './helpers.js'
import { readFixtures } from '../lab/lab-run.js'
import { SCENARIOS } from '../lab/scenarios.js'
import type { ScenarioRun } from '../lab/model.js'

interface Built { state: LoadedNode; flows: { label?: string; flow: Flow; ctmark?: number }[]; report: ReportJson; md: string; json: string }

function build(state: LoadedNode, flows: { label?: string; flow: Flow; ctmark?: number }[], inputs: string[], extra: Partial<Parameters<typeof buildReport>[0]> = {}): Built {
  const report = buildReport({
    state, inputs,
    flows: flows.map((f) => ({ ...(f.label ? { label: f.label } : {}), explanation: explain(state, f.flow, f.ctmark !== undefined ? { ctmark: f.ctmark } : {}) })),
    ...extra,
  })
  return { state, flows, report, md: renderReportMarkdown(report), json: JSON.stringify(report) }
}

/** What every report must say, whatever the node. */
async function checkContent(b: Built): Promise<void> {
  const { state, report, md } = b
  const validate = await reportSchema()
  expect(validate(JSON.parse(b.json)), JSON.stringify(validate.errors)).toBe(true)

  // The node address, in the title and the summary.
  const addr = state.derived.primaryAddress ? formatIp(state.derived.primaryAddress) : null
  expect(addr).not.toBeNull()
  expect(report.summary.nodeAddress).toBe(addr)
  expect(md.split('\n')[0]).toBe(`# natlens report: node ${addr} (${state.derived.primaryInterface})`)

  // The SNAT policy sentence, and the rule it cites with that rule's raw line.
  const statements = report.snatPolicy.statements
  expect(statements.length).toBeGreaterThan(0)
  if (state.derived.snatPolicy) {
    expect(statements[0]!.text).toBe(state.derived.snatPolicy)
    const cited = /: rule (.+):(\d+)$/.exec(state.derived.snatPolicy)
    if (cited) {
      const rule = statements[0]!.evidence.find((e) => e.file === cited[1] && e.line === Number(cited[2]))
      expect(rule, `${cited[1]}:${cited[2]} among the policy's evidence`).toBeDefined()
      expect(rule!.text).toMatch(/SNAT --to-source/)
      expect(md).toContain(`\`${cited[1]}:${cited[2]}\` \`${rule!.text}\``)
    }
  }
  for (const st of statements) expect(md).toContain(`- ${st.text}`)

  // Verdicts: the report's are explain's for the same flows, one for one and in order.
  expect(report.flows).toHaveLength(b.flows.length)
  report.flows.forEach((f, i) => {
    const input = b.flows[i]!
    const expected: VerdictJson = toVerdictJson(explain(state, input.flow, input.ctmark !== undefined ? { ctmark: input.ctmark } : {}), state)
    expect(f.verdict).toEqual(expected)
    expect(f.index).toBe(i)
  })
  expect(report.summary.flows).toBe(b.flows.length)
  expect(report.summary.snat + report.summary.keptAddress + report.summary.undecided + report.summary.dropped).toBe(b.flows.length)

  // Rules cited with file:line and their raw text, in the verdict table and in each flow's details.
  for (const f of report.flows) {
    const v = f.verdict
    if (v.decidedBy) {
      expect(md).toContain(`Decided by \`${v.decidedBy.file}:${v.decidedBy.line}\``)
      expect(md).toContain(`\n${v.decidedBy.rule}\n`)
      const rawLine = readFileSync(join(bundleDirOf(b), v.decidedBy.file), 'utf8').split('\n')[v.decidedBy.line - 1]!
      expect(v.decidedBy.rule).toBe(rawLine.trim())
    }
    for (const s of v.steps) if (s.evidence && s.evidence.line > 0) expect(md).toContain(`\`${s.evidence.file}:${s.evidence.line}\``)
  }

  // Every pod has its section; flows from pods are listed under them, the others under "Other flows".
  for (const p of state.derived.pods) expect(md).toContain(`### Pod ${p.name ? `${p.name} ` : ''}${formatIp(p.ip)}`)
  expect([...report.pods.flatMap((p) => p.flows), ...report.otherFlows].sort((x, y) => x - y)).toEqual(report.flows.map((f) => f.index))

  // Inputs: every file, with why an unused one was set aside.
  for (const a of state.artifacts) {
    expect(md).toContain(`| ${a.artifact.replace(/\|/g, '\\|')} |`)
    if (!a.used) expect(md).toContain(a.reason!.replace(/\|/g, '\\|').slice(0, 40))
  }
  // The graph highlights the flow it names.
  const hl = report.graph.highlightedFlow
  if (hl !== null) {
    expect(report.graph.model.flow).toContain(report.flows[hl]!.verdict.flow.src)
    expect(report.graph.model.nodes.some((n) => n.onPath && n.kind === 'hook')).toBe(true)
    expect(md).toContain('```mermaid\nflowchart TB')
  }
}

const bundleDirs = new WeakMap<Built, string>()
function bundleDirOf(b: Built): string { return bundleDirs.get(b)! }

async function exampleReport(name: string, prefer: string[] = []): Promise<Built> {
  const dir = join(EXAMPLES, name)
  const state = await loadNodeState([dir], { prefer })
  const b = build(state, representativeFlows(state), [dir])
  bundleDirs.set(b, dir)
  return b
}

describe('reports of the example nodes', () => {
  const names = readdirSync(EXAMPLES).filter((n) => !n.startsWith('.')).sort()

  it('covers the four example nodes', () => {
    expect(names).toEqual(['default-ipv4', 'externalsnat-true', 'ipv6-egress-v4', 'sgp-standard'])
  })

  for (const name of names) {
    it(`${name}: node address, SNAT policy, verdicts equal to explain's, rules with file:line, inputs`, async () => {
      const b = await exampleReport(name)
      expect(b.flows.length).toBeGreaterThan(0)
      await checkContent(b)
    })
  }

  it('default-ipv4 (whole folder): the variants the loader set aside are listed as not used, with the file that won', async () => {
    const b = await exampleReport('default-ipv4')
    const unused = b.report.node.artifacts.filter((a) => !a.used).map((a) => a.file)
    expect(unused).toEqual(expect.arrayContaining(['iptables-save-nat.v1.12.1-v1.16.0-numbered.txt', 'iptables-save-nat.v1.23-nft-host.txt']))
    expect(b.md).toMatch(/\| iptables-save-nat\.v1\.23-nft-host\.txt \| iptables-save \| no \| [^|]*iptables-save-nat\.txt was used instead/)
    // 10.0.9.88 on eth1 to the internet: SNATed to the primary address by the AWS SNAT rule, out eth0.
    const f = b.report.flows.find((x) => x.verdict.flow.src === '10.0.9.88' && x.label.includes('the internet'))!
    expect(f.verdict).toMatchObject({ snat: true, sourceAfter: '10.0.3.45', egressInterface: 'eth0', owner: 'vpc-cni', decidedBy: { file: 'iptables-save-nat.txt', line: 31 } })
    const pod = b.report.pods.find((p) => p.ip === '10.0.9.88')!
    expect(pod.summary).toContain('leaves as 10.0.3.45 out eth0 to the internet (203.0.113.10)')
    expect(pod.summary).toContain('keeps its address out eth1 to')
  })

  it('default-ipv4, each iptables era chosen with --file: the report cites the chosen file\'s SNAT rule', async () => {
    for (const [file, policyFile] of [['iptables-save-nat.v1.12.1-v1.16.0-numbered.txt', 'iptables-save-nat.v1.12.1-v1.16.0-numbered.txt'], ['iptables-save-nat.v1.23-nft-host.txt', 'iptables-save-nat.v1.23-nft-host.txt']] as const) {
      const b = await exampleReport('default-ipv4', [file])
      await checkContent(b)
      const snat = b.report.flows.filter((f) => f.verdict.snat)
      expect(snat.length).toBeGreaterThan(0)
      for (const f of snat) expect(f.verdict.decidedBy?.file).toBe(policyFile)
      expect(b.report.snatPolicy.statements[0]!.evidence[0]!.file).toBe(policyFile)
    }
  })

  it('externalsnat-true: the policy says the CNI SNATs nothing, and no flow is SNATed', async () => {
    const b = await exampleReport('externalsnat-true')
    expect(b.report.snatPolicy.statements[0]!.text).toMatch(/SNATs nothing/)
    expect(b.report.summary.snat).toBe(0)
    expect(b.report.flows.filter((f) => f.label.includes('the internet')).every((f) => /EXTERNALSNAT/.test(f.verdict.reason))).toBe(true)
  })

  it('ipv6-egress-v4: IPv4 of IPv6 pods leaves as the node address through egress-cni; IPv6 keeps the pod address; pod-side files set aside', async () => {
    const b = await exampleReport('ipv6-egress-v4')
    const texts = b.report.snatPolicy.statements.map((s) => s.text)
    expect(texts[0]).toMatch(/^IPv4 traffic from IPv6 pods \(through the egress-cni plugin, pod side 169\.254\.172\.2, 169\.254\.172\.3\) leaves as 10\.0\.3\.45: rule iptables-save-nat\.txt:14 \(and 1 more, one chain per pod\)$/)
    expect(b.report.snatPolicy.statements[0]!.evidence[0]).toMatchObject({ file: 'iptables-save-nat.txt', line: 14 })
    expect(texts[1]).toMatch(/^IPv6 traffic from pods .* keeps the pod's address/)
    for (const f of ['pod-web-ip-addr.txt', 'pod-web-ip-route.txt', 'pod-web-ip-6-route.txt']) {
      expect(b.report.node.artifacts.find((a) => a.file === f)).toMatchObject({ used: false, reason: expect.stringMatching(/pod's network namespace/) })
    }
    const v4 = b.report.flows.find((f) => f.verdict.flow.src === '169.254.172.2' && f.label.includes('the internet'))!
    expect(v4.verdict).toMatchObject({ snat: true, sourceAfter: '10.0.3.45', owner: 'egress-cni' })
  })

  it('sgp-standard: the branch-ENI pod appears with its kind, and the vlan exemption is in the policy sentence', async () => {
    const b = await exampleReport('sgp-standard')
    expect(b.report.pods.some((p) => p.kind === 'sgp-standard' || p.kind === 'sgp-strict')).toBe(true)
    expect(b.report.snatPolicy.statements[0]!.text).toMatch(/unless it leaves through a vlan interface/)
  })

  it('HTML of an example node: the same facts, escaped, with the graph inline and nothing to fetch', async () => {
    const b = await exampleReport('default-ipv4')
    const svg = await dotToSvg(toDot(b.report.graph.model))
    const html = renderReportHtml(b.report, { svg })
    expect(html).toContain('<title>natlens report: node 10.0.3.45</title>')
    expect(html).toContain(escapeHtml(b.state.derived.snatPolicy!))
    for (const f of b.report.flows) {
      expect(html).toContain(`id="flow-${f.index + 1}"`)
      if (f.verdict.decidedBy) expect(html).toContain(`<pre>${escapeHtml(f.verdict.decidedBy.rule)}</pre>`)
    }
    expect(html).toContain('<figure class="graph"><svg')
    expect(html).toMatch(/stroke="#c2185b"/)
    noExternalReferences(html)
  })
})

/** The lab's flows as it asked natlens about them (a reply carries its connection's mark, as in test/lab/compare.ts). */
function labFlowsOf(run: ScenarioRun): { label: string; flow: Flow; ctmark?: number }[] {
  return run.flows.map((r) => {
    const flow = parseFlow({ src: r.flow.src, dst: r.flow.dst, proto: r.flow.proto, sport: r.flow.sport, dport: r.flow.dport, origin: r.flow.origin, ...(r.flow.iif ? { iif: r.flow.iif } : {}) })
    if (typeof flow === 'string') throw new Error(flow)
    const ctmark = r.flow.origin === 'reply' ? r.observed.conntrack?.mark : undefined
    return { label: r.name, flow, ...(ctmark !== undefined ? { ctmark } : {}) }
  })
}

describe('reports of the kernel lab scenarios, with their captures', () => {
  const runs = readFixtures()

  it('has a stored run of every scenario the lab defines', () => {
    expect(runs.map((r) => r.scenario).sort()).toEqual(SCENARIOS.map((s) => s.id).sort())
    expect(runs.length).toBeGreaterThanOrEqual(12)
  })

  for (const run of runs) {
    it(`${run.scenario}: the lab's flows and every pod's, verdicts equal to explain's, observed vs predicted from node.pcap`, async () => {
      const state = await loadNodeState([run.bundleDir])
      const labFlows = labFlowsOf(run)
      const analysis = await analyze(state, [run.pcap])
      const checks = runDoctor(state)
      const b = build(state, [...labFlows, ...representativeFlows(state)], [run.bundleDir], { analysis, captures: [run.pcap], checks })
      bundleDirs.set(b, run.bundleDir)
      await checkContent(b)

      // Observed vs predicted is analyze's result, counted and listed.
      const o = b.report.observed
      expect(o.status).toBe('compared')
      if (o.status !== 'compared') return
      expect(o.agree).toBe(analysis.agreeing)
      expect(o.disagree).toBe(analysis.disagreeing)
      expect(o.flows.length).toBeGreaterThan(0)
      expect(b.report.summary.disagreements).toBe(analysis.disagreeing)
      for (const f of o.flows) {
        const port = (p: number | null) => (p === null ? '' : `:${p}`)
        expect(b.md).toContain(`| ${f.flow.proto} ${f.flow.src}${port(f.flow.sport)} → ${f.flow.dst}${port(f.flow.dport)} |`)
      }
      expect(b.md).toContain(`${o.agree} agree with the prediction, ${o.disagree} disagree.`)
      // Problems found are doctor's findings, each with its evidence lines.
      expect(b.report.summary.problems).toBe(checks.findings.length)
      if (checks.findings.length === 0) expect(b.md).toContain(`No problems: ${checks.checked.length} checks ran`)
      for (const f of checks.findings) {
        expect(b.md).toContain(`- **${f.severity}** \`${f.id}\`: ${f.title}`)
        for (const e of f.evidence) if (e.line > 0) expect(b.md).toContain(`  - \`${e.file}:${e.line}\``)
      }
      // The kernel's verdict for each lab flow is what natlens predicted (the lab replay test holds this too):
      // a SNATed flow's source in the report is the source the destination saw.
      run.flows.forEach((r, i) => {
        const v = b.report.flows[i]!.verdict
        if (r.observed.delivered && r.observed.sourceSeen && v.branches.length === 0) expect(v.sourceAfter, r.name).toBe(r.observed.sourceSeen)
      })
    })
  }

  it('v4nomark: doctor\'s error and the missing-connmark warning are in "Problems found", naming the flows', async () => {
    const run = runs.find((r) => r.scenario === 'v4nomark')!
    const state = await loadNodeState([run.bundleDir])
    const b = build(state, representativeFlows(state), [run.bundleDir], { checks: runDoctor(state) })
    expect(b.report.problems.status === 'checked' && b.report.problems.findings.some((f) => f.severity === 'error' && /connmark/.test(f.title))).toBe(true)
    const w = b.report.problems.flowWarnings.find((x) => /0x80 connmark/.test(x.text))
    expect(w).toBeDefined()
    for (const i of w!.flows) expect(b.report.flows[i]!.verdict).toMatchObject({ snat: true, egressInterface: 'eth1' })
    expect(b.md).toContain('Warnings from the explained flows:')
  })

  it('HTML of a kube-proxy scenario with its capture: the DNAT branches, the observed table, nothing to fetch', async () => {
    const run = runs.find((r) => r.scenario === 'v4kp')!
    const state = await loadNodeState([run.bundleDir])
    const analysis = await analyze(state, [run.pcap])
    const b = build(state, [...labFlowsOf(run), ...representativeFlows(state)], [run.bundleDir], { analysis, captures: [run.pcap] })
    expect(b.report.flows.some((f) => f.verdict.branches.length > 1)).toBe(true)
    const html = renderReportHtml(b.report, { svg: await dotToSvg(toDot(b.report.graph.model)) })
    expect(html).toContain('<th>probability</th>')
    expect(html).toContain('<th>connection (as sent)</th><th>predicted (natlens explain)</th>')
    expect(html).toContain(`${analysis.agreeing} connection${analysis.agreeing === 1 ? '' : 's'} agree with the prediction`)
    noExternalReferences(html)
  })
})

describe('optional sections', () => {
  it('without captures or checks the report says what to run; with checks it lists the findings and their evidence', async () => {
    const state = await loadNodeState([join(REPO, 'fixtures', 'example-node')])
    const plain = build(state, representativeFlows(state).slice(0, 2), ['fixtures/example-node'])
    expect(plain.report.observed).toEqual({ status: 'not-compared', captures: [], reason: expect.stringMatching(/^Not available: run with --pcap FILE/) })
    expect(plain.report.problems).toMatchObject({ status: 'not-checked', reason: 'No checks ran (natlens doctor)' })
    expect(plain.md).toContain('No checks ran (natlens doctor).')
    expect(plain.report.summary).toMatchObject({ problems: null, disagreements: null })

    const checked = build(state, representativeFlows(state).slice(0, 2), ['fixtures/example-node'], {
      checks: {
        checked: ['snat.connmark', 'snat.exclusions'],
        skipped: [{ id: 'conntrack.insert-failed', reason: 'no conntrack -S in the bundle' }],
        findings: [{ id: 'snat.connmark', severity: 'warning', title: 'secondary-ENI pods rely on the 0x80 connmark', detail: 'checked', evidence: [{ file: 'iptables-save-nat.txt', line: 29, text: '-A AWS-CONNMARK-CHAIN-0 -m comment --comment "AWS, CONNMARK" -j CONNMARK --set-xmark 0x80/0x80' }], fix: 'none needed' }],
      },
    })
    const validate = await reportSchema()
    expect(validate(JSON.parse(checked.json)), JSON.stringify(validate.errors)).toBe(true)
    expect(checked.report.summary.problems).toBe(1)
    expect(checked.md).toContain('- **warning** `snat.connmark`: secondary-ENI pods rely on the 0x80 connmark\n\n  checked\n\n  **Fix:** none needed\n\n')
    expect(checked.md).toContain('  - `iptables-save-nat.txt:29` `-A AWS-CONNMARK-CHAIN-0 -m comment --comment "AWS, CONNMARK" -j CONNMARK --set-xmark 0x80/0x80`')
    expect(checked.md).toContain('Not checked: conntrack.insert-failed (no conntrack -S in the bundle).')
  })

  it('a natlens collect manifest: who collected, what failed, and what was redacted', async () => {
    const state = await loadNodeState([join(REPO, 'fixtures', 'example-node')])
    const manifest = {
      natlensVersion: '0.1.0', manifestVersion: 1, collector: 'natlens', hostname: 'ip-10-0-3-45.ec2.internal', kernel: '6.1.112',
      startedAt: '2026-11-25T10:00:00Z', finishedAt: '2026-11-25T10:00:03Z', options: { redact: true, redactIps: false },
      commands: [
        { id: 'ip-rule', file: 'ip-rule.txt', kind: 'command', exitCode: 0, stderr: '' },
        { id: 'nft', file: 'nft.txt', kind: 'command', exitCode: 127, stderr: 'sh: nft: not found\n' },
      ],
      skipped: [{ id: 'capture', file: 'capture.pcap', reason: 'no --capture' }],
      redaction: { keyFingerprint: '0123456789abcdef', categories: ['hostnames', 'instance-ids'], ips: 'kept', counts: { hostnames: 3, instanceIds: 1, ips: 0 }, files: ['ip-addr.txt'], notes: [] },
    }
    const b = build({ ...state, manifest }, [], ['bundle'])
    expect(b.report.inputs.manifest).toMatchObject({ hostname: 'ip-10-0-3-45.ec2.internal', commands: 2, failed: [{ id: 'nft', file: 'nft.txt', why: 'exit 127: sh: nft: not found' }] })
    expect(b.report.inputs.redaction).toMatchObject({ redacted: true, categories: ['hostnames', 'instance-ids'], ips: 'kept' })
    expect(b.md).toContain('Manifest: natlens 0.1.0 on ip-10-0-3-45.ec2.internal (kernel 6.1.112), collected 2026-11-25T10:00:00Z – 2026-11-25T10:00:03Z; 2 commands and reads, 1 failed, 1 skipped.')
    expect(b.md).toContain('Redaction: redacted (hostnames, instance-ids); IP addresses kept; replaced 3 hostnames, 1 instanceIds in 1 file.')
    expect(b.md).toContain('No flows were explained: give one with `--src` and `--dst`, or `--flows FILE`.')
    const validate = await reportSchema()
    expect(validate(JSON.parse(b.json)), JSON.stringify(validate.errors)).toBe(true)
  })
})
