// `natlens doctor` for people: one block per finding, evidence as file:line and the line itself, then what to do.
import type { DoctorReport } from './model.js'

export function renderDoctor(report: DoctorReport): string {
  const out: string[] = []
  const mark = { error: 'ERROR', warning: 'WARNING', info: 'info' } as const
  for (const f of report.findings) {
    out.push(`${mark[f.severity]} [${f.id}] ${f.title}`)
    for (const l of f.detail.split('\n')) out.push(`  ${l}`)
    if (f.evidence.length) {
      out.push('  evidence:')
      for (const e of f.evidence) out.push(`    ${e.file}${e.line ? `:${e.line}` : ''}  ${e.text}`)
    }
    out.push('  fix:')
    for (const l of f.fix.split('\n')) out.push(`    ${l}`)
    out.push('')
  }
  const s = report.summary
  out.push(report.findings.length === 0
    ? `No problem found (${report.checked.length} checks ran).`
    : `${s.errors} error${s.errors === 1 ? '' : 's'}, ${s.warnings} warning${s.warnings === 1 ? '' : 's'}, ${s.infos} note${s.infos === 1 ? '' : 's'} (${report.checked.length} checks ran).`)
  if (report.skipped.length) out.push(`Not checked: ${report.skipped.map((x) => `${x.id} (${x.reason})`).join('; ')}.`)
  return out.join('\n')
}
