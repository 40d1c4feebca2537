// One error type and one exit-code table for every command.
//   0  ok
//   1  a problem was found (doctor), a disagreement (analyze), or a flow that could not be decided
//   2  bad input or usage: unreadable file, wrong kind of file, unknown flag
export const ExitCode = {
  ok: 0,
  problem: 1,
  badInput: 2,
} as const
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

export class NatlensError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly exit: ExitCodeValue = ExitCode.badInput,
    /** The next step to suggest to the user, e.g. "run `natlens collect` on the node". */
    readonly suggestion?: string,
  ) {
    super(message)
    this.name = 'NatlensError'
  }
}

export function isNatlensError(e: unknown): e is NatlensError {
  return e instanceof NatlensError
}
