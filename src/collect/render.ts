// What `natlens collect` tells people: one progress line per step on stderr (elapsed time first), and a summary
// on stdout that says where the bundle is, its size, what was not collected and why, and what to run next.
import type { CollectEvent, CollectSummary } from './collect.js'

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB']
  let v = n / 1024
  let u = 0
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++ }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`
}

export function formatMs(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`
}

const at = (ms: number) => `${(ms / 1000).toFixed(2)}s`.padStart(8)

/** One line (or none) for a progress event. */
export function progressLine(e: CollectEvent): string | undefined {
  switch (e.type) {
    case 'start':
      return `natlens collect: ${e.items} items into ${e.output}${e.netns ? ` (network namespace ${e.netns})` : ''}${e.root ? '' : ' (not root: items that need root are skipped)'}`
    case 'item': {
      const r = e.record
      const what = `${r.file}`.padEnd(34)
      if (r.written) return `${at(e.elapsedMs)}  ok     ${what} ${formatBytes(r.bytes).padStart(9)}  ${formatMs(r.durationMs)}${r.truncated ? `  (${r.note})` : ''}`
      return `${at(e.elapsedMs)}  ${r.exitCode === 0 ? 'empty' : 'FAIL '}  ${what} ${r.note ?? ''}`
    }
    case 'skip':
      return `${at(e.elapsedMs)}  skip   ${e.item.file.padEnd(34)} ${e.item.reason}`
    case 'capture-start':
      return `${at(e.elapsedMs)}  capture: ${e.argv.join(' ')} for ${formatMs(e.durationMs)} (Ctrl-C ends it early; the bundle is still written)`
    case 'capture-wait':
      return `${at(e.elapsedMs)}  state taken; capture running, ${formatMs(e.remainingMs)} left`
    case 'capture-end': {
      const c = e.capture
      return `${at(e.elapsedMs)}  capture ended (${c.endedBy}): ${c.packets} packets, ${formatBytes(c.bytes)}${c.kernelDrops ? `, ${c.kernelDrops} dropped by the kernel` : ''}${c.endedBy === 'error' ? `: ${c.stderr.split('\n').pop()}` : ''}`
    }
    case 'phase':
      return `${at(e.elapsedMs)}  taking the state again after the capture (after/)`
    case 'note':
      return `${at(e.elapsedMs)}  ${e.message}`
    case 'packing':
      return `${at(e.elapsedMs)}  writing the bundle`
  }
}

export function renderSummary(s: CollectSummary): string {
  const out: string[] = []
  out.push(`Bundle: ${s.output} (${formatBytes(s.bytes)}, ${s.files} files) in ${formatMs(s.durationMs)}; the state took ${formatMs(s.stateDurationMs)}`)
  if (s.interrupted) out.push(`Interrupted: ${s.interrupted}`)
  if (s.capture) out.push(`Capture: ${s.capture.file}, ${s.capture.packets} packets, ${formatBytes(s.capture.bytes)}, ended by ${s.capture.endedBy}${s.capture.kernelDrops ? `, ${s.capture.kernelDrops} dropped by the kernel` : ''}`)
  if (s.redaction) out.push(`Redacted: ${Object.entries(s.redaction.counts).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k}`).join(', ') || 'nothing found to replace'}; IP addresses ${s.redaction.ips === 'kept' ? 'kept' : 'mapped prefix-preserving'}`)
  if (s.failed.length) out.push(`Failed (${s.failed.length}):`, ...s.failed.map((f) => `  ${f.file}: ${f.why}`))
  if (s.skipped.length) out.push(`Not collected (${s.skipped.length}):`, ...s.skipped.map((x) => `  ${x.file}: ${x.reason}`))
  out.push(`Next: ${s.next[0]}`, ...s.next.slice(1).map((n) => `      ${n}`))
  return out.join('\n')
}
