// What every natlens command shares: one way to report errors (a clear line, the exit code from src/errors.ts,
// the next step to take; no stack trace) and the `--file` choice between duplicate sources.
import { writeFile } from 'node:fs/promises'
import { Args, Command, Errors, Flags } from '@oclif/core'
import { isNatlensError, ExitCode, NatlensError } from '../errors.js'

export abstract class NatlensCommand extends Command {
  static override enableJsonFlag = true

  protected override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<unknown> {
    if (isNatlensError(err)) {
      // Written directly: under --json oclif mutes its own stderr helpers, and a script still needs the reason.
      // Standard output is left alone: a command may already have written its (partial) result there.
      process.stderr.write(`natlens: ${err.message}\n${err.suggestion ? `  try: ${err.suggestion}\n` : ''}`)
      this.exit(err.exit)
    }
    // oclif's own parse errors (unknown flag, missing value) are usage errors: exit 2 with oclif's suggestion.
    // Under --json oclif's catch prints the error as JSON and sets the exit code from `exitCode` (1 when absent).
    if (err instanceof Errors.CLIError && (err.oclif?.exit === undefined || err.oclif.exit === 2) && this.jsonEnabled()) {
      // oclif's own JSON error carries its whole parse context; scripts get the message and the exit code.
      process.stderr.write(`natlens: ${err.message}\n`)
      const flags = (err as { flags?: string[] }).flags
      process.stdout.write(`${JSON.stringify({ error: { code: 'usage', message: err.message, exit: ExitCode.badInput, exitCode: ExitCode.badInput, ...(flags ? { flags } : {}) } })}\n`)
      this.exit(ExitCode.badInput)
    }
    if (err instanceof Errors.CLIError && (err.oclif?.exit === undefined || err.oclif.exit === 2)) {
      return super.catch(Object.assign(err, { exitCode: ExitCode.badInput, oclif: { ...(err.oclif ?? {}), exit: ExitCode.badInput } }))
    }
    return super.catch(err)
  }
}

/** The positional inputs of every command that reads a node: the bundle, or the files of one. */
export const bundleArgs = { inputs: Args.string({ description: 'bundle directory, .tar.gz, or files', required: true }) }

export const bundleFlags = {
  file: Flags.string({
    summary: 'When two files give the same source, use this one (repeatable; a name or the end of a path).',
    multiple: true,
  }),
}

/** The flags that name one flow, the same for `explain`, `report` and `graph`. */
export const flowFlags = {
  src: Flags.string({ summary: 'Source address as the pod, process or client sent it.' }),
  dst: Flags.string({ summary: 'Destination address as sent (before any DNAT).' }),
  proto: Flags.option({ options: ['tcp', 'udp', 'icmp', 'icmpv6', 'sctp'] as const, default: 'tcp', summary: 'Protocol.' })(),
  sport: Flags.integer({ min: 0, max: 65535, summary: 'Source port (default 40000).' }),
  dport: Flags.integer({ min: 0, max: 65535, summary: 'Destination port (default 443; 53 for udp).' }),
  iif: Flags.string({ summary: 'Interface the packet arrives on (found from the state when not given).' }),
  origin: Flags.option({ options: ['pod', 'host', 'external', 'reply'] as const, summary: 'Where the packet comes from (found from the state when not given).' })(),
}

/** Writes a command's document to `-o PATH`, or to standard output without one. Returns whether a file was written. */
export async function writeOutput(path: string | undefined, text: string): Promise<boolean> {
  if (!path) {
    process.stdout.write(text)
    return false
  }
  await writeFile(path, text).catch((e: Error) => { throw new NatlensError(`${path}: cannot write: ${e.message}`, 'output.unwritable', 2) })
  return true
}
