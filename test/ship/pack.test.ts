// `npm pack` on a fresh clone gives a tarball that installs with `npm install -g` and runs: dist/ built by the
// prepack script, the commit recorded for `--version`, the example node for the help examples, no sources or tests.
// The clone keeps the build away from this checkout's dist/, which other test files are running at the same time.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { cp, mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { REPO } from '../helpers.js'
import { runFile } from './run.js'

const pjson = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string; bundleDependencies?: unknown; bundledDependencies?: unknown }
/** Without bundled dependencies the tarball's install resolves them through npm (its cache, else the registry). */
const BUNDLED = Boolean(pjson.bundleDependencies ?? pjson.bundledDependencies)

let work: string
let clone: string
let tarball: string
let entries: string[]
/** The commit packed: the clone's HEAD (this checkout's may move on while the test runs). */
let commit: string

function sh(file: string, args: string[], cwd: string, timeout = 240_000): string {
  const r = spawnSync(file, args, { cwd, encoding: 'utf8', timeout, maxBuffer: 64 * 1024 * 1024 })
  if (r.status !== 0) throw new Error(`${file} ${args.join(' ')} (exit ${r.status}):\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

async function installAndRun(extraArgs: string[]): Promise<void> {
  const prefix = join(work, `prefix-${extraArgs.join('').replace(/\W/g, '')}`)
  sh('npm', ['install', '--global', '--prefix', prefix, '--no-audit', '--no-fund', ...extraArgs, tarball], work)
  const bin = join(prefix, 'bin', 'natlens')
  const version = await runFile(bin, ['--version'], { cwd: work })
  expect(version.stdout.trim()).toBe(`natlens/${pjson.version}+${commit} ${process.platform}-${process.arch} node-${process.version}`)
  const example = join(prefix, 'lib', 'node_modules', 'natlens', 'fixtures', 'example-node')
  const explain = await runFile(bin, ['explain', example, '--src', '10.0.7.201', '--dst', '203.0.113.10', '--dport', '443', '--json'], { cwd: work })
  expect(explain.code).toBe(0)
  expect(JSON.parse(explain.stdout)).toMatchObject({ snat: true, sourceAfter: '10.0.3.45', decidedBy: { line: 31 } })
}

describe('npm pack', () => {
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'natlens-pack-'))
    clone = join(work, 'natlens')
    if (existsSync(join(REPO, '.git'))) sh('git', ['clone', '--quiet', REPO, clone], work)
    else {
      await mkdir(clone)
      for (const p of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md', 'bin', 'src', 'scripts', 'fixtures']) await cp(join(REPO, p), join(clone, p), { recursive: true })
    }
    // A real node_modules (hard links, so it costs no space): npm pack does not bundle dependencies through a
    // symbolic link, and the tarball must carry them (bundleDependencies) to install offline.
    const linked = spawnSync('cp', ['-al', join(REPO, 'node_modules'), join(clone, 'node_modules')])
    if (linked.status !== 0) {
      if (BUNDLED) await cp(join(REPO, 'node_modules'), join(clone, 'node_modules'), { recursive: true, verbatimSymlinks: true })
      else await symlink(join(REPO, 'node_modules'), join(clone, 'node_modules'))
    }
    commit = existsSync(join(clone, '.git')) ? sh('git', ['rev-parse', '--short', 'HEAD'], clone).trim() : 'dev'
    const name = sh('npm', ['pack', '--pack-destination', work, '--silent'], clone).trim().split('\n').at(-1)!
    tarball = join(work, name)
    entries = sh('tar', ['-tzf', tarball], work).trim().split('\n')
  }, 300_000)
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true })
  })

  it('is named after the version and holds the built CLI, the example node and the README, no sources or tests', () => {
    expect(tarball.endsWith(`natlens-${pjson.version}.tgz`)).toBe(true)
    for (const f of ['package/package.json', 'package/README.md', 'package/bin/run.js', 'package/dist/commands/index.js', 'package/dist/sea/start.js', 'package/dist/build-info.json', 'package/fixtures/example-node/ip-rule.txt', 'package/fixtures/example-node/iptables-save-nat.txt']) {
      expect(entries).toContain(f)
    }
    expect(entries.filter((e) => /^package\/(src|test|scripts|out|bench)\//.test(e))).toEqual([])
  })

  it('records the commit for --version in dist/build-info.json, and postpack removes it from the checkout', async () => {
    const info = JSON.parse(sh('tar', ['-xzOf', tarball, 'package/dist/build-info.json'], work)) as { commit: string }
    expect(info.commit).toBe(commit)
    expect(existsSync(join(clone, 'dist', 'build-info.json'))).toBe(false)
    expect(existsSync(join(clone, 'dist', 'commands', 'index.js'))).toBe(true)
  })

  it.runIf(BUNDLED)('npm install -g installs it offline, with an empty npm cache, and it runs', async () => {
    await installAndRun(['--offline', '--cache', join(work, 'empty-npm-cache')])
  }, 180_000)

  // Without bundled dependencies an offline install works only while npm's cache can resolve every version range
  // (it re-resolves them; `npm ci` fills the cache with the lockfile's tarballs, not with the version lists).
  it.runIf(!BUNDLED)('npm install -g installs it (dependencies from npm\'s cache or the registry) and it runs', async () => {
    await installAndRun(['--prefer-offline'])
  }, 180_000)
})
