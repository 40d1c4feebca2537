// Every capture of ../shared/corpus/pcaps read by natlens and compared with the tshark oracle: packet count,
// link types, interface names (capinfos), packets per interface, SLL2 ifindex counts, per-protocol counts,
// and the conversation tables (all of them, and per interface for multi-interface files). Where natlens deliberately differs from
// tshark, DEVIATIONS below says what natlens reports instead and why; each one is checked to still differ
// from the oracle, so a deviation that stops being one fails the test.
import { readdirSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { PCAPS, readNatlens, readOracle, type ConvRow, type View } from './oracle-view.js'

type Deviation =
  | { field: 'linktypes' | 'packets_per_interface' | 'interface_names'; natlens: unknown; why: string }
  | { protocol: string; natlens: number; why: string }
  /** table: ipv4|ipv6|tcp|udp, or "S:N/udp" per interface; row "a[:port] b[:port]"; natlens: fields that differ, or null when natlens has no such row. */
  | { table: string; row: string; natlens: Partial<ConvRow> | null; why: string }

// Reasons shared by several files.
const FRAGMENTS = 'natlens does not reassemble; it reads the ports from the first fragment and counts every fragment of the datagram in its flow (tshark with reassembly off counts only a first fragment that holds the whole transport header)'
const CUT_TRANSPORT = 'natlens counts a packet in its TCP/UDP flow as soon as the ports are readable; tshark leaves packets whose transport header is cut short (or that raised an exception earlier) out of its conversation tap'
const MALFORMED_IPV6 = 'tshark stops at a malformed header before its IPv6 conversation tap runs; natlens counts the packet from the addresses it could read'
const SPB_TIME = 'a pcapng simple packet block has no timestamp: tshark dates it 1970-01-01 (or, here, gives the conversation a duration that matches none of its frame times); natlens gives it the previous packet\'s timestamp'

const DEVIATIONS: Record<string, Deviation[]> = {
  'packetnet--udp-ip-fragmented.pcap': [
    { table: 'udp', row: '10.226.40.56:5060 10.226.2.154:5060', natlens: { frames_a_to_b: 8, bytes_a_to_b: 7688 }, why: FRAGMENTS },
  ],
  'tcpdump--afs.pcap': [
    { table: 'udp', row: '131.151.32.21:7001 131.151.1.146:7000', natlens: { frames_b_to_a: 208, bytes_b_to_a: 291112 }, why: FRAGMENTS },
  ],
  'zeek--ipv4_fragmented-1.pcap': [
    { table: 'udp', row: '164.1.123.163:123 164.1.123.61:137', natlens: { frames_a_to_b: 3, bytes_a_to_b: 548 }, why: FRAGMENTS },
  ],
  'zeek--ipv4_fragmented-syn.pcap': [
    { table: 'tcp', row: '192.168.1.100:12345 10.0.0.5:80', natlens: { frames_a_to_b: 2, bytes_a_to_b: 108, frames_b_to_a: 0, bytes_b_to_a: 0, duration: 0.000065 },
      why: `the SYN's first fragment carries the ports but not the whole TCP header, so tshark has no TCP conversation; ${FRAGMENTS}` },
  ],
  'zeek--ipv6-fragmented-dns.pcap': [
    { table: 'ipv6', row: '2001:470:1f11:81f:d138:5f55:6d4:1fe2 2607:f740:b::f93', natlens: { frames_b_to_a: 5, bytes_b_to_a: 4213, duration: 20.237826 },
      why: 'tshark 4.0 leaves non-final IPv6 fragments out of its IPv6 conversation table; natlens counts every packet' },
    { table: 'udp', row: '2001:470:1f11:81f:d138:5f55:6d4:1fe2:51851 2607:f740:b::f93:53', natlens: { frames_b_to_a: 3, bytes_b_to_a: 3424, duration: 5.084025 }, why: FRAGMENTS },
    { table: 'udp', row: '2607:f740:b::f93:0 2001:470:1f11:81f:d138:5f55:6d4:1fe2:0', natlens: { frames_a_to_b: 1, bytes_a_to_b: 404, frames_b_to_a: 0, bytes_b_to_a: 0, duration: 0 },
      why: 'frame 4 is the last fragment of a datagram whose first fragment was not captured: natlens keeps it in a UDP flow without ports (null in JSON, 0 here); tshark counts it in no UDP conversation' },
  ],
  'tcpdump--ip6_frag_asan.pcap': [
    { table: 'ipv6', row: '452:22:19:0:41a:e4ff:10ff:484d 2243:80:1400:100:19:ffff:ffff:fffb', natlens: { frames_a_to_b: 1, bytes_a_to_b: 262144, frames_b_to_a: 0, bytes_b_to_a: 0, duration: 0 },
      why: 'a non-final IPv6 fragment (fuzzed): tshark 4.0 leaves those out of its IPv6 conversation table' },
  ],
  'tcpdump--ipv6-next-header-oobr-1.pcap': [
    { table: 'ipv6', row: '3030:3030:3030:3030:3030:3030:3030:3030 3030:3030:3030:3030:3030:3030:3030:3030', natlens: { frames_a_to_b: 1, bytes_a_to_b: 262144, frames_b_to_a: 0, bytes_b_to_a: 0, duration: 0 }, why: MALFORMED_IPV6 },
  ],
  'tcpdump--ipv6hdr-heapoverflow.pcap': [
    { table: 'ipv6', row: '3030:3030:3030:3030:3030:3030:3030:3030 3030:3030:3030:3030:3030:3030:3030:3030', natlens: { frames_a_to_b: 1, bytes_a_to_b: 262144, frames_b_to_a: 0, bytes_b_to_a: 0, duration: 0 }, why: MALFORMED_IPV6 },
  ],
  'tcpdump--tcp_header_heapoverflow.pcap': [
    { table: 'tcp', row: '48.48.48.48:12336 48.48.48.48:12336', natlens: { frames_a_to_b: 1, bytes_a_to_b: 262144, frames_b_to_a: 0, bytes_b_to_a: 0, duration: 0 }, why: CUT_TRANSPORT },
  ],
  'tcpdump--udp-length-heapoverflow.pcap': [
    { table: 'udp', row: '48.48.48.48:12336 48.48.48.48:12336', natlens: { frames_a_to_b: 1, bytes_a_to_b: 262144, frames_b_to_a: 0, bytes_b_to_a: 0, duration: 0 }, why: CUT_TRANSPORT },
  ],
  'zeek--tcp_truncated-header.pcap': [
    { table: 'tcp', row: '128.3.26.249:25 201.186.157.67:60827', natlens: null,
      why: 'natlens counts frame 1 (its TCP header is cut after the ports), so its side A (src) is 201.186.157.67, which sent it; tshark skips that frame and starts the conversation at the reply' },
    { table: 'tcp', row: '201.186.157.67:60827 128.3.26.249:25', natlens: { frames_a_to_b: 10, bytes_a_to_b: 712, frames_b_to_a: 14, bytes_b_to_a: 1281, duration: 1.511184 }, why: CUT_TRANSPORT },
  ],
  'zeek--ipv6-mobility-dst-opts.pcap': [
    { protocol: 'udp', natlens: 2,
      why: 'frame 1 has a destination-options header whose option TLV runs past it: tshark stops there, natlens skips the header by its own length and reads the UDP header after it' },
    { table: 'ipv6', row: '2001:4f8:4:7:2e0:81ff:fe52:ffff 2001:4f8:4:7:2e0:81ff:fe52:9a6b', natlens: { frames_a_to_b: 3, bytes_a_to_b: 286, duration: 2 }, why: MALFORMED_IPV6 },
    { table: 'udp', row: '2001:78:1:32::1:30000 2001:4f8:4:7:2e0:81ff:fe52:9a6b:13000', natlens: null,
      why: 'frame 3\'s home-address option says it is 1 byte long; tshark reads a 16-byte address anyway and uses it as the source, natlens ignores an option of the wrong length' },
    { table: 'udp', row: '2001:4f8:4:7:2e0:81ff:fe52:ffff:30000 2001:4f8:4:7:2e0:81ff:fe52:9a6b:13000', natlens: { frames_a_to_b: 2, bytes_a_to_b: 180, frames_b_to_a: 0, bytes_b_to_a: 0, duration: 2 },
      why: 'frames 1 and 3, as the two deviations above explain' },
  ],
  'tcpdump--LINKTYPE_IPV4_invalid.pcap': [
    { protocol: 'ip', natlens: 0,
      why: 'the LINKTYPE_IPV4 record holds an IPv6 packet: tshark shows an IPv4 layer and then decodes IPv6 inside it; natlens decodes by the version nibble and reports only IPv6' },
  ],
  'tcpdump--timestamp_invalid_nano.pcap': [
    { table: 'ipv4', row: '131.155.215.69 137.116.81.94', natlens: { duration: 2.147483649 },
      why: 'nanosecond fields of 1000000000 and 2147483648: natlens carries whole seconds into the seconds field (1418145371.000000000, 1418145372.147483648); tshark prints negative and 10-digit fractions' },
    { table: 'tcp', row: '131.155.215.69:46656 137.116.81.94:80', natlens: { duration: 2.147483649 }, why: 'as above' },
  ],
  'pcapng-test--le-test102.pcapng': [
    { field: 'interface_names', natlens: ['eth0', 'null1', 'silly!\r\nethernet interface 2'],
      why: 'the third IDB\'s if_name holds a CR LF: capinfos prints it over two lines and the oracle kept the first' },
    { table: 'ipv4', row: '0.0.0.0 255.255.255.255', natlens: { duration: 0 }, why: SPB_TIME },
    { table: 'ipv4', row: '192.168.0.1 192.168.0.10', natlens: { duration: 0.002 }, why: SPB_TIME },
    { table: 'udp', row: '0.0.0.0:68 255.255.255.255:67', natlens: { duration: 0 }, why: SPB_TIME },
    { table: 'udp', row: '192.168.0.1:67 192.168.0.10:68', natlens: { duration: 0.002 }, why: SPB_TIME },
    { table: '1:0/ipv4', row: '0.0.0.0 255.255.255.255', natlens: { duration: 0 }, why: SPB_TIME },
    { table: '1:0/udp', row: '0.0.0.0:68 255.255.255.255:67', natlens: { duration: 0 }, why: SPB_TIME },
  ],
  'pcapng-test--le-test202.pcapng': [
    { table: 'ipv4', row: '0.0.0.0 255.255.255.255', natlens: { duration: 0.003 }, why: SPB_TIME },
    { table: 'udp', row: '0.0.0.0:68 255.255.255.255:67', natlens: { duration: 0.003 }, why: SPB_TIME },
    { table: '2:0/ipv4', row: '0.0.0.0 255.255.255.255', natlens: { duration: 0.003 }, why: SPB_TIME },
    { table: '2:0/udp', row: '0.0.0.0:68 255.255.255.255:67', natlens: { duration: 0.003 }, why: SPB_TIME },
  ],
}

function rowKey(r: ConvRow): string {
  return `${r.a}${r.a_port !== undefined ? `:${r.a_port}` : ''} ${r.b}${r.b_port !== undefined ? `:${r.b_port}` : ''}`
}

function tableOf(v: View, name: string): ConvRow[] {
  const [iface, kind] = name.includes('/') ? name.split('/') : [undefined, name]
  const tables = iface === undefined ? v.conversations : v.conversations_per_interface?.[iface]
  if (!tables) throw new Error(`no conversation tables for ${name}`)
  return tables[kind as keyof typeof tables]
}

/** The oracle with natlens's documented deviations applied: what natlens must report. */
function expectedView(file: string, oracle: View): View {
  const expected: View = structuredClone(oracle)
  for (const d of DEVIATIONS[file] ?? []) {
    if ('field' in d) {
      expect(oracle[d.field], `${file}: deviation on ${d.field} no longer differs`).not.toEqual(d.natlens)
      ;(expected as unknown as Record<string, unknown>)[d.field] = d.natlens
    } else if ('protocol' in d) {
      expect(oracle.packets_containing[d.protocol] ?? 0, `${file}: deviation on ${d.protocol} no longer differs`).not.toBe(d.natlens)
      if (d.natlens === 0) delete expected.packets_containing[d.protocol]
      else expected.packets_containing[d.protocol] = d.natlens
    } else {
      const rows = tableOf(expected, d.table)
      const i = rows.findIndex((r) => rowKey(r) === d.row)
      if (d.natlens === null) {
        expect(i, `${file}: ${d.table} row ${d.row} is not in the oracle`).toBeGreaterThanOrEqual(0)
        rows.splice(i, 1)
      } else if (i >= 0) {
        const changed = { ...rows[i], ...d.natlens }
        expect(changed, `${file}: ${d.table} row ${d.row} deviation no longer differs`).not.toEqual(rows[i])
        rows[i] = changed
      } else {
        const [a, b] = d.row.split(' ')
        const split = (x: string): [string, number | undefined] => {
          if (d.table.endsWith('tcp') || d.table.endsWith('udp')) {
            const at = x.lastIndexOf(':')
            return [x.slice(0, at), Number(x.slice(at + 1))]
          }
          return [x, undefined]
        }
        const [aa, ap] = split(a)
        const [bb, bp] = split(b)
        rows.push({ a: aa, b: bb, ...(ap !== undefined ? { a_port: ap, b_port: bp } : {}), ...d.natlens } as ConvRow)
      }
      rows.sort((x, y) => (rowKey(x) < rowKey(y) ? -1 : rowKey(x) > rowKey(y) ? 1 : 0))
    }
  }
  return expected
}

const files = readdirSync(PCAPS).sort()

describe('the corpus, against the tshark oracle', () => {
  it('has all 80 captures', () => {
    expect(files).toHaveLength(80)
  })

  for (const file of files) {
    it(file, async () => {
      const oracle = readOracle(file)
      const natlens = await readNatlens(file)
      if (!oracle.view.readable) {
        // tshark refuses these files; natlens must refuse them too, with a message and an offset, and no packets.
        const problem = natlens.read.files[0].problem
        expect(problem?.message).toBeTruthy()
        expect(problem?.offset).toBeTypeOf('number')
        expect(natlens.view.readable).toBe(false)
        expect(natlens.view.packets).toBe(0)
        expect(natlens.read.unreadable).toBe(true)
        return
      }
      expect(natlens.read.files[0].problem).toBeUndefined()
      // natlens does not reassemble fragments, so files with fragments compare with tshark run without reassembly.
      const base: View = oracle.noDefragment
        ? { ...oracle.view, packets_containing: oracle.noDefragment.packets_containing, conversations: oracle.noDefragment.conversations }
        : oracle.view
      expect(natlens.view).toEqual(expectedView(file, base))
    })
  }
})

describe('the refused files say why', () => {
  const cases: [string, string, number][] = [
    ['libpcap--pcap-invalid-version-1.pcap', 'pcap version 1.4 is not supported', 4],
    ['libpcap--pcapng-invalid-vers-1.pcapng', 'pcapng version 0.1 is not supported', 12],
    ['libpcap--shb-option-too-long.pcapng', 'runs past the end of the block', 0],
    ['libpcap--linktype-reserved-field-not-zero.pcap', 'reserved bits 16-25 set', 20],
  ]
  for (const [file, message, offset] of cases) {
    it(file, async () => {
      const { read } = await readNatlens(file)
      expect(read.files[0].problem?.message).toContain(message)
      expect(read.files[0].problem?.offset).toBe(offset)
    })
  }
})

describe('pcap-parser cross-checks the built-in reader on every classic pcap', () => {
  const classic = files.filter((f) => f.endsWith('.pcap'))
  for (const file of classic) {
    it(file, async () => {
      const builtin = await readNatlens(file, 'builtin')
      const viaPackage = await readNatlens(file, 'pcap-parser')
      const s = builtin.read.files[0]
      if (s.tsResolution === 'nanosecond') {
        // pcap-parser 0.2.1 knows only the microsecond magic numbers
        expect(viaPackage.read.files[0].problem?.message).toContain('pcap-parser reads only microsecond classic pcap')
        return
      }
      if (s.problem) {
        expect(viaPackage.read.files[0].problem?.code).toBe(s.problem.code)
        return
      }
      expect(viaPackage.view).toEqual(builtin.view)
      expect(viaPackage.flows).toEqual(builtin.flows)
    })
  }
})
