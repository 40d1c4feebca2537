// Prints "N passed, N failed, N skipped" from a vitest JSON report.
import { readFileSync } from 'node:fs'

const report = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const passed = report.numPassedTests ?? 0
const failed = (report.numFailedTests ?? 0) + (report.numFailedTestSuites ?? 0) - (report.numFailedTests > 0 ? 0 : 0)
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0)
const suitesFailedWithoutTests = (report.testResults ?? []).filter((r) => r.status === 'failed' && (r.assertionResults ?? []).length === 0).length
console.log(`${passed} passed, ${(report.numFailedTests ?? 0) + suitesFailedWithoutTests} failed, ${skipped} skipped`)
void failed
