// What `natlens doctor` reports: findings with their evidence (file:line and the line's text), a severity and
// what to do; the JSON contract (schemas/doctor.schema.json) is this shape. Fields may be added, never renamed.
import type { SourceRef } from '../model/evidence.js'
import type { NodeState } from '../model/node-state.js'
import type { Intent, IntentDiff } from '../intent/model.js'
import { diffIntent, intentOf } from '../intent/index.js'

export type FindingSeverity = 'error' | 'warning' | 'info'

export interface EvidenceLine {
  readonly file: string
  /** 1-based; 0 for a fact that is not line-oriented (a JSON document, a generated line). */
  readonly line: number
  readonly text: string
}

export interface Finding {
  /** The check that found it (stable; one check may report several findings). */
  readonly id: string
  readonly severity: FindingSeverity
  readonly title: string
  readonly detail: string
  readonly evidence: readonly EvidenceLine[]
  /** What to do, with commands where there are any. */
  readonly fix: string
}

export interface DoctorReport {
  readonly findings: Finding[]
  /** Every check that ran (with or without findings). */
  readonly checked: string[]
  /** Checks that could not run, with the missing input. */
  readonly skipped: { readonly id: string; readonly reason: string }[]
  readonly summary: { readonly errors: number; readonly warnings: number; readonly infos: number }
}

/** A check returns its findings, or says why it cannot run on this bundle. */
export type CheckResult = readonly Finding[] | { readonly skip: string }

export interface Check {
  readonly id: string
  /** One line: what the check looks for. */
  readonly description: string
  readonly run: (ctx: DoctorContext) => CheckResult
}

/** The node and what several checks share, computed once (the intent and its diff). */
export class DoctorContext {
  private intentCache?: { intent: Intent; diff: IntentDiff } | { none: string }
  constructor(readonly state: NodeState) {}

  intent(): { intent: Intent; diff: IntentDiff } | { none: string } {
    if (!this.intentCache) {
      const r = intentOf(this.state)
      this.intentCache = 'none' in r ? r : { intent: r.intent, diff: diffIntent(this.state, r.intent) }
    }
    return this.intentCache
  }
}

export function evidenceOf(ref: SourceRef): EvidenceLine {
  return { file: ref.artifact, line: ref.line, text: ref.text.replace(/^\s*\[\d+:\d+\]\s+/, '').trim() }
}

/** Evidence without repeats, in order. */
export function uniqueEvidence(refs: readonly (SourceRef | undefined)[]): EvidenceLine[] {
  const seen = new Set<string>()
  const out: EvidenceLine[] = []
  for (const r of refs) {
    if (!r) continue
    const e = evidenceOf(r)
    const k = `${e.file}\0${e.line}\0${e.text}`
    if (seen.has(k)) continue
    seen.add(k)
    out.push(e)
  }
  return out
}
