import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { formatIp } from '../../src/model/ip.js'
import type { Setting } from '../../src/model/node-state.js'
import { makeContext, type ParseContext } from '../../src/parse/context.js'
import { isCniSettingName, parseAwsNodeEnv, parseConflist, parseEniConfigs, parseEnvSettings, parseImds, parseIpamCheckpoint, parseIpamdEnis, sniffCniJson } from '../../src/parse/cni.js'
import { looksLikeConntrack } from '../../src/parse/conntrack.js'
import { looksLikeIpAddr, looksLikeIpLink } from '../../src/parse/ip-addr.js'
import { looksLikeIpRoute } from '../../src/parse/ip-route.js'
import { looksLikeIpRule } from '../../src/parse/ip-rule.js'
import { looksLikeNft } from '../../src/parse/nft.js'
import { looksLikeSysctl } from '../../src/parse/sysctl.js'

const shared = (p: string): string => readFileSync(new URL(`../../../shared/${p}`, import.meta.url), 'utf8')
const fixture = (p: string): string => readFileSync(new URL(`./fixtures/${p}`, import.meta.url), 'utf8')

function run<T>(parse: (t: string, c: ParseContext) => T, text: string, name = 'file') {
  const ctx = makeContext(name)
  return { value: parse(text, ctx), diagnostics: ctx.sink.items }
}
const get = (s: Setting[], name: string): Setting | undefined => s.find((x) => x.name === name)

describe('networkutils-env-settings.json (default-ipv4)', () => {
  const text = shared('examples/node-states/default-ipv4/networkutils-env-settings.json')
  const { value, diagnostics } = run(parseEnvSettings, text, 'networkutils-env-settings.json')
  it('reads every key, RANDOMIZESNAT 2 as prng with the raw value in the evidence', () => {
    expect(diagnostics).toEqual([])
    expect(get(value, 'AWS_VPC_K8S_CNI_RANDOMIZESNAT')).toMatchObject({ value: 'prng', ref: { text: '"AWS_VPC_K8S_CNI_RANDOMIZESNAT":2' } })
    expect(get(value, 'AWS_VPC_K8S_CNI_CONNMARK')!.value).toBe('128')
    expect(get(value, 'AWS_VPC_K8S_CNI_EXTERNALSNAT')!.value).toBe('false')
    expect(get(value, 'AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS')!.value).toBe('')
    expect(get(value, 'AWS_VPC_K8S_CNI_VETHPREFIX')!.value).toBe('eni')
    expect(value).toHaveLength(8)
  })
  it('0 and 1 are none and hashrandom', () => {
    expect(get(run(parseEnvSettings, '{"AWS_VPC_K8S_CNI_RANDOMIZESNAT":0}').value, 'AWS_VPC_K8S_CNI_RANDOMIZESNAT')!.value).toBe('none')
    expect(get(run(parseEnvSettings, '{"AWS_VPC_K8S_CNI_RANDOMIZESNAT":1}').value, 'AWS_VPC_K8S_CNI_RANDOMIZESNAT')!.value).toBe('hashrandom')
    expect(run(parseEnvSettings, '{"AWS_VPC_K8S_CNI_RANDOMIZESNAT":7}').diagnostics[0]!.code).toBe('cni.bad-setting')
  })
  it('ipamd-env-settings', () => {
    const r = run(parseEnvSettings, fixture('cni/ipamd-env-settings.json'))
    expect(r.diagnostics).toEqual([])
    expect(get(r.value, 'WARM_ENI_TARGET')!.value).toBe('1')
    expect(get(r.value, 'MAX_ENI')!.value).toBe('-1')
  })
})

describe('10-aws.conflist (default-ipv4)', () => {
  const text = shared('examples/node-states/default-ipv4/10-aws.conflist')
  const { value, diagnostics } = run(parseConflist, text, '10-aws.conflist')
  it('maps plugin fields to the settings they come from', () => {
    expect(diagnostics).toEqual([])
    expect(get(value, 'AWS_VPC_K8S_CNI_VETHPREFIX')).toMatchObject({ value: 'eni', ref: { line: 9 } })
    expect(get(value, 'POD_SECURITY_GROUP_ENFORCING_MODE')!.value).toBe('strict')
    expect(get(value, 'POD_MTU')!.value).toBe('9001')
  })
  it('egress-cni (disabled, IPv6 egress subnet: ENABLE_V6_EGRESS) and portmap snat', () => {
    expect(get(value, 'cni.egress.enabled')!.value).toBe('false')
    expect(get(value, 'cni.egress.subnet')!.value).toBe('fd00::ac:00/118')
    expect(get(value, 'ENABLE_V6_EGRESS')!.value).toBe('false')
    expect(get(value, 'cni.egress.nodeIP')!.value).toBe('')
    expect(get(value, 'cni.portmap.snat')!.value).toBe('true')
    expect(get(value, 'cni.plugins')!.value).toBe('aws-cni,egress-cni,portmap')
  })
})

describe('ipamd /v1/enis', () => {
  it('v1.20+: map keyed by network card; pods by address; route table ids', () => {
    const { value, diagnostics } = run(parseIpamdEnis, fixture('cni/enis-v1.20.json'), 'enis.json')
    expect(diagnostics).toEqual([])
    expect(value.map((e) => [e.id, e.primary, e.deviceNumber, e.routeTableId])).toEqual([['eni-0aaa0000000000001', true, 0, 254], ['eni-0bbb0000000000002', false, 1, 2]])
    const web = value[0]!.addresses.find((a) => formatIp(a.address) === '10.0.7.201')!
    expect(web).toMatchObject({ pod: 'web-7d9c6b5f4-2xkqz', namespace: 'default' })
    expect(value[0]!.addresses).toHaveLength(2)
    expect(value[0]!.ref.line).toBe(6)
  })
  it('before v1.20: one ENIInfos object', () => {
    const { value, diagnostics } = run(parseIpamdEnis, fixture('cni/enis-v1.16.json'))
    expect(diagnostics).toEqual([])
    expect(value[0]).toMatchObject({ id: 'eni-06177dab35fe3b175', primary: true, trunk: false })
    expect(value[0]!.addresses[0]).toMatchObject({ pod: 'coredns-1', namespace: 'kube-system' })
  })
  it('eni-configs', () => {
    const { value } = run(parseEniConfigs, fixture('cni/eni-configs.json'))
    expect(get(value, 'eni-config.MyENI')!.value).toBe('us-west-2a')
    expect(get(value, 'eni-config.us-west-2a.subnet')!.value).toBe('subnet-0abc')
  })
})

describe('ipam.json checkpoint', () => {
  it('pod IPs with container ids and names', () => {
    const { value, diagnostics } = run(parseIpamCheckpoint, fixture('cni/ipam.json'))
    expect(diagnostics).toEqual([])
    expect(value.map((a) => [formatIp(a.address), a.containerId, a.pod, a.namespace, a.ifName])).toEqual([
      ['10.0.7.201', '3f2a9c1be8d74f06', 'web-7d9c6b5f4-2xkqz', 'default', 'eth0'],
      ['10.0.9.88', '9c8b7a6f5e4d3c2b', 'api-6f7b8d9c5-q8wzt', 'default', 'eth0'],
    ])
  })
})

describe('aws-node environment', () => {
  it('KEY=VALUE: keeps CNI settings only, never credentials or other variables', () => {
    const { value } = run(parseAwsNodeEnv, fixture('cni/aws-node-env.txt'), 'env.txt')
    const names = value.map((s) => s.name)
    expect(names).toEqual(['AWS_VPC_CNI_NODE_PORT_SUPPORT', 'AWS_VPC_ENI_MTU', 'AWS_VPC_K8S_CNI_EXTERNALSNAT', 'AWS_VPC_K8S_CNI_RANDOMIZESNAT', 'AWS_VPC_K8S_CNI_VETHPREFIX',
      'AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS', 'ENABLE_POD_ENI', 'ENABLE_PREFIX_DELEGATION', 'POD_SECURITY_GROUP_ENFORCING_MODE', 'WARM_ENI_TARGET'])
    expect(get(value, 'AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS')).toMatchObject({ value: '192.168.50.0/24,172.16.0.0/12', ref: { line: 7 } })
    expect(JSON.stringify(value)).not.toMatch(/SECRET|TOKEN|AKIA|not-a-real/)
  })
  it('docker inspect JSON: Config.Env', () => {
    const { value } = run(parseAwsNodeEnv, fixture('cni/docker-inspect.json'))
    expect(value.map((s) => `${s.name}=${s.value}`)).toEqual(['AWS_VPC_K8S_CNI_EXTERNALSNAT=true', 'AWS_VPC_K8S_CNI_CONNMARK=0x80', 'ENABLE_IPv6=false'])
    expect(JSON.stringify(value)).not.toMatch(/SECRET|arn:aws/)
  })
  it('pod-spec style env: [{name, value}]', () => {
    const { value } = run(parseAwsNodeEnv, JSON.stringify({ spec: { containers: [{ env: [{ name: 'AWS_VPC_K8S_CNI_EXTERNALSNAT', value: 'true' }, { name: 'AWS_SECRET_ACCESS_KEY', value: 'x' }] }] } }))
    expect(value.map((s) => s.name)).toEqual(['AWS_VPC_K8S_CNI_EXTERNALSNAT'])
  })
  it.each([['AWS_VPC_K8S_CNI_EXTERNALSNAT', true], ['ENABLE_IPv6', true], ['WARM_IP_TARGET', true], ['AWS_SECRET_ACCESS_KEY', false], ['AWS_SESSION_TOKEN', false], ['AWS_VPC_FAKE_TOKEN', false], ['PATH', false], ['HOME', false]] as const)('allowlist: %s → %s', (n, keep) => {
    expect(isCniSettingName(n)).toBe(keep)
  })
})

describe('IMDS', () => {
  it('path: value lines, a MAC inside the path, multi-line CIDR lists, path=value', () => {
    const { value, diagnostics } = run(parseImds, fixture('cni/imds.txt'))
    expect(diagnostics).toEqual([])
    expect(get(value, 'local-ipv4')!.value).toBe('10.0.3.45')
    expect(get(value, 'mac')!.value).toBe('0a:1b:2c:3d:4e:5f')
    expect(get(value, 'network/interfaces/macs/0a:1b:2c:3d:4e:5f/vpc-ipv4-cidr-blocks')!.value).toBe('10.0.0.0/16\n100.64.0.0/16')
    expect(get(value, 'network/interfaces/macs/0a:1b:2c:3d:4e:5f/subnet-ipv4-cidr-block')!.value).toBe('10.0.0.0/20')
  })
  it('JSON: nested objects are paths, arrays are lists', () => {
    const { value } = run(parseImds, fixture('cni/imds.json'))
    expect(get(value, 'network/interfaces/macs/0a:1b:2c:3d:4e:5f/vpc-ipv4-cidr-blocks')!.value).toBe('10.0.0.0/16\n100.64.0.0/16')
    expect(get(value, 'local-ipv4')!.value).toBe('10.0.3.45')
  })
})

describe('sniffCniJson', () => {
  it.each([
    ['examples/node-states/default-ipv4/networkutils-env-settings.json', 'networkutils-env'],
    ['examples/node-states/default-ipv4/10-aws.conflist', 'cni-conflist'],
  ])('%s is %s', (p, kind) => expect(sniffCniJson(shared(p))).toBe(kind))
  it.each([
    ['cni/enis-v1.20.json', 'ipamd-enis'], ['cni/enis-v1.16.json', 'ipamd-enis'], ['cni/ipamd-env-settings.json', 'ipamd-env'], ['cni/eni-configs.json', 'ipamd-eni-configs'],
    ['cni/ipam.json', 'ipam-checkpoint'], ['cni/aws-node-env.txt', 'aws-node-env'], ['cni/docker-inspect.json', 'aws-node-env'], ['cni/imds.txt', 'imds'], ['cni/imds.json', 'imds'],
  ])('%s is %s', (p, kind) => expect(sniffCniJson(fixture(p))).toBe(kind))
  it('claims none of the other formats', () => {
    for (const f of ['lab/ip-rule.json', 'lab/ip-route-all.json', 'lab/ip-d-addr.json', 'lab/nft-list-ruleset.json', 'lab/sysctl-a.txt', 'lab/conntrack-L.txt', 'lab/ip-rule.txt', 'lab/nft-list-ruleset.txt']) {
      expect(sniffCniJson(fixture(f)), f).toBeUndefined()
    }
  })
})

describe('container-ids.txt (ipv6-egress-v4) is a note for the scenario, not a node artefact', () => {
  it('no sniffer claims it', () => {
    // It pairs pods with container ids and CNI-E4 chain names; natlens reads these facts from ipam.json and iptables.
    const t = shared('examples/node-states/ipv6-egress-v4/container-ids.txt')
    expect([sniffCniJson(t), looksLikeIpRule(t), looksLikeIpRoute(t), looksLikeIpAddr(t), looksLikeIpLink(t), looksLikeNft(t), looksLikeConntrack(t), looksLikeSysctl(t)]).toEqual([undefined, false, false, false, false, false, false, false])
  })
})

describe('robustness', () => {
  it('no parser or sniffer throws on arbitrary text or JSON', () => {
    const parsers: ((t: string, c: ParseContext) => unknown)[] = [parseIpamdEnis, parseEnvSettings, parseConflist, parseIpamCheckpoint, parseAwsNodeEnv, parseImds, parseEniConfigs]
    fc.assert(fc.property(fc.string(), (s) => { for (const p of parsers) run(p, s); sniffCniJson(s); return true }))
    fc.assert(fc.property(fc.json(), (j) => { for (const p of parsers) run(p, j); sniffCniJson(j); return true }))
    fc.assert(fc.property(fc.anything(), (x) => {
      const j = JSON.stringify({ '0': { TotalIPs: 1, ENIs: { e: x } }, plugins: [x], allocations: [x], Config: { Env: [x] } }) ?? ''
      for (const p of parsers) run(p, j)
      return true
    }))
  })
})
