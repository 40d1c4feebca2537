// Shapes of input the collectors produce: several dumps in one file, -S listings with and without table headers,
// `iptables -S -v` counters, -nvL listings of several tables pasted together.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { makeContext } from '../../src/parse/context.js'
import { detectIptablesFamily, looksLikeIptablesList, looksLikeIptablesRules, looksLikeIptablesSave, parseIptablesList, parseIptablesRules, parseIptablesSave } from '../../src/parse/iptables.js'
import { FIXTURES, ruleCount, tableSignature } from './fixtures/iptables/semantics.js'

const read = (f: string) => readFileSync(path.join(FIXTURES, f), 'utf8')

describe('several dumps in one file', () => {
  it('legacy iptables-save, nft iptables-save (with its warning) and ip6tables-save keep their own origin and family', () => {
    const text = [read('real.legacy-save-c.kube-proxy.txt'), read('real.nft-save.coverage-v4.txt'), read('real.ip6tables-legacy-save.coverage-v6.txt')].join('')
    const ctx = makeContext('all.txt')
    const tables = parseIptablesSave(text, ctx)
    expect(tables.map((t) => `${t.family}/${t.name}/${t.origin}`)).toEqual([
      'ip/nat/iptables-legacy', 'ip/filter/iptables-legacy',
      'ip/mangle/iptables-nft', 'ip/raw/iptables-nft', 'ip/filter/iptables-nft', 'ip/nat/iptables-nft',
      'ip6/filter/iptables-legacy', 'ip6/nat/iptables-legacy',
    ])
    expect(ctx.sink.items.map((d) => d.code)).toEqual(['iptables.legacy-tables-present'])
    expect(looksLikeIptablesSave(text)).toBe(true)
  })

  it('restore input may add to built-in chains it does not declare; other chains must be declared', () => {
    const ctx = makeContext('restore.txt')
    const [t] = parseIptablesSave('*nat\n-A POSTROUTING -j AWS-SNAT-CHAIN-0\n-A AWS-SNAT-CHAIN-0 -j RETURN\nCOMMIT\n', ctx)
    expect(t!.chains.get('POSTROUTING')).toMatchObject({ hook: 'postrouting', priority: 100 })
    expect(ctx.sink.items.map((d) => [d.code, d.line])).toEqual([['iptables.undeclared-chain', 3]])
  })

  it('a table without COMMIT is closed with a diagnostic and kept', () => {
    const ctx = makeContext('cut.txt')
    const tables = parseIptablesSave('*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -j MASQUERADE\n*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n', ctx)
    expect(tables.map((t) => [t.name, ruleCount(t)])).toEqual([['nat', 1], ['filter', 0]])
    expect(ctx.sink.items.map((d) => [d.code, d.line])).toEqual([['iptables.missing-commit', 4]])
  })
})

describe('iptables -S', () => {
  const natS = read('real.legacy-S-nat.kube-proxy.txt')

  it('takes the table from ctx.table, from a header, or from the built-in chains of each pasted listing', () => {
    const hinted = parseIptablesRules(natS, makeContext('x', { table: 'nat' }))
    expect(hinted.map((t) => t.name)).toEqual(['nat'])
    const fromHeader = parseIptablesRules(`# iptables -t nat -S\n${natS}`, makeContext('x'))
    expect(fromHeader.map((t) => t.name)).toEqual(['nat'])
    const filterS = '-P INPUT ACCEPT\n-P FORWARD DROP\n-P OUTPUT ACCEPT\n-N KUBE-FORWARD\n-A FORWARD -j KUBE-FORWARD\n-A KUBE-FORWARD -m mark --mark 0x4000/0x4000 -j ACCEPT\n'
    const ctx = makeContext('pasted')
    const pasted = parseIptablesRules(filterS + natS, ctx)
    expect(pasted.map((t) => t.name)).toEqual(['filter', 'nat'])
    expect(ctx.sink.items).toEqual([])
    expect(pasted[0]!.chains.get('FORWARD')!.policy).toBe('drop')
    expect(tableSignature(pasted[1]!)).toEqual(tableSignature(hinted[0]!))
    expect(looksLikeIptablesRules(filterS + natS)).toBe(true)
    expect(looksLikeIptablesSave(filterS + natS)).toBe(false)
    expect(looksLikeIptablesList(filterS + natS)).toBe(false)
  })

  it('reads `iptables -S -v` counters and the iptables-nft warning', () => {
    const ctx = makeContext('sv')
    const [t] = parseIptablesRules('# Warning: iptables-legacy tables present, use iptables-legacy to see them\n-P POSTROUTING ACCEPT -c 10 600\n-N AWS-SNAT-CHAIN-0\n-A POSTROUTING -m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-0 -c 7 420\n-A AWS-SNAT-CHAIN-0 -d 10.0.0.0/16 -j RETURN -c 3 180\n', ctx)
    expect(t!.name).toBe('nat')
    expect(t!.origin).toBe('iptables-nft')
    expect(t!.chains.get('POSTROUTING')!.counters).toEqual({ packets: 10n, bytes: 600n })
    expect(t!.chains.get('POSTROUTING')!.rules[0]!.counters).toEqual({ packets: 7n, bytes: 420n })
    expect(ctx.sink.items.map((d) => d.code)).toEqual(['iptables.legacy-tables-present'])
  })

  it('ip6tables -S is IPv6 from its addresses', () => {
    const [t] = parseIptablesRules('-P POSTROUTING ACCEPT\n-N CNI-E6-aa\n-A POSTROUTING -s fd00::ac:2/128 -j CNI-E6-aa\n-A CNI-E6-aa -j SNAT --to-source 2600:1f14::1 --random-fully\n', makeContext('s6'))
    expect(t!.family).toBe('ip6')
    expect(detectIptablesFamily('-A POSTROUTING -s fd00::ac:2/128 -j X\n')).toBe(6)
  })
})

describe('iptables -nvL of several tables pasted together', () => {
  it('splits where a chain name repeats and names each table from its built-in chains', () => {
    const nat = read('real.legacy-nvL-nat.kube-proxy.txt')
    const mangle = read('real.nft-nvxL-mangle.coverage-v4.txt').replace(/^# Warning.*\n/, '')
    const ctx = makeContext('iptables-all.txt')
    const tables = parseIptablesList(`${mangle}\n${nat}`, ctx)
    expect(tables.map((t) => t.name)).toEqual(['mangle', 'nat'])
    expect(ctx.sink.items).toEqual([])
    expect(ruleCount(tables[1]!)).toBe(55)
  })

  it('reads the pre-1.8.9 protocol names (all, tcp) and K/M counters the same as the numbers', () => {
    const old = 'Chain KUBE-SEP-X (1 references)\n pkts bytes target     prot opt in     out     source               destination         \n  12K  720K DNAT       tcp  --  *      *       0.0.0.0/0            0.0.0.0/0            /* ns1/svc1:p80 */ tcp to:10.180.0.1:80\n    3   180 KUBE-MARK-MASQ  all  --  *      *       10.180.0.1           0.0.0.0/0            /* ns1/svc1:p80 */\n'
    const num = old.replace(' tcp  --', ' 6    --').replace(' all  --', ' 0    --')
    const a = parseIptablesList(old, makeContext('old', { table: 'nat' }))[0]!
    const b = parseIptablesList(num, makeContext('new', { table: 'nat' }))[0]!
    expect(tableSignature(a)).toEqual(tableSignature(b))
    expect(a.chains.get('KUBE-SEP-X')!.rules[0]!.counters).toEqual({ packets: 12_000n, bytes: 720_000n })
  })

  it('trusts the table hint for a partial listing, but not when a built-in chain rules it out', () => {
    const nat = read('real.legacy-nvL-nat.kube-proxy.txt')
    const wrong = makeContext('iptables-filter.txt', { table: 'filter' })
    expect(parseIptablesList(nat, wrong).map((t) => t.name)).toEqual(['nat'])
    expect(wrong.sink.items.map((d) => d.code)).toEqual(['iptables.table-mismatch'])
    const partial = 'Chain PREROUTING (policy ACCEPT 0 packets, 0 bytes)\n pkts bytes target     prot opt in     out     source               destination\n    0     0 CONNMARK   all  --  eni+   *       0.0.0.0/0            0.0.0.0/0            CONNMARK restore mask 0x80\n'
    const hinted = makeContext('iptables-mangle.txt', { table: 'mangle' })
    expect(parseIptablesList(partial, hinted).map((t) => t.name)).toEqual(['mangle'])
    expect(hinted.sink.items).toEqual([])
  })

  it('reads --line-numbers listings', () => {
    const text = 'Chain AWS-SNAT-CHAIN-0 (1 references)\nnum   pkts bytes target     prot opt in     out     source               destination         \n1    93239 5600K RETURN     all  --  *      *       0.0.0.0/0            10.0.0.0/16          /* AWS SNAT CHAIN */\n2     1873  112K SNAT       all  --  *      !vlan+  0.0.0.0/0            0.0.0.0/0            /* AWS, SNAT */ ADDRTYPE match dst-type !LOCAL to:10.0.3.45 random-fully\n'
    const ctx = makeContext('n', { table: 'nat' })
    const [t] = parseIptablesList(text, ctx)
    expect(ctx.sink.items).toEqual([])
    const rules = t!.chains.get('AWS-SNAT-CHAIN-0')!.rules
    expect(rules.map((r) => r.target.kind)).toEqual(['return', 'snat'])
    expect(rules[0]!.counters).toEqual({ packets: 93239n, bytes: 5_600_000n })
  })
})
