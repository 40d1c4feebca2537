// The commands the collector may run, with exactly the arguments that only read. The runner checks every argv
// against this list before it starts a process (a plan mistake is refused, never run), and the tests check every
// argv the plan can produce and every process a real collection starts (strace) against it.

const NETNS_NAME = /^[A-Za-z0-9_.-]{1,64}$/

type ArgCheck = (args: readonly string[]) => string | undefined

const exactly = (...allowed: (readonly string[])[]): ArgCheck => (args) =>
  allowed.some((a) => a.length === args.length && a.every((x, i) => x === args[i])) ? undefined : `only ${allowed.map((a) => JSON.stringify(a.join(' '))).join(' or ')} is allowed`

/** `ip [-d] [-j] [-4|-6] (addr|link|rule|route) [show|list] [table all]`: listings only. */
const ipListing: ArgCheck = (args) => {
  let i = 0
  while (i < args.length && ['-d', '-j', '-4', '-6', '-details', '-json'].includes(args[i]!)) i++
  const object = args[i++]
  if (!object || !['addr', 'address', 'link', 'rule', 'route'].includes(object)) return `ip ${object ?? ''}: only addr, link, rule and route listings are allowed`
  if (args[i] === 'show' || args[i] === 'list') i++
  if (object === 'route' && args[i] === 'table' && args[i + 1] === 'all') i += 2
  return i === args.length ? undefined : `ip ${object}: ${args.slice(i).join(' ')} is not a listing`
}

/** tcpdump writing to standard output only: no -w FILE, no -z (runs a command on each file), no -C/-G rotation. */
const tcpdumpToStdout: ArgCheck = (args) => {
  let i = 0
  let sawWrite = false
  while (i < args.length) {
    const a = args[i]!
    if (a === '-n' || a === '-U') { i++; continue }
    if (a === '-i' || a === '-s' || a === '-c') {
      const v = args[i + 1]
      if (v === undefined) return `${a} needs a value`
      if (a !== '-i' && !/^\d+$/.test(v)) return `${a} ${v}: a number is expected`
      if (a === '-i' && !/^[A-Za-z0-9_.:@-]{1,32}$/.test(v)) return `-i ${v}: not an interface name`
      i += 2
      continue
    }
    if (a === '-w') {
      if (args[i + 1] !== '-') return '-w writes to standard output (-) only'
      sawWrite = true
      i += 2
      continue
    }
    // The BPF expression: one last argument that is not an option.
    if (i === args.length - 1 && !a.startsWith('-')) { i++; continue }
    return `tcpdump option ${a} is not allowed`
  }
  return sawWrite ? undefined : 'tcpdump must write pcap to standard output (-w -)'
}

const save: ArgCheck = (args) => (args.every((a) => a === '-c') ? undefined : 'only -c (counters) is allowed')

const COMMANDS: Record<string, ArgCheck> = {
  ip: ipListing,
  'iptables-legacy-save': save,
  'iptables-nft-save': save,
  'iptables-save': save,
  'ip6tables-legacy-save': save,
  'ip6tables-nft-save': save,
  'ip6tables-save': save,
  nft: exactly(['list', 'ruleset'], ['-j', 'list', 'ruleset']),
  conntrack: exactly(['-L'], ['-L', '-f', 'ipv6'], ['-S']),
  sysctl: exactly(['-a']),
  tcpdump: tcpdumpToStdout,
}

/**
 * The collector's own HTTP reader, run inside a namespace with the requests on stdin: `node …/collect/http-child.js`,
 * or natlens itself (`natlens collect --http-child`, the single executable; `node bin/run.js collect --http-child`).
 */
const HTTP_CHILD = /[/\\]collect[/\\]http-child\.js$/

function isHttpChild(file: string, args: readonly string[]): boolean {
  if (file !== process.execPath && !/(^|\/)node$/.test(file)) return false
  if (args.length === 1) return HTTP_CHILD.test(args[0]!)
  const rest = args.length === 3 && /\.[cm]?js$/.test(args[0]!) ? args.slice(1) : args
  return rest.length === 2 && rest[0] === 'collect' && rest[1] === '--http-child'
}

/** Why this argv is not a read-only command the collector may run; undefined when it is. */
export function readOnlyViolation(argv: readonly string[]): string | undefined {
  const [file, ...args] = argv
  if (!file) return 'empty argv'
  if (file === 'ip' && args[0] === 'netns' && args[1] === 'exec') {
    const ns = args[2]
    if (!ns || !NETNS_NAME.test(ns)) return `ip netns exec ${ns ?? ''}: not a namespace name`
    return readOnlyViolation(args.slice(3))
  }
  if (file === 'timeout') {
    let i = 0
    if (args[i] === '-s') { if (!/^(TERM|INT|KILL)$/.test(args[i + 1] ?? '')) return 'timeout -s: TERM, INT or KILL'; i += 2 }
    if (args[i] === '-k') { if (!/^\d+$/.test(args[i + 1] ?? '')) return 'timeout -k: a number of seconds'; i += 2 }
    if (!/^\d+$/.test(args[i] ?? '')) return 'timeout: a duration in seconds'
    return readOnlyViolation(args.slice(i + 1))
  }
  if (isHttpChild(file, args)) return undefined
  if (file === process.execPath || /(^|\/)node$/.test(file)) return 'node runs only the collector\'s HTTP reader'
  const check = COMMANDS[file]
  if (!check) return `${file} is not a command the collector runs`
  const why = check(args)
  return why ? `${file}: ${why}` : undefined
}

export function isReadOnly(argv: readonly string[]): boolean {
  return readOnlyViolation(argv) === undefined
}
