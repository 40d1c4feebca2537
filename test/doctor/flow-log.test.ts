// VPC Flow Log records against the node: the default v2 format, custom formats with pkt-srcaddr/pkt-dstaddr (given
// as --flow-log-format or as the header line of a delivered log file), and what the shown address means.
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { explainFlowLogRecord, parseFlowLogFormat, parseFlowLogRecord, renderFlowLog } from '../../src/doctor/flow-log.js'
import { isNatlensError } from '../../src/errors.js'
import { exampleFiles, stateOf, change, replaceLine } from './states.js'

const node = stateOf(exampleFiles())
/** version 2 default format: version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status */
const v2 = (src: string, dst: string, sport: number, dport: number, proto = 6) => `2 123456789012 eni-0a1b2c3d4e5f6a7b8 ${src} ${dst} ${sport} ${dport} ${proto} 12 1840 1700000000 1700000060 ACCEPT OK`
const CUSTOM = '${version} ${interface-id} ${srcaddr} ${dstaddr} ${pkt-srcaddr} ${pkt-dstaddr} ${srcport} ${dstport} ${protocol} ${action}'

describe('reading records', () => {
  it('the default format, field by field', () => {
    const r = parseFlowLogRecord(v2('10.0.3.45', '93.184.216.34', 41234, 443))
    expect(typeof r).not.toBe('string')
    if (typeof r === 'string') return
    expect(r.fields).toMatchObject({ version: '2', 'interface-id': 'eni-0a1b2c3d4e5f6a7b8', srcaddr: '10.0.3.45', dstaddr: '93.184.216.34', srcport: '41234', dstport: '443', protocol: '6', action: 'ACCEPT', 'log-status': 'OK' })
  })
  it('a custom format from --flow-log-format, in ${field} or plain header syntax', () => {
    for (const format of [CUSTOM, CUSTOM.replace(/\$\{([^}]*)\}/g, '$1')]) {
      const r = parseFlowLogRecord('5 eni-0f1e 10.0.6.120 10.0.20.15 10.0.9.88 10.0.20.15 41234 5432 6 ACCEPT', format)
      expect(r).toMatchObject({ fields: { srcaddr: '10.0.6.120', 'pkt-srcaddr': '10.0.9.88', dstport: '5432' } })
    }
  })
  it('a header line before the record (the files Flow Logs deliver to S3)', () => {
    const r = parseFlowLogRecord('version interface-id srcaddr pkt-srcaddr dstaddr dstport protocol action\n5 eni-0f1e 10.0.6.120 10.0.9.88 10.0.20.15 5432 6 ACCEPT')
    expect(r).toMatchObject({ fields: { srcaddr: '10.0.6.120', 'pkt-srcaddr': '10.0.9.88' } })
  })
  it.each([
    ['a record with too few fields', '2 123 eni-0a 10.0.3.45', undefined, /4 fields, the format 14/],
    ['an unknown field in the format', '2 10.0.3.45', '${version} ${srcadr}', /unknown flow log field "srcadr"/],
    ['an empty format', '2', '   ', /empty/],
    ['a header line only', 'version srcaddr dstaddr', undefined, /only a header/],
  ])('%s is refused with a message, not an exception', (_what, line, format, message) => {
    const r = parseFlowLogRecord(line, format)
    expect(typeof r).toBe('string')
    expect(r).toMatch(message)
  })
  it('never throws on arbitrary input', () => {
    fc.assert(fc.property(fc.string(), fc.option(fc.string(), { nil: undefined }), (line, format) => { parseFlowLogRecord(line, format); parseFlowLogFormat(format ?? '') }), { numRuns: 300 })
  })
})

describe('what the address in the record means on the example node', () => {
  it('srcaddr is the node\'s primary IP, destination off the VPC: every pod would be SNATed to it — the node\'s SNAT', () => {
    const x = explainFlowLogRecord(node, v2('10.0.3.45', '93.184.216.34', 41234, 443))
    expect(x).toMatchObject({ direction: 'egress', shown: '10.0.3.45', packet: null, interface: 'eth0', verdict: 'node-snat' })
    expect(x.candidates.every((c) => c.snat === true && c.sourceAfter === '10.0.3.45')).toBe(true)
    expect(x.evidence.some((e) => e.file === 'iptables-save-nat.txt' && e.line === 31)).toBe(true)
  })
  it('srcaddr is the node\'s primary IP, destination in the VPC: no pod is SNATed there — the secondary-address behaviour', () => {
    const x = explainFlowLogRecord(node, v2('10.0.3.45', '10.0.20.15', 41234, 5432))
    expect(x.verdict).toBe('secondary-address')
    expect(x.detail.join(' ')).toMatch(/pkt-srcaddr/)
    expect(x.evidence.some((e) => e.file === 'iptables-save-nat.txt' && e.line === 30)).toBe(true)
  })
  it('srcaddr is eth1\'s primary IP and pkt-srcaddr the pod: the secondary-address behaviour, confirmed by explain', () => {
    const x = explainFlowLogRecord(node, '5 eni-0f1e 10.0.6.120 10.0.20.15 10.0.9.88 10.0.20.15 41234 5432 6 ACCEPT', CUSTOM)
    expect(x).toMatchObject({ verdict: 'secondary-address', shown: '10.0.6.120', packet: '10.0.9.88', interface: 'eth1' })
    expect(x.candidates).toEqual([expect.objectContaining({ pod: '10.0.9.88', snat: false, egressInterface: 'eth1' })])
    expect(x.detail.join(' ')).toMatch(/natlens explain agrees/)
  })
  it('srcaddr and pkt-srcaddr both the node\'s primary IP: SNAT (the packet itself carried it)', () => {
    const x = explainFlowLogRecord(node, '5 eni-0a1b 10.0.3.45 93.184.216.34 10.0.3.45 93.184.216.34 10541 443 6 ACCEPT', CUSTOM)
    expect(x.verdict).toBe('node-snat')
  })
  it('pkt-srcaddr the primary ENI\'s IP but srcaddr eth1\'s: SNATed and sent out the wrong ENI (the missing connmark)', () => {
    const x = explainFlowLogRecord(node, '5 eni-0f1e 10.0.6.120 93.184.216.34 10.0.3.45 93.184.216.34 10541 443 6 ACCEPT', CUSTOM)
    expect(x.verdict).toBe('node-snat')
    expect(x.summary).toMatch(/sent out eth1/)
  })
  it('srcaddr is a pod\'s own address: the pod itself, not SNATed', () => {
    const x = explainFlowLogRecord(node, v2('10.0.7.201', '10.0.20.15', 41234, 5432))
    expect(x).toMatchObject({ verdict: 'pod-address', shown: '10.0.7.201' })
  })
  it('eth1\'s primary IP to the internet: no pod leaves with it there (they are SNATed to eth0\'s) — the node\'s own traffic', () => {
    expect(explainFlowLogRecord(node, v2('10.0.6.120', '93.184.216.34', 41234, 443)).verdict).toBe('node-address')
  })
  it('ingress to the node\'s primary IP without pkt-dstaddr cannot be told apart, and says what to add', () => {
    const x = explainFlowLogRecord(node, v2('10.0.20.15', '10.0.3.45', 5432, 41234))
    expect(x).toMatchObject({ direction: 'ingress', verdict: 'undetermined' })
    expect(x.detail.join(' ')).toMatch(/pkt-dstaddr/)
  })
  it('ingress with pkt-dstaddr a pod on eth1: the secondary-address behaviour', () => {
    const x = explainFlowLogRecord(node, '5 eni-0f1e 10.0.20.15 10.0.6.120 10.0.20.15 10.0.9.88 5432 41234 6 ACCEPT', CUSTOM)
    expect(x).toMatchObject({ direction: 'ingress', verdict: 'secondary-address', packet: '10.0.9.88' })
  })
  it('addresses of another node', () => {
    expect(explainFlowLogRecord(node, v2('10.0.50.1', '93.184.216.34', 1, 443)).verdict).toBe('not-this-node')
  })
  it('with EXTERNALSNAT=true the node\'s IP in srcaddr is pods keeping their address (no SNAT rule)', () => {
    const ext = stateOf(change(change(exampleFiles(), 'networkutils-env-settings.json', (t) => t.replace('"AWS_VPC_K8S_CNI_EXTERNALSNAT":false', '"AWS_VPC_K8S_CNI_EXTERNALSNAT":true')), 'iptables-save-nat.txt',
      (t) => replaceLine(replaceLine(t, '-A AWS-SNAT-CHAIN-0 ! -o vlan+', null), '-A POSTROUTING -m comment --comment "AWS SNAT CHAIN"', null)))
    expect(explainFlowLogRecord(ext, v2('10.0.3.45', '93.184.216.34', 41234, 443)).verdict).toBe('secondary-address')
  })
  it('a record without any address is bad input (exit 2)', () => {
    try {
      explainFlowLogRecord(node, '2 123 eni-0a - - - - - - - - - NODATA')
      expect.unreachable()
    } catch (e) {
      expect(isNatlensError(e) && e.exit).toBe(2)
    }
  })
  it('renders the verdict, the pods and the evidence for people', () => {
    const text = renderFlowLog(explainFlowLogRecord(node, v2('10.0.3.45', '93.184.216.34', 41234, 443)))
    expect(text.split('\n')[0]).toMatch(/^node-snat: 10\.0\.3\.45 is the node's SNAT address/)
    expect(text).toMatch(/iptables-save-nat\.txt:31/)
  })
})
