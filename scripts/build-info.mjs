#!/usr/bin/env node
// `npm pack` (prepack): records the git commit being packed in dist/build-info.json, so that an installed natlens,
// which has no .git, still reports `natlens --version` as 0.1.0+<commit> (src/sea/start.ts commitOf).
// `--remove` (postpack) deletes it again, so that a checkout keeps reading its live HEAD.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { rm, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const FILE = join(ROOT, 'dist', 'build-info.json')

if (process.argv.includes('--remove')) {
  await rm(FILE, { force: true })
} else {
  const git = existsSync(join(ROOT, '.git'))
    ? spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
    : undefined
  const commit = git?.status === 0 ? git.stdout.trim() : ''
  if (!existsSync(join(ROOT, 'dist', 'commands', 'index.js'))) {
    process.stderr.write('build-info: dist/ is not built (run npm run build first)\n')
    process.exit(1)
  }
  if (commit) await writeFile(FILE, `${JSON.stringify({ commit }, null, 2)}\n`)
  else await rm(FILE, { force: true })
  process.stdout.write(`build-info: ${commit ? `commit ${commit}` : 'not a git checkout: the package will report +dev'}\n`)
}
