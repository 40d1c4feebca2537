// How natlens starts, the same way from bin/run.js (a checkout or an npm install, commands loaded from dist/) and
// from the single executable (src/sea/main.ts, commands bundled in): the version carries the git commit it was built
// from, a mistyped command or flag gets the nearest real one and exit code 2, and everything else is oclif's run.
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Config, flush, handle, run, toConfiguredId } from '@oclif/core'
import { ExitCode } from '../errors.js'
import { closestName } from './suggest.js'

/** Written into dist/ by `npm pack` (scripts/build-info.mjs), read by an installed package that has no .git. */
export const BUILD_INFO_FILE = 'build-info.json'

/**
 * The version natlens reports (`--version`, collect's manifest, report headers): the package version with the git
 * commit as semver build metadata, `0.1.0+3f2a9c1`; `+dev` when the commit is not known.
 */
export function versionWithCommit(version: string, commit: string | undefined): string {
  return `${version}+${commit && /^[0-9a-f]{4,40}$/.test(commit) ? commit : 'dev'}`
}

/**
 * The commit a package root was built from: HEAD of its own git checkout (a clone running bin/run.js), else the one
 * `npm pack` recorded in dist/build-info.json, else undefined. Only the root's own .git counts, so an npm install
 * inside some other repository does not report that repository's commit.
 */
export function commitOf(packageRoot: string): string | undefined {
  if (existsSync(join(packageRoot, '.git'))) {
    const git = spawnSync('git', ['-C', packageRoot, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', timeout: 2000, stdio: ['ignore', 'pipe', 'ignore'] })
    const commit = git.status === 0 ? git.stdout.trim() : ''
    if (commit) return commit
  }
  try {
    const info = JSON.parse(readFileSync(join(packageRoot, 'dist', BUILD_INFO_FILE), 'utf8')) as { commit?: unknown }
    return typeof info.commit === 'string' ? info.commit : undefined
  } catch {
    return undefined
  }
}

export interface StartOptions {
  /** Loads oclif's configuration, with the version to report. */
  readonly loadConfig: (version: string) => Promise<Config>
  readonly version: string
  readonly argv?: readonly string[]
}

/** Runs one natlens command line and sets the exit code; errors end the process through oclif's handler. */
export async function start(options: StartOptions): Promise<void> {
  let argv = [...(options.argv ?? process.argv.slice(2))]
  try {
    const config = await options.loadConfig(options.version)
    // `natlens help explain` reads naturally; oclif's own spelling is `natlens explain --help`.
    if (argv[0] === 'help') argv = [...argv.slice(1), '--help']
    const unknown = unknownCommand(config, argv)
    if (unknown) return fail(unknown)
    await run(argv, config)
    flush()
  } catch (e) {
    const unknownFlag = unknownFlagMessage(e)
    if (unknownFlag) return fail(unknownFlag)
    await handle(e as Error)
  }
}

function fail(lines: readonly string[]): void {
  process.stderr.write(lines.map((l) => `${l}\n`).join(''))
  process.exitCode = ExitCode.badInput
}

/**
 * The message for a first word that is neither a command nor a topic, or undefined when it is one (or a flag).
 * Only the first word: with spaces between topics and commands, oclif would read `explian example-node` as one
 * two-word command id.
 */
export function unknownCommand(config: Config, argv: readonly string[]): string[] | undefined {
  const [typed] = argv
  if (typed === undefined || typed.startsWith('-') || config.findCommand(typed) || config.findTopic(typed)) return undefined
  const firstWords = [...new Set(config.commands.filter((c) => !c.hidden).map((c) => c.id.split(':')[0]!))]
  const near = closestName(typed, firstWords)
  return near === undefined
    ? [`${config.bin}: "${typed}" is not a ${config.bin} command.`, `  try: ${config.bin} --help   (lists the commands)`]
    : [`${config.bin}: "${typed}" is not a ${config.bin} command. Did you mean "${near}"?`, `  try: ${config.bin} ${near} --help`]
}

interface NonexistentFlagsError {
  readonly flags: readonly string[]
  readonly parse: { readonly input: { readonly flags: Record<string, { readonly char?: string; readonly hidden?: boolean }>; readonly context?: { readonly id?: string; readonly config?: Config } } }
}

function isNonexistentFlagsError(e: unknown): e is NonexistentFlagsError {
  const x = e as Partial<NonexistentFlagsError> | undefined
  return Array.isArray(x?.flags) && typeof x?.parse?.input?.flags === 'object'
}

/**
 * oclif's "Nonexistent flag: --srcc" followed by the whole help becomes one line with the nearest flag of that
 * command and where to read the rest. Under --json oclif reports the error as JSON itself and this is not reached.
 */
export function unknownFlagMessage(e: unknown): string[] | undefined {
  if (!isNonexistentFlagsError(e)) return undefined
  const { flags: defined, context } = e.parse.input
  const bin = context?.config?.bin ?? 'natlens'
  const command = context?.id && context.config ? `${bin} ${toConfiguredId(context.id, context.config)}` : bin
  const names = Object.entries(defined).filter(([, f]) => !f.hidden).flatMap(([name, f]) => [`--${name}`, ...(f.char ? [`-${f.char}`] : [])])
  const lines = e.flags.map((typed) => {
    const bare = typed.replace(/=.*$/, '')
    const near = closestName(bare, names.filter((n) => n.startsWith('--') === bare.startsWith('--')))
    return `${command}: no flag ${bare}.${near ? ` Did you mean ${near}?` : ''}`
  })
  return [...lines, `  try: ${command} --help`]
}
