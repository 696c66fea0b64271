/**
 * `text-stats`: counts characters, words, sentences and paragraphs, estimates reading time at
 * 238 words per minute and lists the five most frequent content words.
 */
import type { Agent, AgentDescription, AgentSpec } from './agent.ts'
import { JSON_SCHEMA_DRAFT, deterministicAgent, round, stringField } from './base.ts'
import { contentWords, paragraphs, splitSentences, words } from './text.ts'

export const MAX_TEXT_LENGTH = 1_000_000
/** Average silent reading speed of adults reading English non-fiction (Brysbaert, 2019). */
export const WORDS_PER_MINUTE = 238
const TOP_WORDS = 5

export interface TextStats {
  characters: number
  words: number
  sentences: number
  paragraphs: number
  averageWordLength: number
  readingTimeSeconds: number
  topWords: { word: string; count: number }[]
}

export function textStats(text: string): TextStats {
  const allWords = words(text)
  const letters = allWords.reduce((sum, w) => sum + [...w].length, 0)
  const counts = new Map<string, number>()
  for (const w of contentWords(text)) counts.set(w, (counts.get(w) ?? 0) + 1)
  const topWords = [...counts]
    .sort(([a, ca], [b, cb]) => cb - ca || (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, TOP_WORDS)
    .map(([word, count]) => ({ word, count }))
  return {
    characters: [...text].length, // code points, so an emoji counts once
    words: allWords.length,
    sentences: splitSentences(text).length,
    paragraphs: paragraphs(text).length,
    averageWordLength: allWords.length ? round(letters / allWords.length, 2) : 0,
    readingTimeSeconds: round((allWords.length / WORDS_PER_MINUTE) * 60, 1),
    topWords,
  }
}

const defaults: AgentDescription = {
  name: 'text-stats',
  description:
    'Text statistics and word counter: counts the characters, words, sentences and paragraphs of a text, ' +
    'gives the average word length, estimates the reading time, and lists the most frequent words or ' +
    'keywords. Use it to count words in an essay, measure document length or analyse word frequency.',
  skills: ['text-analysis', 'word-count', 'character-count', 'reading-time', 'word-frequency', 'keywords'],
  inputSchema: {
    $schema: JSON_SCHEMA_DRAFT,
    type: 'object',
    properties: {
      text: { type: 'string', maxLength: MAX_TEXT_LENGTH, description: 'The text to analyse.' },
    },
    required: ['text'],
    additionalProperties: false,
  },
  outputSchema: {
    $schema: JSON_SCHEMA_DRAFT,
    type: 'object',
    properties: {
      characters: { type: 'integer', minimum: 0, description: 'Unicode code points, whitespace included.' },
      words: { type: 'integer', minimum: 0 },
      sentences: { type: 'integer', minimum: 0 },
      paragraphs: { type: 'integer', minimum: 0, description: 'Blocks separated by blank lines.' },
      averageWordLength: { type: 'number', minimum: 0, description: 'Characters per word, 2 decimals.' },
      readingTimeSeconds: { type: 'number', minimum: 0, description: `At ${WORDS_PER_MINUTE} words per minute, 1 decimal.` },
      topWords: {
        type: 'array',
        maxItems: TOP_WORDS,
        description: 'Most frequent words, stopwords, bare numbers and single letters excluded; ties alphabetical.',
        items: {
          type: 'object',
          properties: { word: { type: 'string' }, count: { type: 'integer', minimum: 1 } },
          required: ['word', 'count'],
          additionalProperties: false,
        },
      },
    },
    required: ['characters', 'words', 'sentences', 'paragraphs', 'averageWordLength', 'readingTimeSeconds', 'topWords'],
    additionalProperties: false,
  },
  costPerCall: 0.2,
  latencyMs: 5,
  capacity: 32,
  policy: ['deterministic', 'no-network', 'stateless'],
}

export function createTextStatsAgent(spec: AgentSpec): Agent {
  return deterministicAgent(defaults, spec, (input) =>
    textStats(stringField(input, 'text', MAX_TEXT_LENGTH, 'send e.g. { "text": "Hello world." }')),
  )
}
