import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { cidrContains, formatCidr, formatIp, parseCidr, parseIp } from '../src/model/ip.js'

describe('IP parsing is strict', () => {
  it.each(['10.1', '010.0.0.1', '1.2.3.256', '1.2.3.4.5', '', ' 1.2.3.4', 'fe80::1%eth0', '1.2.3.-1'])('refuses %j', (t) => {
    expect(parseIp(t)).toBeUndefined()
  })
  it.each([['10.0.3.45', '10.0.3.45'], ['fd00::ac:0', 'fd00::ac:0'], ['2001:db8:0:0:0:0:0:1', '2001:db8::1'], ['::ffff:10.0.0.1', '::ffff:a00:1']])('reads %s', (t, out) => {
    expect(formatIp(parseIp(t)!)).toBe(out)
  })
  it('clears host bits of a prefix unless asked not to', () => {
    expect(formatCidr(parseCidr('10.0.3.45/16')!)).toBe('10.0.0.0/16')
    expect(parseCidr('10.0.3.45/16', { strictNetwork: true })).toBeUndefined()
    expect(formatCidr(parseCidr('10.0.0.0/255.255.0.0')!)).toBe('10.0.0.0/16')
    expect(parseCidr('10.0.0.0/255.0.255.0')).toBeUndefined()
  })
  it('tests membership', () => {
    expect(cidrContains(parseCidr('10.0.0.0/16')!, parseIp('10.0.255.1')!)).toBe(true)
    expect(cidrContains(parseCidr('10.0.0.0/16')!, parseIp('10.1.0.1')!)).toBe(false)
    expect(cidrContains(parseCidr('0.0.0.0/0')!, parseIp('::1')!)).toBe(false)
  })
  it('round-trips every IPv4 address', () => {
    fc.assert(fc.property(fc.ipV4(), (s) => formatIp(parseIp(s)!) === s))
  })
  it('never throws on arbitrary text', () => {
    fc.assert(fc.property(fc.string(), (s) => { parseIp(s); parseCidr(s); return true }))
  })
})
