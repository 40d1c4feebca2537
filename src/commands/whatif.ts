import { Flags } from '@oclif/core'
import { NatlensCommand, bundleArgs, bundleFlags } from './base.js'
import { loadNodeState } from '../sources/load.js'
import { parseSettingChange, SETTABLE, type SettingChange } from '../intent/whatif.js'
import { captureFlows, whatIf } from '../intent/whatif-run.js'
import { renderWhatIf, toWhatIfJson, type WhatIfJson } from '../intent/whatif-report.js'
import { NatlensError } from '../errors.js'

export default class WhatIf extends NatlensCommand {
  static override summary = 'Predict what changing VPC CNI settings (or a service\'s externalTrafficPolicy) does to each flow: the rules the changed settings produce, and the flows whose source address or egress interface changes.'
  static override description = `Rebuilds the rules the VPC CNI would install with the changed settings for the CNI era the node runs, puts them in place of its current rules (kube-proxy's and every other rule stay), and explains each flow on both states: the flows of a capture (--pcap, or a capture in the bundle), or every pod against representative destinations (--all-pods, the default without a capture).

Settings: ${SETTABLE.join('; ')}.

--show-rules prints the whole changed table set as iptables-restore input (and nft input for table ip aws-cni), ready for iptables-restore in a test namespace. Exit status 0, 2 for bad input.`
  static override examples = [
    { description: 'Exclude on-premises networks from SNAT', command: '<%= config.bin %> <%= command.id %> fixtures/example-node --set AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS=192.168.0.0/16' },
    { description: 'Turn SNAT off (a NAT gateway translates instead), every flow listed', command: '<%= config.bin %> <%= command.id %> fixtures/example-node --set AWS_VPC_K8S_CNI_EXTERNALSNAT=true --all' },
    { description: 'A VPC CIDR block associated later, as JSON', command: '<%= config.bin %> <%= command.id %> fixtures/example-node --set ADD_VPC_CIDR=100.64.0.0/16 --json' },
    { description: 'The rules to apply, as iptables-restore input', command: '<%= config.bin %> <%= command.id %> fixtures/example-node --set AWS_VPC_K8S_CNI_RANDOMIZESNAT=hashrandom --show-rules' },
  ]
  static override strict = false
  static override args = bundleArgs
  static override flags = {
    ...bundleFlags,
    set: Flags.string({ multiple: true, required: true, summary: 'A setting to change: NAME=VALUE (repeatable).' }),
    pcap: Flags.string({ multiple: true, summary: 'Re-explain the flows of this capture (pcap, pcapng; repeatable).' }),
    'all-pods': Flags.boolean({ summary: 'Re-explain every pod against representative destinations (the default without a capture).' }),
    all: Flags.boolean({ summary: 'List every flow, not only those that change.' }),
    'show-rules': Flags.boolean({ summary: 'Print the changed tables as iptables-restore input.' }),
  }

  async run(): Promise<WhatIfJson> {
    const { argv, flags } = await this.parse(WhatIf)
    const changes: SettingChange[] = flags.set.map((s) => {
      const c = parseSettingChange(s)
      if (typeof c === 'string') throw new NatlensError(c, 'usage.set', 2, `natlens whatif BUNDLE --set ${SETTABLE[1]!.split(' ')[0]}`)
      return c
    })
    const state = await loadNodeState(argv as string[], { prefer: flags.file ?? [] })
    const bundled = state.captures.flatMap((c) => (c.path ? [c.path] : []))
    const pcaps = flags.pcap ?? (flags['all-pods'] ? [] : bundled)
    const flows = pcaps.length ? await captureFlows(state, pcaps) : 'all-pods' as const
    const json = toWhatIfJson(whatIf(state, changes, flows, 'capture'))
    this.log(renderWhatIf(json, { all: flags.all, rules: flags['show-rules'] }))
    return json
  }
}
