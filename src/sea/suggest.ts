// The nearest known name to a mistyped one ("explian" → "explain", "--srcc" → "--src"), for error messages that say
// what to type instead. @oclif/core 4 has no suggestions of its own (that is @oclif/plugin-not-found, which prompts
// and exits 127, against our exit-code table), so natlens keeps this small one.

/**
 * Edit distance with adjacent transpositions counted as one edit (optimal string alignment): typing "explian" for
 * "explain" is one slip, not two.
 */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1
  const cols = b.length + 1
  const d = new Array<number>(rows * cols)
  for (let i = 0; i < rows; i++) d[i * cols] = i
  for (let j = 0; j < cols; j++) d[j] = j
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let best = Math.min(d[(i - 1) * cols + j]! + 1, d[i * cols + j - 1]! + 1, d[(i - 1) * cols + j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[(i - 2) * cols + j - 2]! + 1)
      d[i * cols + j] = best
    }
  }
  return d[rows * cols - 1]!
}

/**
 * The candidate the user most likely meant, or undefined when none is close: the only candidate the word is a
 * prefix of ("expl" → "explain"), else the nearest within a third of the word's length (at least one edit, at most
 * three), ties broken by the order of `candidates`.
 */
export function closestName(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase()
  if (w === '') return undefined
  const prefixed = candidates.filter((c) => c.toLowerCase().startsWith(w))
  if (prefixed.length === 1) return prefixed[0]
  const limit = Math.min(3, Math.max(1, Math.floor(w.length / 3)))
  let best: string | undefined
  let bestDistance = limit + 1
  for (const c of candidates) {
    const dist = editDistance(w, c.toLowerCase())
    if (dist < bestDistance) {
      best = c
      bestDistance = dist
    }
  }
  return best
}
