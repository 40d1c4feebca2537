// Reads the inputs a user names (directories, files, .tar.gz bundles, gzip files) into in-memory artifacts.
// Tarballs are read as a stream, never extracted: entries that climb out (`..`, absolute paths), links and device
// files are refused with a message, and entry count and sizes are bounded so a hostile archive cannot exhaust memory.
import { createReadStream } from 'node:fs'
import { lstat, readdir, readFile } from 'node:fs/promises'
import { join, relative, basename, sep } from 'node:path'
import { createGunzip, gunzipSync } from 'node:zlib'
import tarStream from 'tar-stream'
import type { Diagnostic } from '../model/evidence.js'

export interface Artifact {
  /** Name shown in evidence: the path inside the bundle, or the path as given. */
  readonly name: string
  readonly bytes: Buffer
  /** Where it lives on disk, for large binary files (captures) that later commands stream. */
  readonly path?: string
}

export interface ReadLimits {
  readonly maxEntries: number
  readonly maxEntryBytes: number
  readonly maxTotalBytes: number
}

export const DEFAULT_LIMITS: ReadLimits = { maxEntries: 20_000, maxEntryBytes: 256 * 1024 * 1024, maxTotalBytes: 1024 * 1024 * 1024 }

/** Files that are never node state; skipped without reading (logs can be gigabytes). */
const SKIP_DIRS = new Set(['node_modules', '.git', 'var_log', 'containerd', 'kubelet', 'docker', 'journal'])

export interface ReadResult {
  readonly artifacts: Artifact[]
  readonly diagnostics: Diagnostic[]
}

export function isGzip(b: Buffer): boolean {
  return b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b
}

function isTarName(name: string): boolean {
  return /\.(tar\.gz|tgz|tar)$/i.test(name)
}

export async function readInputs(inputs: readonly string[], limits: ReadLimits = DEFAULT_LIMITS): Promise<ReadResult> {
  const artifacts: Artifact[] = []
  const diagnostics: Diagnostic[] = []
  for (const input of inputs) {
    let st
    try {
      st = await lstat(input)
    } catch (e) {
      diagnostics.push({ severity: 'error', code: 'input.missing', artifact: input, message: `cannot read: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}` })
      continue
    }
    if (st.isDirectory()) await readDirectory(input, input, artifacts, diagnostics, limits)
    else if (st.isFile()) await readFileInput(input, input, artifacts, diagnostics, limits)
    else diagnostics.push({ severity: 'error', code: 'input.not-a-file', artifact: input, message: 'not a regular file or directory' })
  }
  return { artifacts, diagnostics }
}

async function readDirectory(root: string, dir: string, out: Artifact[], diags: Diagnostic[], limits: ReadLimits): Promise<void> {
  let entries
  try {
    entries = await readdir(dir, { withFileTypes: true })
  } catch (e) {
    diags.push({ severity: 'error', code: 'input.unreadable', artifact: dir, message: (e as Error).message })
    return
  }
  entries.sort((a, b) => a.name.localeCompare(b.name))
  for (const e of entries) {
    const full = join(dir, e.name)
    const name = relative(root, full).split(sep).join('/') || basename(full)
    if (out.length >= limits.maxEntries) {
      diags.push({ severity: 'warning', code: 'input.too-many-files', artifact: root, message: `more than ${limits.maxEntries} files; the rest were not read` })
      return
    }
    // Links are not followed: a bundle is read as it is, and a link could point anywhere on the machine.
    if (e.isSymbolicLink()) { diags.push({ severity: 'info', code: 'input.link-skipped', artifact: name, message: 'symbolic link not followed' }); continue }
    if (e.isDirectory()) {
      if (SKIP_DIRS.has(e.name)) continue
      await readDirectory(root, full, out, diags, limits)
    } else if (e.isFile()) {
      await readFileInput(full, name, out, diags, limits)
    }
  }
}

async function readFileInput(path: string, name: string, out: Artifact[], diags: Diagnostic[], limits: ReadLimits): Promise<void> {
  const st = await lstat(path)
  if (isTarName(name)) {
    await readTarball(path, name, out, diags, limits)
    return
  }
  if (st.size > limits.maxEntryBytes) {
    // Too large to hold: keep a reference (a capture is streamed later), with its first bytes for identification.
    const head = await readHead(path, 64 * 1024)
    out.push({ name, bytes: head, path })
    return
  }
  let bytes = await readFile(path)
  if (isGzip(bytes) && !/\.(pcap|pcapng|cap)(\.gz)?$/i.test(name)) {
    try {
      bytes = gunzipSync(bytes, { maxOutputLength: limits.maxEntryBytes })
    } catch (e) {
      diags.push({ severity: 'error', code: 'input.bad-gzip', artifact: name, message: `gzip data is damaged or larger than ${limits.maxEntryBytes} bytes when expanded: ${(e as Error).message}` })
      return
    }
    // A gzip file that held a tar archive.
    if (bytes.length > 262 && bytes.subarray(257, 262).toString('latin1') === 'ustar') {
      await readTarBuffer(bytes, name, out, diags, limits)
      return
    }
  }
  out.push({ name, bytes, path })
}

async function readHead(path: string, n: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let have = 0
  for await (const c of createReadStream(path, { start: 0, end: n - 1 })) { chunks.push(c as Buffer); have += (c as Buffer).length }
  return Buffer.concat(chunks, have)
}

/** Entry names inside a bundle must stay inside it. */
export function unsafeEntryReason(name: string, type: string | undefined): string | undefined {
  if (type && !['file', 'directory', 'contiguous-file', 'pax-header', 'pax-global-header', 'gnu-long-path', 'gnu-long-link-path'].includes(type)) {
    if (type === 'symlink' || type === 'link') return `is a ${type === 'link' ? 'hard' : 'symbolic'} link; links are refused`
    return `is a ${type} entry; only regular files are read`
  }
  if (name.startsWith('/') || /^[A-Za-z]:[\\/]/.test(name)) return 'has an absolute path'
  if (name.split(/[\\/]/).includes('..')) return 'climbs out of the bundle with ".."'
  return undefined
}

async function readTarball(path: string, name: string, out: Artifact[], diags: Diagnostic[], limits: ReadLimits): Promise<void> {
  const head = await readHead(path, 2)
  const source = createReadStream(path)
  await extractTar(isGzip(head) ? source.pipe(createGunzip()) : source, name, out, diags, limits)
}

async function readTarBuffer(bytes: Buffer, name: string, out: Artifact[], diags: Diagnostic[], limits: ReadLimits): Promise<void> {
  const { Readable } = await import('node:stream')
  await extractTar(Readable.from([bytes]), name, out, diags, limits)
}

function extractTar(stream: NodeJS.ReadableStream, tarName: string, out: Artifact[], diags: Diagnostic[], limits: ReadLimits): Promise<void> {
  return new Promise((resolve) => {
    const extract = tarStream.extract()
    let count = 0
    let total = 0
    let stopped = false
    const stop = (d: Diagnostic) => {
      if (stopped) return
      stopped = true
      diags.push(d)
      ;(stream as unknown as { destroy?: () => void }).destroy?.()
      extract.destroy()
      resolve()
    }
    extract.on('entry', (header, entry, next) => {
      count++
      const entryName = header.name.replace(/^\.\//, '')
      const shown = `${tarName}:${entryName}`
      if (count > limits.maxEntries) {
        entry.resume()
        stop({ severity: 'error', code: 'tar.too-many-entries', artifact: tarName, message: `more than ${limits.maxEntries} entries; reading stopped (what was read is used)` })
        return
      }
      const unsafe = unsafeEntryReason(entryName, header.type ?? undefined)
      if (unsafe) {
        diags.push({ severity: 'warning', code: 'tar.unsafe-entry', artifact: shown, message: `entry ${unsafe}; skipped` })
        entry.resume()
        entry.on('end', next)
        return
      }
      if (header.type === 'directory' || (header.size ?? 0) === 0 || SKIP_DIRS.has(entryName.split('/')[1] ?? '') || entryName.split('/').some((p) => SKIP_DIRS.has(p))) {
        entry.resume()
        entry.on('end', next)
        return
      }
      const size = header.size ?? 0
      if (size > limits.maxEntryBytes || total + size > limits.maxTotalBytes) {
        diags.push({ severity: 'warning', code: 'tar.entry-too-large', artifact: shown, message: `${size} bytes is over the limit (${limits.maxEntryBytes} per entry, ${limits.maxTotalBytes} in all); skipped` })
        entry.resume()
        entry.on('end', next)
        return
      }
      const chunks: Buffer[] = []
      let have = 0
      entry.on('data', (c: unknown) => {
        const chunk = c as Buffer
        have += chunk.length
        // The header's size is checked above; a stream that delivers more than it claimed is cut off.
        if (have <= size) chunks.push(chunk)
      })
      entry.on('end', () => {
        total += have
        let bytes = Buffer.concat(chunks)
        if (isGzip(bytes) && !/\.(pcap|pcapng|cap)(\.gz)?$/i.test(entryName)) {
          try { bytes = gunzipSync(bytes, { maxOutputLength: limits.maxEntryBytes }) } catch { /* kept compressed; identified as unknown */ }
        }
        out.push({ name: shown, bytes })
        next()
      })
    })
    extract.on('finish', () => { if (!stopped) { stopped = true; resolve() } })
    extract.on('error', (e: Error) => stop({ severity: 'error', code: 'tar.damaged', artifact: tarName, message: `the archive is damaged or truncated (${e.message}); the entries before the damage are used` }))
    stream.on('error', (e: Error) => stop({ severity: 'error', code: 'tar.damaged', artifact: tarName, message: `cannot read the archive: ${e.message}; the entries before the damage are used` }))
    stream.pipe(extract)
  })
}
