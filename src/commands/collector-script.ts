import { Flags } from '@oclif/core'
import { NatlensCommand } from './base.js'
import { collectorScript } from '../collect/script.js'
import { DEFAULT_CONNTRACK_LIMIT } from '../collect/plan.js'

export default class CollectorScript extends NatlensCommand {
  static override summary = 'Print a POSIX sh script that collects the same bundle as `natlens collect`, for nodes without Node.js.'
  static override description = `The script is generated from the same plan as \`natlens collect\` and uses standard tools only (timeout, sha256sum, sed, awk, grep, tar, curl): run it through SSM Run Command or in any root shell on the node. Its bundle has the same layout and manifest.json fields, and natlens reads it identically. It does not redact (run natlens collect --redact where Node.js is available).

  natlens collector-script > natlens-collect.sh
  sudo sh natlens-collect.sh -o /tmp/node.tar.gz
  sudo sh natlens-collect.sh --capture 30 --filter "host 10.0.9.88" -o /tmp/node.tar.gz`

  static override examples = [
    { description: 'The script, to save and copy to a node', command: '<%= config.bin %> <%= command.id %>' },
    { description: 'Keeping at most 20000 conntrack entries per family by default', command: '<%= config.bin %> <%= command.id %> --conntrack-limit 20000' },
  ]

  static override flags = {
    'conntrack-limit': Flags.integer({ summary: 'The script\'s default --conntrack-limit.', min: 1, default: DEFAULT_CONNTRACK_LIMIT }),
  }

  async run(): Promise<{ script: string }> {
    const { flags } = await this.parse(CollectorScript)
    const script = collectorScript({ natlensVersion: this.config.version, conntrackLimit: flags['conntrack-limit'] })
    if (!this.jsonEnabled()) process.stdout.write(script)
    return { script }
  }
}
