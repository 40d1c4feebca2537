// manifest.json: how every artifact of a bundle was made (argv or URL or path, exit code, stderr, duration, size,
// sha256), what was skipped and why, and where the bundle came from. Both collectors (natlens collect and the
// generated sh script) write this shape; src/collect/manifest.schema.json is its JSON Schema. The loader recognises
// the file by its top-level "natlensVersion" and "commands" keys (src/sources/formats.ts identify()).
import type { RedactionRecord } from './redact.js'

export const MANIFEST_VERSION = 1

/** Where the state taken after a capture goes; the loader sets this folder aside (see src/sources/load.ts). */
export const AFTER_DIR = 'after/'

export type RecordPhase = 'before' | 'after' | 'once'

export interface ItemRecord {
  readonly id: string
  /** Path inside the bundle (after/… for the state taken after a capture). */
  readonly file: string
  readonly kind: 'command' | 'http' | 'imds' | 'file' | 'process-env' | 'capture'
  readonly phase: RecordPhase
  /** For commands: the argv as run, `ip netns exec NAME` included. */
  readonly argv?: readonly string[]
  /** For HTTP reads: the URL (IMDS: its base URL; the token is never recorded). */
  readonly url?: string
  /** For files and process environments: what was read. */
  readonly path?: string
  /** 0 when it worked; the command's exit code; 1 for a failed read; null when ended by a signal or timeout. */
  readonly exitCode: number | null
  readonly signal?: string
  readonly timedOut?: boolean
  /** HTTP status. */
  readonly status?: number
  readonly requests?: number
  readonly stderr: string
  readonly durationMs: number
  /** Whether a file was written: empty output (a backend with no tables) or a failure writes none. */
  readonly written: boolean
  readonly bytes: number
  readonly sha256: string | null
  /** Output cut at a bound (--conntrack-limit, --max-size): the file holds the first part. */
  readonly truncated?: boolean
  /** Why no file was written, or what to know about it. */
  readonly note?: string
}

export interface SkippedItem {
  readonly id: string
  readonly file: string
  readonly reason: string
}

export interface CaptureRecord {
  readonly file: string
  readonly argv: readonly string[]
  readonly iface: string
  readonly filter: string | null
  readonly snaplen: number
  readonly maxPackets: number
  readonly maxBytes: number
  readonly requestedMs: number
  readonly durationMs: number
  readonly startedAt: string
  readonly endedAt: string
  /** What ended it: the duration, a bound, the user (SIGINT/SIGTERM), or tcpdump itself. */
  readonly endedBy: 'duration' | 'max-packets' | 'max-size' | 'SIGINT' | 'SIGTERM' | 'tcpdump-exit' | 'error'
  readonly packets: number
  readonly bytes: number
  readonly sha256: string | null
  /** tcpdump's own count of packets the kernel dropped (its buffer was full). */
  readonly kernelDrops: number | null
  readonly exitCode: number | null
  readonly stderr: string
  /** What was done to the capture under --redact. */
  readonly redaction?: string
}

export interface Manifest {
  readonly natlensVersion: string
  readonly manifestVersion: number
  readonly collector: 'natlens' | 'natlens-collector-script'
  readonly hostname: string
  readonly kernel: string
  readonly startedAt: string
  readonly finishedAt: string
  readonly durationMs: number
  /** Time the state collection took (the first pass). */
  readonly stateDurationMs: number
  readonly root: boolean
  readonly netns: string | null
  readonly options: {
    readonly conntrackLimit: number
    readonly capture: { readonly durationMs: number; readonly iface: string; readonly filter: string | null; readonly snaplen: number; readonly maxPackets: number; readonly maxBytes: number } | null
    readonly redact: boolean
    readonly redactIps: boolean
  }
  readonly commands: readonly ItemRecord[]
  readonly skipped: readonly SkippedItem[]
  /** Present when the state was taken again after a capture: that copy lives in `dir`, set aside by the loader. */
  readonly after?: { readonly dir: string; readonly note: string }
  readonly capture?: CaptureRecord
  readonly redaction?: RedactionRecord
  /** Set when a second Ctrl-C cut the collection short. */
  readonly interrupted?: string
  /** Only in after/manifest.json: which state this folder holds. */
  readonly stateOf?: 'after-capture'
}
