/**
 * `sort`: sorts a list of numbers and strings. Comparison never depends on the machine's locale:
 * strings compare by UTF-16 code unit ('B' < 'a'), or in natural order with `numeric` (digit runs
 * compare by value, so 'file2' < 'file10'). Numbers always come before strings, in both orders;
 * `order` applies within each group. The sort is stable, also in descending order.
 */
import { AgentInputError } from './agent.ts'
import type { Agent, AgentDescription, AgentSpec } from './agent.ts'
import { JSON_SCHEMA_DRAFT, booleanField, deterministicAgent, typeName } from './base.ts'

export const MAX_ITEMS = 100_000

type Item = number | string

const ordinal = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/** Natural order: split into digit and non-digit runs; digit runs compare by value, then by length ('01' after '1'). */
function natural(a: string, b: string): number {
  const ra = a.match(/\d+|\D+/g) ?? []
  const rb = b.match(/\d+|\D+/g) ?? []
  for (let i = 0; i < Math.min(ra.length, rb.length); i++) {
    const x = ra[i]!
    const y = rb[i]!
    const digits = /^\d/.test(x) && /^\d/.test(y)
    const c = digits ? compareDigitRuns(x, y) : ordinal(x, y)
    if (c !== 0) return c
  }
  return ra.length - rb.length || ordinal(a, b)
}

/** Compares arbitrarily long digit runs without converting to numbers (no precision loss). */
function compareDigitRuns(x: string, y: string): number {
  const sx = x.replace(/^0+(?=\d)/, '')
  const sy = y.replace(/^0+(?=\d)/, '')
  return sx.length - sy.length || ordinal(sx, sy) || x.length - y.length
}

export function sortItems(items: Item[], order: 'asc' | 'desc', unique: boolean, numeric: boolean): Item[] {
  const sign = order === 'asc' ? 1 : -1
  const compareStrings = numeric ? natural : ordinal
  const compare = (a: Item, b: Item): number => {
    if (typeof a === 'number' && typeof b === 'number') return sign * (a - b)
    if (typeof a === 'string' && typeof b === 'string') return sign * compareStrings(a, b)
    return typeof a === 'number' ? -1 : 1 // numbers first regardless of order
  }
  const input = unique ? [...new Set(items)] : items
  return [...input].sort(compare) // Array.prototype.sort is stable
}

function readItems(value: unknown): Item[] {
  if (!Array.isArray(value)) {
    throw new AgentInputError(`field "items" must be an array of numbers and strings, but got ${typeName(value)}; send e.g. { "items": [3, 1, 2] }`)
  }
  if (value.length > MAX_ITEMS) {
    throw new AgentInputError(`"items" has ${value.length} entries; send at most ${MAX_ITEMS}`)
  }
  value.forEach((item, i) => {
    if (!(typeof item === 'string' || (typeof item === 'number' && Number.isFinite(item)))) {
      throw new AgentInputError(`items[${i}] must be a finite number or a string, but got ${typeName(item)}`)
    }
  })
  return value as Item[]
}

function readOrder(value: unknown): 'asc' | 'desc' {
  if (value === undefined) return 'asc'
  if (value === 'asc' || value === 'desc') return value
  throw new AgentInputError(`field "order" must be "asc" or "desc", but got ${typeName(value)}`)
}

const defaults: AgentDescription = {
  name: 'sort',
  description:
    'Sorts a list of numbers or strings in ascending or descending order, optionally removing duplicates ' +
    'and using natural numeric order for text such as file2 before file10. Use it to order, rank, ' +
    'alphabetize, arrange or deduplicate a list of values.',
  skills: ['sort', 'order', 'alphabetize', 'deduplicate', 'list-processing'],
  inputSchema: {
    $schema: JSON_SCHEMA_DRAFT,
    type: 'object',
    properties: {
      items: {
        type: 'array',
        maxItems: MAX_ITEMS,
        items: { type: ['number', 'string'] },
        description: 'Values to sort; numbers come before strings.',
      },
      order: { enum: ['asc', 'desc'], default: 'asc' },
      unique: { type: 'boolean', default: false, description: 'Drop repeated values, keeping the first.' },
      numeric: { type: 'boolean', default: false, description: 'Natural order for strings: digit runs compare by value.' },
    },
    required: ['items'],
    additionalProperties: false,
  },
  outputSchema: {
    $schema: JSON_SCHEMA_DRAFT,
    type: 'object',
    properties: {
      items: { type: 'array', items: { type: ['number', 'string'] } },
      count: { type: 'integer', minimum: 0 },
    },
    required: ['items', 'count'],
    additionalProperties: false,
  },
  costPerCall: 0.1,
  latencyMs: 2,
  capacity: 64,
  policy: ['deterministic', 'no-network', 'stateless'],
}

export function createSortAgent(spec: AgentSpec): Agent {
  return deterministicAgent(defaults, spec, (input) => {
    const items = sortItems(
      readItems(input['items']),
      readOrder(input['order']),
      booleanField(input, 'unique', false),
      booleanField(input, 'numeric', false),
    )
    return { items, count: items.length }
  })
}
