// The EKS log collector's tarball (eks_<instance>_<date>_<version>.tar.gz, layout in shared/docs/landscape.md §1),
// read as users attach it to tickets: the fixture's iptables renderings were made on this machine from the example
// node's rules loaded into a network namespace (`iptables --wait 1 --numeric --verbose --list --table T` plus the
// collector's "Total Number of Rules" footer, and `iptables-save`), the rest copied from fixtures/example-node.
import { describe, expect, it } from 'vitest'
import { mkdtemp } from 'node:fs/promises'
import { createWriteStream } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { loadNodeState } from '../../src/sources/load.js'
import { explain } from '../../src/engine/explain.js'
import { parseFlow, type Flow } from '../../src/model/flow.js'
import { toVerdictJson } from '../../src/render/verdict-json.js'
import { REPO } from '../helpers.js'

const ROOT = join(REPO, 'test', 'sources', 'fixtures', 'eks-log-collector')
const NAME = 'eks_i-0abc123_2026-11-25_1200-UTC_0.7.9'

async function tarball(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'natlens-eks-'))
  const out = join(dir, `${NAME}.tar.gz`)
  execFileSync('tar', ['-czf', out, '-C', ROOT, NAME])
  void createWriteStream
  return out
}

describe('the EKS log collector tarball', async () => {
  const state = await loadNodeState([await tarball()])
  const by = (suffix: string) => state.artifacts.find((a) => a.artifact.endsWith(suffix))

  it('recognises each file by content, whatever its name', () => {
    expect(by('networking/iprule.txt')).toMatchObject({ kind: 'ip-rule', used: true })
    expect(by('networking/iproute.txt')).toMatchObject({ kind: 'ip-route', used: true })
    expect(by('networking/iptables-save.txt')).toMatchObject({ kind: 'iptables-save', used: true })
    expect(by('networking/iptables-nat.txt')).toMatchObject({ kind: 'iptables-list' })
    expect(by('ipamd/networkutils-env-settings.json')).toMatchObject({ kind: 'networkutils-env', used: true })
    expect(by('cni/10-aws.conflist')).toMatchObject({ kind: 'cni-conflist', used: true })
    expect(by('sysctls/sysctl_all.txt')).toMatchObject({ kind: 'sysctl', used: true })
    expect(by('networking/conntrack.txt')).toMatchObject({ kind: 'conntrack', used: true })
  })

  it('prefers iptables-save over the -nvL listings of the same tables, and says so', () => {
    const nat = by('networking/iptables-nat.txt')!
    expect(nat.used).toBe(false)
    expect(nat.reason).toMatch(/iptables-save\.txt/)
    expect(state.tables.filter((t) => t.name === 'nat' && t.family === 'ip')).toHaveLength(1)
  })

  it('the stale /v1/pods answer (the path list ipamd gives for unknown paths) and the logs are not node state', () => {
    expect(by('ipamd/pods.json')).toMatchObject({ used: false })
    expect(state.artifacts.some((a) => a.artifact.includes('var_log'))).toBe(false)
  })

  it('reads conntrack -S and -L from the one file the collector writes', () => {
    expect(state.conntrack).toHaveLength(1)
    expect(state.conntrackStats).toHaveLength(1)
  })

  it('explains from it exactly as from the loose files', async () => {
    const loose = await loadNodeState([join(REPO, 'fixtures', 'example-node')])
    for (const input of [{ src: '10.0.9.88', dst: '93.184.216.34' }, { src: '10.0.9.88', dst: '10.0.20.15' }, { src: '10.0.7.201', dst: '172.20.0.10', proto: 'udp', dport: 53 }]) {
      const f = parseFlow(input) as Flow
      const a = toVerdictJson(explain(state, f), state)
      const b = toVerdictJson(explain(loose, f), loose)
      expect([a.snat, a.sourceAfter, a.destinationAfter, a.egressInterface, a.owner]).toEqual([b.snat, b.sourceAfter, b.destinationAfter, b.egressInterface, b.owner])
      expect(a.decidedBy?.rule).toBe(b.decidedBy?.rule)
    }
  })

  it('with only the -nvL listings (an older collector without iptables-save) the verdicts are the same', async () => {
    const dir = join(ROOT, NAME, 'networking')
    const partial = await loadNodeState(['iprule.txt', 'iproute.txt', 'iptables-nat.txt', 'iptables-mangle.txt'].map((f) => join(dir, f)))
    const f = parseFlow({ src: '10.0.9.88', dst: '93.184.216.34' }) as Flow
    expect(toVerdictJson(explain(partial, f), partial)).toMatchObject({ snat: true, sourceAfter: '10.0.3.45', egressInterface: 'eth0', owner: 'vpc-cni' })
  })
})
