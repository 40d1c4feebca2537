// Which component wrote a rule: told by chain names, comments and table names, as each component spells them.
import type { ComponentName } from './node-state.js'
import type { Rule, Table } from './netfilter.js'

const CHAIN_OWNERS: readonly [RegExp, ComponentName][] = [
  [/^AWS-/, 'vpc-cni'],
  [/^KUBE-/, 'kube-proxy'],
  [/^CNI-E[46]-/, 'egress-cni'],
  [/^CNI-(HOSTPORT|DN-|SN-)/, 'portmap'],
  [/^cali-/, 'calico'],
  [/^(CILIUM|OLD_CILIUM)_/, 'cilium'],
  [/^FLANNEL-/, 'flannel'],
  [/^IP-MASQ/, 'ip-masq-agent'],
  [/^DOCKER/, 'docker'],
]

export function ownerOfChain(chain: string): ComponentName | undefined {
  for (const [re, owner] of CHAIN_OWNERS) if (re.test(chain)) return owner
  return undefined
}

export function ownerOfTable(table: Table): ComponentName | undefined {
  if (table.origin !== 'nft') return undefined
  if (table.name === 'aws-cni') return 'vpc-cni'
  if (table.name === 'kube-proxy') return 'kube-proxy'
  if (/^cilium/.test(table.name)) return 'cilium'
  if (/^calico/.test(table.name)) return 'calico'
  return undefined
}

function ownerOfComment(comment: string | undefined): ComponentName | undefined {
  if (!comment) return undefined
  if (/^AWS[ ,]/.test(comment)) return 'vpc-cni'
  if (/^kubernetes /.test(comment)) return 'kube-proxy'
  if (/^name: "aws-cni" id: /.test(comment)) return 'egress-cni'
  if (/^cali:/.test(comment)) return 'calico'
  if (/^cilium/.test(comment)) return 'cilium'
  if (/^flanneld/.test(comment)) return 'flannel'
  if (/^dnat name: |^snat name: /.test(comment)) return 'portmap'
  return undefined
}

/** The owner of a rule: its chain's, else its comment's, else the chain it jumps to, else `unknown` (hand-written). */
export function ownerOfRule(rule: Rule, table?: Table): ComponentName {
  const byTable = table ? ownerOfTable(table) : undefined
  if (byTable) return byTable
  const byChain = ownerOfChain(rule.chain)
  if (byChain) return byChain
  const byComment = ownerOfComment(rule.comment)
  if (byComment) return byComment
  if (rule.target.kind === 'jump') return ownerOfChain(rule.target.chain) ?? 'unknown'
  return 'unknown'
}
