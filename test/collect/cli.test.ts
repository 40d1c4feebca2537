// The two commands as a user runs them (the built CLI): collect's --json summary and --plan keep their documented
// shape, usage errors exit 2 with one clear line, a run as an ordinary user collects what it may and says what
// needs root, and collector-script prints a POSIX sh script. HTTP goes to a local stand-in, never to IMDS.
import { execFile, execFileSync } from 'node:child_process'
import { promisify } from 'node:util'
import { chmodSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Manifest } from '../../src/collect/manifest.js'
import { startFakeEndpoints, imdsFor } from './fake-endpoints.mjs'
import { BIN, builtCli, haveTool, isRoot, natlens, schema, tmp } from './support.js'

type Fake = Awaited<ReturnType<typeof startFakeEndpoints>>
let fake: Fake
let endpoints: string[]
beforeAll(async () => {
  fake = await startFakeEndpoints({ imds: imdsFor({ mac: '02:56:c0:fc:7c:41', localIpv4: '10.0.3.45', vpcCidrs: ['10.0.0.0/16'] }), proxyMode: 'iptables' })
  endpoints = ['--imds-url', fake.url, '--ipamd-url', fake.url, '--kube-proxy-url', fake.url]
})
afterAll(async () => { await fake.close() })

describe.skipIf(!builtCli())('natlens collect', () => {
  it('--json prints the documented summary: where the bundle is, its size, what was skipped, what to run next', async () => {
    const out = join(tmp(), 'node.tar.gz')
    const r = await natlens(['collect', '-o', out, '--json', ...endpoints])
    expect(r.code, r.stderr).toBe(0)
    const j = JSON.parse(r.stdout)
    const validate = await schema('collect')
    expect(validate(j), JSON.stringify(validate.errors)).toBe(true)
    expect(j).toMatchObject({ output: out, format: 'tar.gz', netns: null, root: isRoot })
    expect(j.bytes).toBe(readFileSync(out).length)
    expect(j.next).toEqual([`natlens inspect ${out}`, `natlens explain ${out} --all-pods`])
    // Progress goes to stderr, step by step with the elapsed time.
    expect(r.stderr).toMatch(/natlens collect: \d+ items into /)
    expect(r.stderr).toMatch(/^\s+\d+\.\d\ds {2}ok {5}ip-rule\.txt/m)
  })

  it('prints for people where the bundle is, its size, and the next command; --quiet keeps stderr empty', async () => {
    const out = join(tmp(), 'b')
    const r = await natlens(['collect', '-o', out, '--quiet', ...endpoints])
    expect(r.code).toBe(0)
    expect(r.stderr).toBe('')
    expect(r.stdout).toMatch(new RegExp(`^Bundle: ${out} \\(\\d+(\\.\\d)? KiB, \\d+ files\\) in `))
    expect(r.stdout).toContain(`Next: natlens inspect ${out}`)
    expect(r.stdout).toMatch(/Not collected \(\d+\):\n {2}iptables-save\.txt: /)
  })

  it('--plan runs nothing and lists every item with its argv, URL or path, and why it would be skipped', async () => {
    const r = await natlens(['collect', '--plan', '--netns', 'nl-col-planned', '--capture', '30s', '--filter', 'host 10.0.9.88', '--json'])
    expect(r.code, r.stderr).toBe(0)
    const rows = JSON.parse(r.stdout) as { file: string; source: string; runs: boolean; reason?: string; needsRoot: boolean }[]
    expect(rows.find((x) => x.file === 'ip-rule.txt')).toMatchObject({ source: 'ip netns exec nl-col-planned ip rule', runs: true })
    expect(rows.find((x) => x.file === 'capture.pcap')?.source).toBe('ip netns exec nl-col-planned timeout -s TERM 60 tcpdump -n -U -i any -s 128 -c 1000000 -w - host 10.0.9.88')
    expect(rows.find((x) => x.file === 'cni/net.d/*')).toMatchObject({ runs: false, reason: expect.stringMatching(/belongs to the host/) })
  })

  it.each([
    [['--iface', 'lo'], /--capture/],
    [['--capture', '5x'], /not a duration/],
    [['--capture', '30s', '--max-size', '12'], /too small/],
    [['--skip', 'imsd'], /--skip imsd: no such item/],
    [['--capture', '5s', '--iface', 'eth0; reboot'], /is not an interface name/],
    [['--imds-url', 'http://203.0.113.1'], /only be on this node .* or IMDS/],
  ])('usage error %j: exit 2, one line, no stack trace', async (args, message) => {
    const r = await natlens(['collect', '-o', join(tmp(), 'x'), ...(args as string[])])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(message as RegExp)
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })

  it('an existing output is never overwritten (exit 2)', async () => {
    const f = join(tmp(), 'x.tar.gz')
    writeFileSync(f, 'keep me')
    const r = await natlens(['collect', '-o', f])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/already exists; natlens collect never overwrites/)
    expect(readFileSync(f, 'utf8')).toBe('keep me')
  })

  it.skipIf(!isRoot)('--netns of a namespace that does not exist: exit 2 and how to list them', async () => {
    const r = await natlens(['collect', '--netns', 'nl-col-no-such', '-o', join(tmp(), 'x')])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/no network namespace named nl-col-no-such[\s\S]*ip netns list/)
  })

  it.skipIf(!isRoot || !haveTool('setpriv'))('as an ordinary user: collects what it may, and lists what needs root', async () => {
    const d = tmp()
    chmodSync(d, 0o777)
    const out = join(d, 'b')
    // Asynchronously: the stand-in endpoints answer from this process.
    const { stdout } = await promisify(execFile)('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, BIN, 'collect', '-o', out, '--json', ...endpoints], { encoding: 'utf8', cwd: d, env: { PATH: process.env['PATH']!, HOME: d } })
    const j = JSON.parse(stdout)
    expect(j.root).toBe(false)
    expect(j.skipped.filter((s: { reason: string }) => /needs root/.test(s.reason)).map((s: { id: string }) => s.id)).toEqual(expect.arrayContaining(['iptables-legacy-save', 'nft-list-ruleset', 'conntrack']))
    const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as Manifest
    expect(m.root).toBe(false)
    expect(m.commands.filter((c) => c.written).map((c) => c.id), JSON.stringify(m.commands.filter((c) => !c.written))).toEqual(expect.arrayContaining(['ip-rule', 'ip-j-route-all', 'ip-d-j-link', 'sysctl', 'imds']))
  })
})

describe.skipIf(!builtCli())('natlens collector-script', () => {
  it('prints a POSIX sh script (dash parses it) with set -u, a timeout per command, and every command of the plan', async () => {
    const r = await natlens(['collector-script', '--conntrack-limit', '20000'])
    expect(r.code).toBe(0)
    const s = r.stdout
    expect(s.startsWith('#!/bin/sh\n')).toBe(true)
    expect(s).toMatch(/^set -u$/m)
    expect(s).toContain('CONNTRACK_LIMIT=20000')
    for (const cmd of ["'iptables-legacy-save' '-c'", "'nft' '-j' 'list' 'ruleset'", "'ip' '-6' '-j' 'route' 'show' 'table' 'all'", "'conntrack' '-L' '-f' 'ipv6'", "'sysctl' '-a'"]) expect(s).toContain(cmd)
    expect(s).toContain('timeout -k 2 "$t" "$@"')
    const f = join(tmp(), 's.sh')
    writeFileSync(f, s)
    if (haveTool('dash')) execFileSync('dash', ['-n', f])
    // No bashisms the usual checks catch: [[, arrays, `function`, local, $'…', echo -e.
    for (const bashism of [/\[\[/, /^\s*function\s/m, /^\s*local\s/m, /(^|[\s=])\$'/m, /echo -e/, /\bdeclare\b/]) expect(s).not.toMatch(bashism)
  })

  it('its JSON string escaping (sed and awk only) gives JSON that parses back to the text', () => {
    if (!haveTool('dash')) return
    const script = execFileSync(process.execPath, [BIN, 'collector-script']).toString()
    // The script's own functions, without running the collection.
    const fns = script.slice(0, script.indexOf('HOST=$('))
    const f = join(tmp(), 'fns.sh')
    writeFileSync(f, `${fns}\njson_str\n`)
    for (const text of ['plain', 'quote " and backslash \\ and tab \t end', 'two\nlines\n', 'ünïcødé ✓', 'ctrl \u0001\u001b[31m chars', '', 'a\\"b\\\\c', 'x'.repeat(5000)]) {
      const out = execFileSync('dash', [f], { input: text }).toString()
      const back = JSON.parse(out) as string
      // Control characters other than tab and newline are dropped; the rest comes back; at most 4000 bytes are kept.
      expect(back).toBe(Buffer.from(text.replace(/[\u0000-\u0008\u000b-\u001f]/g, '')).subarray(0, 4000).toString().replace(/\n$/, ''))
    }
  })

  it('--json gives the script in a JSON object', async () => {
    const r = await natlens(['collector-script', '--json'])
    expect(JSON.parse(r.stdout).script).toMatch(/^#!\/bin\/sh\n/)
  })
})
