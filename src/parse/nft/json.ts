// `nft -j list ruleset` (libnftables-json(5)) into Tables. Each JSON expression is rendered as the tokens
// `nft list ruleset` would print for it, and the same statement parser as for the text reads them: the two
// renderings cannot drift apart in meaning.
import type { SourceRef } from '../../model/evidence.js'
import type { Table, TableFamily } from '../../model/netfilter.js'
import type { ParseContext } from '../context.js'
import { applyChainSpec, TableBuilder } from './ruleset.js'
import type { Token } from './tokens.js'

const FAMILIES: ReadonlySet<string> = new Set(['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev'])

type J = unknown
const isObj = (v: J): v is Record<string, J> => typeof v === 'object' && v !== null && !Array.isArray(v)

const w = (text: string): Token => ({ text, line: 0, quoted: false })
const q = (text: string): Token => ({ text, line: 0, quoted: true })

class Unknown extends Error {}

function scalar(v: J): string {
  if (typeof v === 'string') return v
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  throw new Unknown()
}

/** Tokens of one expression, as nft prints it. Throws Unknown for expressions natlens does not render. */
function expr(e: J): Token[] {
  if (typeof e === 'string' || typeof e === 'number' || typeof e === 'boolean') return [w(scalar(e))]
  if (Array.isArray(e)) {
    // A list of flags (`ct state established,related`).
    const out: Token[] = []
    e.forEach((x, i) => { if (i > 0) out.push(w(',')); out.push(w(scalar(x))) })
    return out
  }
  if (!isObj(e)) throw new Unknown()
  const [key] = Object.keys(e)
  const v = e[key!]
  switch (key) {
    case 'payload': {
      if (!isObj(v) || typeof v['protocol'] !== 'string' || typeof v['field'] !== 'string') throw new Unknown()
      return [w(v['protocol']), w(v['field'])]
    }
    case 'meta':
      if (!isObj(v) || typeof v['key'] !== 'string') throw new Unknown()
      return [w('meta'), w(v['key'])]
    case 'ct': {
      if (!isObj(v) || typeof v['key'] !== 'string') throw new Unknown()
      const out = [w('ct')]
      if (typeof v['dir'] === 'string') out.push(w(v['dir']))
      if (typeof v['family'] === 'string') out.push(w(v['family']))
      out.push(w(v['key']))
      return out
    }
    case 'rt':
      if (!isObj(v) || typeof v['key'] !== 'string') throw new Unknown()
      return [w('rt'), w(v['key'])]
    case 'fib': {
      if (!isObj(v) || typeof v['result'] !== 'string') throw new Unknown()
      const flags = Array.isArray(v['flags']) ? v['flags'].map(scalar) : typeof v['flags'] === 'string' ? [v['flags']] : []
      const out = [w('fib')]
      flags.forEach((f, i) => { if (i > 0) out.push(w('.')); out.push(w(f)) })
      out.push(w(v['result']))
      return out
    }
    case 'numgen': {
      if (!isObj(v)) throw new Unknown()
      const out = [w('numgen'), w(scalar(v['mode'])), w('mod'), w(scalar(v['mod']))]
      if (typeof v['offset'] === 'number' && v['offset'] !== 0) out.push(w('offset'), w(String(v['offset'])))
      return out
    }
    case 'tcp option':
      if (!isObj(v)) throw new Unknown()
      return [w('tcp'), w('option'), w(scalar(v['name'])), ...(v['field'] !== undefined ? [w(scalar(v['field']))] : [])]
    case 'concat': {
      if (!Array.isArray(v)) throw new Unknown()
      const out: Token[] = []
      v.forEach((x, i) => { if (i > 0) out.push(w('.')); out.push(...expr(x)) })
      return out
    }
    case 'prefix':
      if (!isObj(v)) throw new Unknown()
      return [w(`${scalar(v['addr'])}/${scalar(v['len'])}`)]
    case 'range':
      if (!Array.isArray(v) || v.length !== 2) throw new Unknown()
      return [w(`${scalar(v[0])}-${scalar(v[1])}`)]
    case 'set':
      if (!Array.isArray(v)) return expr(v)
      return braces(v)
    case '&': case '|': case '^': case '<<': case '>>': {
      if (!Array.isArray(v) || v.length < 2) throw new Unknown()
      const out = expr(v[0])
      for (const x of v.slice(1)) out.push(w(key), ...expr(x))
      return out
    }
    case 'elem':
      if (!isObj(v)) throw new Unknown()
      return [...expr(v['val']), ...(typeof v['comment'] === 'string' ? [w('comment'), q(v['comment'])] : [])]
    case 'accept': case 'drop': case 'return': case 'continue':
      return [w(key)]
    case 'jump': case 'goto':
      if (!isObj(v) || typeof v['target'] !== 'string') throw new Unknown()
      return [w(key), w(v['target'])]
    default:
      throw new Unknown()
  }
}

/** `{ a, b . c : goto x }` from JSON set items (scalars, `{elem:…}`, or `[key, value]` pairs of a map). */
function braces(items: readonly J[]): Token[] {
  const out: Token[] = [w('{')]
  items.forEach((it, i) => {
    if (i > 0) out.push(w(','))
    if (Array.isArray(it) && it.length === 2) {
      out.push(...expr(it[0]), w(':'), ...expr(it[1]))
    } else {
      out.push(...expr(it))
    }
  })
  out.push(w('}'))
  return out
}

function natTokens(kind: string, v: J): Token[] {
  const out = [w(kind)]
  if (v === null || v === undefined) return out
  if (!isObj(v)) throw new Unknown()
  if (typeof v['family'] === 'string') out.push(w(v['family']))
  const addr = v['addr']
  const port = v['port']
  const portText = port === undefined ? undefined : isObj(port) && Array.isArray(port['range']) ? `${scalar(port['range'][0])}-${scalar(port['range'][1])}` : scalar(port)
  let addrText: string | undefined
  if (addr !== undefined) {
    if (isObj(addr) && Array.isArray(addr['range'])) addrText = `${scalar(addr['range'][0])}-${scalar(addr['range'][1])}`
    else if (isObj(addr) && isObj(addr['prefix'])) throw new Unknown()
    else addrText = scalar(addr)
  }
  if (addrText !== undefined || portText !== undefined) {
    const a = addrText ?? ''
    const v6 = a.includes(':')
    out.push(w('to'), w(portText === undefined ? a : v6 ? `[${a}]:${portText}` : `${a}:${portText}`))
  }
  const flags = Array.isArray(v['flags']) ? v['flags'].map(scalar) : typeof v['flags'] === 'string' ? [v['flags']] : []
  flags.forEach((f, i) => { if (i > 0) out.push(w(',')); out.push(w(f)) })
  return out
}

/** Tokens of one statement of `rule.expr`. */
function statement(s: J): Token[] {
  if (!isObj(s)) throw new Unknown()
  const [key] = Object.keys(s)
  const v = s[key!]
  switch (key) {
    case 'match': {
      if (!isObj(v)) throw new Unknown()
      const op = typeof v['op'] === 'string' ? v['op'] : '=='
      return [...expr(v['left']), ...(op === '==' || op === 'in' ? [] : [w(op)]), ...expr(v['right'])]
    }
    case 'counter':
      if (isObj(v) && typeof v['packets'] === 'number' && typeof v['bytes'] === 'number') return [w('counter'), w('packets'), w(String(v['packets'])), w('bytes'), w(String(v['bytes']))]
      return [w('counter')]
    case 'accept': case 'drop': case 'return': case 'continue': case 'jump': case 'goto':
      return expr(s)
    case 'reject': {
      if (!isObj(v)) return [w('reject')]
      const type = typeof v['type'] === 'string' ? v['type'] : undefined
      if (type === 'tcp reset') return [w('reject'), w('with'), w('tcp'), w('reset')]
      if (type && typeof v['expr'] === 'string') return [w('reject'), w('with'), w(type), w(v['expr'])]
      return [w('reject')]
    }
    case 'snat': case 'dnat': case 'masquerade': case 'redirect':
      return natTokens(key, v)
    case 'mangle': {
      if (!isObj(v)) throw new Unknown()
      return [...expr(v['key']), w('set'), ...expr(v['value'])]
    }
    case 'vmap': {
      if (!isObj(v)) throw new Unknown()
      return [...expr(v['key']), w('vmap'), ...expr(v['data'])]
    }
    case 'log': return [w('log')]
    case 'notrack': return [w('notrack')]
    case 'limit': case 'quota': return [w(key), q(JSON.stringify(v))]
    case 'xt': {
      if (!isObj(v)) throw new Unknown()
      return [w('xt'), w(scalar(v['type'])), q(scalar(v['name']))]
    }
    case 'set': {
      // `update @affinity { ip saddr }`
      if (!isObj(v) || typeof v['op'] !== 'string' || typeof v['set'] !== 'string') throw new Unknown()
      return [w(v['op']), w(v['set']), w('{'), ...expr(v['elem']), w('}')]
    }
    default:
      throw new Unknown()
  }
}

function tableFamily(v: J): TableFamily | undefined {
  return typeof v === 'string' && FAMILIES.has(v) ? (v as TableFamily) : undefined
}

function excerpt(v: J): string {
  const t = JSON.stringify(v) ?? ''
  return t.length > 500 ? `${t.slice(0, 497)}...` : t
}

export function parseNftJson(text: string, ctx: ParseContext): Table[] {
  let doc: J
  try {
    doc = JSON.parse(text)
  } catch (e) {
    ctx.sink.error('nft.bad-json', `not valid JSON: ${(e as Error).message}`)
    return []
  }
  const items = isObj(doc) && Array.isArray(doc['nftables']) ? doc['nftables'] : undefined
  if (!items) {
    ctx.sink.error('nft.bad-json', '`nft -j` output is an object with an "nftables" array')
    return []
  }
  const b = new TableBuilder(ctx, [])
  const jref = (v: J): SourceRef => ({ artifact: ctx.artifact, line: 0, text: excerpt(v) })
  for (const raw of items) {
    if (!isObj(raw)) continue
    // JSON transactions wrap objects in a command: {"add": {"rule": {…}}}.
    let item = raw
    let insert = false
    const cmd = Object.keys(raw)[0]
    if ((cmd === 'add' || cmd === 'create' || cmd === 'insert') && isObj(raw[cmd])) { item = raw[cmd]; insert = cmd === 'insert' }
    const [kind] = Object.keys(item)
    const v = item[kind!]
    if (kind === 'metainfo') continue
    if (!isObj(v)) { ctx.sink.warn('nft.unknown-line', `unexpected ${kind ?? 'item'}`, 0, excerpt(item)); continue }
    const family = tableFamily(v['family'])
    const ref = jref(item)
    if (!family) { ctx.sink.warn('nft.unknown-line', `${kind ?? 'item'} without a known family`, 0, ref.text); continue }
    switch (kind) {
      case 'table':
        if (typeof v['name'] === 'string') b.table(family, v['name'], ref)
        break
      case 'chain': {
        if (typeof v['table'] !== 'string' || typeof v['name'] !== 'string') break
        const t = b.findTable(family, v['table'], ref)
        const c = b.chain(t, v['name'], ref)
        const words: string[] = []
        if (typeof v['type'] === 'string') words.push('type', v['type'])
        if (typeof v['hook'] === 'string') words.push('hook', v['hook'])
        if (typeof v['prio'] === 'number') words.push('priority', String(v['prio']))
        if (typeof v['policy'] === 'string') words.push('policy', v['policy'])
        if (words.length > 0) applyChainSpec(c, words, ref, ctx)
        break
      }
      case 'set':
      case 'map': {
        if (typeof v['table'] !== 'string' || typeof v['name'] !== 'string') break
        const t = b.findTable(family, v['table'], ref)
        const s = b.set(t, v['name'], kind, ref)
        const type = v['type']
        s.keyType = Array.isArray(type) ? type.map((x) => String(x)).join(' . ') : typeof type === 'string' ? type : isObj(type) ? excerpt(type) : ''
        if (kind === 'map' && typeof v['map'] === 'string') s.dataType = v['map']
        if (Array.isArray(v['flags'])) s.flags = v['flags'].map((x) => String(x))
        else if (typeof v['flags'] === 'string') s.flags = [v['flags']]
        if (Array.isArray(v['elem'])) addJsonElements(b, s, v['elem'], ref, ctx)
        break
      }
      case 'element': {
        if (typeof v['table'] !== 'string' || typeof v['name'] !== 'string') break
        const t = b.findTable(family, v['table'], ref)
        const s = t.sets.get(v['name'])
        if (!s) { ctx.sink.warn('nft.unknown-line', `element for unknown set ${v['name']}`, 0, ref.text); break }
        if (Array.isArray(v['elem'])) addJsonElements(b, s, v['elem'], ref, ctx)
        break
      }
      case 'rule': {
        if (typeof v['table'] !== 'string' || typeof v['chain'] !== 'string' || !Array.isArray(v['expr'])) break
        const t = b.findTable(family, v['table'], ref)
        const c = t.chains.get(v['chain']) ?? b.chain(t, v['chain'], ref)
        const tokens: Token[] = []
        for (const s of v['expr']) {
          try {
            tokens.push(...statement(s))
          } catch (e) {
            if (!(e instanceof Unknown)) throw e
            // Rendered as a JSON string token: the statement parser keeps it as an opaque match and says so.
            tokens.push(q(excerpt(s)))
          }
        }
        b.addRule(t, c, tokens, ref, insert, typeof v['comment'] === 'string' ? v['comment'] : undefined)
        break
      }
      default:
        ctx.sink.info('nft.ignored-object', `${kind ?? 'item'} objects are not modelled`, 0, ref.text)
    }
  }
  return b.finish()
}

function addJsonElements(b: TableBuilder, s: Parameters<TableBuilder['addElements']>[0], elems: readonly J[], ref: SourceRef, ctx: ParseContext): void {
  for (const e of elems) {
    try {
      const pair = Array.isArray(e) && e.length === 2 && (s.kind === 'map')
      const keyTokens = expr(pair ? (e as J[])[0] : e)
      const key: string[] = []
      let cur: string[] = []
      for (const t of keyTokens) {
        if (t.text === 'comment') break
        if (t.text === '.' && !t.quoted) { key.push(cur.join(' ')); cur = []; continue }
        cur.push(t.text)
      }
      key.push(cur.join(' '))
      const value = pair ? expr((e as J[])[1]).map((t) => t.text).join(' ') : undefined
      b.addElements(s, [value !== undefined ? { key, value } : { key }], ref)
    } catch (err) {
      if (!(err instanceof Unknown)) throw err
      ctx.sink.warn('nft.unknown-expression', `set element not modelled: ${excerpt(e)}`, 0, ref.text)
    }
  }
}
