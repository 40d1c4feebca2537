// Real iptables text from this machine's kernel: kube-proxy's restore input and natlens' coverage rule sets are
// loaded into a throwaway network namespace with iptables-legacy-restore and iptables-nft-restore, then read back
// with iptables-save (with and without -c), `iptables -S` and `iptables -nvL`/`-nvxL`/`-nL`; every rendering must
// parse to the same rules. Needs root and the iptables tools; otherwise the tests are skipped with the reason.
import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeContext } from '../../src/parse/context.js'
import { joinIptablesWords, parseIptablesList, parseIptablesRules, parseIptablesSave, tokenizeIptablesLine } from '../../src/parse/iptables.js'
import type { Table } from '../../src/model/netfilter.js'
import { formatIp } from '../../src/model/ip.js'
import { FIXTURES, SHARED, natTargets, ruleCount, tableSignature } from './fixtures/iptables/semantics.js'

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0
}

const skipReason = process.getuid?.() !== 0 ? 'not root: network namespaces need root'
  : !have('ip') ? 'iproute2 (ip) is not installed'
  : !have('iptables-legacy-restore') || !have('iptables-nft-restore') ? 'iptables-legacy-restore / iptables-nft-restore are not installed'
  : undefined
if (skipReason) console.log(`iptables-kernel tests skipped: ${skipReason}`)

const NS = `nl-ipt-${randomBytes(4).toString('hex')}`

function nsRun(args: string[], input?: string): string {
  return execFileSync('ip', ['netns', 'exec', NS, ...args], { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 256 * 1024 * 1024 })
}

/**
 * kube-proxy's test data is not always valid restore input: TestTracePacket leaves multi-word comments unquoted,
 * and the nfacct match needs accounting objects (`nfacct add`) this machine has no tool for. Both are fixed here,
 * in the test, before the kernel sees them.
 */
function loadable(text: string): string {
  return text.split('\n').map((line) => {
    if (!line.startsWith('-A')) return line
    line = line.replace(/ -m nfacct --nfacct-name \S+/g, '')
    const w = tokenizeIptablesLine(line)
    const out: string[] = []
    for (let i = 0; i < w.length; i++) {
      out.push(w[i]!)
      if (w[i] === '--comment') {
        const words: string[] = []
        while (i + 1 < w.length && !w[i + 1]!.startsWith('-')) words.push(w[++i]!)
        out.push(words.join(' '))
      }
    }
    return joinIptablesWords(out)
  }).join('\n')
}

interface Input { name: string; text: string; v6: boolean; noflush: boolean }

const KP = path.join(SHARED, 'examples/kube-proxy')
const inputs: Input[] = [
  ...['TestOverallIPTablesRules', 'TestTracePacket', 'TestSyncProxyRulesRepeated'].map((t) => ({
    // The repeated-sync file holds a full and then a partial sync whose jumps name a service added between the
    // two (its chains are in neither block), so only the full sync can be loaded on its own.
    name: t, text: loadable(readFileSync(path.join(KP, `iptables-restore-input.${t}.txt`), 'utf8').split('# ---- (b)')[0]!), v6: false,
    noflush: false,
  })),
  { name: 'coverage-v4', text: readFileSync(path.join(FIXTURES, 'coverage.restore-v4.txt'), 'utf8'), v6: false, noflush: false },
  { name: 'coverage-v6', text: readFileSync(path.join(FIXTURES, 'coverage.restore-v6.txt'), 'utf8'), v6: true, noflush: false },
]

interface Renderings { save: string; saveC: string; rules: Map<string, string>; list: Map<string, string>; listX: Map<string, string>; listN: Map<string, string> }

const results = new Map<string, Renderings>()

function render(backend: 'legacy' | 'nft', v6: boolean): Renderings {
  const base = `${v6 ? 'ip6' : 'ip'}tables-${backend}`
  const save = nsRun([`${base}-save`])
  const saveC = nsRun([`${base}-save`, '-c'])
  const tables = [...save.matchAll(/^\*(\w+)$/gm)].map((m) => m[1]!)
  const per = (flags: string[]) => new Map(tables.map((t) => [t, nsRun([base, '-t', t, ...flags])]))
  return { save, saveC, rules: per(['-S']), list: per(['-nvL']), listX: per(['-nvxL']), listN: per(['-nL']) }
}

describe.skipIf(skipReason !== undefined)('real iptables renderings from a network namespace', () => {
  beforeAll(() => {
    for (const backend of ['legacy', 'nft'] as const) {
      for (const input of inputs) {
        execFileSync('ip', ['netns', 'add', NS])
        try {
          const restore = `${input.v6 ? 'ip6' : 'ip'}tables-${backend}-restore`
          nsRun([restore, ...(input.noflush ? ['--noflush'] : [])], input.text)
          results.set(`${backend}/${input.name}`, render(backend, input.v6))
        } finally {
          execFileSync('ip', ['netns', 'del', NS])
        }
      }
    }
  })
  afterAll(() => {
    // In case a step above threw between add and del.
    spawnSync('ip', ['netns', 'del', NS], { stdio: 'ignore' })
  })

  for (const backend of ['legacy', 'nft'] as const) {
    for (const input of inputs) {
      const key = `${backend}/${input.name}`
      it(`${key}: save, save -c, -S, -nvL and -nvxL parse to the same rules`, () => {
        const r = results.get(key)!
        const diagsOf: string[] = []
        const parse = (what: string, f: (ctx: ReturnType<typeof makeContext>) => Table[], table?: string): Table[] => {
          const ctx = makeContext(`${key}:${what}`, { ...(input.v6 ? { family: 6 as const } : {}), ...(table ? { table } : {}) })
          const out = f(ctx)
          for (const d of ctx.sink.items) diagsOf.push(`${what}: ${d.code} ${d.message}`)
          return out
        }
        const save = parse('save', (c) => parseIptablesSave(r.save, c))
        const saveC = parse('save-c', (c) => parseIptablesSave(r.saveC, c))
        expect(save.length).toBeGreaterThan(0)
        for (const t of save) {
          expect(t.origin).toBe(backend === 'legacy' ? 'iptables-legacy' : 'iptables-nft')
          expect(t.family).toBe(input.v6 ? 'ip6' : 'ip')
          const sig = tableSignature(t)
          const withCounters = saveC.find((x) => x.name === t.name)!
          expect(tableSignature(withCounters)).toEqual(sig)
          for (const c of withCounters.chains.values()) for (const rule of c.rules) expect(rule.counters).toEqual({ packets: 0n, bytes: 0n })
          const fromS = parse(`${t.name} -S`, (c) => parseIptablesRules(r.rules.get(t.name)!, c), t.name)
          const fromL = parse(`${t.name} -nvL`, (c) => parseIptablesList(r.list.get(t.name)!, c), t.name)
          const fromX = parse(`${t.name} -nvxL`, (c) => parseIptablesList(r.listX.get(t.name)!, c), t.name)
          const fromN = parse(`${t.name} -nL`, (c) => parseIptablesList(r.listN.get(t.name)!, c), t.name)
          for (const [what, other] of [['-S', fromS], ['-nvL', fromL], ['-nvxL', fromX], ['-nL', fromN]] as const) {
            expect(other, what).toHaveLength(1)
            expect(other[0]!.name, what).toBe(t.name)
            expect(other[0]!.family, what).toBe(t.family)
            expect(ruleCount(other[0]!), what).toBe(ruleCount(t))
            expect(natTargets(other[0]!), what).toEqual(natTargets(t))
          }
          expect(tableSignature(fromS[0]!)).toEqual(sig)
          expect(tableSignature(fromL[0]!)).toEqual(sig)
          expect(tableSignature(fromX[0]!)).toEqual(sig)
        }
        // Only the -nL listing may complain: it does not show interfaces.
        expect(diagsOf.filter((d) => !d.includes('iptables.list-without-interfaces'))).toEqual([])
      })
    }
  }

  it('the kube-proxy SEP DNAT targets and SVC probabilities survive the kernel round trip', () => {
    const r = results.get('legacy/TestOverallIPTablesRules')!
    const nat = parseIptablesSave(r.save, makeContext('save')).find((t) => t.name === 'nat')!
    const sep = nat.chains.get('KUBE-SEP-UKSFD7AGPMPPLUHC')!.rules[1]!
    expect(sep.ref.text).toBe('-A KUBE-SEP-UKSFD7AGPMPPLUHC -p tcp -m comment --comment "ns4/svc4:p80" -m tcp -j DNAT --to-destination 10.180.0.4:80')
    const list = parseIptablesList(r.list.get('nat')!, makeContext('list', { table: 'nat' }))[0]!
    const svc = list.chains.get('KUBE-SVC-4SW47YFZTEDKD3PK')!.rules[1]!
    expect(svc.matches).toContainEqual({ kind: 'statistic-random', negated: false, probability: 0.5 })
    // `-A KUBE-SEP-… -s 10.180.0.4` from restore input is shown as 10.180.0.4 by -nvL and as /32 by save.
    expect(tableSignature(list).get('KUBE-SEP-UKSFD7AGPMPPLUHC')).toEqual(tableSignature(nat).get('KUBE-SEP-UKSFD7AGPMPPLUHC'))
  })

  it('IPv6: DNAT to [fd00:10:180::1]:80 and the egress SNAT to 2600:1f14::1', () => {
    const r = results.get('nft/coverage-v6')!
    const nat = parseIptablesSave(r.save, makeContext('save6')).find((t) => t.name === 'nat')!
    expect(nat.family).toBe('ip6')
    const targets = natTargets(nat)
    expect(targets.get('KUBE-SEP-X')!.length).toBe(3)
    expect(targets.get('CNI-E6-aa')).toHaveLength(1)
    const dnat = nat.chains.get('KUBE-SEP-X')!.rules.find((x) => x.ref.text.includes('[fd00:10:180::1]:80'))!
    if (dnat.target.kind !== 'dnat') throw new Error('not dnat')
    expect(formatIp(dnat.target.to[0]!.minAddr!)).toBe('fd00:10:180::1')
    expect(dnat.target.to[0]!.ports).toEqual({ from: 80, to: 80 })
    const snat = nat.chains.get('CNI-E6-aa')!.rules.find((x) => x.target.kind === 'snat')!
    if (snat.target.kind !== 'snat') throw new Error('not snat')
    expect(formatIp(snat.target.to[0]!.minAddr!)).toBe('2600:1f14::1')
    expect(snat.target.randomFully).toBe(true)
  })
})
