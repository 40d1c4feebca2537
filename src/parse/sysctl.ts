// `sysctl -a` (`net.ipv4.ip_forward = 1`) and `/proc/sys/...` path=value listings (`/proc/sys/net/ipv4/ip_forward=1`,
// `/proc/sys/net/ipv4/ip_forward: 1`, or `grep -r . /proc/sys/net` output `/proc/sys/net/ipv4/ip_forward:1`).
// Names are kept the way `sysctl -a` writes them: dots between levels, and a dot inside an interface name
// (`vlan.eth.1`) written as `/` (`net.ipv4.conf.vlan/eth/1.rp_filter`), which is what sysctl itself does.
import type { Setting } from '../model/node-state.js'
import { lines, type ParseContext } from './context.js'

const DOTTED = /^([a-z0-9_][a-zA-Z0-9_./-]*[a-zA-Z0-9_])\s*=\s?(.*)$/
const PATH = /^\/proc\/sys\/([^\s=:]+)\s*[=:]\s?(.*)$/

/** `net/ipv4/conf/vlan.eth.1/rp_filter` → `net.ipv4.conf.vlan/eth/1.rp_filter`. */
export function sysctlNameFromPath(path: string): string {
  return path.split('/').filter((p) => p !== '').map((p) => p.replace(/\./g, '/')).join('.')
}

export function parseSysctl(text: string, ctx: ParseContext): Setting[] {
  const out: Setting[] = []
  for (const { line, text: raw } of lines(text)) {
    const t = raw.trim()
    if (t === '' || t.startsWith('#') || t.startsWith(';')) continue
    const ref = { artifact: ctx.artifact, line, text: t }
    // `sysctl -a` prints permission and read errors among the values.
    if (/^sysctl: /.test(t)) { ctx.sink.info('sysctl.read-error', t, line, t); continue }
    const p = PATH.exec(t)
    if (p) { out.push({ name: sysctlNameFromPath(p[1]!), value: p[2]!.trim(), ref }); continue }
    const d = DOTTED.exec(t)
    if (d && d[1]!.includes('.')) { out.push({ name: d[1]!, value: d[2]!.trim(), ref }); continue }
    ctx.sink.warn('sysctl.unknown-line', 'not a `name = value` sysctl line', line, t)
  }
  return out
}

export function looksLikeSysctl(text: string): boolean {
  const ls = text.slice(0, 4096).split(/\r?\n/).filter((l) => l.trim() !== '' && !/^sysctl: /.test(l)).slice(0, 30)
  if (ls.length === 0) return false
  const hits = ls.filter((l) => /^(?:abi|debug|dev|fs|kernel|net|sunrpc|user|vm|crypto)\.[a-zA-Z0-9_./-]+ = /.test(l) || /^\/proc\/sys\/[^\s=:]+\s*[=:]/.test(l)).length
  return hits >= Math.ceil(ls.length * 0.6)
}
