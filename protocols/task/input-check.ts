/**
 * The requester checks a subtask's input against the agent's declared input schema (from its
 * signed VCV) before dispatching, so a user's mistake ends as an escalation that says what to fix
 * instead of being sent to agent after agent and blamed on them. It also fills in the input when
 * the user gave none and the schema takes text: the request text itself.
 *
 * Validation is @cfworker/json-schema (drafts 4 to 2020-12, interpreted, no code generation). The
 * schema comes from another peer, so it is hostile: keywords that run a foreign regular
 * expression (`pattern`, `patternProperties`, `format`) are dropped before use (a catastrophic
 * regex would hang this peer; the agent still applies them itself), references stay inside the
 * schema, and nesting and size are bounded. A schema that cannot be used is no reason to refuse:
 * the check then passes and the agent judges the input.
 */
import { Validator, type OutputUnit } from '@cfworker/json-schema'
import { typeName } from '../json.ts'

/** Nesting (schema and input) beyond which the check is skipped rather than recursed into. */
const MAX_DEPTH = 32
/** Compiled schemas kept (by their text). */
const CACHE = 256
/** A schema text longer than this is not checked (VCVs bound it far lower). */
const MAX_SCHEMA_CHARS = 64 * 1024

const DROPPED = new Set(['pattern', 'patternProperties', 'format', '$dynamicRef', '$recursiveRef'])

const cache = new Map<string, { validator: Validator | undefined, schema: Record<string, unknown> | boolean | undefined }>()

function depth (v: unknown, limit: number): number {
  if (typeof v !== 'object' || v === null) return 0
  if (limit <= 0) return Infinity
  let d = 0
  for (const x of Array.isArray(v) ? v : Object.values(v)) d = Math.max(d, depth(x, limit - 1))
  return d + 1
}

/** The schema without the keywords a requester will not run, and without references leaving it. */
function sanitize (v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sanitize)
  if (typeof v !== 'object' || v === null) return v
  const out: Record<string, unknown> = {}
  for (const [k, x] of Object.entries(v)) {
    if (DROPPED.has(k)) continue
    if (k === '$ref' && (typeof x !== 'string' || !x.startsWith('#'))) continue
    out[k] = sanitize(x)
  }
  return out
}

function compiled (schemaText: string): { validator: Validator | undefined, schema: Record<string, unknown> | boolean | undefined } {
  const hit = cache.get(schemaText)
  if (hit !== undefined) return hit
  let entry: { validator: Validator | undefined, schema: Record<string, unknown> | boolean | undefined } = { validator: undefined, schema: undefined }
  try {
    const parsed: unknown = schemaText.length > MAX_SCHEMA_CHARS ? undefined : JSON.parse(schemaText)
    if ((typeof parsed === 'boolean' || (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))) && depth(parsed, MAX_DEPTH) <= MAX_DEPTH) {
      const schema = sanitize(parsed) as Record<string, unknown> | boolean
      // shortCircuit off: the first error is often an umbrella ("properties"); the leaf says what is wrong.
      entry = { validator: new Validator(schema as never, '2020-12', false), schema }
    }
  } catch {
    entry = { validator: undefined, schema: undefined }
  }
  cache.set(schemaText, entry)
  if (cache.size > CACHE) cache.delete(cache.keys().next().value!)
  return entry
}

/** The most specific error: the deepest instance location, then the last reported. */
function leaf (errors: readonly OutputUnit[]): OutputUnit | undefined {
  let best: OutputUnit | undefined
  for (const e of errors) {
    if (e.keyword === 'properties' || e.keyword === 'items' || e.keyword === 'allOf' || e.keyword === '$ref') continue
    if (best === undefined || e.instanceLocation.length >= best.instanceLocation.length) best = e
  }
  return best ?? errors[errors.length - 1]
}

/**
 * Why `input` does not fit the schema (one sentence, with where), or undefined when it fits or the
 * schema cannot be used. `agent` names the agent in the message.
 */
export function inputProblem (schemaText: string, input: unknown, agent: string): string | undefined {
  const { validator, schema } = compiled(schemaText)
  if (validator === undefined || depth(input, MAX_DEPTH) > MAX_DEPTH) return undefined
  let result
  try {
    result = validator.validate(input)
  } catch {
    return undefined
  }
  if (result.valid) return undefined
  const e = leaf(result.errors)
  const at = e === undefined || e.instanceLocation === '#' ? '' : e.instanceLocation.slice(1)
  let why: string
  if (input === null || input === undefined) why = 'no input was given'
  else if (e !== undefined && /false boolean schema/i.test(e.error) && at !== '') why = `${at} is not a field it takes`
  else why = `${at === '' ? `the input (${typeName(input)})` : `the input at ${at}`}: ${e?.error ?? 'does not match'}`
  return `${agent} needs ${describeInput(schema)}; ${why}`
}

/** A short description of what a schema takes, with its first example when it has one. */
export function describeInput (schema: unknown): string {
  if (typeof schema !== 'object' || schema === null) return 'an input the agent describes'
  const s = schema as Record<string, unknown>
  let what: string
  const props = typeof s.properties === 'object' && s.properties !== null ? s.properties as Record<string, Record<string, unknown>> : undefined
  if (props !== undefined) {
    const required = new Set(Array.isArray(s.required) ? s.required.filter((x): x is string => typeof x === 'string') : [])
    const fields = Object.entries(props).slice(0, 8).map(([k, v]) => `${k}${required.has(k) ? '' : '?'}: ${typeof v?.type === 'string' ? v.type : Array.isArray(v?.type) ? v.type.join('|') : 'any'}`)
    what = `{ ${fields.join(', ')} }`
  } else {
    what = typeof s.type === 'string' ? `a ${s.type}` : 'an input the agent describes'
  }
  const example = Array.isArray(s.examples) && s.examples.length > 0 ? ` (e.g. ${JSON.stringify(s.examples[0]).slice(0, 120)})` : ''
  return `${what}${example}`
}

/**
 * The input to send when the subtask has none (null) and the request has text: the text itself if
 * the schema takes a string, `{ field: text }` if it takes an object whose one required field (or,
 * with none required, whose only field) is a string; undefined otherwise.
 */
export function inputFromText (schemaText: string, text: string): unknown {
  const { schema } = compiled(schemaText)
  if (typeof schema !== 'object') return undefined
  if (schema.type === 'string') return text
  const props = typeof schema.properties === 'object' && schema.properties !== null ? schema.properties as Record<string, Record<string, unknown>> : undefined
  if (props === undefined) return undefined
  const required = Array.isArray(schema.required) ? schema.required.filter((x): x is string => typeof x === 'string') : []
  const candidates = required.length > 0 ? required : Object.keys(props)
  if (candidates.length !== 1) return undefined
  const field = candidates[0]!
  return props[field]?.type === 'string' ? { [field]: text } : undefined
}

/**
 * `TaskExecutionOptions.prepareInput` for an agent whose VCV declares `schemaText` (undefined: not
 * in the table, nothing to check): a missing input (null) becomes the request text where the schema
 * takes text, and the input is checked against the schema.
 */
export function prepareFromSchema (schemaText: string | undefined, name: string, input: unknown, request: { text?: string }): { input: unknown } | { problem: string } {
  if (schemaText === undefined) return { input }
  let value = input
  if (value === null && request.text !== undefined) value = inputFromText(schemaText, request.text) ?? null
  const problem = inputProblem(schemaText, value, name)
  return problem === undefined ? { input: value } : { problem }
}
