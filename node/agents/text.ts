/**
 * Tokenising shared by `text-stats` and `summarize`, so both agree on what a word and a
 * sentence are.
 */
import { isStopword } from '../../capability-index/stopwords.ts'

// Letters and digits, joined by inner apostrophes or hyphens: "don't" and "well-known" are one word.
const WORD = /[\p{L}\p{N}]+(?:['’-][\p{L}\p{N}]+)*/gu

export function words(text: string): string[] {
  return text.match(WORD) ?? []
}

/** Lower-cased words worth counting for topic: no stopwords, bare numbers or single letters. */
export function contentWords(text: string): string[] {
  return words(text)
    .map((w) => w.toLowerCase().replace(/’/g, "'"))
    .filter((w) => [...w].length > 1 && !isStopword(w) && !/^\p{N}+$/u.test(w))
}

/** Paragraphs are separated by blank lines. */
export function paragraphs(text: string): string[] {
  return text.split(/\n[^\S\n]*\n\s*/).map((p) => p.trim()).filter((p) => p.length > 0)
}

// Abbreviations whose trailing period does not end a sentence (compared lower-cased, last dot removed).
const ABBREVIATIONS = new Set([
  'mr', 'mrs', 'ms', 'dr', 'prof', 'sr', 'jr', 'st', 'mt', 'vs', 'e.g', 'i.e', 'cf', 'approx', 'dept',
  'fig', 'no', 'vol', 'inc', 'ltd', 'co', 'corp', 'gen', 'col', 'lt', 'sgt', 'rev', 'hon', 'a.m', 'p.m',
  'u.s', 'u.k', 'jan', 'feb', 'mar', 'apr', 'jun', 'jul', 'aug', 'sep', 'sept', 'oct', 'nov', 'dec',
])

/** Whether the single '.' at `dot` in `text` belongs to an abbreviation or an initial. */
function isAbbreviation(text: string, dot: number): boolean {
  // Scan back to the previous space only: slicing the whole prefix would be quadratic.
  const token = text.slice(text.lastIndexOf(' ', dot - 1) + 1, dot).replace(/^[^\p{L}]+/u, '')
  if (ABBREVIATIONS.has(token.toLowerCase())) return true
  return /^\p{Lu}$/u.test(token) // an initial, as in "J. R. R. Tolkien"
}

/**
 * Splits text into sentences: a run of . ! ? (plus closing quotes or brackets) followed by
 * whitespace or the end, except after abbreviations and initials, or when the next word starts
 * lower-case (as after "etc."). Blank lines always end a sentence. Whitespace inside a sentence
 * is collapsed to single spaces.
 */
export function splitSentences(text: string): string[] {
  const sentences: string[] = []
  for (const paragraph of paragraphs(text)) {
    const flat = paragraph.replace(/\s+/g, ' ')
    let start = 0
    for (const match of flat.matchAll(/[.!?]+["'”’)\]]*(?= |$)/g)) {
      const end = match.index + match[0].length
      const next = flat.slice(end + 1, end + 2)
      if (/^\p{Ll}/u.test(next)) continue
      if (match[0].startsWith('.') && !match[0].startsWith('..') && isAbbreviation(flat, match.index)) continue
      const sentence = flat.slice(start, end).trim()
      if (sentence) sentences.push(sentence)
      start = end
    }
    const rest = flat.slice(start).trim()
    if (rest) sentences.push(rest)
  }
  return sentences
}
