// Tokens of nft's language as `nft list ruleset` prints it and `nft -f` reads it: words, quoted strings, braces,
// `;`, `,` and line ends. `#` starts a comment outside quotes (`# handle 7`, `# Warning: table ip nat is managed by
// iptables-nft, do not touch!`); comments are kept aside with their line so the parser can read the useful ones.

export interface Token {
  readonly text: string
  /** 1-based line of the token's first character. */
  readonly line: number
  readonly quoted: boolean
}

export interface LineComment {
  readonly line: number
  readonly text: string
  /** True when the comment follows other tokens on its line (`… accept # handle 4`). */
  readonly trailing: boolean
}

export const NEWLINE = '\n'

export function tokenize(source: string): { tokens: Token[]; comments: LineComment[] } {
  const tokens: Token[] = []
  const comments: LineComment[] = []
  let line = 1
  let lineHasTokens = false
  let i = 0
  const n = source.length
  while (i < n) {
    const c = source[i]!
    if (c === '\n') {
      tokens.push({ text: NEWLINE, line, quoted: false })
      line++
      lineHasTokens = false
      i++
      continue
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      i++
      continue
    }
    if (c === '#') {
      let j = source.indexOf('\n', i)
      if (j < 0) j = n
      comments.push({ line, text: source.slice(i + 1, j).trim(), trailing: lineHasTokens })
      i = j
      continue
    }
    if (c === '"') {
      let j = i + 1
      let value = ''
      while (j < n && source[j] !== '"' && source[j] !== '\n') {
        if (source[j] === '\\' && j + 1 < n && source[j + 1] !== '\n') {
          value += source[j + 1]
          j += 2
        } else {
          value += source[j]
          j++
        }
      }
      tokens.push({ text: value, line, quoted: true })
      lineHasTokens = true
      i = j < n && source[j] === '"' ? j + 1 : j
      continue
    }
    if (c === '{' || c === '}' || c === ';' || c === ',') {
      tokens.push({ text: c, line, quoted: false })
      lineHasTokens = true
      i++
      continue
    }
    let j = i
    while (j < n) {
      const d = source[j]!
      if (d === ' ' || d === '\t' || d === '\r' || d === '\n' || d === '{' || d === '}' || d === ';' || d === ',' || d === '"' || d === '#') break
      j++
    }
    tokens.push({ text: source.slice(i, j), line, quoted: false })
    lineHasTokens = true
    i = j
  }
  return { tokens, comments }
}

/** Joins tokens back into nft text (for evidence of multi-line statements and for opaque parts). */
export function joinTokens(tokens: readonly Token[]): string {
  let out = ''
  for (const t of tokens) {
    if (t.text === NEWLINE) continue
    const piece = t.quoted ? JSON.stringify(t.text) : t.text
    if (out === '' || t.text === ',' || t.text === ';') out += piece
    else out += ` ${piece}`
  }
  return out
}
