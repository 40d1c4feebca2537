// Every fact natlens knows about a node carries where it was read: the artifact (a file name inside the bundle,
// or a command), the 1-based line, and the raw text. Diagnostics are kept beside the facts, never thrown away.

export interface SourceRef {
  /** File name as the user knows it (path relative to the bundle root, or the name given on the command line). */
  readonly artifact: string
  /** 1-based line number; 0 when the fact is not line-oriented (a JSON document, a whole file). */
  readonly line: number
  /** The raw text the fact was read from (one line, or a short JSON excerpt). */
  readonly text: string
}

export type Severity = 'error' | 'warning' | 'info'

export interface Diagnostic {
  readonly severity: Severity
  readonly artifact: string
  readonly line?: number
  /** Byte offset, for binary inputs. */
  readonly offset?: number
  readonly message: string
  readonly text?: string
  /** A stable machine-readable code, e.g. `iptables.unknown-match`. */
  readonly code: string
}

export function formatDiagnostic(d: Diagnostic): string {
  const where = d.line !== undefined ? `${d.artifact}:${d.line}` : d.offset !== undefined ? `${d.artifact}@${d.offset}` : d.artifact
  return `${d.severity}: ${where}: ${d.message}${d.text ? `\n    ${d.text}` : ''}`
}

/** Collects diagnostics for one artifact while a parser runs. */
export class DiagnosticSink {
  readonly items: Diagnostic[] = []
  constructor(readonly artifact: string) {}

  add(severity: Severity, code: string, message: string, line?: number, text?: string): void {
    this.items.push({ severity, code, artifact: this.artifact, message, ...(line !== undefined ? { line } : {}), ...(text !== undefined ? { text } : {}) })
  }
  warn(code: string, message: string, line?: number, text?: string): void { this.add('warning', code, message, line, text) }
  error(code: string, message: string, line?: number, text?: string): void { this.add('error', code, message, line, text) }
  info(code: string, message: string, line?: number, text?: string): void { this.add('info', code, message, line, text) }
}
