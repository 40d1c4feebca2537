// Types for scripts/glibc-compat.mjs, which tests import.
export interface GlibcRequirement {
  readonly file: string
  readonly version: string
  readonly symbols: readonly string[]
}
export function glibcRequirementsAbove(elf: Buffer, max: string): GlibcRequirement[]
export function lowerGlibcRequirement(path: string, max: string): Promise<string[]>
