// aws-node's settings come from the environment of its ipamd process (`aws-k8s-agent`), and only the CNI setting
// names are kept: never another variable, never a credential. A stand-in process named aws-k8s-agent (a copy of
// sleep) runs with a realistic environment; natlens collect and the collector script must both keep exactly the
// settings, and the loader must read them.
import { spawn, type ChildProcess } from 'node:child_process'
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { collect } from '../../src/collect/collect.js'
import type { Manifest } from '../../src/collect/manifest.js'
import { loadNodeState } from '../../src/sources/load.js'
import { startFakeEndpoints } from './fake-endpoints.mjs'
import { builtCli, haveTool, isRoot, natlens, tmp } from './support.js'

const ENV = {
  AWS_VPC_K8S_CNI_EXTERNALSNAT: 'false',
  AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS: '192.168.0.0/16',
  AWS_VPC_K8S_CNI_RANDOMIZESNAT: 'prng',
  AWS_VPC_K8S_CNI_VETHPREFIX: 'eni',
  ENABLE_POD_ENI: 'false',
  WARM_ENI_TARGET: '1',
  CLUSTER_NAME: 'prod-eu',
  // Never kept:
  AWS_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE',
  AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  AWS_SESSION_TOKEN: 'FwoGZXIvYXdzEXAMPLETOKEN',
  AWS_WEB_IDENTITY_TOKEN_FILE: '/var/run/secrets/eks.amazonaws.com/serviceaccount/token',
  AWS_ROLE_ARN: 'arn:aws:iam::123456789012:role/aws-node',
  ENABLE_PRIVATE_KEY: 'secret-looking',
  KUBERNETES_SERVICE_HOST: '172.20.0.1',
  MY_NODE_NAME: 'ip-10-0-3-45.ec2.internal',
  HOME: '/root',
}
const KEPT = ['AWS_VPC_K8S_CNI_EXTERNALSNAT', 'AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS', 'AWS_VPC_K8S_CNI_RANDOMIZESNAT', 'AWS_VPC_K8S_CNI_VETHPREFIX', 'ENABLE_POD_ENI', 'WARM_ENI_TARGET', 'CLUSTER_NAME']

let agent: ChildProcess | undefined
let fake: Awaited<ReturnType<typeof startFakeEndpoints>>
beforeAll(async () => {
  fake = await startFakeEndpoints({})
  if (!isRoot) return
  const dir = tmp()
  const bin = join(dir, 'aws-k8s-agent')
  copyFileSync('/bin/sleep', bin)
  agent = spawn(bin, ['120'], { env: ENV, stdio: 'ignore' })
  await new Promise((r) => setTimeout(r, 200))
})
afterAll(async () => { agent?.kill('SIGKILL'); await fake.close() })

function check(text: string): void {
  const lines = text.trim().split('\n')
  expect(lines).toEqual(KEPT.map((k) => `${k}=${ENV[k as keyof typeof ENV]}`))
  for (const secret of ['AKIA', 'wJalr', 'FwoGZ', 'token', '123456789012', 'secret-looking', '172.20.0.1', 'ip-10-0-3-45']) expect(text).not.toContain(secret)
}

describe.skipIf(!isRoot)('aws-node settings from ipamd\'s environment', () => {
  it('natlens collect keeps the CNI settings only, and the loader reads them', async () => {
    const dir = join(tmp(), 'b')
    await collect({ natlensVersion: '0.0.0-test', output: dir, endpoints: { imds: fake.url, ipamd: fake.url, kubeProxy: fake.url }, skip: ['conntrack', 'conntrack6'] })
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest
    expect(m.commands.find((c) => c.id === 'aws-node-env')).toMatchObject({ kind: 'process-env', path: `/proc/${agent!.pid}/environ`, written: true, exitCode: 0 })
    check(readFileSync(join(dir, 'aws-node-env.txt'), 'utf8'))
    const state = await loadNodeState([dir])
    expect(state.settings.get('AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS')?.value).toBe('192.168.0.0/16')
    expect(state.artifacts.find((a) => a.artifact === 'aws-node-env.txt')).toMatchObject({ kind: 'aws-node-env', used: true })
  })

  it.skipIf(!builtCli() || !haveTool('dash'))('the collector script keeps exactly the same lines', async () => {
    const dir = tmp()
    const script = (await natlens(['collector-script'])).stdout
    writeFileSync(join(dir, 's.sh'), script)
    const out = join(dir, 'b')
    const { execFile } = await import('node:child_process')
    await new Promise<void>((res, rej) => execFile('dash', [join(dir, 's.sh'), '-o', out, '--quiet'], { env: { ...process.env, NATLENS_IMDS_URL: fake.url, NATLENS_IPAMD_URL: fake.url, NATLENS_KUBE_PROXY_URL: fake.url }, timeout: 120_000 }, (e) => (e ? rej(e) : res())))
    check(readFileSync(join(out, 'aws-node-env.txt'), 'utf8'))
    const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as Manifest
    expect(m.commands.find((c) => c.id === 'aws-node-env')).toMatchObject({ kind: 'process-env', written: true })
  })
})
