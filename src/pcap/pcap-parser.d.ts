// Types for pcap-parser 0.2.1 (the package ships none): an EventEmitter over a classic pcap stream.
declare module 'pcap-parser' {
  import type { EventEmitter } from 'node:events'
  import type { Readable } from 'node:stream'

  export interface GlobalHeader {
    magicNumber: number
    majorVersion: number
    minorVersion: number
    gmtOffset: number
    timestampAccuracy: number
    snapshotLength: number
    linkLayerType: number
  }
  export interface PacketHeader {
    timestampSeconds: number
    timestampMicroseconds: number
    capturedLength: number
    originalLength: number
  }
  export interface Parser extends EventEmitter {
    stream: Readable
    buffer: Buffer | null
    endianness: 'LE' | 'BE' | null
    errored?: boolean
  }
  export function parse(input: string | Readable): Parser
  const pcapParser: { parse: typeof parse }
  export default pcapParser
}
