// One lab run: preflight, lock, removal of stale namespaces of an earlier crashed run, every scenario in turn,
// and (on request) the fixtures the replay test reads without root.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { acquireLock, installCleanupHandlers, preflight, releaseLock, removeStaleNamespaces } from './kernel.js'
import { labWorkDir, runScenario } from './harness.js'
import { OWNED_NAMESPACES, SCENARIOS } from './scenarios.js'
import type { ScenarioRun } from './model.js'

export const FIXTURES_DIR = fileURLToPath(new URL('./fixtures/', import.meta.url))

export interface LabOptions {
  /** Scenario ids to run; all when empty. */
  readonly only?: readonly string[]
  readonly writeFixtures?: boolean
  readonly workDir?: string
  readonly log?: (message: string) => void
}

export interface LabResult {
  /** Why the lab did not run (not root, tools missing, another run active). */
  readonly skipped?: string
  readonly runs: ScenarioRun[]
  readonly workDir?: string
  readonly staleRemoved: readonly string[]
}

/** Preflight, the one-run lock, cleanup handlers and removal of stale namespaces; a reason when the lab cannot run. */
export async function prepareLab(log?: (message: string) => void): Promise<{ skipped?: string; staleRemoved: string[] }> {
  const reason = await preflight()
  if (reason) return { skipped: reason, staleRemoved: [] }
  const busy = acquireLock()
  if (busy) return { skipped: busy, staleRemoved: [] }
  installCleanupHandlers()
  const staleRemoved = await removeStaleNamespaces(OWNED_NAMESPACES)
  if (staleRemoved.length > 0) log?.(`removed stale lab namespaces of an earlier run: ${staleRemoved.join(', ')}`)
  return { staleRemoved }
}

export function finishLab(): void {
  releaseLock()
}

export async function runLab(options: LabOptions = {}): Promise<LabResult> {
  const prepared = await prepareLab(options.log)
  if (prepared.skipped) return { skipped: prepared.skipped, runs: [], staleRemoved: [] }
  try {
    const workDir = options.workDir ?? labWorkDir()
    const chosen = options.only && options.only.length > 0 ? SCENARIOS.filter((s) => options.only!.includes(s.id)) : SCENARIOS
    const runs: ScenarioRun[] = []
    for (const spec of chosen) {
      const r = await runScenario(spec, { workDir, ...(options.log ? { log: options.log } : {}) })
      runs.push(r)
      if (options.writeFixtures) writeFixture(r)
    }
    return { runs, workDir, staleRemoved: prepared.staleRemoved }
  } finally {
    finishLab()
  }
}

/** Stores one scenario's bundle, observations and node capture under test/lab/fixtures/<scenario>/. */
export function writeFixture(r: ScenarioRun): void {
  const dir = path.join(FIXTURES_DIR, r.scenario)
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(path.join(dir, 'bundle'), { recursive: true })
  for (const f of fs.readdirSync(r.bundleDir)) fs.copyFileSync(path.join(r.bundleDir, f), path.join(dir, 'bundle', f))
  fs.copyFileSync(r.pcap, path.join(dir, 'node.pcap'))
  const stored: ScenarioRun = { ...r, bundleDir: 'bundle', pcap: 'node.pcap' }
  fs.writeFileSync(path.join(dir, 'observations.json'), JSON.stringify(stored, null, 2) + '\n')
}

/** Reads the stored fixtures (paths made absolute). */
export function readFixtures(): ScenarioRun[] {
  if (!fs.existsSync(FIXTURES_DIR)) return []
  return fs.readdirSync(FIXTURES_DIR).sort().flatMap((id) => {
    const file = path.join(FIXTURES_DIR, id, 'observations.json')
    if (!fs.existsSync(file)) return []
    const r = JSON.parse(fs.readFileSync(file, 'utf8')) as ScenarioRun
    return [{ ...r, bundleDir: path.join(FIXTURES_DIR, id, r.bundleDir), pcap: path.join(FIXTURES_DIR, id, r.pcap) }]
  })
}
