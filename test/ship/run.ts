// Running natlens as a user would, keeping exit code, stdout and stderr; and the help examples as they are written.
import { execFile, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { REPO } from '../helpers.js'
import { COMMANDS } from '../../src/commands/index.js'

export interface RunResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

export function runFile(file: string, args: readonly string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string }): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(file, [...args], { cwd: options.cwd, env: options.env ?? process.env, maxBuffer: 256 * 1024 * 1024, timeout: options.timeoutMs ?? 120_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0
      resolve({ code, stdout, stderr })
    })
    if (options.input !== undefined) child.stdin?.end(options.input)
  })
}

/** `node bin/run.js …` from the repository: natlens as a checkout runs it. */
export function natlensDev(args: readonly string[], cwd = REPO, env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' }): Promise<RunResult> {
  return runFile(process.execPath, [join(REPO, 'bin', 'run.js'), ...args], { cwd, env })
}

/** The commit `natlens --version` must report: this checkout's HEAD, or `dev` outside a git checkout. */
export function expectedCommit(): string {
  if (!existsSync(join(REPO, '.git'))) return 'dev'
  const r = spawnSync('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' })
  return r.status === 0 ? r.stdout.trim() : 'dev'
}

/** Every example of every registered command, as the command line a user would type (`natlens …`). */
export function helpExamples(): { id: string; line: string }[] {
  const out: { id: string; line: string }[] = []
  for (const [id, cmd] of Object.entries(COMMANDS)) {
    for (const ex of (cmd as { examples?: ({ command: string } | string)[] }).examples ?? []) {
      const line = typeof ex === 'string' ? ex : ex.command
      out.push({ id, line: line.replaceAll('<%= config.bin %>', 'natlens').replaceAll('<%= command.id %>', id).replace(/^\$\s*/, '') })
    }
  }
  return out
}

/** Splits an example line into words; examples quote only simple words. */
export function words(line: string): string[] {
  return line.match(/'[^']*'|"[^"]*"|\S+/g)!.map((w) => w.replace(/^['"]|['"]$/g, ''))
}

/** A stack frame in output means an error escaped natlens's one-line reporting. */
export const STACK_FRAME = /\n\s+at .*[.](js|cjs|ts):\d+/
