// Every file under ../shared/examples is read with no line left un-understood, or the gap is named here with why.
import { describe, expect, it } from 'vitest'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { loadNodeState } from '../../src/sources/load.js'
import { SHARED } from '../helpers.js'

/** Deliberate gaps: diagnostics that say something true about the input rather than about natlens. */
const KNOWN: { file: RegExp; code: RegExp; why: string }[] = [
  { file: /iptables-nvL-nat\.AWS-part\.txt$/, code: /undeclared-chain/, why: 'the file is only "the AWS part" of a listing: its jumps to KUBE-* chains point at chains it leaves out' },
  { file: /TestTracePacket/, code: /.*/, why: 'kube-proxy test input with unquoted comments (restore input, not iptables-save output); info only' },
  { file: /TestSyncProxyRulesRepeated/, code: /undeclared-chain/, why: 'a partial kube-proxy sync: it jumps to service chains that are already in the kernel, not in the file' },
]

describe('every file under shared/examples parses cleanly', async () => {
  const dirs = [join(SHARED, 'examples', 'kube-proxy'), ...(await readdir(join(SHARED, 'examples', 'node-states'))).map((d) => join(SHARED, 'examples', 'node-states', d))]
  it.each(dirs)('%s', async (dir) => {
    const state = await loadNodeState([dir])
    const unexplained = state.diagnostics.filter((d) => d.severity !== 'info' && d.code !== 'bundle.duplicate-source' && !KNOWN.some((k) => k.file.test(d.artifact) && k.code.test(d.code)))
    expect(unexplained.map((d) => `${d.artifact}:${d.line ?? ''} ${d.code} ${d.message}`)).toEqual([])
    // Every example file is recognised as some source; only the scenario notes are not.
    const unknown = state.artifacts.filter((a) => !a.kind && !/\.md$|container-ids\.txt$/.test(a.artifact))
    expect(unknown.map((a) => `${a.artifact}: ${a.reason}`)).toEqual([])
  })
})
