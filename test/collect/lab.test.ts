// natlens collect --netns and the collector script on every kernel-lab scenario: while the lab's node namespace is
// up (right after the traffic, before the lab dumps its own bundle), both collect the node; then natlens explain on
// each bundle must agree with what the kernel did for every flow, exactly as on the lab's own dump (same
// predictions, flow by flow), and the two bundles must read identically. ipamd, kube-proxy and IMDS are played by
// test/collect/fake-endpoints.mjs on the node namespace's own 127.0.0.1, with the scenario's settings.
//
// The lab harness (test/lab) is reused as it is: its `log` callback announces "<id>: dumping the bundle" while the
// namespaces still exist, and the collectors run synchronously inside that callback.
// Needs root and the lab's tools (test/lab/README.md), and the built CLI; skips with the reason otherwise.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { finishLab, prepareLab } from '../lab/lab-run.js'
import { labWorkDir, runScenario } from '../lab/harness.js'
import { compareScenario, comparisonTable } from '../lab/compare.js'
import { labMac } from '../lab/names.js'
import { nsName } from '../lab/topology.js'
import { SCENARIOS, type ScenarioSpec } from '../lab/scenarios.js'
import type { ScenarioRun } from '../lab/model.js'
import type { Manifest } from '../../src/collect/manifest.js'
import { loadNodeState } from '../../src/sources/load.js'
import { imdsFor } from './fake-endpoints.mjs'
import { BIN, FAKE_ENDPOINTS, builtCli, haveTool, natlens, tmp } from './support.js'
import { canonicalState } from './state-compare.js'

const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)

/** The lab allows one run at a time (test/lab/kernel.ts acquireLock): wait for another lab test to finish. */
async function prepareWaiting(): Promise<{ skipped?: string }> {
  if (!builtCli()) return { skipped: 'needs `npm run build` (the CLI runs from dist/)' }
  if (!haveTool('dash')) return { skipped: 'dash is not installed' }
  const deadline = Date.now() + 480_000
  for (;;) {
    const p = await prepareLab((m) => console.warn(`collect lab: ${m}`))
    if (!p.skipped || !/another lab run/.test(p.skipped) || Date.now() > deadline) return p
    await new Promise((r) => setTimeout(r, 2000))
  }
}

interface Collected {
  readonly nodeBundle: string
  readonly scriptBundle: string
  readonly nodeExit: number | null
  readonly scriptExit: number | null
  readonly nodeStderr: string
  readonly scriptStderr: string
  readonly stateMs?: number
}

/** Runs both collectors in the scenario's node namespace, synchronously (called from the harness's log callback). */
function collectNow(spec: ScenarioSpec, script: string): Collected {
  const nodeNs = nsName(spec.id, 'node')
  const primary = spec.node.enis.find((e) => e.primary)!
  const settings = spec.settings(labMac(`${spec.id}/${primary.name}`))
  const dir = tmp(`natlens-collect-lab-${spec.id}-`)
  const cfg = join(dir, 'endpoints.json')
  const ready = join(dir, 'port')
  writeFileSync(cfg, JSON.stringify({
    imds: imdsFor({ mac: settings.imds['mac']!, localIpv4: settings.imds['local-ipv4']!, vpcCidrs: settings.imds['vpc-ipv4-cidr-blocks']!.split(/\s+/) }),
    ipamd: { 'networkutils-env-settings': settings.networkutils, ...(settings.ipamd ? { 'ipamd-env-settings': settings.ipamd } : {}) },
    proxyMode: 'iptables',
  }))
  const server = spawn('ip', ['netns', 'exec', nodeNs, process.execPath, FAKE_ENDPOINTS, cfg, ready, '120000'], { stdio: 'ignore' })
  try {
    const deadline = Date.now() + 10_000
    while (!existsSync(ready) || readFileSync(ready, 'utf8') === '') {
      if (Date.now() > deadline) throw new Error(`${spec.id}: the stand-in endpoints did not start`)
      sleep(50)
    }
    const url = `http://127.0.0.1:${readFileSync(ready, 'utf8')}`
    const nodeBundle = join(dir, 'natlens')
    const a = spawnSync(process.execPath, [BIN, 'collect', '--netns', nodeNs, '-o', nodeBundle, '--json', '--imds-url', url, '--ipamd-url', url, '--kube-proxy-url', url], { timeout: 120_000, encoding: 'utf8' })
    const scriptBundle = join(dir, 'script')
    writeFileSync(join(dir, 'natlens-collect.sh'), script)
    const b = spawnSync('ip', ['netns', 'exec', nodeNs, 'dash', join(dir, 'natlens-collect.sh'), '-o', scriptBundle, '--quiet'], { timeout: 120_000, encoding: 'utf8', env: { ...process.env, NATLENS_IMDS_URL: url, NATLENS_IPAMD_URL: url, NATLENS_KUBE_PROXY_URL: url } })
    let stateMs: number | undefined
    try { stateMs = (JSON.parse(a.stdout) as { stateDurationMs: number }).stateDurationMs } catch { /* reported below */ }
    return { nodeBundle, scriptBundle, nodeExit: a.status, scriptExit: b.status, nodeStderr: a.stderr, scriptStderr: b.stderr, ...(stateMs !== undefined ? { stateMs } : {}) }
  } finally {
    server.kill('SIGKILL')
  }
}

const prepared = await prepareWaiting()
if (prepared.skipped) console.warn(`collect lab skipped: ${prepared.skipped}`)

describe.skipIf(prepared.skipped !== undefined)('natlens collect --netns and the collector script on the kernel lab', () => {
  const runs = new Map<string, { run: ScenarioRun; collected: Collected }>()
  const failures = new Map<string, string>()
  let workDir: string | undefined
  afterAll(() => {
    finishLab()
    if (workDir) rmSync(workDir, { recursive: true, force: true })
  })

  it('runs every scenario with both collectors inside it', async () => {
    const script = (await natlens(['collector-script'])).stdout
    expect(script.startsWith('#!/bin/sh')).toBe(true)
    workDir = labWorkDir()
    for (const spec of SCENARIOS) {
      let collected: Collected | undefined
      try {
        const run = await runScenario(spec, {
          workDir: workDir!,
          log: (m) => { if (m === `${spec.id}: dumping the bundle`) collected = collectNow(spec, script) },
        })
        if (!collected) throw new Error(`the lab never announced "${spec.id}: dumping the bundle" (has test/lab/harness.ts changed its messages?)`)
        runs.set(spec.id, { run, collected })
      } catch (e) {
        failures.set(spec.id, e instanceof Error ? e.message : String(e))
      }
    }
    expect([...failures]).toEqual([])
    expect(runs.size).toBe(SCENARIOS.length)
  }, 600_000)

  for (const spec of SCENARIOS) {
    it(`${spec.id}: both collectors finished, and explain on each bundle agrees with the kernel exactly as on the lab's own dump`, async () => {
      const r = runs.get(spec.id)
      if (!r) throw new Error(`scenario ${spec.id} did not run: ${failures.get(spec.id) ?? 'see the first test'}`)
      const { run, collected: c } = r
      expect(c.nodeExit, c.nodeStderr).toBe(0)
      expect(c.scriptExit, c.scriptStderr).toBe(0)
      const lab = await compareScenario(run)
      const viaCollect = await compareScenario({ ...run, bundleDir: c.nodeBundle })
      const viaScript = await compareScenario({ ...run, bundleDir: c.scriptBundle })
      console.log(`\n${spec.id} (natlens collect --netns): ${spec.title}\n${comparisonTable(viaCollect)}`)
      expect(viaCollect.filter((x) => !x.agree).map((x) => `${x.flow}: ${x.mismatches.join('; ')}`)).toEqual([])
      expect(viaScript.filter((x) => !x.agree).map((x) => `${x.flow}: ${x.mismatches.join('; ')}`)).toEqual([])
      const predictions = (rows: typeof lab) => rows.map((x) => ({ flow: x.flow, agree: x.agree, predicted: x.predicted }))
      expect(predictions(viaCollect)).toEqual(predictions(lab))
      expect(predictions(viaScript)).toEqual(predictions(lab))
    })

    it(`${spec.id}: the two bundles read identically and record every item`, async () => {
      const r = runs.get(spec.id)
      if (!r) throw new Error(`scenario ${spec.id} did not run`)
      const [a, b] = await Promise.all([loadNodeState([r.collected.nodeBundle]), loadNodeState([r.collected.scriptBundle])])
      expect(canonicalState(b)).toEqual(canonicalState(a))
      const m = JSON.parse(readFileSync(join(r.collected.nodeBundle, 'manifest.json'), 'utf8')) as Manifest
      expect(m.netns).toBe(nsName(spec.id, 'node'))
      expect(m.commands.filter((x) => x.written).map((x) => x.id)).toEqual(expect.arrayContaining(['ip-rule', 'ip-route-all', 'ip-d-j-addr', 'sysctl', 'imds', 'ipamd-networkutils-env-settings', 'conntrack-S']))
      // At least one backend held the rules, and nothing failed.
      expect(m.commands.some((x) => /tables-(legacy|nft)-save$/.test(x.id) && x.written)).toBe(true)
      expect(m.commands.filter((x) => x.exitCode !== 0 && x.kind === 'command')).toEqual([])
    })
  }

  it('collection time on the lab nodes stays well under the 3 s target', () => {
    const times = [...runs.values()].map((r) => r.collected.stateMs ?? Infinity)
    console.log(`state collection per scenario (ms): ${[...runs].map(([id, r]) => `${id} ${r.collected.stateMs}`).join(', ')}`)
    expect(Math.max(...times)).toBeLessThan(3000)
  })
})
