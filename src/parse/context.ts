import { DiagnosticSink } from '../model/evidence.js'
import type { Family } from '../model/ip.js'

/**
 * What every parser gets: the artifact's name (for evidence and diagnostics), a sink for diagnostics, and
 * hints the caller knows (the family for `ip -6 rule` output, the table for `iptables -t nat -nvL`).
 * Parsers never throw on bad input: a line they cannot read becomes a diagnostic with its line number.
 */
export interface ParseContext {
  readonly artifact: string
  readonly sink: DiagnosticSink
  readonly family?: Family
  readonly table?: string
}

export function makeContext(artifact: string, hints: { family?: Family; table?: string } = {}): ParseContext {
  return { artifact, sink: new DiagnosticSink(artifact), ...hints }
}

/** Splits text into lines, keeping 1-based numbers; a trailing newline does not make an empty last line. */
export function lines(text: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = []
  const parts = text.split(/\r?\n/)
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop()
  parts.forEach((t, i) => out.push({ line: i + 1, text: t }))
  return out
}
