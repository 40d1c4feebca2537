// What a report says about how its bundle was made: the manifest.json `natlens collect` writes (who, when, which
// commands failed or were skipped, the capture) and what was redacted. Read field by field, since a manifest from
// another natlens version may lack some.
export interface ManifestSummary {
  readonly collector: string | null
  readonly natlensVersion: string | null
  readonly hostname: string | null
  readonly kernel: string | null
  readonly startedAt: string | null
  readonly finishedAt: string | null
  readonly commands: number
  /** Commands and reads that did not work: id, file and why. */
  readonly failed: readonly { readonly id: string; readonly file: string; readonly why: string }[]
  readonly skipped: readonly { readonly id: string; readonly reason: string }[]
  readonly capture: { readonly file: string; readonly packets: number | null; readonly endedBy: string | null } | null
}

export interface RedactionSummary {
  /** Whether the collection ran with --redact. */
  readonly redacted: boolean
  readonly categories: readonly string[]
  /** `kept` or `prefix-preserving`. */
  readonly ips: string | null
  readonly counts: Readonly<Record<string, number>>
  readonly files: readonly string[]
  readonly notes: readonly string[]
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : null)
const obj = (v: unknown): Record<string, unknown> | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? v as Record<string, unknown> : undefined)
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : [])

export function manifestSummary(m: Record<string, unknown>): { summary: ManifestSummary; redaction: RedactionSummary | null } {
  const commands = list(m.commands).map(obj).filter((x): x is Record<string, unknown> => !!x)
  const failed = commands
    .filter((c) => c.exitCode !== 0 || c.timedOut === true)
    .map((c) => ({
      id: str(c.id) ?? '?', file: str(c.file) ?? '?',
      why: c.timedOut === true ? 'timed out' : c.exitCode === null ? `ended by ${str(c.signal) ?? 'a signal'}` : `exit ${str(c.exitCode) ?? '?'}${typeof c.stderr === 'string' && c.stderr.trim() ? `: ${c.stderr.trim().split('\n')[0]!.slice(0, 160)}` : ''}`,
    }))
  const skipped = list(m.skipped).map(obj).filter((x): x is Record<string, unknown> => !!x).map((x) => ({ id: str(x.id) ?? '?', reason: str(x.reason) ?? '' }))
  const cap = obj(m.capture)
  const summary: ManifestSummary = {
    collector: str(m.collector), natlensVersion: str(m.natlensVersion), hostname: str(m.hostname), kernel: str(m.kernel),
    startedAt: str(m.startedAt), finishedAt: str(m.finishedAt), commands: commands.length, failed, skipped,
    capture: cap ? { file: str(cap.file) ?? '?', packets: typeof cap.packets === 'number' ? cap.packets : null, endedBy: str(cap.endedBy) } : null,
  }
  const options = obj(m.options)
  const r = obj(m.redaction)
  const redacted = options?.redact === true || r !== undefined
  const counts: Record<string, number> = {}
  for (const [k, v] of Object.entries(obj(r?.counts) ?? {})) if (typeof v === 'number') counts[k] = v
  const redaction: RedactionSummary | null = options || r
    ? {
      redacted,
      categories: list(r?.categories).map(str).filter((x): x is string => !!x),
      ips: str(r?.ips) ?? (options?.redactIps === true ? 'prefix-preserving' : redacted ? 'kept' : null),
      counts,
      files: list(r?.files).map(str).filter((x): x is string => !!x),
      notes: list(r?.notes).map(str).filter((x): x is string => !!x),
    }
    : null
  return { summary, redaction }
}

/** One line for the report: "redacted (hostnames, instance ids; IPs kept): 12 hostnames, 3 instance ids in 4 files". */
export function redactionWords(r: RedactionSummary | null): string {
  if (!r) return 'not recorded (the bundle has no natlens manifest)'
  if (!r.redacted) return 'none: collected without --redact'
  const counts = Object.entries(r.counts).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k}`)
  return `redacted${r.categories.length ? ` (${r.categories.join(', ')})` : ''}; IP addresses ${r.ips ?? 'kept'}${counts.length ? `; replaced ${counts.join(', ')}` : ''}${r.files.length ? ` in ${r.files.length} file${r.files.length === 1 ? '' : 's'}` : ''}`
}

export function manifestWords(m: ManifestSummary | null): string {
  if (!m) return 'none (not a natlens collect bundle)'
  const when = m.startedAt ? `, collected ${m.startedAt}${m.finishedAt ? ` – ${m.finishedAt}` : ''}` : ''
  return `${m.collector ?? 'natlens'}${m.natlensVersion ? ` ${m.natlensVersion}` : ''} on ${m.hostname ?? '?'}${m.kernel ? ` (kernel ${m.kernel})` : ''}${when}; ${m.commands} commands and reads, ${m.failed.length} failed, ${m.skipped.length} skipped${m.capture ? `; capture ${m.capture.file}${m.capture.packets !== null ? ` (${m.capture.packets} packets${m.capture.endedBy ? `, ended by ${m.capture.endedBy}` : ''})` : ''}` : ''}`
}
