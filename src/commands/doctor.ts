import { Flags } from '@oclif/core'
import { NatlensCommand, bundleArgs, bundleFlags } from './base.js'
import { loadNodeState } from '../sources/load.js'
import { CHECKS, hasProblems, runDoctor, type DoctorReport } from '../doctor/index.js'
import { renderDoctor } from '../doctor/render.js'
import { ExitCode } from '../errors.js'

export default class Doctor extends NatlensCommand {
  static override summary = 'Check a node for the known problems of EKS node networking, each with its evidence (file:line), severity and what to do.'
  static override description = `Checks: ${CHECKS.map((c) => `${c.id} (${c.description})`).join('; ')}.

Exit status: 1 when an error or a warning is found, 0 when not (notes alone do not count), 2 for bad input. A check whose inputs are not in the bundle is listed as not checked.`
  static override examples = [
    { description: 'Every check on the example node', command: '<%= config.bin %> <%= command.id %> fixtures/example-node' },
    { description: 'As JSON, for scripts ({findings, checked, skipped, summary})', command: '<%= config.bin %> <%= command.id %> fixtures/example-node --json' },
    { description: 'Only the settings-vs-rules and pod ip rule checks', command: '<%= config.bin %> <%= command.id %> fixtures/example-node --check vpc-cni-intent --check pod-ip-rules' },
  ]
  static override strict = false
  static override args = bundleArgs
  static override flags = {
    ...bundleFlags,
    check: Flags.option({ options: CHECKS.map((c) => c.id), multiple: true, summary: 'Run only this check (repeatable).' })(),
  }

  async run(): Promise<DoctorReport> {
    const { argv, flags } = await this.parse(Doctor)
    const state = await loadNodeState(argv as string[], { prefer: flags.file ?? [] })
    const report = runDoctor(state, flags.check ? CHECKS.filter((c) => flags.check!.includes(c.id)) : CHECKS)
    this.log(renderDoctor(report))
    // The report is printed (or returned as JSON) either way; the exit status says whether anything needs attention.
    if (hasProblems(report)) process.exitCode = ExitCode.problem
    return report
  }
}
