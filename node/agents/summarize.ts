/**
 * `summarize`: extractive summary. Each content word (not a stopword or bare number) weighs its
 * frequency divided by the most frequent word's; a sentence scores the sum of its words' weights.
 * The top `sentences` score, earlier first on ties, are returned in their original order.
 */
import { AgentInputError } from './agent.ts'
import type { Agent, AgentDescription, AgentSpec } from './agent.ts'
import { JSON_SCHEMA_DRAFT, deterministicAgent, round, stringField, typeName } from './base.ts'
import { contentWords, splitSentences } from './text.ts'

export const MAX_TEXT_LENGTH = 1_000_000
export const MAX_SENTENCES = 20
const DEFAULT_SENTENCES = 2

export interface Summary {
  summary: string
  sentences: string[]
  /** Summary length over the (trimmed) text's length, in characters: smaller is more condensed. */
  ratio: number
}

export function summarize(text: string, count: number): Summary {
  const all = splitSentences(text)
  if (all.length === 0) throw new AgentInputError('field "text" has no sentences to summarize; send some prose')
  const perSentence = all.map(contentWords)
  const frequency = new Map<string, number>()
  for (const w of perSentence.flat()) frequency.set(w, (frequency.get(w) ?? 0) + 1)
  const top = [...frequency.values()].reduce((a, b) => Math.max(a, b), 1) // no spread: texts can be huge
  const scores = perSentence.map((ws) => ws.reduce((sum, w) => sum + frequency.get(w)! / top, 0))
  const chosen = all
    .map((_, i) => i)
    .sort((a, b) => scores[b]! - scores[a]! || a - b)
    .slice(0, count)
    .sort((a, b) => a - b)
  const sentences = chosen.map((i) => all[i]!)
  const summary = sentences.join(' ')
  return { summary, sentences, ratio: Math.min(1, round(summary.length / text.trim().length, 4)) }
}

function readCount(value: unknown): number {
  if (value === undefined) return DEFAULT_SENTENCES
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_SENTENCES) {
    throw new AgentInputError(`field "sentences" must be a whole number from 1 to ${MAX_SENTENCES}, but got ${typeName(value)}`)
  }
  return value
}

const defaults: AgentDescription = {
  name: 'summarize',
  description:
    'Extractive text summarizer: condenses an article, document, email or report into its few most important ' +
    'sentences, chosen by how many of the text’s key words they contain and kept in their original order. ' +
    'Use it to summarise, shorten, get the gist, a TL;DR or the key points of a long text.',
  skills: ['summarization', 'summarize', 'tldr', 'key-points', 'text-condensing', 'extractive-summary'],
  inputSchema: {
    $schema: JSON_SCHEMA_DRAFT,
    type: 'object',
    properties: {
      text: { type: 'string', minLength: 1, maxLength: MAX_TEXT_LENGTH, description: 'The text to summarize.' },
      sentences: {
        type: 'integer',
        minimum: 1,
        maximum: MAX_SENTENCES,
        default: DEFAULT_SENTENCES,
        description: 'How many sentences to keep.',
      },
    },
    required: ['text'],
    additionalProperties: false,
  },
  outputSchema: {
    $schema: JSON_SCHEMA_DRAFT,
    type: 'object',
    properties: {
      summary: { type: 'string', description: 'The chosen sentences joined by spaces.' },
      sentences: { type: 'array', items: { type: 'string' }, maxItems: MAX_SENTENCES },
      ratio: { type: 'number', minimum: 0, maximum: 1, description: 'Summary length / text length in characters.' },
    },
    required: ['summary', 'sentences', 'ratio'],
    additionalProperties: false,
  },
  costPerCall: 0.3,
  latencyMs: 10,
  capacity: 16,
  policy: ['deterministic', 'no-network', 'stateless'],
}

export function createSummarizeAgent(spec: AgentSpec): Agent {
  return deterministicAgent(defaults, spec, (input) =>
    summarize(
      stringField(input, 'text', MAX_TEXT_LENGTH, 'send e.g. { "text": "First sentence. Second one.", "sentences": 1 }'),
      readCount(input['sentences']),
    ),
  )
}
