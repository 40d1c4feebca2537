// The single executable as a support engineer uses it on a worker node: built by `npm run package`, copied alone
// into an empty directory outside the repository with a bundle and a capture, and run with no Node.js on PATH
// and no environment but PATH and HOME.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { copyFile, cp, mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { REPO, FIXTURES } from '../helpers.js'
import { COMMANDS } from '../../src/commands/index.js'
import { glibcRequirementsAbove } from '../../scripts/glibc-compat.mjs'
import { expectedCommit, helpExamples, natlensDev, runFile, STACK_FRAME, words, type RunResult } from './run.js'

const TARGET = `${process.platform}-${process.arch}`
const CAN_BUILD = TARGET === 'linux-x64' || TARGET === 'linux-arm64'

let out: string // npm run package's output (two copies of an 88 MB executable with this one: removed afterwards)
let node: string // the directory on the "node": natlens, example-node/, capture.pcap and nothing else
let exe: string
let emptyPath: string
/** HEAD when the executable was packaged (read just before, as the package script reads it). */
let commit: string

/** ./natlens in the node directory, with PATH holding no program at all and HOME inside the directory. */
function natlens(args: readonly string[], cwd = node, path = emptyPath): Promise<RunResult> {
  return runFile(exe, args, { cwd, env: { PATH: path, HOME: node } })
}

describe.skipIf(!CAN_BUILD)(`the single executable (${TARGET})`, () => {
  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'natlens-package-'))
    commit = expectedCommit()
    const built = spawnSync('npm', ['run', 'package', '--', '--target', TARGET, '--out', out], { cwd: REPO, encoding: 'utf8', timeout: 300_000 })
    expect(built.status, `npm run package failed:\n${built.stdout}\n${built.stderr}`).toBe(0)
    node = await mkdtemp(join(tmpdir(), 'natlens-node-'))
    exe = join(node, 'natlens')
    await copyFile(join(out, `natlens-${TARGET}`), exe)
    await cp(join(FIXTURES, 'example-node'), join(node, 'example-node'), { recursive: true })
    await copyFile(join(FIXTURES, 'pcap', 'vxlan-http.pcap'), join(node, 'capture.pcap'))
    emptyPath = join(node, 'empty-bin')
    await mkdir(emptyPath)
  }, 300_000)
  afterAll(async () => {
    for (const d of [out, node]) if (d) await rm(d, { recursive: true, force: true })
  })

  it('is one file, alone with its inputs, outside the repository and out of reach of any node_modules or Node.js', async () => {
    expect((await stat(exe)).mode & 0o111).not.toBe(0)
    expect((await readdir(node)).sort()).toEqual(['capture.pcap', 'empty-bin', 'example-node', 'natlens'])
    expect(node.startsWith(REPO)).toBe(false)
    for (let d = node; d !== dirname(d); d = dirname(d)) expect(existsSync(join(d, 'node_modules')), `${d}/node_modules`).toBe(false)
    const which = spawnSync('sh', ['-c', 'command -v node'], { env: { PATH: emptyPath } })
    expect(which.status).not.toBe(0)
  })

  it('asks glibc for no version above 2.26, so it loads on Amazon Linux 2', async () => {
    expect(glibcRequirementsAbove(await readFile(exe), '2.26')).toEqual([])
  })

  it('inspect reads the example node', async () => {
    const r = await natlens(['inspect', 'example-node'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('Node: 10.0.3.45 on eth0')
    expect(r.stdout).toMatch(/vpc-cni: v1\.16\.1\+/)
    expect(r.stdout).toMatch(/kube-proxy: iptables mode/)
  })

  it('explain --json gives the SNAT verdict with the rule and line that decided it', async () => {
    const r = await natlens(['explain', 'example-node', '--src', '10.0.7.201', '--dst', '203.0.113.10', '--dport', '443', '--json'])
    expect(r.code).toBe(0)
    const v = JSON.parse(r.stdout)
    expect(v).toMatchObject({ snat: true, sourceAfter: '10.0.3.45', egressInterface: 'eth0', owner: 'vpc-cni', decidedBy: { file: 'iptables-save-nat.txt', line: 31 } })
  })

  it('flows --json reads a capture exactly as the checkout does', async () => {
    const r = await natlens(['flows', 'capture.pcap', '--json'])
    expect(r.code).toBe(0)
    const fromExe = JSON.parse(r.stdout)
    expect(fromExe.packets).toBe(12)
    expect(fromExe.flows[0]).toMatchObject({ proto: 'udp', dport: 4789, packets: 12 })
    const dev = await natlensDev(['flows', 'capture.pcap', '--json'], node)
    expect(fromExe).toEqual(JSON.parse(dev.stdout))
  })

  it('--version prints the version and the git commit it was packaged from', async () => {
    const r = await natlens(['--version'])
    expect(r.code).toBe(0)
    const { version } = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string }
    expect(r.stdout.trim()).toBe(`natlens/${version}+${commit} ${TARGET} node-${process.version}`)
  })

  it('a mistyped command exits 2 and names the command meant', async () => {
    const r = await natlens(['explian', 'example-node'])
    expect(r.code).toBe(2)
    expect(r.stderr).toBe('natlens: "explian" is not a natlens command. Did you mean "explain"?\n  try: natlens explain --help\n')
    expect(r.stdout).toBe('')
  })

  it('a mistyped flag exits 2 and names the flag meant', async () => {
    const r = await natlens(['explain', 'example-node', '--srcc', '10.0.7.201'])
    expect(r.code).toBe(2)
    expect(r.stderr).toBe('natlens explain: no flag --srcc. Did you mean --src?\n  try: natlens explain --help\n')
  })

  it('a missing bundle exits 2 with one line naming it', async () => {
    const r = await natlens(['inspect', 'no/such/bundle'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^natlens: .*no\/such\/bundle.*no such file/)
    expect(r.stderr).not.toMatch(STACK_FRAME)
  })

  it('shell completion: the autocomplete plugin is bundled and writes its completion functions', async () => {
    const setup = await natlens(['autocomplete', 'bash'])
    expect(setup.code).toBe(0)
    expect(setup.stdout).toContain('natlens autocomplete script bash')
    const functions = await readFile(join(node, '.cache', 'natlens', 'autocomplete', 'functions', 'bash', 'natlens.bash'), 'utf8')
    for (const id of Object.keys(COMMANDS)) expect(functions).toContain(`${id} `)
    expect(functions).toContain('--src')
    const script = await natlens(['autocomplete', 'script', 'bash'])
    expect(script.stdout).toContain('NATLENS_AC_BASH_SETUP_PATH=')
  })

  it.runIf('graph' in COMMANDS)('graph --format svg draws with the bundled Graphviz WebAssembly', async () => {
    const r = await natlens(['graph', 'example-node', '--src', '10.0.9.88', '--dst', '203.0.113.10', '--format', 'svg'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/<svg[\s\S]*<\/svg>\s*$/)
  })

  it('collector-script prints the POSIX sh collector', async () => {
    const r = await natlens(['collector-script'])
    expect(r.code).toBe(0)
    expect(r.stdout.startsWith('#!/bin/sh')).toBe(true)
  })

  describe('every --help example runs with the executable as written (from the repository, where the examples point)', () => {
    it.each(helpExamples().map((e) => [e.id, e.line]))('%s: %s', async (_id, line) => {
      // Examples that collect need the system's tools; the rest would run with none.
      const path = '/usr/sbin:/usr/bin:/sbin:/bin'
      let r: RunResult
      if (line.includes('|')) r = await runFile('sh', ['-c', line.replace(/\bnatlens\b/g, JSON.stringify(exe))], { cwd: REPO, env: { PATH: path, HOME: node } })
      else {
        const [bin, ...args] = words(line)
        expect(bin).toBe('natlens')
        r = await natlens(args, REPO, path)
      }
      expect(r.stderr).not.toMatch(STACK_FRAME)
      expect([0, 1], r.stderr).toContain(r.code)
      expect(r.stdout.length).toBeGreaterThan(0)
    })
  })
})
