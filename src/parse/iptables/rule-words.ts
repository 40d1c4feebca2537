// Reads the words of one rule as iptables-save, `iptables -S` and iptables-restore input write them
// (`-s 10.0.0.0/16 -m comment --comment "x" -j SNAT --to-source 10.0.3.45 --random-fully`) into natlens
// Match and Target values. Options are dispatched the way iptables does: the base options (-s -d -i -o -p -f),
// then the most recently loaded module that knows the option, then the protocol match that `-p tcp` loads
// implicitly. Restore input may interleave them (`-m tcp -p tcp -d 1.2.3.4 --dport 80`); iptables-save never does.
import type { Family } from '../../model/ip.js'
import type { DiagnosticSink } from '../../model/evidence.js'
import type { Counters, Match, NatRange, PortRange, Target } from '../../model/netfilter.js'
import { joinIptablesWords } from './tokenize.js'
import {
  invertU32, isDigits, normalizeIcmpType, normalizeProtocol, parseAddrTypes, parseCtStates, parseMarkMask,
  parseCidrQuick as parseCidr, parseIpQuick as parseIp, parseNatRange, parsePortList, parsePortRange, parseU32, tcpFlagsFromNames,
} from './values.js'

export interface RuleWordsEnv {
  readonly sink: DiagnosticSink
  readonly line: number
  readonly text: string
  /**
   * Chains declared so far in this table: a `-j NAME` with options that is not one of them is an unknown target.
   * A chain's jump and goto targets are made once and cached on it: every rule that jumps there shares them.
   */
  readonly chains: ReadonlyMap<string, JumpCache>
  /** Family known from the dump header or the caller; otherwise the addresses decide. */
  readonly family: Family | undefined
  /** Jumps to chains not declared (yet), by name (` NAME` for gotos): reported when the table ends. */
  readonly jumps?: Map<string, Target>
}

/** Where a chain keeps the one jump target and the one goto target all rules use (a large kube-proxy dump has 55k jumps to KUBE-MARK-MASQ). */
export interface JumpCache {
  readonly name: string
  jumpTarget?: Target
  gotoTarget?: Target
}

export interface RuleBody {
  matches: Match[]
  target: Target
  counters?: Counters
  comment?: string
  /** Family of the addresses in the rule, when any says. */
  family?: Family
}

interface MatchInst {
  readonly module: string
  readonly def: MatchDef | undefined
  /** Where the module's own words (`-m addrtype ! --dst-type LOCAL`) are in the rule: the text of opaque matches. */
  readonly start: number
  end: number
  out: Match[] | undefined
  /** An option could not be read: the whole module becomes one opaque match. */
  failed: boolean
  negatedAny: boolean
  s: Record<string, string | number | boolean | undefined> | undefined
}

type OptHandler = (p: RuleWordsParser, m: MatchInst, neg: boolean) => void

interface MatchDef {
  readonly options: Readonly<Record<string, OptHandler>>
  /** The same table as a Map: keyed lookups on option words are the parser's hottest path. */
  map?: Map<string, OptHandler>
  finish?(p: RuleWordsParser, m: MatchInst): void
}

type TargetHandler = (p: RuleWordsParser, t: TargetInst, neg: boolean) => void

interface TargetDef {
  /** `undefined`: a passive target whose options are kept as text, whatever they are. */
  readonly options?: Readonly<Record<string, TargetHandler>>
  map?: Map<string, TargetHandler>
  build(t: TargetInst): Target
}

interface TargetInst {
  readonly name: string
  readonly def: TargetDef | undefined
  readonly start: number
  end: number
  failed: boolean
  s: Record<string, string | number | boolean | undefined> | undefined
  ranges: NatRange[] | undefined
}

/** Scratch state of a module or target, made on first use: most rules never need one. */
function sc(x: { s: Record<string, string | number | boolean | undefined> | undefined }): Record<string, string | number | boolean | undefined> {
  return (x.s ??= {})
}

function str(v: string | number | boolean | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined
}

function emit(m: MatchInst, x: Match): void {
  (m.out ??= []).push(x)
}

const ALL_ONES = 0xffffffff

// Targets and matches without parameters are never changed (the model is readonly): one object serves every rule.
const ACCEPT: Target = { kind: 'accept' }
const DROP: Target = { kind: 'drop' }
const RETURN: Target = { kind: 'return' }
const NONE: Target = { kind: 'none' }
// kube-proxy writes the same few probabilities (1/n as the kernel rounds them) on tens of thousands of rules.
const STATISTIC_MATCHES = new Map<number, Match>()
function statisticMatch(probability: number, negated: boolean): Match {
  if (negated) return { kind: 'statistic-random', negated, probability }
  let m = STATISTIC_MATCHES.get(probability)
  if (!m) {
    m = { kind: 'statistic-random', negated: false, probability }
    if (STATISTIC_MATCHES.size < 4096) STATISTIC_MATCHES.set(probability, m)
  }
  return m
}
const PROTOCOL_MATCHES = new Map<string, Match>()
function protocolMatch(protocol: string, negated: boolean): Match {
  const key = negated ? `!${protocol}` : protocol
  let m = PROTOCOL_MATCHES.get(key)
  if (!m) {
    m = { kind: 'protocol', negated, protocol }
    if (PROTOCOL_MATCHES.size < 512) PROTOCOL_MATCHES.set(key, m)
  }
  return m
}

function portOpt(which: 'src' | 'dst' | 'either', list: boolean): OptHandler {
  return (p, m, neg) => {
    const v = p.value(m)
    if (v === undefined) return
    neg = neg || p.lateNeg
    const ranges: PortRange[] | undefined = list ? parsePortList(v) : ((r) => (r ? [r] : undefined))(parsePortRange(v))
    if (!ranges) return p.bad(m, `bad port ${v}`)
    emit(m, { kind: 'port', which, negated: neg, ranges })
  }
}

const TCP_UDP_OPTIONS: Record<string, OptHandler> = {
  '--sport': portOpt('src', false), '--source-port': portOpt('src', false),
  '--dport': portOpt('dst', false), '--destination-port': portOpt('dst', false),
}

const TCP_OPTIONS: Record<string, OptHandler> = {
  ...TCP_UDP_OPTIONS,
  '--tcp-flags': (p, m, neg) => {
    const maskText = p.value(m)
    const compText = p.value(m)
    if (maskText === undefined || compText === undefined) return
    const mask = tcpFlagsFromNames(maskText)
    const comp = tcpFlagsFromNames(compText)
    if (!mask || !comp) return p.bad(m, `bad TCP flags ${maskText} ${compText}`)
    emit(m, { kind: 'tcp-flags', negated: neg || p.lateNeg, mask, comp })
  },
  // libxt_tcp: --syn is --tcp-flags SYN,RST,ACK,FIN SYN.
  '--syn': (_p, m, neg) => { emit(m, { kind: 'tcp-flags', negated: neg, mask: ['FIN', 'SYN', 'RST', 'ACK'], comp: ['SYN'] }) },
  '--tcp-option': (p, m, neg) => {
    const v = p.value(m)
    if (v !== undefined) emit(m, { kind: 'opaque', negated: neg || p.lateNeg, module: 'tcp', text: `--tcp-option ${v}` })
  },
}

function markOpt(kind: 'mark' | 'connmark'): OptHandler {
  return (p, m, neg) => {
    const v = p.value(m)
    if (v === undefined) return
    const mm = parseMarkMask(v)
    if (!mm) return p.bad(m, `bad mark ${v}`)
    emit(m, { kind, negated: neg || p.lateNeg, value: mm.value, mask: mm.mask })
  }
}

function ctaddrOpt(which: 'origsrc' | 'origdst' | 'replsrc' | 'repldst'): OptHandler {
  return (p, m, neg) => {
    const v = p.value(m)
    if (v === undefined) return
    const cidr = parseCidr(v)
    if (!cidr) return p.bad(m, `bad address ${v}`)
    p.noteFamily(cidr.family)
    emit(m, { kind: 'ctaddr', which, negated: neg || p.lateNeg, cidr })
  }
}

function ctportOpt(which: 'origsrc' | 'origdst' | 'replsrc' | 'repldst'): OptHandler {
  return (p, m, neg) => {
    const v = p.value(m)
    if (v === undefined) return
    const r = parsePortRange(v)
    if (!r) return p.bad(m, `bad port ${v}`)
    emit(m, { kind: 'ctport', which, negated: neg || p.lateNeg, ranges: [r] })
  }
}

function ctTextOpt(name: string, normalize?: (v: string) => string): OptHandler {
  return (p, m, neg) => {
    const v = p.value(m)
    if (v === undefined) return
    emit(m, { kind: 'ctstatus', negated: neg || p.lateNeg, text: `${name} ${normalize ? normalize(v) : v}` })
  }
}

const ctstateOpt: OptHandler = (p, m, neg) => {
  const v = p.value(m)
  if (v === undefined) return
  const states = parseCtStates(v)
  if (!states) return p.bad(m, `bad conntrack state ${v}`)
  emit(m, { kind: 'ctstate', negated: neg || p.lateNeg, states })
}

function setScratch(key: string, arity: 0 | 1, negKey?: string): OptHandler {
  return (p, m, neg) => {
    if (arity === 0) { sc(m)[key] = true } else {
      const v = p.value(m)
      if (v === undefined) return
      sc(m)[key] = v
    }
    if (negKey && (neg || p.lateNeg)) sc(m)[negKey] = true
  }
}

function recentMode(mode: 'set' | 'rcheck' | 'update' | 'remove'): OptHandler {
  return (_p, m, neg) => { sc(m).mode = mode; if (neg) sc(m).neg = true }
}

function icmpOpt(v6: boolean): OptHandler {
  return (p, m, neg) => {
    const v = p.value(m)
    if (v === undefined) return
    const type = normalizeIcmpType(v, v6)
    if (type === undefined) return p.bad(m, `bad ICMP type ${v}`)
    emit(m, { kind: 'icmp-type', negated: neg || p.lateNeg, type })
  }
}

function rangeOpt(kind: 'src-range' | 'dst-range'): OptHandler {
  return (p, m, neg) => {
    const v = p.value(m)
    if (v === undefined) return
    const dash = v.indexOf('-')
    const from = dash > 0 ? parseIp(v.slice(0, dash)) : undefined
    const to = dash > 0 ? parseIp(v.slice(dash + 1)) : undefined
    if (!from || !to || from.family !== to.family) return p.bad(m, `bad address range ${v}`)
    p.noteFamily(from.family)
    emit(m, { kind, negated: neg || p.lateNeg, from, to })
  }
}

/** The match modules natlens models. Options not listed here make the module opaque with a diagnostic. */
const MATCHES: Record<string, MatchDef> = {
  tcp: { options: TCP_OPTIONS },
  udp: { options: TCP_UDP_OPTIONS },
  udplite: { options: TCP_UDP_OPTIONS },
  dccp: { options: { ...TCP_UDP_OPTIONS } },
  sctp: {
    options: {
      ...TCP_UDP_OPTIONS,
      '--chunk-types': (p, m, neg) => {
        const a = p.value(m)
        const b = p.value(m)
        if (a !== undefined && b !== undefined) emit(m, { kind: 'opaque', negated: neg || p.lateNeg, module: 'sctp', text: `--chunk-types ${a} ${b}` })
      },
    },
  },
  multiport: {
    options: {
      '--dports': portOpt('dst', true), '--destination-ports': portOpt('dst', true),
      '--sports': portOpt('src', true), '--source-ports': portOpt('src', true),
      '--ports': portOpt('either', true),
    },
  },
  comment: {
    options: {
      '--comment': (p, m) => {
        let v = p.value(m)
        if (v === undefined) return
        // kube-proxy's TestTracePacket data writes `--comment kubernetes service portals` unquoted; iptables would
        // refuse it, but the intent is plain, so the words up to the next option are read as one comment.
        let joined = false
        while (p.i < p.words.length && !p.words[p.i]!.startsWith('-') && p.words[p.i] !== '!') {
          v += ` ${p.words[p.i]}`
          p.i++
          m.end = p.i
          joined = true
        }
        if (joined) p.env.sink.info('iptables.unquoted-comment', `comment of several words is not quoted; read as "${v}"`, p.env.line, p.env.text)
        emit(m, { kind: 'comment', text: v })
      },
    },
  },
  addrtype: {
    options: {
      '--src-type': setScratch('src', 1, 'srcNeg'),
      '--dst-type': setScratch('dst', 1, 'dstNeg'),
      '--limit-iface-in': setScratch('in', 0),
      '--limit-iface-out': setScratch('outIf', 0),
    },
    finish(p, m) {
      for (const which of ['src', 'dst'] as const) {
        const v = sc(m)[which]
        if (typeof v !== 'string') continue
        const types = parseAddrTypes(v)
        if (!types) { p.bad(m, `bad address type ${v}`); return }
        emit(m, {
          kind: 'addrtype', which, negated: sc(m)[`${which}Neg`] === true, types,
          ...(sc(m).in ? { limitIfaceIn: true } : {}), ...(sc(m).outIf ? { limitIfaceOut: true } : {}),
        })
      }
    },
  },
  mark: { options: { '--mark': markOpt('mark') } },
  connmark: { options: { '--mark': markOpt('connmark') } },
  conntrack: {
    options: {
      '--ctstate': ctstateOpt,
      '--ctorigsrc': ctaddrOpt('origsrc'), '--ctorigdst': ctaddrOpt('origdst'),
      '--ctreplsrc': ctaddrOpt('replsrc'), '--ctrepldst': ctaddrOpt('repldst'),
      '--ctorigsrcport': ctportOpt('origsrc'), '--ctorigdstport': ctportOpt('origdst'),
      '--ctreplsrcport': ctportOpt('replsrc'), '--ctrepldstport': ctportOpt('repldst'),
      '--ctproto': ctTextOpt('ctproto', normalizeProtocol),
      '--ctstatus': ctTextOpt('ctstatus'),
      '--ctexpire': ctTextOpt('ctexpire'),
      '--ctdir': ctTextOpt('ctdir'),
    },
  },
  state: { options: { '--state': ctstateOpt } },
  statistic: {
    options: {
      '--mode': setScratch('mode', 1),
      '--probability': setScratch('probability', 1, 'neg'),
      '--every': setScratch('every', 1, 'neg'),
      '--packet': setScratch('packet', 1),
    },
    finish(p, m) {
      if (sc(m).mode === 'random') {
        const prob = Number(sc(m).probability)
        if (!(prob >= 0 && prob <= 1)) { p.bad(m, `bad probability ${String(sc(m).probability)}`); return }
        emit(m, statisticMatch(prob, sc(m).neg === true))
      } else if (sc(m).mode === 'nth') {
        const every = Number(sc(m).every)
        const packet = sc(m).packet === undefined ? 0 : Number(sc(m).packet)
        if (!Number.isInteger(every) || every < 1 || !Number.isInteger(packet)) { p.bad(m, 'bad nth statistic'); return }
        emit(m, { kind: 'statistic-nth', negated: sc(m).neg === true, every, packet })
      } else {
        p.bad(m, `statistic mode ${String(sc(m).mode)} is not known`)
      }
    },
  },
  recent: {
    options: {
      '--set': recentMode('set'), '--rcheck': recentMode('rcheck'), '--update': recentMode('update'), '--remove': recentMode('remove'),
      '--name': setScratch('name', 1), '--seconds': setScratch('seconds', 1), '--reap': setScratch('reap', 0),
      '--hitcount': setScratch('hitcount', 1), '--rttl': setScratch('rttl', 0), '--mask': setScratch('mask', 1),
      '--rsource': (_p, m) => { sc(m).side = 'rsource' }, '--rdest': (_p, m) => { sc(m).side = 'rdest' },
    },
    finish(p, m) {
      const mode = sc(m).mode
      if (mode !== 'set' && mode !== 'rcheck' && mode !== 'update' && mode !== 'remove') { p.bad(m, 'recent without --set/--rcheck/--update/--remove'); return }
      const name = str(sc(m).name) ?? 'DEFAULT'
      emit(m, { kind: 'recent', negated: sc(m).neg === true, name, mode, text: recentText(sc(m)) })
    },
  },
  set: {
    options: {
      '--match-set': (p, m, neg) => {
        const name = p.value(m)
        const flags = p.value(m)
        if (name === undefined || flags === undefined) return
        emit(m, { kind: 'ipset', negated: neg || p.lateNeg, set: name, flags })
      },
      // Counter conditions and --return-nomatch refine a membership test natlens cannot evaluate anyway.
      '--return-nomatch': () => {}, '--update-counters': () => {}, '--update-subcounters': () => {},
      '--packets-eq': (p, m) => { p.value(m) }, '--packets-lt': (p, m) => { p.value(m) }, '--packets-gt': (p, m) => { p.value(m) },
      '--bytes-eq': (p, m) => { p.value(m) }, '--bytes-lt': (p, m) => { p.value(m) }, '--bytes-gt': (p, m) => { p.value(m) },
    },
  },
  iprange: { options: { '--src-range': rangeOpt('src-range'), '--dst-range': rangeOpt('dst-range') } },
  icmp: { options: { '--icmp-type': icmpOpt(false) } },
  icmp6: { options: { '--icmpv6-type': icmpOpt(true) } },
  // nfacct only counts packets into a named accounting object; it never excludes one, so it adds no condition.
  nfacct: { options: { '--nfacct-name': (p, m) => { p.value(m); sc(m).counted = true } } },
}

for (const def of Object.values(MATCHES)) def.map = new Map(Object.entries(def.options))

/**
 * Modules natlens knows but does not evaluate: their outcome depends on state a dump does not hold (sockets,
 * bridge ports, rates, owners). They become `opaque` matches without a diagnostic; the option lists let
 * restore input that interleaves options still find the right module.
 */
const OPAQUE_MATCHES: Record<string, readonly string[]> = {
  physdev: ['--physdev-in', '--physdev-out', '--physdev-is-in', '--physdev-is-out', '--physdev-is-bridged'],
  mac: ['--mac-source'],
  owner: ['--uid-owner', '--gid-owner', '--socket-exists', '--suppl-groups'],
  socket: ['--transparent', '--nowildcard', '--restore-skmark'],
  limit: ['--limit', '--limit-burst'],
  hashlimit: [],
  connlimit: ['--connlimit-upto', '--connlimit-above', '--connlimit-mask', '--connlimit-saddr', '--connlimit-daddr'],
  length: ['--length'],
  helper: ['--helper'],
  ttl: ['--ttl-eq', '--ttl-gt', '--ttl-lt'],
  hl: ['--hl-eq', '--hl-gt', '--hl-lt'],
  pkttype: ['--pkt-type'],
  u32: ['--u32'],
  time: ['--datestart', '--datestop', '--timestart', '--timestop', '--monthdays', '--weekdays', '--kerneltz', '--contiguous', '--utc'],
  string: ['--algo', '--from', '--to', '--string', '--hex-string', '--icase'],
  devgroup: ['--src-group', '--dst-group'],
  cgroup: ['--path', '--cgroup'],
  rpfilter: ['--loose', '--validmark', '--accept-local', '--invert'],
  policy: ['--dir', '--pol', '--strict', '--reqid', '--spi', '--proto', '--mode', '--tunnel-src', '--tunnel-dst', '--next'],
  frag: ['--fragid', '--fraglen', '--fragres', '--fragfirst', '--fragmore', '--fraglast'],
  dscp: ['--dscp', '--dscp-class'],
  tos: ['--tos'],
  ecn: ['--ecn-tcp-cwr', '--ecn-tcp-ece', '--ecn-ip-ect'],
  connbytes: ['--connbytes', '--connbytes-dir', '--connbytes-mode'],
  quota: ['--quota'],
  esp: ['--espspi'],
  ah: ['--ahspi', '--ahlen', '--ahres'],
  realm: ['--realm'],
  cpu: ['--cpu'],
  bpf: ['--bytecode', '--object-pinned'],
  cluster: ['--cluster-total-nodes', '--cluster-local-node', '--cluster-local-nodemask', '--cluster-hash-seed'],
  connlabel: ['--label', '--set'],
  ipvs: ['--ipvs', '--vproto', '--vaddr', '--vport', '--vdir', '--vmethod', '--vportctl'],
  ipv6header: ['--header', '--soft'],
  rt: ['--rt-type', '--rt-segsleft', '--rt-len', '--rt-0-res', '--rt-0-addrs', '--rt-0-not-strict'],
  hbh: ['--hbh-len', '--hbh-opts'],
  dst: ['--dst-len', '--dst-opts'],
  mh: ['--mh-type'],
  osf: ['--genre', '--ttl', '--log'],
  rateest: [],
  tcpmss: ['--mss'],
  condition: ['--condition'],
  ipcomp: ['--ipcompspi', '--compres'],
  l2tp: ['--tid', '--sid', '--pversion', '--type'],
  eui64: [],
  srh: [],
  connrate: ['--connrate'],
  addrlimit: [],
}

const MATCH_DEFS = new Map(Object.entries(MATCHES))
const OPAQUE_MATCH_OPTIONS = new Map(Object.entries(OPAQUE_MATCHES))

const OPAQUE_PREFIX: Record<string, string> = { hashlimit: '--hashlimit', rateest: '--rateest', srh: '--srh' }

function recentText(s: Record<string, string | number | boolean | undefined>): string {
  const parts: string[] = [`--${String(s.mode)}`]
  if (s.seconds !== undefined) parts.push(`--seconds ${String(s.seconds)}`)
  if (s.reap) parts.push('--reap')
  if (s.hitcount !== undefined) parts.push(`--hitcount ${String(s.hitcount)}`)
  if (s.rttl) parts.push('--rttl')
  parts.push(`--name ${typeof s.name === 'string' ? s.name : 'DEFAULT'}`)
  parts.push(`--mask ${typeof s.mask === 'string' ? s.mask : '255.255.255.255'}`)
  parts.push(s.side === 'rdest' ? '--rdest' : '--rsource')
  return parts.join(' ')
}

// ---- targets ----

function natToOpt(): TargetHandler {
  return (p, t) => {
    const v = p.targetValue(t)
    if (v === undefined) return
    const r = parseNatRange(v)
    if (!r) return p.badTarget(t, `bad NAT range ${v}`)
    if (r.minAddr) p.noteFamily(r.minAddr.family)
    if (!t.ranges) t.ranges = []
    t.ranges.push(r)
  }
}

function flag(key: string): TargetHandler {
  return (_p, t) => { sc(t)[key] = true }
}

function valueOpt(key: string): TargetHandler {
  return (p, t) => {
    const v = p.targetValue(t)
    if (v !== undefined) sc(t)[key] = v
  }
}

/** `--set-xmark`, `--set-mark`, `--or-mark`, … normalised to xt_MARK's (value, mask), as the model documents. */
function markSetOpt(op: 'xset' | 'set' | 'or' | 'and' | 'xor'): TargetHandler {
  return (p, t) => {
    const v = p.targetValue(t)
    if (v === undefined) return
    const mm = op === 'xset' || op === 'set' ? parseMarkMask(v) : ((x) => (x === undefined ? undefined : { value: x, mask: ALL_ONES }))(parseU32(v))
    if (!mm) return p.badTarget(t, `bad mark ${v}`)
    let value = mm.value
    let mask = mm.mask
    if (op === 'set') mask = (mask | value) >>> 0
    else if (op === 'or') mask = value
    else if (op === 'and') { mask = invertU32(value); value = 0 }
    else if (op === 'xor') mask = 0
    sc(t).value = value
    sc(t).mask = mask
    sc(t).mode = 'set'
  }
}

function maskOpt(key: string): TargetHandler {
  return (p, t) => {
    const v = p.targetValue(t)
    if (v === undefined) return
    const m = parseU32(v)
    if (m === undefined) return p.badTarget(t, `bad mask ${v}`)
    sc(t)[key] = m
  }
}

const MARK_TARGET_OPTIONS: Record<string, TargetHandler> = {
  '--set-xmark': markSetOpt('xset'), '--set-mark': markSetOpt('set'), '--or-mark': markSetOpt('or'),
  '--and-mark': markSetOpt('and'), '--xor-mark': markSetOpt('xor'),
}

const TARGETS: Record<string, TargetDef> = {
  ACCEPT: { options: {}, build: () => ACCEPT },
  DROP: { options: {}, build: () => DROP },
  RETURN: { options: {}, build: () => RETURN },
  REJECT: {
    options: { '--reject-with': valueOpt('with') },
    build: (t) => { const w = str(sc(t).with); return w !== undefined ? { kind: 'reject', with: w } : { kind: 'reject' } },
  },
  SNAT: {
    options: { '--to-source': natToOpt(), '--to': natToOpt(), '--random': flag('random'), '--random-fully': flag('randomFully'), '--persistent': flag('persistent') },
    build: (t) => ({ kind: 'snat', to: t.ranges ?? [], random: sc(t).random === true, randomFully: sc(t).randomFully === true, persistent: sc(t).persistent === true }),
  },
  DNAT: {
    options: { '--to-destination': natToOpt(), '--to': natToOpt(), '--random': flag('random'), '--persistent': flag('persistent') },
    build: (t) => ({ kind: 'dnat', to: t.ranges ?? [], random: sc(t).random === true, persistent: sc(t).persistent === true }),
  },
  MASQUERADE: {
    options: { '--to-ports': valueOpt('ports'), '--random': flag('random'), '--random-fully': flag('randomFully') },
    build: (t) => {
      const p = str(sc(t).ports)
      const ports = p !== undefined ? parsePortRange(p, '-') : undefined
      return { kind: 'masquerade', ...(ports ? { ports } : {}), random: sc(t).random === true, randomFully: sc(t).randomFully === true }
    },
  },
  REDIRECT: {
    options: { '--to-ports': valueOpt('ports'), '--random': flag('random') },
    build: (t) => {
      const p = str(sc(t).ports)
      const ports = p !== undefined ? parsePortRange(p, '-') : undefined
      return { kind: 'redirect', ...(ports ? { ports } : {}), random: sc(t).random === true }
    },
  },
  MARK: {
    options: MARK_TARGET_OPTIONS,
    build: (t) => ({ kind: 'mark', value: Number(sc(t).value ?? 0), mask: Number(sc(t).mask ?? 0) }),
  },
  CONNMARK: {
    options: {
      ...MARK_TARGET_OPTIONS,
      '--save-mark': flag('save'), '--restore-mark': flag('restore'),
      '--nfmask': maskOpt('nfmask'), '--ctmask': maskOpt('ctmask'),
      // libxt_CONNMARK: --mask sets both masks (`--restore-mark --mask 0x80` is `--nfmask 0x80 --ctmask 0x80`).
      '--mask': (p, t, neg) => { maskOpt('nfmask')(p, t, neg); if (sc(t).nfmask !== undefined) sc(t).ctmask = sc(t).nfmask },
    },
    build: (t) => {
      const nfmask = Number(sc(t).nfmask ?? ALL_ONES)
      const ctmask = Number(sc(t).ctmask ?? ALL_ONES)
      if (sc(t).save) return { kind: 'connmark-save', nfmask, ctmask }
      if (sc(t).restore) return { kind: 'connmark-restore', nfmask, ctmask }
      return { kind: 'connmark-set', value: Number(sc(t).value ?? 0), mask: Number(sc(t).mask ?? 0) }
    },
  },
}

for (const def of Object.values(TARGETS)) def.map = new Map(Object.entries(def.options ?? {}))
// Registries as Maps: a keyed property lookup with a word sliced from the line costs a string-table probe each time.
const TARGET_DEFS = new Map(Object.entries(TARGETS))

/** Targets that neither decide the verdict nor change addresses or marks the engine follows. */
export const PASSIVE_TARGETS = new Set([
  'LOG', 'NFLOG', 'ULOG', 'TRACE', 'NOTRACK', 'CT', 'AUDIT', 'TCPMSS', 'DSCP', 'TOS', 'TTL', 'HL', 'ECN', 'CLASSIFY',
  'CHECKSUM', 'SECMARK', 'CONNSECMARK', 'IDLETIMER', 'RATEEST', 'LED', 'TCPOPTSTRIP', 'SET', 'TEE',
])

/** Targets natlens knows exist but does not model: kept opaque, with a diagnostic. */
export const OPAQUE_TARGETS = new Set(['NFQUEUE', 'QUEUE', 'TPROXY', 'NETMAP', 'HMARK', 'SYNPROXY', 'ERROR', 'CLUSTERIP', 'DNPT', 'SNPT', 'MIRROR', 'SAME'])

export function isKnownTargetName(name: string): boolean {
  return TARGET_DEFS.has(name) || PASSIVE_TARGETS.has(name) || OPAQUE_TARGETS.has(name)
}

const PROTOCOL_MODULE: Record<string, string> = { tcp: 'tcp', udp: 'udp', sctp: 'sctp', dccp: 'dccp', udplite: 'udplite', icmp: 'icmp', 'ipv6-icmp': 'icmp6' }

export class RuleWordsParser {
  i = 0
  /** Set by value() when the old form `--opt ! value` put the negation after the option. */
  lateNeg = false
  private readonly loaded: MatchInst[] = []
  private readonly matches: Match[] = []
  private target: TargetInst | undefined
  private jump: { chain: string; goto: boolean } | undefined
  private jumpTarget: Target | undefined
  private protocol: string | undefined
  private counters: Counters | undefined
  private family: Family | undefined

  constructor(readonly words: readonly string[], readonly env: RuleWordsEnv) {}

  /** Reads the value of the current option; `!` before the value (old syntax) sets lateNeg. */
  value(m: MatchInst): string | undefined {
    let w = this.words[this.i]
    if (w === '!') {
      this.lateNeg = true
      this.i++
      w = this.words[this.i]
    }
    if (w === undefined) { this.bad(m, 'option value missing'); return undefined }
    this.i++
    m.end = this.i
    return w
  }

  targetValue(t: TargetInst): string | undefined {
    const w = this.words[this.i]
    if (w === undefined) { this.badTarget(t, 'option value missing'); return undefined }
    this.i++
    t.end = this.i
    return w
  }

  bad(m: MatchInst, message: string): void {
    if (!m.failed) this.env.sink.warn('iptables.bad-value', `-m ${m.module}: ${message}`, this.env.line, this.env.text)
    m.failed = true
  }

  badTarget(t: TargetInst, message: string): void {
    if (!t.failed) this.env.sink.warn('iptables.bad-value', `-j ${t.name}: ${message}`, this.env.line, this.env.text)
    t.failed = true
  }

  noteFamily(f: Family): void {
    if (this.family === undefined) this.family = f
  }

  parse(): RuleBody {
    const w = this.words
    let neg = false
    while (this.i < w.length) {
      const word = w[this.i++]!
      if (word === '!') { neg = true; continue }
      // Short options are read by their second character: comparing sliced strings one case at a time costs more.
      if (word.length === 2 && word.charCodeAt(0) === 45) {
        const c = word.charCodeAt(1)
        if (c === 109 /* m */) this.loadMatch(w[this.i++])
        else if (c === 106 /* j */) this.loadTarget(w[this.i++], false)
        else if (c === 115 /* s */) this.address('src', neg)
        else if (c === 100 /* d */) this.address('dst', neg)
        else if (c === 112 /* p */) this.proto(neg)
        else if (c === 105 /* i */) this.iface('in-iface', neg)
        else if (c === 111 /* o */) this.iface('out-iface', neg)
        else if (c === 103 /* g */) this.loadTarget(w[this.i++], true)
        else if (c === 102 /* f */) this.matches.push({ kind: 'fragment', negated: neg })
        else if (c === 99 /* c */) this.setCounters()
        else this.option(word, neg)
        neg = false
        continue
      }
      switch (word) {
        case '-s': case '--source': case '--src':
        case '-d': case '--destination': case '--dst':
          this.address(word === '-s' || word === '--source' || word === '--src' ? 'src' : 'dst', neg)
          break
        case '-i': case '--in-interface': case '-o': case '--out-interface':
          this.iface(word === '-i' || word === '--in-interface' ? 'in-iface' : 'out-iface', neg)
          break
        case '-p': case '--protocol':
          this.proto(neg)
          break
        case '-f': case '--fragment':
          this.matches.push({ kind: 'fragment', negated: neg })
          break
        case '-m': case '--match':
          this.loadMatch(w[this.i++])
          break
        case '-j': case '--jump':
          this.loadTarget(w[this.i++], false)
          break
        case '-g': case '--goto':
          this.loadTarget(w[this.i++], true)
          break
        case '-c': case '--set-counters':
          this.setCounters()
          break
        default:
          if (word.startsWith('-') && word.length > 1) this.option(word, neg)
          else this.env.sink.warn('iptables.stray-word', `word "${word}" belongs to no option`, this.env.line, this.env.text)
      }
      neg = false
    }
    return this.finish()
  }

  private address(kind: 'src' | 'dst', neg: boolean): void {
    let v = this.words[this.i++]
    if (v === '!') { neg = true; v = this.words[this.i++] }
    if (v === undefined) { this.env.sink.warn('iptables.bad-value', `-${kind[0]} without an address`, this.env.line, this.env.text); return }
    const cidr = parseCidr(v)
    if (!cidr) {
      this.env.sink.warn('iptables.bad-value', `cannot read address ${v}`, this.env.line, this.env.text)
      this.matches.push({ kind: 'opaque', negated: neg, module: kind, text: `${neg ? '! ' : ''}-${kind[0]} ${v}` })
      return
    }
    this.noteFamily(cidr.family)
    // The kernel drops `-s 0.0.0.0/0` (it matches everything), and iptables-save never prints it.
    if (cidr.prefix === 0 && !neg) return
    this.matches.push({ kind, negated: neg, cidr })
  }

  private iface(kind: 'in-iface' | 'out-iface', neg: boolean): void {
    let v = this.words[this.i++]
    if (v === '!') { neg = true; v = this.words[this.i++] }
    if (v === undefined || v.length === 0) { this.env.sink.warn('iptables.bad-value', 'interface option without a name', this.env.line, this.env.text); return }
    const wildcard = v.endsWith('+')
    this.matches.push({ kind, negated: neg, name: wildcard ? v.slice(0, -1) : v, wildcard })
  }

  private proto(neg: boolean): void {
    let v = this.words[this.i++]
    if (v === '!') { neg = true; v = this.words[this.i++] }
    if (v === undefined) { this.env.sink.warn('iptables.bad-value', '-p without a protocol', this.env.line, this.env.text); return }
    const protocol = normalizeProtocol(v)
    if (protocol === 'ipv6-icmp') this.noteFamily(6)
    if (!neg) this.protocol = protocol
    if (protocol === 'all' && !neg) return
    this.matches.push(protocolMatch(protocol, neg))
  }

  private setCounters(): void {
    const p = this.words[this.i++]
    const b = this.words[this.i++]
    if (p !== undefined && b !== undefined && isDigits(p) && isDigits(b)) this.counters = { packets: BigInt(p), bytes: BigInt(b) }
    else this.env.sink.warn('iptables.bad-value', '-c needs two numbers', this.env.line, this.env.text)
  }

  private loadMatch(name: string | undefined): MatchInst | undefined {
    if (name === undefined) { this.env.sink.warn('iptables.bad-value', '-m without a module name', this.env.line, this.env.text); return undefined }
    const def = MATCH_DEFS.get(name)
    const inst: MatchInst = { module: name, def, start: this.i - 2, end: this.i, out: undefined, failed: false, negatedAny: false, s: undefined }
    if (!def && !OPAQUE_MATCH_OPTIONS.has(name)) {
      this.env.sink.warn('iptables.unknown-match', `match module "${name}" is not known to natlens; the rule is kept but cannot be evaluated`, this.env.line, this.env.text)
      inst.failed = true
    }
    this.loaded.push(inst)
    return inst
  }

  private loadTarget(name: string | undefined, goto: boolean): void {
    if (name === undefined) { this.env.sink.warn('iptables.bad-value', `${goto ? '-g' : '-j'} without a name`, this.env.line, this.env.text); return }
    if (this.target || this.jump || this.jumpTarget) this.env.sink.warn('iptables.bad-value', 'rule has two targets; the last one is kept', this.env.line, this.env.text)
    this.target = undefined
    this.jump = undefined
    this.jumpTarget = undefined
    // Target names first (a small map), then chains: chain names are many, and their lookups miss the cache.
    const def = TARGET_DEFS.get(name)
    const known = def !== undefined || PASSIVE_TARGETS.has(name) || OPAQUE_TARGETS.has(name)
    if (goto || !known) {
      const chain = this.env.chains.get(name)
      if (chain) {
        this.jumpTarget = goto ? (chain.gotoTarget ??= { kind: 'jump', chain: chain.name, goto: true }) : (chain.jumpTarget ??= { kind: 'jump', chain: chain.name, goto: false })
        return
      }
      // Not declared: a chain declared later or missing, unless options follow that no loaded match takes; then an
      // extension target natlens does not know.
      const next = this.words[this.i]
      if (!goto && next !== undefined && next.startsWith('--') && !this.matchFor(next)) {
        this.target = { name, def: undefined, start: this.i - 2, end: this.i, failed: true, s: undefined, ranges: undefined }
        this.env.sink.warn('iptables.unknown-target', `target "${name}" with options is neither a declared chain nor a target natlens knows`, this.env.line, this.env.text)
        return
      }
      this.jump = { chain: name, goto }
      return
    }
    this.target = { name, def, start: this.i - 2, end: this.i, failed: false, s: undefined, ranges: undefined }
    if (OPAQUE_TARGETS.has(name)) {
      this.target.failed = true
      this.env.sink.warn('iptables.unknown-target', `target ${name} is not modelled by natlens; the rule is kept but cannot be evaluated`, this.env.line, this.env.text)
    }
  }

  private matchFor(opt: string): MatchInst | undefined {
    for (let k = this.loaded.length - 1; k >= 0; k--) {
      const m = this.loaded[k]!
      if (m.def && m.def.map!.has(opt)) return m
      if (m.def) continue
      const known = OPAQUE_MATCH_OPTIONS.get(m.module)
      if (known && (known.includes(opt) || (OPAQUE_PREFIX[m.module] !== undefined && opt.startsWith(OPAQUE_PREFIX[m.module]!)))) return m
    }
    return undefined
  }

  private option(opt: string, neg: boolean): void {
    this.lateNeg = false
    const t = this.target
    // A target with its own option table is asked first (iptables does the same once -j is seen).
    const th = t?.def?.map?.get(opt)
    if (t && th) {
      th(this, t, neg)
      return
    }
    let m = this.matchFor(opt)
    if (!m && this.protocol) {
      // `-p tcp --dport 80` without `-m tcp`: iptables loads the protocol's match by itself.
      const mod = PROTOCOL_MODULE[this.protocol]
      const def = mod ? MATCH_DEFS.get(mod) : undefined
      if (mod && def && def.map!.has(opt) && !this.loaded.some((x) => x.module === mod)) m = this.loadMatch(mod)
    }
    if (m) {
      if (neg) m.negatedAny = true
      const mh = m.def?.map!.get(opt)
      if (mh) {
        mh(this, m, neg)
        if (this.lateNeg) m.negatedAny = true
      } else {
        this.genericArgs()
      }
      m.end = this.i
      return
    }
    if (t && (!t.def?.options || t.failed)) {
      // Passive, unknown and opaque targets keep their options as text.
      this.genericArgs()
      t.end = this.i
      return
    }
    if (t && t.def?.options) {
      this.genericArgs()
      t.end = this.i
      this.badTarget(t, `unknown option ${opt}`)
      return
    }
    // An option of an unknown module was already reported with the module; otherwise report the option.
    const last = this.loaded[this.loaded.length - 1]
    if (last) {
      this.genericArgs()
      last.end = this.i
      if (!last.failed) {
        this.env.sink.warn('iptables.unknown-match', `option ${opt} is not known for -m ${last.module}; the rule is kept but cannot be evaluated`, this.env.line, this.env.text)
        last.failed = true
      }
      return
    }
    this.env.sink.warn('iptables.unknown-match', `option ${opt} belongs to no loaded match module`, this.env.line, this.env.text)
    this.matches.push({ kind: 'opaque', negated: neg, module: '?', text: opt })
  }

  /** Arguments of an option natlens does not know: the following words up to the next option. */
  private genericArgs(): void {
    while (this.i < this.words.length) {
      const w = this.words[this.i]!
      if (w === '!' || (w.startsWith('-') && w.length > 1 && !isDigits(w.slice(1)))) break
      this.i++
    }
  }

  private textOf(x: { start: number; end: number }): string {
    return joinIptablesWords(this.words.slice(Math.max(0, x.start), x.end))
  }

  private finish(): RuleBody {
    const matches = this.matches
    let comment: string | undefined
    for (const m of this.loaded) {
      if (!m.failed && m.def?.finish) m.def.finish(this, m)
      if (m.failed || !m.def) {
        const text = this.textOf(m)
        matches.push({ kind: 'opaque', negated: m.negatedAny || /(^| )! /.test(text), module: m.module, text })
        continue
      }
      if (m.out) for (const x of m.out) {
        if (x.kind === 'comment' && comment === undefined) comment = x.text
        matches.push(x)
      }
    }
    let target: Target
    if (this.jumpTarget) target = this.jumpTarget
    else if (this.jump) {
      const key = this.jump.goto ? ` ${this.jump.chain}` : this.jump.chain
      const known = this.env.jumps?.get(key)
      if (known) target = known
      else {
        target = { kind: 'jump', chain: this.jump.chain, goto: this.jump.goto }
        this.env.jumps?.set(key, target)
      }
    }
    else if (!this.target) target = NONE
    else if (this.target.failed || !this.target.def) {
      target = PASSIVE_TARGETS.has(this.target.name) ? { kind: 'passive', name: this.target.name } : { kind: 'opaque', name: this.target.name, text: this.textOf(this.target) }
    } else target = this.target.def.build(this.target)
    if (target.kind === 'opaque' && PASSIVE_TARGETS.has(target.name)) target = { kind: 'passive', name: target.name }
    if ((target.kind === 'snat' || target.kind === 'dnat') && target.to.length === 0) {
      this.env.sink.warn('iptables.bad-value', `${target.kind.toUpperCase()} without a --to range`, this.env.line, this.env.text)
    }
    const body: RuleBody = { matches, target }
    if (this.counters) body.counters = this.counters
    if (comment !== undefined) body.comment = comment
    if (this.family !== undefined) body.family = this.family
    return body
  }
}

export function parseRuleWords(words: readonly string[], start: number, env: RuleWordsEnv): RuleBody {
  const p = new RuleWordsParser(words, env)
  p.i = start
  return p.parse()
}
