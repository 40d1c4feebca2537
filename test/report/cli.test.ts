// `natlens report` and `natlens graph` as a user runs them (bin/run.js on the built dist/): the report's verdicts are
// `natlens explain --json`'s for the same flows, on every example node and every lab scenario; files are written
// where -o says; usage errors exit 2 with one line.
import { describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { mkdtemp, readFile, readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { EXAMPLES, REPO } from '../helpers.js'
import { readFixtures } from '../lab/lab-run.js'
import { reportSchema, noExternalReferences } from './helpers.js'

const run = promisify(execFile)
const BIN = join(REPO, 'bin', 'run.js')

async function natlens(args: string[], cwd = REPO): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { cwd, maxBuffer: 256 * 1024 * 1024, env: { ...process.env, NO_COLOR: '1' } })
    return { code: 0, stdout, stderr }
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string }
    return { code: err.code, stdout: err.stdout, stderr: err.stderr }
  }
}

async function json(args: string[]): Promise<unknown> {
  const r = await natlens(args)
  expect(r.stderr).not.toMatch(/\n\s+at /)
  expect(r.code, r.stderr).toBe(0)
  return JSON.parse(r.stdout)
}

/**
 * `natlens explain --json`, which exits 1 when a flow is undecided (insufficient-info) and prints the verdicts all the
 * same: on the Cilium lab scenarios every forwarded flow reaches CILIUM_PRE_mangle's `-m socket --transparent` rule,
 * which natlens does not evaluate.
 */
async function explainJson(args: string[]): Promise<unknown[]> {
  const r = await natlens(args)
  expect(r.stderr).not.toMatch(/\n\s+at /)
  const verdicts = JSON.parse(r.stdout) as { verdict: string }[]
  expect(r.code, r.stderr).toBe(verdicts.some((v) => v.verdict === 'insufficient-info') ? 1 : 0)
  return verdicts
}

const examples = (await readdir(EXAMPLES)).filter((n) => !n.startsWith('.')).sort()
const labs = readFixtures()

describe('natlens report --format json: verdicts equal natlens explain --json on the same flows', () => {
  it.each(examples)('example node %s (--all-pods)', async (name) => {
    const dir = join(EXAMPLES, name)
    const [report, explained] = await Promise.all([json(['report', dir, '--format', 'json']), json(['explain', dir, '--all-pods', '--json'])])
    const r = report as { flows: { verdict: unknown }[]; summary: { nodeAddress: string; problems: number }; problems: { status: string; findings: unknown[] } }
    expect(r.flows.map((f) => f.verdict)).toEqual(explained)
    expect(r.summary.nodeAddress).toBe('10.0.3.45')
    // Problems found are natlens doctor's findings on the same bundle.
    const doctor = (await natlens(['doctor', dir, '--json'])).stdout
    expect(r.problems).toMatchObject({ status: 'checked', findings: (JSON.parse(doctor) as { findings: unknown[] }).findings })
    const validate = await reportSchema()
    expect(validate(report), JSON.stringify(validate.errors)).toBe(true)
  })

  it.each(labs.map((l) => [l.scenario, l] as const))('lab scenario %s (--all-pods and the lab\'s own flows, with its capture)', async (_id, lab) => {
    const flows = join(lab.bundleDir, '..', 'observations.json')
    const [report, explained] = await Promise.all([
      json(['report', lab.bundleDir, '--all-pods', '--flows', flows, '--pcap', lab.pcap, '--format', 'json']),
      explainJson(['explain', lab.bundleDir, '--all-pods', '--flows', flows, '--json']),
    ])
    const r = report as { flows: { verdict: unknown }[]; observed: { status: string; agree: number } }
    expect(r.flows.map((f) => f.verdict)).toEqual(explained)
    expect(r.flows.length).toBe((explained as unknown[]).length)
    expect(r.observed.status).toBe('compared')
    const analysis = await json(['analyze', lab.bundleDir, '--pcap', lab.pcap, '--json']).catch(() => undefined)
    if (analysis) expect(r.observed.agree).toBe((analysis as { agreeing: number }).agreeing)
  })
})

describe('natlens report, files and formats', () => {
  it('-o writes the HTML page and prints one line about it; the page fetches nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'natlens-report-'))
    const out = join(dir, 'report.html')
    const r = await natlens(['report', 'fixtures/example-node', '-o', out])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(new RegExp(`^wrote ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(html, \\d+ KB\\): node 10\\.0\\.3\\.45, 16 flows \\(4 SNATed, 12 keep their address, 0 undecided, 0 dropped\\), \\d+ problems? found\\n$`))
    const html = await readFile(out, 'utf8')
    expect(html.startsWith('<!doctype html>')).toBe(true)
    expect(html).toContain('<svg')
    noExternalReferences(html)
  })

  it('--format md on standard output, with one flow', async () => {
    const r = await natlens(['report', 'fixtures/example-node', '--src', '10.0.9.88', '--dst', '203.0.113.10', '--format', 'md'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.split('\n')[0]).toBe('# natlens report: node 10.0.3.45 (eth0)')
    expect(r.stdout).toContain('| 1 | tcp 10.0.9.88:40000 → 203.0.113.10:443 | forwarded | yes | 10.0.3.45 | eth0 | vpc-cni `iptables-save-nat.txt:31` |')
    expect(r.stdout).toContain('Decided by `iptables-save-nat.txt:31` (vpc-cni):')
  })

  it('usage errors exit 2 with one line: --src without --dst, an unknown format, an unwritable -o', async () => {
    const a = await natlens(['report', 'fixtures/example-node', '--src', '10.0.9.88'])
    expect(a.code).toBe(2)
    expect(a.stderr).toContain('--src and --dst go together')
    const b = await natlens(['report', 'fixtures/example-node', '--format', 'pdf'])
    expect(b.code).toBe(2)
    const c = await natlens(['report', 'fixtures/example-node', '-o', '/nonexistent-dir/report.html'])
    expect(c.code).toBe(2)
    expect(c.stderr).toMatch(/natlens: \/nonexistent-dir\/report\.html: cannot write/)
    for (const x of [a, b, c]) expect(x.stderr).not.toMatch(/\n\s+at /)
  })
})

describe('natlens graph', () => {
  it('dot with a flow: the path edges in the path colour, the SNAT rule on it', async () => {
    const r = await natlens(['graph', 'fixtures/example-node', '--src', '10.0.9.88', '--dst', '203.0.113.10'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.startsWith('digraph natlens {')).toBe(true)
    expect(r.stdout).toContain('label="tcp 10.0.9.88:40000 → 203.0.113.10:443: forwarded"')
    expect(r.stdout).toMatch(/"rule:iptables-save-nat\.txt:31" \[label="iptables-save-nat\.txt:31\\nSNAT to 10\.0\.3\.45 \(random-fully\)"[^\n]*color="#c2185b"/)
    expect(r.stdout).toMatch(/"chain:ip\/iptables-legacy\/nat\/AWS-SNAT-CHAIN-0@postrouting" -> "rule:iptables-save-nat\.txt:31" \[label="#2", color="#c2185b"/)
    expect(r.stdout).toMatch(/-> "out:eth0" \[label="leaves as 10\.0\.3\.45", color="#c2185b"/)
  })

  it('mermaid, svg and json of the whole node', async () => {
    const m = await natlens(['graph', 'fixtures/example-node', '--format', 'mermaid'])
    expect(m.code, m.stderr).toBe(0)
    expect(m.stdout.startsWith('flowchart TB\n')).toBe(true)
    expect(m.stdout).not.toContain('linkStyle')
    const s = await natlens(['graph', 'fixtures/example-node', '--src', '10.0.7.201', '--dst', '172.20.0.1', '--format', 'svg'])
    expect(s.code, s.stderr).toBe(0)
    expect(s.stdout.startsWith('<svg')).toBe(true)
    expect(s.stdout.trimEnd().endsWith('</svg>')).toBe(true)
    const j = JSON.parse((await natlens(['graph', 'fixtures/example-node', '--format', 'json'])).stdout) as { flow: null; nodes: { kind: string; onPath: boolean }[] }
    expect(j.flow).toBeNull()
    expect(j.nodes.filter((n) => n.kind === 'hook').length).toBe(5)
    expect(j.nodes.some((n) => n.onPath)).toBe(false)
  })

  it('-o writes the file; --src without --dst is a usage error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'natlens-graph-'))
    const out = join(dir, 'path.svg')
    const r = await natlens(['graph', 'fixtures/example-node', '--src', '10.0.9.88', '--dst', '203.0.113.10', '--format', 'svg', '-o', out])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^wrote .*path\.svg \(svg\): \d+ nodes, \d+ edges, tcp 10\.0\.9\.88:40000 → 203\.0\.113\.10:443 highlighted \(forwarded\)\n$/)
    expect((await readFile(out, 'utf8')).startsWith('<svg')).toBe(true)
    const bad = await natlens(['graph', 'fixtures/example-node', '--dst', '10.0.9.88'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('--src and --dst go together')
  })
})
