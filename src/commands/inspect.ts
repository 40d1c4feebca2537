import { NatlensCommand, bundleArgs, bundleFlags } from './base.js'
import { loadNodeState } from '../sources/load.js'
import { renderInspect, toInspectJson, type InspectJson } from '../render/inspect.js'

export default class Inspect extends NatlensCommand {
  static override summary = 'Show what natlens found in a bundle: components and their eras, ENIs and tables, pods, VPC CIDRs, the SNAT policy.'
  static override description = 'Reads every file it is given (a directory, a .tar.gz from natlens collect or the EKS log collector, or loose files), recognises each by its content, and lists what it found, what it ignored and why, and every line it could not understand.'
  static override examples = [
    { description: 'The bundled example node', command: '<%= config.bin %> <%= command.id %> fixtures/example-node' },
    { description: 'As JSON, for scripts', command: '<%= config.bin %> <%= command.id %> fixtures/example-node --json' },
  ]
  static override strict = false
  static override args = bundleArgs
  static override flags = { ...bundleFlags }

  async run(): Promise<InspectJson> {
    const { argv, flags } = await this.parse(Inspect)
    const state = await loadNodeState(argv as string[], { prefer: flags.file ?? [] })
    const json = toInspectJson(state)
    this.log(renderInspect(json))
    return json
  }
}
