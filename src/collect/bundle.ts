// Where a bundle is written, and how: a directory, or a .tar.gz made from a staging directory beside it
// (`<out>.partial/`, removed once the archive is complete). Directories are 0700 and files 0600: a bundle holds a
// node's addresses and rules. Nothing is ever overwritten, and nothing is written outside the output path.
import { createReadStream, createWriteStream } from 'node:fs'
import { lstat, mkdir, readdir, rm, stat, writeFile, access, constants } from 'node:fs/promises'
import { basename, dirname, join, resolve, sep } from 'node:path'
import { createGzip } from 'node:zlib'
import { pipeline } from 'node:stream/promises'
import tarStream from 'tar-stream'
import { NatlensError, ExitCode } from '../errors.js'

export interface BundleTarget {
  /** What the user gets: the directory or the .tar.gz. */
  readonly output: string
  readonly format: 'directory' | 'tar.gz'
  /** Where files are written while collecting. */
  readonly stage: string
  /** The bundle's own name (the top folder inside a .tar.gz). */
  readonly base: string
  /** For a .tar.gz: the staging directory to remove at the end (`<out>.partial`). */
  readonly partial?: string
}

const TARBALL = /\.(tar\.gz|tgz)$/i

export function defaultBundleName(hostname: string, at: Date): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')
  return `natlens-${hostname.replace(/[^A-Za-z0-9_.-]/g, '_') || 'node'}-${stamp}`
}

async function exists(p: string): Promise<boolean> {
  try { await lstat(p); return true } catch { return false }
}

/**
 * `-o PATH`: `PATH.tar.gz` / `.tgz` is a tarball; an existing directory receives `<default name>.tar.gz`;
 * any other new path becomes a directory bundle. Existing files are never overwritten.
 */
export async function resolveTarget(output: string | undefined, cwd: string, defaultBase: string): Promise<Omit<BundleTarget, 'stage' | 'partial'>> {
  let out = output === undefined ? join(cwd, `${defaultBase}.tar.gz`) : resolve(cwd, output)
  if (output !== undefined && !TARBALL.test(out)) {
    const st = await stat(out).catch(() => undefined)
    if (st?.isDirectory()) out = join(out, `${defaultBase}.tar.gz`)
  }
  if (await exists(out)) throw new NatlensError(`${out} already exists; natlens collect never overwrites`, 'collect.output-exists', ExitCode.badInput, 'give a new path with -o, or remove the old bundle')
  const parent = dirname(out)
  try {
    await access(parent, constants.W_OK)
  } catch {
    throw new NatlensError(`cannot write in ${parent}`, 'collect.output-unwritable', ExitCode.badInput, 'give a writable place with -o, e.g. -o /tmp')
  }
  const format = TARBALL.test(out) ? 'tar.gz' : 'directory'
  return { output: out, format, base: format === 'tar.gz' ? basename(out).replace(TARBALL, '') : basename(out) }
}

export async function createTarget(t: Omit<BundleTarget, 'stage' | 'partial'>): Promise<BundleTarget> {
  if (t.format === 'directory') {
    await mkdir(t.output, { mode: 0o700 })
    return { ...t, stage: t.output }
  }
  const partial = `${t.output}.partial`
  if (await exists(partial)) throw new NatlensError(`${partial} exists (left by a collection that was killed?)`, 'collect.partial-exists', ExitCode.badInput, `look inside, then remove it: rm -r ${partial}`)
  await mkdir(partial, { mode: 0o700 })
  await mkdir(join(partial, t.base), { mode: 0o700 })
  return { ...t, stage: join(partial, t.base), partial }
}

/** Writes one file of the bundle (parents 0700, file 0600, never over an existing one). */
export async function writeBundleFile(target: BundleTarget, rel: string, data: Buffer | string): Promise<void> {
  const full = bundlePath(target, rel)
  await mkdir(dirname(full), { recursive: true, mode: 0o700 })
  await writeFile(full, data, { mode: 0o600, flag: 'wx' })
}

/** The absolute path of a bundle file; `rel` must stay inside the bundle. */
export function bundlePath(target: BundleTarget, rel: string): string {
  if (rel.startsWith('/') || rel.split('/').includes('..') || rel === '') throw new Error(`bundle path ${JSON.stringify(rel)} leaves the bundle`)
  return join(target.stage, ...rel.split('/'))
}

async function listFiles(root: string, rel = ''): Promise<{ rel: string; dir: boolean }[]> {
  const out: { rel: string; dir: boolean }[] = []
  const entries = (await readdir(join(root, rel), { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))
  for (const e of entries) {
    const r = rel ? `${rel}/${e.name}` : e.name
    if (e.isDirectory()) { out.push({ rel: r, dir: true }); out.push(...await listFiles(root, r)) }
    else if (e.isFile()) out.push({ rel: r, dir: false })
  }
  return out
}

/** Packs a .tar.gz (top folder = the bundle's name), removes the staging directory; returns size and file count. */
export async function finishTarget(target: BundleTarget): Promise<{ bytes: number; files: number }> {
  const files = await listFiles(target.stage)
  if (target.format === 'directory') {
    let bytes = 0
    for (const f of files) if (!f.dir) bytes += (await stat(join(target.stage, f.rel))).size
    return { bytes, files: files.filter((f) => !f.dir).length }
  }
  const pack = tarStream.pack()
  const mtime = new Date()
  const writing = pipeline(pack, createGzip(), createWriteStream(target.output, { flags: 'wx', mode: 0o600 }))
  pack.entry({ name: `${target.base}/`, type: 'directory', mode: 0o700, mtime })
  for (const f of files) {
    const full = join(target.stage, ...f.rel.split('/'))
    const name = `${target.base}/${f.rel}`
    if (f.dir) { pack.entry({ name: `${name}/`, type: 'directory', mode: 0o700, mtime }); continue }
    const size = (await stat(full)).size
    await new Promise<void>((res, rej) => {
      const entry = pack.entry({ name, size, mode: 0o600, mtime }, (err) => (err ? rej(err) : res()))
      createReadStream(full).on('error', rej).pipe(entry)
    })
  }
  pack.finalize()
  await writing
  await rm(target.partial!, { recursive: true, force: true })
  return { bytes: (await stat(target.output)).size, files: files.filter((f) => !f.dir).length }
}

/** After a fatal error: a tarball's staging directory is removed; a directory bundle keeps what was written. */
export async function abandonTarget(target: BundleTarget): Promise<void> {
  if (target.partial && target.partial.endsWith(`${sep}${basename(target.output)}.partial`)) await rm(target.partial, { recursive: true, force: true })
}
