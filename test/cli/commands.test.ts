// The commands as a user runs them: help examples execute as written, JSON output keeps its documented shape,
// bad input gives exit code 2 and one clear line, never a stack trace.
import { describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createGzip } from 'node:zlib'
import { createWriteStream } from 'node:fs'
import { pipeline } from 'node:stream/promises'
import tarStream from 'tar-stream'
import AjvModule from 'ajv'
import { REPO } from '../helpers.js'
import { COMMANDS } from '../../src/commands/index.js'

const run = promisify(execFile)
const BIN = join(REPO, 'bin', 'run.js')

async function natlens(args: string[], cwd = REPO): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { cwd, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, NO_COLOR: '1' } })
    return { code: 0, stdout, stderr }
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string }
    return { code: err.code, stdout: err.stdout, stderr: err.stderr }
  }
}

async function schema(name: string) {
  const Ajv = (AjvModule as unknown as { default: typeof AjvModule }).default ?? AjvModule
  const ajv = new (Ajv as unknown as new (o: object) => { compile: (s: object) => ((d: unknown) => boolean) & { errors?: unknown } })({ allErrors: true, strict: false })
  return ajv.compile(JSON.parse(await readFile(join(REPO, 'schemas', name), 'utf8')))
}

/** Splits an example command line into words (examples quote nothing but simple words). */
function words(line: string): string[] {
  return line.match(/'[^']*'|"[^"]*"|\S+/g)!.map((w) => w.replace(/^['"]|['"]$/g, ''))
}

describe('every --help example runs as written', () => {
  const cases: [string, string][] = []
  for (const [id, cmd] of Object.entries(COMMANDS)) {
    for (const ex of (cmd as { examples?: ({ command: string } | string)[] }).examples ?? []) {
      const line = typeof ex === 'string' ? ex : ex.command
      cases.push([id, line.replace('<%= config.bin %>', 'natlens').replace('<%= command.id %>', id)])
    }
  }
  it.each(cases)('%s: %s', async (_id, line) => {
    let r: { code: number; stdout: string; stderr: string }
    if (line.includes('|')) {
      // A pipeline example runs through the shell, with `natlens` meaning this checkout's bin/run.js.
      const sh = line.replace(/\bnatlens\b/g, `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)}`)
      r = await run('sh', ['-c', sh], { cwd: REPO, maxBuffer: 64 * 1024 * 1024 }).then((x) => ({ code: 0, ...x }), (e) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }))
    } else {
      const [bin, ...args] = words(line)
      expect(bin).toBe('natlens')
      r = await natlens(args)
    }
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/)
    expect([0, 1]).toContain(r.code)
    expect(r.stdout.length).toBeGreaterThan(0)
  })
})

describe('explain', () => {
  it('--json gives the documented shape, with the rule and line that decided', async () => {
    const r = await natlens(['explain', 'fixtures/example-node', '--src', '10.0.7.201', '--dst', '203.0.113.10', '--dport', '443', '--json'])
    expect(r.code).toBe(0)
    const v = JSON.parse(r.stdout)
    const validate = await schema('explain.schema.json')
    expect(validate(v), JSON.stringify(validate.errors)).toBe(true)
    expect(v).toMatchObject({
      flow: { src: '10.0.7.201', sport: 40000, dst: '203.0.113.10', dport: 443, proto: 'tcp', origin: 'pod' },
      snat: true, sourceAfter: '10.0.3.45', destinationAfter: '203.0.113.10', egressInterface: 'eth0', owner: 'vpc-cni',
      decidedBy: { file: 'iptables-save-nat.txt', line: 31, rule: '-A AWS-SNAT-CHAIN-0 ! -o vlan+ -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL -j SNAT --to-source 10.0.3.45 --random-fully' },
    })
  })

  it('--all-pods --json gives one verdict per pod and destination, each in the documented shape', async () => {
    const r = await natlens(['explain', 'fixtures/example-node', '--all-pods', '--json'])
    const list = JSON.parse(r.stdout) as { flow: { src: string }; snat: boolean }[]
    const validate = await schema('explain.schema.json')
    for (const v of list) expect(validate(v), JSON.stringify(validate.errors)).toBe(true)
    expect(new Set(list.map((v) => v.flow.src))).toEqual(new Set(['10.0.7.201', '10.0.12.9', '10.0.9.88', '10.0.14.3']))
    expect(list.some((v) => v.snat) && list.some((v) => !v.snat)).toBe(true)
  })

  it('a flow file with a bad address names the file and line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'natlens-'))
    await writeFile(join(dir, 'flows.csv'), 'src,dst\n10.0.7.201,203.0.113.10\n10.0.7,1.2.3.4\n')
    const r = await natlens(['explain', 'fixtures/example-node', '--flows', join(dir, 'flows.csv')])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('flows.csv:3')
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })

  it('a mistyped flag is a usage error (exit 2) with a suggestion', async () => {
    const r = await natlens(['explain', 'fixtures/example-node', '--srcc', '10.0.7.201'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--srcc|Nonexistent flag/)
  })
})

describe('inspect', () => {
  it('--json lists what it found, in the documented shape', async () => {
    const r = await natlens(['inspect', 'fixtures/example-node', '--json'])
    expect(r.code).toBe(0)
    const j = JSON.parse(r.stdout)
    const validate = await schema('inspect.schema.json')
    expect(validate(j), JSON.stringify(validate.errors)).toBe(true)
    expect(j.node).toMatchObject({ primaryInterface: 'eth0', primaryAddress: '10.0.3.45' })
    expect(j.enis.map((e: { interface: string; table: string }) => `${e.interface}:${e.table}`)).toEqual(['eth0:main', 'eth1:2'])
    expect(j.pods).toHaveLength(4)
    expect(j.vpcCidrs.map((c: { cidr: string }) => c.cidr)).toEqual(['10.0.0.0/16'])
    expect(j.components.map((c: { name: string }) => c.name)).toEqual(expect.arrayContaining(['vpc-cni', 'kube-proxy']))
    expect(j.snatPolicy).toMatch(/outside 10\.0\.0\.0\/16 leaves as 10\.0\.3\.45/)
    expect(j.settings.AWS_VPC_K8S_CNI_EXTERNALSNAT).toBe('false')
    expect(j.diagnostics.filter((d: { severity: string }) => d.severity !== 'info')).toEqual([])
  })

  it('a missing path is bad input: exit 2 and one line naming it', async () => {
    const r = await natlens(['inspect', 'no/such/bundle'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/no\/such\/bundle.*no such file/)
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })

  it('garbage and a file of the wrong kind are listed as not used, with why; the rest is still read', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'natlens-'))
    await writeFile(join(dir, 'garbage.bin'), Buffer.from([0, 1, 2, 3, 255, 254, 0, 7]))
    await writeFile(join(dir, 'notes.txt'), 'the node was rebooted on Tuesday\n')
    await writeFile(join(dir, 'ip-rule.txt'), await readFile(join(REPO, 'fixtures/example-node/ip-rule.txt')))
    const r = await natlens(['inspect', dir, '--json'])
    expect(r.code).toBe(0)
    const j = JSON.parse(r.stdout)
    expect(j.artifacts).toEqual(expect.arrayContaining([
      expect.objectContaining({ file: 'garbage.bin', used: false, reason: expect.stringMatching(/binary/) }),
      expect.objectContaining({ file: 'notes.txt', used: false, reason: expect.stringMatching(/matches no known source/) }),
      expect.objectContaining({ file: 'ip-rule.txt', used: true, kind: 'ip-rule' }),
    ]))
    expect(j.counts.routingRules).toBe(11)
  })

  it('a hostile tarball: entries with .., absolute paths, links and devices are refused by name; the rest is read', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'natlens-'))
    const tarPath = join(dir, 'eks_i-0123_2026-11-25.tar.gz')
    const pack = tarStream.pack()
    const rule = await readFile(join(REPO, 'fixtures/example-node/ip-rule.txt'))
    pack.entry({ name: 'eks_i-0123/networking/iprule.txt' }, rule)
    pack.entry({ name: '../../etc/evil.txt' }, 'x')
    pack.entry({ name: '/etc/passwd' }, 'x')
    pack.entry({ name: 'eks_i-0123/link', type: 'symlink', linkname: '/etc/shadow' })
    pack.entry({ name: 'eks_i-0123/dev', type: 'character-device', devmajor: 1, devminor: 3 })
    pack.finalize()
    await pipeline(pack, createGzip(), createWriteStream(tarPath))
    const r = await natlens(['inspect', tarPath, '--json'])
    expect(r.code).toBe(0)
    const j = JSON.parse(r.stdout)
    const refused = j.diagnostics.filter((d: { code: string }) => d.code === 'tar.unsafe-entry').map((d: { file: string; message: string }) => `${d.file} ${d.message}`)
    expect(refused.join('\n')).toMatch(/\.\.\/\.\.\/etc\/evil\.txt.*climbs out/)
    expect(refused.join('\n')).toMatch(/\/etc\/passwd.*absolute/)
    expect(refused.join('\n')).toMatch(/link.*link/)
    expect(refused.join('\n')).toMatch(/dev.*character-device/)
    expect(j.counts.routingRules).toBe(11)
  })

  it('a truncated tarball: what was read before the damage is used and the damage is named', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'natlens-'))
    const pack = tarStream.pack()
    pack.entry({ name: 'b/iprule.txt' }, await readFile(join(REPO, 'fixtures/example-node/ip-rule.txt')))
    pack.entry({ name: 'b/big.txt' }, 'y'.repeat(200_000))
    pack.finalize()
    const full = join(dir, 'full.tar.gz')
    await pipeline(pack, createGzip(), createWriteStream(full))
    const bytes = await readFile(full)
    await writeFile(join(dir, 'cut.tar.gz'), bytes.subarray(0, Math.floor(bytes.length * 0.6)))
    const r = await natlens(['inspect', join(dir, 'cut.tar.gz'), '--json'])
    const j = JSON.parse(r.stdout)
    expect(j.diagnostics.some((d: { code: string }) => d.code === 'tar.damaged')).toBe(true)
    expect(j.counts.routingRules).toBe(11)
  })
})
