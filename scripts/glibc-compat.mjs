// Lets the packaged Node binary load on glibc 2.26, Amazon Linux 2's. Node 20's official Linux builds ask the
// dynamic loader for three symbols at versions newer than that, and glibc refuses to start a program that needs a
// version the system's libc does not define ("version `GLIBC_2.28' not found"):
//
//   fcntl64@GLIBC_2.28  on 64-bit Linux the same function as fcntl (glibc 2.28 added the name for 32-bit LFS)
//   powf@GLIBC_2.27     the same functions without the old SVID error wrapper, which only changes errno and
//   expf@GLIBC_2.27     matherr handling on overflow; Node calls them for Math.pow-style float work
//
// Each is pointed at the oldest version of the same function (fcntl for fcntl64), and the version requirements
// nothing uses any more are turned into a second copy of the base one, so the loader's check passes on glibc 2.26
// and 2.36 alike. This is the technique of polyfill-glibc, limited to symbols whose older versions behave the same;
// any other too-new symbol stops the packaging with its name. Only .dynstr, .gnu.version and .gnu.version_r bytes
// are changed in place: no offset moves.
import { readFile, writeFile } from 'node:fs/promises'

const SHT_DYNSYM = 11
const SHT_GNU_VERNEED = 0x6ffffffe
const SHT_GNU_VERSYM = 0x6fffffff
const VERSYM_HIDDEN = 0x8000

/** Too-new symbol → the name to bind instead, at the library's base version. */
const SAME_FUNCTION = new Map([
  ['fcntl64', 'fcntl'],
  ['powf', 'powf'],
  ['expf', 'expf'],
])

/** glibc's version of the ELF hash, as stored in vna_hash. */
function elfHash(name) {
  let h = 0
  for (const c of Buffer.from(name)) {
    h = ((h << 4) + c) >>> 0
    const g = h & 0xf0000000
    if (g) h ^= g >>> 24
    h &= ~g >>> 0
  }
  return h >>> 0
}

function cstring(buf, at) {
  return buf.toString('latin1', at, buf.indexOf(0, at))
}

/** "GLIBC_2.28" → [2, 28]; undefined for other version names. */
function glibcVersion(name) {
  const m = /^GLIBC_(\d+)\.(\d+)(?:\.(\d+))?$/.exec(name)
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined
}

function newer(a, b) {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] > b[i]
  return false
}

/** The sections and version records of a little-endian ELF64 file. */
function readElf(buf) {
  if (buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2 || buf[5] !== 1) throw new Error('not a little-endian ELF64 file')
  const shoff = Number(buf.readBigUInt64LE(0x28))
  const shentsize = buf.readUInt16LE(0x3a)
  const shnum = buf.readUInt16LE(0x3c)
  const sections = []
  for (let i = 0; i < shnum; i++) {
    const at = shoff + i * shentsize
    sections.push({
      type: buf.readUInt32LE(at + 4), offset: Number(buf.readBigUInt64LE(at + 0x18)), size: Number(buf.readBigUInt64LE(at + 0x20)),
      link: buf.readUInt32LE(at + 0x28), info: buf.readUInt32LE(at + 0x2c),
    })
  }
  const dynsym = sections.find((s) => s.type === SHT_DYNSYM)
  const versym = sections.find((s) => s.type === SHT_GNU_VERSYM)
  const verneed = sections.find((s) => s.type === SHT_GNU_VERNEED)
  if (!dynsym || !versym || !verneed) throw new Error('no .dynsym, .gnu.version or .gnu.version_r section')
  const dynstr = sections[dynsym.link]
  const str = (off) => cstring(buf, dynstr.offset + off)

  // Version requirements: per needed file, its aux records (vna_other is the index symbols refer to).
  const requirements = []
  let vn = verneed.offset
  for (let n = 0; n < verneed.info; n++) {
    const file = str(buf.readUInt32LE(vn + 4))
    let aux = vn + buf.readUInt32LE(vn + 8)
    for (let a = 0; a < buf.readUInt16LE(vn + 2); a++) {
      requirements.push({ at: aux, file, hash: buf.readUInt32LE(aux), index: buf.readUInt16LE(aux + 6), nameOffset: buf.readUInt32LE(aux + 8), name: str(buf.readUInt32LE(aux + 8)) })
      aux += buf.readUInt32LE(aux + 12)
    }
    vn += buf.readUInt32LE(vn + 12)
  }

  const symbols = []
  for (let i = 0; i < dynsym.size / 24; i++) {
    const at = dynsym.offset + i * 24
    const nameOffset = buf.readUInt32LE(at)
    symbols.push({ at, nameOffset, name: str(nameOffset), versymAt: versym.offset + i * 2, version: buf.readUInt16LE(versym.offset + i * 2) })
  }
  return { dynstr, requirements, symbols }
}

/** The GLIBC version requirements newer than `max`, with the symbols that use each. */
export function glibcRequirementsAbove(buf, max) {
  const limit = glibcVersion(`GLIBC_${max}`)
  const { requirements, symbols } = readElf(buf)
  return requirements
    .filter((r) => { const v = glibcVersion(r.name); return v && newer(v, limit) })
    .map((r) => ({ file: r.file, version: r.name, symbols: symbols.filter((s) => (s.version & ~VERSYM_HIDDEN) === r.index).map((s) => s.name) }))
}

/**
 * Rewrites `path` so that it needs no GLIBC version newer than `max` (e.g. '2.26'). Returns what was rebound;
 * throws, leaving the file as it was, when a too-new symbol has no same-behaving older version here.
 */
export async function lowerGlibcRequirement(path, max) {
  const buf = await readFile(path)
  const limit = glibcVersion(`GLIBC_${max}`)
  const { dynstr, requirements, symbols } = readElf(buf)
  const tooNew = requirements.filter((r) => { const v = glibcVersion(r.name); return v && newer(v, limit) })
  if (tooNew.length === 0) return []
  const rebound = []
  for (const req of tooNew) {
    // The library's base version: its oldest GLIBC requirement (GLIBC_2.2.5 on x86-64, GLIBC_2.17 on arm64).
    const base = requirements.filter((r) => r.file === req.file && glibcVersion(r.name)).sort((a, b) => (newer(glibcVersion(a.name), glibcVersion(b.name)) ? 1 : -1))[0]
    if (!base || base === req) throw new Error(`${req.file}: no older GLIBC version to bind ${req.name} symbols to`)
    for (const sym of symbols.filter((s) => (s.version & ~VERSYM_HIDDEN) === req.index)) {
      const target = SAME_FUNCTION.get(sym.name)
      if (target === undefined) throw new Error(`${sym.name}@${req.name} (${req.file}) has no known older equivalent: the binary needs glibc ${req.name.slice(6)}`)
      if (target !== sym.name) {
        // Shorter name written over the old one in place; no other symbol may point into the bytes it frees.
        const from = sym.nameOffset
        const to = from + sym.name.length
        if (symbols.some((o) => o !== sym && o.nameOffset > from && o.nameOffset <= to)) throw new Error(`${sym.name}: its name is shared with another symbol`)
        buf.write(`${target}\0`, dynstr.offset + from, 'latin1')
      }
      buf.writeUInt16LE((sym.version & VERSYM_HIDDEN) | base.index, sym.versymAt)
      rebound.push(`${sym.name}@${req.name} → ${target}@${base.name}`)
    }
    // Nothing refers to this requirement now: make it the base version again (same name offset, same hash).
    buf.writeUInt32LE(base.hash, req.at)
    buf.writeUInt32LE(base.nameOffset, req.at + 8)
    if (elfHash(base.name) !== base.hash) throw new Error(`${base.name}: unexpected hash in the binary`)
  }
  const left = glibcRequirementsAbove(buf, max)
  if (left.length > 0) throw new Error(`still needs ${left.map((l) => l.version).join(', ')}`)
  await writeFile(path, buf)
  return rebound
}
