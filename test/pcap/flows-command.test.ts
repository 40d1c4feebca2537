// `natlens flows` as users run it: the built CLI in a child process, so exit codes, stderr lines and
// standard input are the real ones. The help examples run as tests.
import { existsSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import AjvModule from 'ajv'
import { execa } from 'execa'
import { beforeAll, describe, expect, it } from 'vitest'
import Flows from '../../src/commands/flows.js'
import { readFlows, flowJson, sortFlows } from '../../src/pcap/conversations.js'
import { PCAPS, readOracle } from './oracle-view.js'

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const BIN = path.join(REPO, 'bin/run.js')
const schema = JSON.parse(readFileSync(path.join(REPO, 'src/pcap/flows.schema.json'), 'utf8'))
// ajv is CommonJS: under NodeNext its class is the default export's `default`
const Ajv = ((AjvModule as unknown as { default?: unknown }).default ?? AjvModule) as unknown as new (o: object) => { compile: (s: object) => ((d: unknown) => boolean) & { errors?: unknown } }
const validate = new Ajv({ allErrors: true }).compile(schema)

async function natlens(args: string[], input?: Buffer) {
  return execa('node', [BIN, 'flows', ...args], { cwd: REPO, reject: false, ...(input ? { input } : {}), env: { NO_COLOR: '1' } })
}

beforeAll(async () => {
  // The CLI runs from dist/: build it when it is missing or older than the command.
  const built = path.join(REPO, 'dist/commands/flows.js')
  const newest = Math.max(...['src/commands/flows.ts', 'src/pcap/conversations.ts', 'src/pcap/render-flows.ts'].map((f) => statSync(path.join(REPO, f)).mtimeMs))
  if (!existsSync(built) || statSync(built).mtimeMs < newest) {
    await execa('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: REPO, reject: false })
  }
})

describe('the help examples run', () => {
  for (const example of Flows.examples as { description: string; command: string }[]) {
    it(example.description, async () => {
      const command = example.command.replace('<%= config.bin %> <%= command.id %>', `node ${BIN} flows`)
      const r = await execa('sh', ['-c', command], { cwd: REPO, reject: false, env: { NO_COLOR: '1' } })
      const partial = command.includes('truncated.pcap')
      expect(r.exitCode, r.stderr).toBe(partial ? 1 : 0)
      expect(r.stdout.length).toBeGreaterThan(0)
      if (!partial) expect(r.stderr).toBe('')
    })
  }
})

describe('--json', () => {
  it.each(['local--any-sll2.pcap', 'local--lo-and-any.pcapng', 'zeek--ftp_bruteforce.pcap', 'tcpdump--geneve.pcap', 'zeek--wikipedia.pcap'])('matches the schema and the oracle packet count: %s', async (file) => {
    const r = await natlens([path.join(PCAPS, file), '--json'])
    expect(r.exitCode).toBe(0)
    const doc = JSON.parse(r.stdout)
    expect(validate(doc), JSON.stringify(validate.errors)).toBe(true)
    expect(doc.packets).toBe(readOracle(file).view.packets)
    expect(doc.truncated).toBe(false)
    expect(doc.flows).toHaveLength(doc.flowCount)
  })

  it('prints the library\'s flows, sorted by bytes', async () => {
    const file = path.join(PCAPS, 'zeek--ftp_bruteforce.pcap')
    const r = await natlens([file, '--json'])
    const lib = await readFlows([file])
    expect(JSON.parse(r.stdout).flows).toEqual(sortFlows(lib.flows, 'bytes').map(flowJson))
  })

  it('has null ports for protocols without them', async () => {
    const doc = JSON.parse((await natlens([path.join(PCAPS, 'tcpdump--IGMP_V2.pcap'), '--json'])).stdout)
    expect(doc.flows.every((f: { proto: string; sport: unknown; dport: unknown }) => f.proto === 'igmp' && f.sport === null && f.dport === null)).toBe(true)
  })
})

describe('exit status and the problem line', () => {
  it('partial success: 1, the flows read so far, truncated, one line naming file, byte and what', async () => {
    const r = await natlens(['fixtures/pcap/truncated.pcap', '--json'])
    expect(r.exitCode).toBe(1)
    const doc = JSON.parse(r.stdout)
    expect(doc).toMatchObject({ packets: 29, truncated: true })
    expect(doc.flows.length).toBeGreaterThan(0)
    expect(r.stderr).toBe('natlens: fixtures/pcap/truncated.pcap: byte 2958: record 30: wants 85 bytes of packet data, the file ends after 26')
  })

  it('failure: 2 when nothing could be read, no stack trace', async () => {
    const r = await natlens([path.join(PCAPS, 'libpcap--pcap-invalid-version-1.pcap')])
    expect(r.exitCode).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr).toBe(`natlens: ${path.join(PCAPS, 'libpcap--pcap-invalid-version-1.pcap')}: byte 4: pcap version 1.4 is not supported (only 2.x, as written since libpcap 0.4)`)
    const missing = await natlens(['no-such.pcap'])
    expect(missing.exitCode).toBe(2)
    expect(missing.stderr).toBe('natlens: no-such.pcap: no such file')
  })

  it('a good file next to a bad one is partial success', async () => {
    const r = await natlens(['fixtures/pcap/any-sll2.pcap', path.join(PCAPS, 'libpcap--shb-option-too-long.pcapng'), '--json'])
    expect(r.exitCode).toBe(1)
    expect(JSON.parse(r.stdout).packets).toBe(80)
    expect(r.stderr).toContain('libpcap--shb-option-too-long.pcapng: byte 0: section header block: option')
  })

  it('a bad filter is a usage error', async () => {
    const r = await natlens(['fixtures/pcap/any-sll2.pcap', '--filter', 'host 10.0.0.300'])
    expect(r.exitCode).toBe(2)
    expect(r.stderr).toContain('"10.0.0.300" is not an IP address or CIDR')
  })
})

describe('inputs', () => {
  it('reads standard input, plain and gzip-compressed, like the file', async () => {
    const fromFile = JSON.parse((await natlens(['fixtures/pcap/any-sll2.pcap', '--json'])).stdout)
    for (const f of ['fixtures/pcap/any-sll2.pcap', 'fixtures/pcap/any-sll2.pcap.gz']) {
      const r = await natlens(['-', '--json'], readFileSync(path.join(REPO, f)))
      expect(r.exitCode).toBe(0)
      expect(JSON.parse(r.stdout).flows).toEqual(fromFile.flows)
    }
  })

  it('reads a rotated set as one capture', async () => {
    const one = JSON.parse((await natlens(['fixtures/pcap/any-sll2.pcap', '--json'])).stdout)
    const set = JSON.parse((await natlens(['fixtures/pcap/rotated/capture.pcap2', 'fixtures/pcap/rotated/capture.pcap1', 'fixtures/pcap/rotated/capture.pcap', '--json'])).stdout)
    expect(set.packets).toBe(80)
    expect(set.files.map((f: { path: string }) => path.basename(f.path))).toEqual(['capture.pcap', 'capture.pcap1', 'capture.pcap2'])
    expect(set.flows).toEqual(one.flows)
  })

  it('--reader pcap-parser reads microsecond pcap the same, and refuses nanosecond pcap', async () => {
    const a = JSON.parse((await natlens(['fixtures/pcap/any-sll2.pcap', '--json'])).stdout)
    const b = JSON.parse((await natlens(['fixtures/pcap/any-sll2.pcap', '--json', '--reader', 'pcap-parser'])).stdout)
    expect(b.flows).toEqual(a.flows)
    const ns = await natlens([path.join(PCAPS, 'local--lo-nano.pcap'), '--reader', 'pcap-parser'])
    expect(ns.exitCode).toBe(2)
    expect(ns.stderr).toContain('pcap-parser reads only microsecond classic pcap')
  })
})

describe('output', () => {
  it('--ndjson streams one flow per line, then a summary', async () => {
    const r = await natlens(['fixtures/pcap/lo-and-any.pcapng', '--ndjson'])
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l))
    expect(lines.at(-1)).toMatchObject({ type: 'summary', packets: 160, truncated: false, flowCount: 13 })
    expect(lines.slice(0, -1).every((l) => l.type === 'flow')).toBe(true)
    expect(lines).toHaveLength(14)
  })

  it('--filter, --sort and --top select and order flows', async () => {
    const doc = JSON.parse((await natlens(['fixtures/pcap/any-sll2.pcap', '--json', '--filter', 'dst port 40001 or proto icmpv6', '--sort', 'first', '--top', '2'])).stdout)
    expect(doc.flows.map((f: { proto: string; dport: number | null }) => [f.proto, f.dport])).toEqual([['tcp', 40001], ['tcp', 40001]])
    expect(doc.flows[0].first < doc.flows[1].first).toBe(true)
    const all = JSON.parse((await natlens(['fixtures/pcap/any-sll2.pcap', '--json', '--filter', 'dst port 40001 or proto icmpv6'])).stdout)
    expect(all.flows.map((f: { proto: string }) => f.proto).sort()).toEqual(['icmpv6', 'tcp', 'tcp', 'tcp'])
  })

  it('the table shows the top flows with both directions, flags and interfaces', async () => {
    const r = await natlens(['fixtures/pcap/lo-and-any.pcapng', '--top', '3'])
    expect(r.stdout).toContain('127.0.0.1:41432')
    expect(r.stdout).toContain('16 / 12')
    expect(r.stdout).toContain('SYN,FIN / SYN,FIN')
    expect(r.stdout).toContain('lo, any(1)')
    expect(r.stdout).toContain('3 shown of 13 flows, by bytes; 160 packets in 1 file')
  })

  it('--progress draws a bar on stderr and clears it', async () => {
    const r = await natlens(['fixtures/pcap/any-sll2.pcap', '--progress'])
    expect(r.stderr).toContain('100%')
    expect(r.stderr.endsWith('\r\x1b[K')).toBe(true)
    expect((await natlens(['fixtures/pcap/any-sll2.pcap'])).stderr).toBe('')
  })
})
