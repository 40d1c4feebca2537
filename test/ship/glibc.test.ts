// The packaged Node binary must load on Amazon Linux 2 (glibc 2.26): scripts/glibc-compat.mjs rebinds the three
// symbols Node 20 asks for at newer versions to their older, same-behaving versions, and refuses anything else.
import { afterAll, describe, expect, it } from 'vitest'
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { glibcRequirementsAbove, lowerGlibcRequirement } from '../../scripts/glibc-compat.mjs'
import { runFile } from './run.js'

const LINUX = process.platform === 'linux'

describe.skipIf(!LINUX)('glibc requirements of the packaged binary', () => {
  const dirs: string[] = []
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true })
  })

  it('this Node, rebound, asks for no glibc version above 2.26 and still runs file, process and float work', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'natlens-glibc-'))
    dirs.push(dir)
    const node = join(dir, 'node')
    await copyFile(process.execPath, node)
    const before = glibcRequirementsAbove(await readFile(node), '2.26')
    const rebound = await lowerGlibcRequirement(node, '2.26')
    expect(rebound.length).toBe(before.flatMap((b) => b.symbols).length)
    for (const b of before) for (const s of b.symbols) expect(rebound.some((r) => r.startsWith(`${s}@${b.version} → `))).toBe(true)
    expect(glibcRequirementsAbove(await readFile(node), '2.26')).toEqual([])
    // fcntl: libuv sets O_NONBLOCK/FD_CLOEXEC with it on pipes and files; powf/expf: float math in C++.
    const script = "const fs=require('fs');const cp=require('child_process');const p=require('path').join(process.argv[1],'x');fs.writeFileSync(p,'ok');console.log(fs.readFileSync(p,'utf8'),cp.execFileSync(process.execPath,['-e','process.stdout.write(String(Math.fround(Math.exp(1.5))))']).toString(),(2.5**3.5).toFixed(6))"
    const r = await runFile(node, ['-e', script, dir], { cwd: dir })
    expect(r.stderr).toBe('')
    expect(r.stdout.trim()).toBe(`ok ${Math.fround(Math.exp(1.5))} ${(2.5 ** 3.5).toFixed(6)}`)
  }, 120_000)

  it('a binary needing a newer symbol with no known equivalent is refused by name and left as it was', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'natlens-glibc-'))
    dirs.push(dir)
    const ls = join(dir, 'ls')
    await copyFile('/bin/ls', ls)
    const above = glibcRequirementsAbove(await readFile(ls), '2.26')
    if (above.length === 0) return // an old distribution's ls: nothing to refuse
    const bytes = await readFile(ls)
    await expect(lowerGlibcRequirement(ls, '2.26')).rejects.toThrow(/@GLIBC_2\.\d+ \(libc\.so\.6\) has no known older equivalent/)
    expect((await readFile(ls)).equals(bytes)).toBe(true)
  })
})
