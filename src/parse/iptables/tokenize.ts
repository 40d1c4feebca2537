// The word splitting of iptables-restore (xshared.c add_param_to_argv): words are separated by blanks; a double
// quote opens or closes a quoted part anywhere in a word; inside quotes a backslash escapes the next character;
// outside quotes a backslash is an ordinary character. `!` is only a word of its own when blanks surround it,
// exactly as iptables reads it.

const SPACE = 32
const TAB = 9
const QUOTE = 34
const BACKSLASH = 92
const CR = 13
const LF = 10

function isBlank(c: number): boolean {
  return c === SPACE || c === TAB || c === CR || c === LF
}

/**
 * Splits one iptables-save / iptables-restore / `iptables -S` line into words.
 * `-A X -m comment --comment "name: \"aws-cni\"" -j Y` gives `['-A','X','-m','comment','--comment','name: "aws-cni"','-j','Y']`.
 * An unterminated quote ends the last word at the end of the line (iptables-restore refuses such a line; we keep it).
 */
export function tokenizeIptablesLine(line: string): string[] {
  const out: string[] = []
  const n = line.length
  let i = 0
  while (i < n) {
    let c = line.charCodeAt(i)
    if (isBlank(c)) { i++; continue }
    // Fast path: a word without quotes is a slice of the line.
    const start = i
    while (i < n) {
      c = line.charCodeAt(i)
      if (isBlank(c) || c === QUOTE) break
      i++
    }
    if (i >= n || c !== QUOTE) {
      out.push(line.slice(start, i))
      continue
    }
    // Slow path: the word has a quoted part somewhere.
    let word = line.slice(start, i)
    let quoted = false
    while (i < n) {
      c = line.charCodeAt(i)
      if (quoted) {
        if (c === BACKSLASH && i + 1 < n) { word += line[i + 1]; i += 2; continue }
        if (c === QUOTE) { quoted = false; i++; continue }
        // Copy a run of ordinary characters at once.
        let j = i + 1
        while (j < n) { const d = line.charCodeAt(j); if (d === BACKSLASH || d === QUOTE) break; j++ }
        word += line.slice(i, j)
        i = j
        continue
      }
      if (c === QUOTE) { quoted = true; i++; continue }
      if (isBlank(c)) break
      let j = i + 1
      while (j < n) { const d = line.charCodeAt(j); if (d === QUOTE || isBlank(d)) break; j++ }
      word += line.slice(i, j)
      i = j
    }
    out.push(word)
  }
  return out
}

/** Quotes a word the way iptables-save does (xtables_save_string): double quotes, `\` and `"` escaped. */
export function quoteIptablesWord(word: string): string {
  let s = '"'
  for (const ch of word) s += ch === '"' || ch === '\\' ? `\\${ch}` : ch
  return `${s}"`
}

/** Joins words back into a line, quoting those that need it; `tokenizeIptablesLine(joinIptablesWords(w))` gives `w`. */
export function joinIptablesWords(words: readonly string[]): string {
  return words.map((w) => (w === '' || /[\s"\\]/.test(w) ? quoteIptablesWord(w) : w)).join(' ')
}
