// Paths shared by tests: ../shared sits beside the repository (CI clones the repo with shared/ next to it).
import { fileURLToPath } from 'node:url'
import { join, resolve } from 'node:path'

export const REPO = resolve(fileURLToPath(new URL('..', import.meta.url)))
export const SHARED = resolve(REPO, '..', 'shared')
export const EXAMPLES = join(SHARED, 'examples', 'node-states')
export const FIXTURES = join(REPO, 'fixtures')

/** 1-based number of the first line that starts with `prefix`. */
export function lineOf(text: string, prefix: string): number {
  const i = text.split('\n').findIndex((l) => l.startsWith(prefix))
  if (i < 0) throw new Error(`no line starts with ${prefix}`)
  return i + 1
}
