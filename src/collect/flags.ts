// Values of collect's flags: durations (`30s`, `2m`, `1h`, `500ms`, a bare number of seconds) and sizes
// (`200M`, `1G`, `512k`, a bare number of bytes; powers of 1024, as tcpdump's -C is not).
import { NatlensError, ExitCode } from '../errors.js'

export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim())
  if (!m) throw new NatlensError(`${JSON.stringify(text)} is not a duration`, 'usage.duration', ExitCode.badInput, 'write it like 30s, 2m or 1h')
  const n = Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h']
  if (n < 1000 || n > 24 * 3_600_000) throw new NatlensError(`a capture of ${text} is out of range`, 'usage.duration', ExitCode.badInput, 'give between 1s and 24h')
  return Math.round(n)
}

export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kKmMgG])?i?[bB]?$/.exec(text.trim())
  if (!m) throw new NatlensError(`${JSON.stringify(text)} is not a size`, 'usage.size', ExitCode.badInput, 'write it like 200M, 1G or 512k')
  const n = Math.floor(Number(m[1]) * ({ k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m[2] ?? '').toLowerCase() as 'k' | 'm' | 'g'] ?? 1))
  // At least the pcap header and one small packet.
  if (n < 128) throw new NatlensError(`--max-size ${text} is too small for a capture`, 'usage.size', ExitCode.badInput, 'give at least 1k')
  return n
}
