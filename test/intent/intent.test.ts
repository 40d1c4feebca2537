// The rules the VPC CNI's settings imply, per era, against the installed ones: empty on every example node (each
// variant file) and on every lab bundle the kernel ran, non-empty on states broken on purpose.
import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import fc from 'fast-check'
import { loadNodeState, type LoadedNode } from '../../src/sources/load.js'
import { detectEra, diffIntent, generateIntent, intentOf, readIntentInputs } from '../../src/intent/index.js'
import type { CniEra, IntentDiff } from '../../src/intent/model.js'
import { makeContext } from '../../src/parse/context.js'
import { parseIptablesSave } from '../../src/parse/iptables.js'
import { parseNftRuleset } from '../../src/parse/nft.js'
import { readFixtures } from '../lab/lab-run.js'
import { EXAMPLES } from '../helpers.js'
import { change, exampleFiles, imds, insertAfter, replaceLine, stateOf, withSettings } from '../doctor/states.js'

function diffOf(state: LoadedNode): IntentDiff {
  const r = intentOf(state)
  if ('none' in r) throw new Error(r.none)
  return diffIntent(state, r.intent)
}
const lines = (d: IntentDiff) => d.differences.map((x) => `${x.kind} ${x.layer} ${x.text}`)

const BASE = ['ip-rule.txt', 'ip-route-all.txt', 'iptables-save-mangle.txt', 'networkutils-env-settings.json', '10-aws.conflist']
/** Every example node, with each variant file it ships, and the era natlens must tell from it. */
const EXAMPLE_STATES: { name: string; node: string; files: string[]; era: CniEra }[] = [
  { name: 'default-ipv4 (v1.16.1+)', node: 'default-ipv4', files: [...BASE, 'iptables-save-nat.txt'], era: 'single' },
  { name: 'default-ipv4 numbered variant', node: 'default-ipv4', files: [...BASE, 'iptables-save-nat.v1.12.1-v1.16.0-numbered.txt'], era: 'numbered' },
  { name: 'default-ipv4 v1.23 nft host', node: 'default-ipv4', files: [...BASE, 'iptables-save-nat.v1.23-nft-host.txt', 'nft-list-table-ip-aws-cni.v1.23-nft-host.txt'], era: 'v1.23-nft' },
  { name: 'default-ipv4 v1.23 nft host without nft output (log collector)', node: 'default-ipv4', files: [...BASE, 'iptables-save-nat.v1.23-nft-host.txt'], era: 'v1.23-nft' },
  { name: 'default-ipv4 iptables -nvL listings', node: 'default-ipv4', files: [...BASE.filter((f) => f !== 'iptables-save-mangle.txt'), 'iptables-nvL-nat.AWS-part.txt', 'iptables-nvL-mangle.AWS-part.txt'], era: 'single' },
  { name: 'externalsnat-true', node: 'externalsnat-true', files: ['ip-rule.txt', 'ip-route-all.txt', 'iptables-save-mangle.txt', 'iptables-save-nat.txt'], era: 'single' },
  { name: 'externalsnat-true v1.23 legacy host', node: 'externalsnat-true', files: ['ip-rule.txt', 'ip-route-all.txt', 'iptables-save-mangle.txt', 'iptables-save-nat.v1.23-legacy-host.txt'], era: 'v1.23-legacy' },
  { name: 'sgp-standard', node: 'sgp-standard', files: ['ip-rule.txt', 'ip-route-all.txt', 'iptables-save-mangle.txt', 'iptables-save-nat.txt', 'ip-link-abridged.txt'], era: 'single' },
  { name: 'ipv6-egress-v4', node: 'ipv6-egress-v4', files: ['ip-rule.txt', 'ip-route-all.txt', 'ip-6-rule.txt', 'ip-6-route-main-abridged.txt', 'iptables-save-nat.txt', 'iptables-save-mangle.txt', 'iptables-save-filter.txt'], era: 'ipv6' },
]

describe('intent vs state on the example nodes', () => {
  it.each(EXAMPLE_STATES)('$name: era $era, no difference', async ({ node, files, era }) => {
    const state = await loadNodeState(files.map((f) => join(EXAMPLES, node, f)))
    const d = diffOf(state)
    expect(d.era.era).toBe(era)
    expect(lines(d)).toEqual([])
  })

  it('the v1.23 nft host without `nft list ruleset` says which part it could not compare', async () => {
    const state = await loadNodeState([...BASE, 'iptables-save-nat.v1.23-nft-host.txt'].map((f) => join(EXAMPLES, 'default-ipv4', f)))
    expect(diffOf(state).notCompared.join(' ')).toMatch(/nft list ruleset.*not collected/)
  })
})

describe('intent vs state on the lab bundles (real kernels, every era)', () => {
  const fixtures = readFixtures()
  const eras: Record<string, CniEra> = { v4bare: 'v1.2', v4num: 'numbered', v4cur: 'single', v4nft: 'v1.23-nft', v6: 'ipv6', v4sgps: 'single', v4sgpd: 'single', v4ext: 'single' }
  it('has the lab fixtures', () => expect(fixtures.length).toBeGreaterThanOrEqual(12))
  for (const run of fixtures) {
    it(`${run.scenario}: ${run.scenario === 'v4nomark' ? 'only the connmark jump the scenario leaves out on purpose' : 'no difference'}`, async () => {
      const d = diffOf(await loadNodeState([run.bundleDir]))
      if (eras[run.scenario]) expect(d.era.era).toBe(eras[run.scenario])
      if (run.scenario === 'v4nomark') {
        // The lab's deliberately broken node: the -i eni+ jump to AWS-CONNMARK-CHAIN-0 is missing (the classic failure).
        expect(lines(d)).toEqual(['missing iptables -A PREROUTING -i eni+ -m comment --comment "AWS, outbound connections" -j AWS-CONNMARK-CHAIN-0'])
        return
      }
      expect(lines(d)).toEqual([])
    })
  }
})

describe('intent vs state on states broken on purpose', () => {
  it('AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS set, but not in the chains: two missing RETURNs, with the setting as the reason', () => {
    const d = diffOf(stateOf(withSettings(exampleFiles(), { AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS: ['192.168.0.0/16'] })))
    expect(lines(d)).toEqual([
      'missing iptables -A AWS-CONNMARK-CHAIN-0 -d 192.168.0.0/16 -m comment --comment "AWS CONNMARK CHAIN, EXCLUDED CIDR" -j RETURN',
      'missing iptables -A AWS-SNAT-CHAIN-0 -d 192.168.0.0/16 -m comment --comment "AWS SNAT CHAIN EXCLUSION" -j RETURN',
    ])
    expect(d.differences[0]!.because.map((b) => b.artifact)).toContain('networkutils-env-settings.json')
    expect(d.differences[0]!.intended?.artifact).toBe('(intent) iptables-save')
  })

  it('EXTERNALSNAT=true but the SNAT and connmark rules are still installed: every one is unexpected, with its file:line', () => {
    const d = diffOf(stateOf(withSettings(exampleFiles(), { AWS_VPC_K8S_CNI_EXTERNALSNAT: true })))
    expect(d.differences.every((x) => x.kind === 'unexpected')).toBe(true)
    expect(d.differences.filter((x) => x.layer === 'iptables').map((x) => `${x.ref!.artifact}:${x.ref!.line}`)).toEqual([
      'iptables-save-nat.txt:23', 'iptables-save-nat.txt:24', 'iptables-save-nat.txt:27', 'iptables-save-nat.txt:28', 'iptables-save-nat.txt:29', 'iptables-save-nat.txt:30', 'iptables-save-nat.txt:31',
    ])
  })

  it('a secondary VPC CIDR in IMDS that no chain exempts', () => {
    const d = diffOf(stateOf({ ...exampleFiles(), 'imds.txt': imds(['10.0.0.0/16', '100.64.0.0/16']) }))
    expect(lines(d)).toEqual([
      'missing iptables -A AWS-CONNMARK-CHAIN-0 -d 100.64.0.0/16 -m comment --comment "AWS CONNMARK CHAIN, VPC CIDR" -j RETURN',
      'missing iptables -A AWS-SNAT-CHAIN-0 -d 100.64.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN',
    ])
  })

  it('RETURN rules in any order are the same (they commute); the SNAT rule ahead of them is not', () => {
    const nat = exampleFiles()['iptables-save-nat.txt']!
    const twoCidrs = insertAfter(nat, '-A AWS-SNAT-CHAIN-0 -d 10.0.0.0/16', '-A AWS-SNAT-CHAIN-0 -d 100.64.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN')
    const connmark = insertAfter(twoCidrs, '-A AWS-CONNMARK-CHAIN-0 -d 10.0.0.0/16', '-A AWS-CONNMARK-CHAIN-0 -d 100.64.0.0/16 -m comment --comment "AWS CONNMARK CHAIN, VPC CIDR" -j RETURN')
    const files = { ...exampleFiles(), 'iptables-save-nat.txt': connmark, 'imds.txt': imds(['10.0.0.0/16', '100.64.0.0/16']) }
    // The intent lists 100.64 first (inserted at position 1); the node has 10.0 first: same verdicts.
    expect(lines(diffOf(stateOf(files)))).toEqual([])
    const snatLine = nat.split('\n').find((l) => l.startsWith('-A AWS-SNAT-CHAIN-0 ! -o vlan+'))!
    const moved = insertAfter(replaceLine(connmark, '-A AWS-SNAT-CHAIN-0 ! -o vlan+', null), '-A AWS-CONNMARK-CHAIN-0 -m comment', snatLine)
    const d = diffOf(stateOf({ ...files, 'iptables-save-nat.txt': moved }))
    expect(d.differences.map((x) => `${x.kind} ${x.chain}`)).toEqual(['order AWS-SNAT-CHAIN-0'])
  })

  it('ip rule 1024 with another mark: the intended rule is missing and the installed one unexpected', () => {
    const d = diffOf(stateOf(change(exampleFiles(), 'ip-rule.txt', (t) => replaceLine(t, '1024:', '1024:\tfrom all fwmark 0x100/0x100 lookup main'))))
    expect(lines(d)).toEqual(['missing ip-rule 1024:\tfrom all fwmark 0x80/0x80 lookup main', 'unexpected ip-rule 1024:\tfrom all fwmark 0x100/0x100 lookup main'])
  })

  it('numbered era: a hop for a CIDR that is not exempt any more, and the missing hop of the new one', async () => {
    const files = { ...exampleFiles(), 'iptables-save-nat.txt': (await import('node:fs')).readFileSync(join(EXAMPLES, 'default-ipv4', 'iptables-save-nat.v1.12.1-v1.16.0-numbered.txt'), 'utf8'), 'imds.txt': imds(['10.1.0.0/16']) }
    const d = diffOf(stateOf(files))
    expect(d.era.era).toBe('numbered')
    expect(lines(d).sort()).toEqual([
      'missing iptables -A AWS-CONNMARK-CHAIN-0 ! -d 10.1.0.0/16 -m comment --comment "AWS CONNMARK CHAIN, VPC CIDR" -j AWS-CONNMARK-CHAIN-1',
      'missing iptables -A AWS-SNAT-CHAIN-0 ! -d 10.1.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-1',
      'unexpected iptables -A AWS-CONNMARK-CHAIN-0 ! -d 10.0.0.0/16 -m comment --comment "AWS CONNMARK CHAIN, VPC CIDR" -j AWS-CONNMARK-CHAIN-1',
      'unexpected iptables -A AWS-SNAT-CHAIN-0 ! -d 10.0.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-1',
    ])
  })

  it('v1.23 nft host: an exclusion missing from table ip aws-cni is reported in nft syntax', async () => {
    const state = await loadNodeState([...BASE, 'iptables-save-nat.v1.23-nft-host.txt', 'nft-list-table-ip-aws-cni.v1.23-nft-host.txt'].map((f) => join(EXAMPLES, 'default-ipv4', f)))
    const settings = state.settings.get('AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS')!
    state.settings.set('AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS', { ...settings, value: '172.16.0.0/12' })
    expect(lines(diffOf(state)).sort()).toEqual([
      'missing iptables -A AWS-SNAT-CHAIN-0 -d 172.16.0.0/12 -m comment --comment "AWS SNAT CHAIN EXCLUSION" -j RETURN',
      'missing nft counter ip daddr 172.16.0.0/12 return',
    ])
  })

  it('a stale 512 rule of a pod that is gone is unexpected and names the address', () => {
    const d = diffOf(stateOf(change(exampleFiles(), 'ip-rule.txt', (t) => insertAfter(t, '512:\tfrom all to 10.0.14.3', '512:\tfrom all to 10.0.15.77 lookup main'))))
    expect(d.differences).toHaveLength(1)
    expect(d.differences[0]).toMatchObject({ kind: 'unexpected', layer: 'ip-rule', ref: { artifact: 'ip-rule.txt', line: 6 } })
    expect(d.differences[0]!.why).toMatch(/10\.0\.15\.77 is not a pod on this node/)
  })
})

describe('generated rules', () => {
  const ERAS: CniEra[] = ['v1.2', 'numbered', 'single', 'v1.23-legacy', 'v1.23-nft']
  it.each(ERAS)('%s: the generated iptables-save and nft text parse without a single diagnostic', (era) => {
    const state = stateOf(withSettings({ ...exampleFiles(), 'imds.txt': imds(['10.0.0.0/16', '100.64.0.0/16']) }, { AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS: ['192.168.0.0/16', '0.0.0.0/0'] }))
    const detected = detectEra(state)
    if ('none' in detected) throw new Error(detected.none)
    const intent = generateIntent(readIntentInputs(state, { ...detected, era, stateNew: era === 'numbered', vlan: era !== 'v1.2', connmarkChains: era !== 'v1.2' }))
    const ctx = makeContext('t')
    parseIptablesSave(intent.iptablesText, ctx)
    if (intent.nftText) parseNftRuleset(intent.nftText, ctx)
    expect(ctx.sink.items).toEqual([])
    expect(intent.iptablesLines.size).toBeGreaterThan(0)
    if (era === 'v1.23-legacy') expect(intent.iptablesText).toContain('-A AWS-SNAT-CHAIN-0 -m comment --comment "AWS SNAT CHAIN EXCLUSION" -j RETURN')
    if (era === 'v1.23-nft') expect(intent.nftText).toContain('\t\tcounter return\n')
  })

  it('never throws on arbitrary settings values', () => {
    fc.assert(fc.property(fc.record({ excl: fc.string(), ext: fc.string(), rnd: fc.string(), mark: fc.string(), veth: fc.string() }), (v) => {
      const state = stateOf(withSettings(exampleFiles(), { AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS: v.excl, AWS_VPC_K8S_CNI_EXTERNALSNAT: v.ext, AWS_VPC_K8S_CNI_RANDOMIZESNAT: v.rnd, AWS_VPC_K8S_CNI_CONNMARK: v.mark, AWS_VPC_K8S_CNI_VETHPREFIX: v.veth }))
      const r = intentOf(state)
      if ('intent' in r) diffIntent(state, r.intent)
    }), { numRuns: 60 })
  })
})
