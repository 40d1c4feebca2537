// doctor, whatif and explain --flow-log-line as a user runs them: exit status (0 healthy, 1 problem found, 2 bad
// input), JSON output in the shape of schemas/doctor.schema.json and schemas/whatif.schema.json, one clear line on
// bad input. (Every --help example runs in test/cli/commands.test.ts.)
import { describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import AjvModule from 'ajv'
import { REPO } from '../helpers.js'

const run = promisify(execFile)
const BIN = join(REPO, 'bin', 'run.js')

async function natlens(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { cwd: REPO, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, NO_COLOR: '1' } })
    return { code: 0, stdout, stderr }
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string }
    return { code: err.code, stdout: err.stdout, stderr: err.stderr }
  }
}

type Validate = ((d: unknown) => boolean) & { errors?: unknown }
async function validator(file: string, ref?: string): Promise<Validate> {
  const Ajv = (AjvModule as unknown as { default: typeof AjvModule }).default ?? AjvModule
  const ajv = new (Ajv as unknown as new (o: object) => { addSchema: (s: object) => void; compile: (s: object) => Validate })({ allErrors: true, strict: false })
  const schema = JSON.parse(await readFile(join(REPO, 'schemas', file), 'utf8')) as { $id: string }
  if (!ref) return ajv.compile(schema)
  ajv.addSchema(schema)
  return ajv.compile({ $ref: `${schema.$id}${ref}` })
}

describe('natlens doctor', () => {
  it('the healthy example node: no finding, exit 0', async () => {
    const r = await natlens(['doctor', 'fixtures/example-node'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/No problem found \(7 checks ran\)/)
  })
  it('a broken node: exit 1, the finding with its evidence, JSON in the documented shape', async () => {
    const r = await natlens(['doctor', 'test/lab/fixtures/v4nomark/bundle', '--json'])
    expect(r.code).toBe(1)
    const report = JSON.parse(r.stdout)
    const validate = await validator('doctor.schema.json')
    expect(validate(report), JSON.stringify(validate.errors)).toBe(true)
    expect(report.summary.errors).toBe(1)
    expect(report.findings[0]).toMatchObject({ id: 'vpc-cni-intent', severity: 'error' })
    expect(report.checked).toContain('vpc-cni-intent')
  })
  it('--check runs only the checks named', async () => {
    const r = await natlens(['doctor', 'test/lab/fixtures/v4num/bundle', '--check', 'snat-random-fully', '--json'])
    const report = JSON.parse(r.stdout)
    expect(report.checked).toEqual(['snat-random-fully'])
    expect(report.findings.map((f: { id: string }) => f.id)).toEqual(['snat-random-fully'])
    expect(r.code).toBe(1)
  })
  it('text output: severity, evidence as file:line, the fix', async () => {
    const r = await natlens(['doctor', 'test/lab/fixtures/v4nomark/bundle'])
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(/^ERROR \[vpc-cni-intent\]/m)
    expect(r.stdout).toMatch(/networkutils-env-settings\.json:1 {2}"AWS_VPC_K8S_CNI_EXTERNALSNAT":false/)
    expect(r.stdout).toMatch(/fix:\n {4}`kubectl -n kube-system rollout restart daemonset aws-node`/)
  })
  it('bad input: exit 2 and one line', async () => {
    const r = await natlens(['doctor', 'no/such/bundle'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/natlens: nothing could be read/)
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/)
    expect((await natlens(['doctor', 'fixtures/example-node', '--check', 'nope'])).code).toBe(2)
  })
})

describe('natlens whatif', () => {
  it('--json in the documented shape; exit 0', async () => {
    const r = await natlens(['whatif', 'fixtures/example-node', '--set', 'AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS=192.168.0.0/16', '--json'])
    expect(r.code).toBe(0)
    const j = JSON.parse(r.stdout)
    const validate = await validator('whatif.schema.json')
    expect(validate(j), JSON.stringify(validate.errors)).toBe(true)
    expect(j.summary).toEqual({ flows: 20, changed: 4 })
    expect(j.changes[0]).toMatchObject({ setting: 'AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS', before: '', after: '192.168.0.0/16', evidence: { file: 'networkutils-env-settings.json', line: 1 } })
  })
  it('flows of a capture, and the restore input with --show-rules', async () => {
    const r = await natlens(['whatif', 'test/lab/fixtures/v4kp/bundle', '--set', 'externalTrafficPolicy/default/api:http=Local', '--pcap', 'test/lab/fixtures/v4kp/node.pcap', '--show-rules'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/externalTrafficPolicy of default\/api:http: Cluster → Local/)
    expect(r.stdout).toMatch(/tcp 203\.0\.113\.10:41003 → 10\.0\.3\.45:30080/)
    expect(r.stdout).toMatch(/iptables-restore input \(iptables-legacy\):\n\*mangle/)
    expect(r.stdout).toMatch(/-A KUBE-SVL-KKDGWRPDK6Z5NCHS -m comment --comment "default\/api:http -> 10\.0\.9\.88:8080" -j KUBE-SEP-/)
  })
  it('a setting natlens cannot change: exit 2 and the settings it knows', async () => {
    const r = await natlens(['whatif', 'fixtures/example-node', '--set', 'WARM_IP_TARGET=5'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/natlens: --set WARM_IP_TARGET: natlens cannot change this setting; it knows AWS_VPC_K8S_CNI_EXTERNALSNAT/)
    expect((await natlens(['whatif', 'fixtures/example-node'])).code).toBe(2)
  })
})

describe('natlens explain --flow-log-line', () => {
  it('--json in the shape of schemas/doctor.schema.json#/$defs/flowLog', async () => {
    const r = await natlens(['explain', 'fixtures/example-node', '--flow-log-line', '2 123456789012 eni-0a1b2c3d4e5f6a7b8 10.0.3.45 93.184.216.34 41234 443 6 12 1840 1700000000 1700000060 ACCEPT OK', '--json'])
    expect(r.code).toBe(0)
    const j = JSON.parse(r.stdout)
    const validate = await validator('doctor.schema.json', '#/$defs/flowLog')
    expect(validate(j), JSON.stringify(validate.errors)).toBe(true)
    expect(j).toMatchObject({ verdict: 'node-snat', shown: '10.0.3.45', interface: 'eth0' })
  })
  it('a record that does not fit the format: exit 2 with what to do', async () => {
    const r = await natlens(['explain', 'fixtures/example-node', '--flow-log-line', '2 123 eni-0a 10.0.3.45'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/natlens: --flow-log-line: the record has 4 fields, the format 14/)
  })
})
