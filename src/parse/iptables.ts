// The iptables readers in one place: iptables-save (and restore input), `iptables -S`, `iptables -nvL`,
// the content sniffers the bundle loader uses, and the tokenizer.
export { parseIptablesSave, parseIptablesRules, headerOrigin, isLegacyWarning } from './iptables-save.js'
export { parseIptablesList } from './iptables-list.js'
export { looksLikeIptablesSave, looksLikeIptablesRules, looksLikeIptablesList, detectIptablesFamily } from './iptables-sniff.js'
export { tokenizeIptablesLine, quoteIptablesWord, joinIptablesWords } from './iptables/tokenize.js'
