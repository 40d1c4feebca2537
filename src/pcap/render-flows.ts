// Text for people: the flow table (cli-table3), the progress bar, and the one-line problem messages.
import Table from 'cli-table3'
import type { CaptureSummary } from './capture.js'
import { tcpFlagNames, type Flow, type InterfaceRef } from './flows.js'

function endpoint(addr: string, port: number | null): string {
  if (port === null) return addr
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`
}

export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`
  const units = ['kB', 'MB', 'GB', 'TB']
  let v = n
  let u = -1
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000
    u++
  }
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[u]}`
}

export function interfaceLabel(i: InterfaceRef): string {
  if (i.name !== undefined && i.ifindex !== undefined) return `${i.name}(${i.ifindex})`
  if (i.name !== undefined) return i.name
  if (i.ifindex !== undefined) return `ifindex ${i.ifindex}`
  return `#${i.idb ?? '?'}`
}

/** SYN, FIN and RST each side sent, as `SYN,FIN / SYN,RST` (src / dst), plus ICMP errors. */
function flagsCell(f: Flow): string {
  const parts: string[] = []
  if (f.srcTcpFlags !== null) {
    const keep = (bits: number | null): string => ['SYN', 'FIN', 'RST'].filter((n) => tcpFlagNames(bits ?? 0).includes(n)).join(',') || '-'
    parts.push(`${keep(f.srcTcpFlags)} / ${keep(f.dstTcpFlags)}`)
  }
  if (f.icmpErrors > 0) parts.push(`ICMP error ×${f.icmpErrors}`)
  return parts.join(' ')
}

function duration(f: Flow): string {
  const s = Number(f.lastNs - f.firstNs) / 1e9
  return s < 1 ? `${(s * 1000).toFixed(1)} ms` : `${s.toFixed(2)} s`
}

export function renderFlowTable(flows: Flow[], options: { color: boolean }): string {
  const table = new Table({
    head: ['proto', 'src (first sender)', 'dst', 'packets →/←', 'bytes →/←', 'duration', 'SYN/FIN/RST src / dst', 'interfaces'],
    style: { head: options.color ? ['cyan'] : [], border: options.color ? ['grey'] : [], compact: true },
  })
  for (const f of flows) {
    table.push([
      f.inner ? `${f.proto} (inner)` : f.proto,
      endpoint(f.src, f.sport),
      endpoint(f.dst, f.dport),
      `${f.srcPackets} / ${f.dstPackets}`,
      `${formatBytes(f.srcBytes)} / ${formatBytes(f.dstBytes)}`,
      duration(f),
      flagsCell(f),
      f.interfaces.map(interfaceLabel).join(', '),
    ])
  }
  return table.toString()
}

/** `natlens: <file>: byte <offset>: <what>` — the line a problem is reported with. */
export function problemLine(s: CaptureSummary): string | undefined {
  if (!s.problem) return undefined
  // A file that could not be opened has no byte to point at.
  return s.problem.code === 'capture.unreadable' ? `${s.path}: ${s.problem.message}` : `${s.path}: byte ${s.problem.offset ?? 0}: ${s.problem.message}`
}

/** A progress bar on one terminal line, redrawn at most four times a second. */
export class ProgressBar {
  private last = 0
  private drawn = false
  constructor(private readonly stream: NodeJS.WriteStream) {}

  update(done: number, total: number | undefined, packets: number): void {
    const now = Date.now()
    if (now - this.last < 250) return
    this.last = now
    const width = 30
    const mb = (done / 1e6).toFixed(0)
    let line: string
    if (total && total > 0) {
      const frac = Math.min(1, done / total)
      const filled = Math.round(frac * width)
      line = `[${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}%  ${mb} of ${(total / 1e6).toFixed(0)} MB  ${packets.toLocaleString('en')} packets`
    } else {
      line = `${mb} MB  ${packets.toLocaleString('en')} packets`
    }
    this.stream.write(`\r${line}\x1b[K`)
    this.drawn = true
  }

  clear(): void {
    if (this.drawn) this.stream.write('\r\x1b[K')
    this.drawn = false
  }
}
