/**
 * `json-transform`: selects part of a JSON document with an RFC 6901 JSON Pointer, then picks,
 * omits and renames keys of an object, or of each object in an array.
 *
 * Prototype pollution guard: `__proto__`, `constructor` and `prototype` are refused in the
 * pointer, pick and rename, and dropped from every object of the result, which is rebuilt as
 * plain objects with own data properties only.
 */
import { AgentInputError } from './agent.ts'
import type { Agent, AgentDescription, AgentSpec } from './agent.ts'
import { JSON_SCHEMA_DRAFT, deterministicAgent, typeName } from './base.ts'
import { FORBIDDEN_KEYS, PointerError, resolvePointer as resolveJsonPointer } from '../../protocols/json.ts'

export const MAX_DEPTH = 100

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
type JsonObject = { [key: string]: Json }

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Defines an own data property, which is safe even for a key named "__proto__". */
function setOwn(target: JsonObject, key: string, value: Json): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true })
}

/** Deep-copies JSON, checking every value is JSON and dropping forbidden keys. */
function cleanCopy(value: unknown, where: string, depth = 0): Json {
  if (depth > MAX_DEPTH) throw new AgentInputError(`"data" nests deeper than ${MAX_DEPTH} levels at ${where}; flatten it`)
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value
  if (typeof value === 'number') {
    if (Number.isFinite(value)) return value
    throw new AgentInputError(`${where || '/'} holds ${value}, which is not JSON; send finite numbers`)
  }
  if (Array.isArray(value)) return value.map((v, i) => cleanCopy(v, `${where}/${i}`, depth + 1))
  if (isObject(value) && [Object.prototype, null].includes(Object.getPrototypeOf(value))) {
    const out: JsonObject = {}
    for (const key of Object.keys(value)) {
      if (!FORBIDDEN_KEYS.has(key)) setOwn(out, key, cleanCopy(value[key], `${where}/${escape(key)}`, depth + 1))
    }
    return out
  }
  throw new AgentInputError(`${where || '/'} holds ${typeof value}, which is not JSON`)
}

const escape = (key: string): string => key.replace(/~/g, '~0').replace(/\//g, '~1')

/** Resolves an RFC 6901 JSON Pointer; a bad pointer is the caller's input error. */
function resolvePointer(data: Json, pointer: string): Json {
  try {
    return resolveJsonPointer(data, pointer) as Json
  } catch (err) {
    if (err instanceof PointerError) throw new AgentInputError(`"path" ${err.message}`)
    throw err
  }
}

interface Shape {
  pick?: string[]
  omit?: string[]
  rename?: Map<string, string>
}

function reshape(obj: JsonObject, { pick, omit, rename }: Shape): JsonObject {
  const out: JsonObject = {}
  const sources = new Map<string, string>()
  for (const key of Object.keys(obj)) {
    if (pick && !pick.includes(key)) continue
    if (omit?.includes(key)) continue
    const target = rename?.get(key) ?? key
    const previous = sources.get(target)
    if (previous !== undefined) {
      throw new AgentInputError(`"rename" maps both "${previous}" and "${key}" to "${target}"; choose distinct names`)
    }
    sources.set(target, key)
    setOwn(out, target, obj[key]!)
  }
  return out
}

function stringList(value: unknown, field: string): string[] | undefined {
  if (value === undefined) return undefined
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw new AgentInputError(`field "${field}" must be an array of key names, e.g. ["id", "name"], but got ${typeName(value)}`)
  }
  return value
}

function renameMap(value: unknown): Map<string, string> | undefined {
  if (value === undefined) return undefined
  if (!isObject(value)) {
    throw new AgentInputError(`field "rename" must be an object of old → new key names, e.g. { "id": "userId" }, but got ${typeName(value)}`)
  }
  const map = new Map<string, string>()
  for (const [from, to] of Object.entries(value)) {
    if (typeof to !== 'string' || to === '') throw new AgentInputError(`"rename.${from}" must be a non-empty string, the new key name`)
    if (FORBIDDEN_KEYS.has(from) || FORBIDDEN_KEYS.has(to)) throw new AgentInputError(`"rename" may not use the key "${FORBIDDEN_KEYS.has(to) ? to : from}"`)
    map.set(from, to)
  }
  return map
}

export function transform(input: Record<string, unknown>): { result: Json } {
  if (!('data' in input)) throw new AgentInputError('field "data" is required: send the JSON value to transform, e.g. { "data": { "a": 1 }, "pick": ["a"] }')
  const path = input['path']
  if (path !== undefined && typeof path !== 'string') throw new AgentInputError(`field "path" must be a JSON Pointer string such as "/items", but got ${typeName(path)}`)
  const shape: Shape = {
    pick: stringList(input['pick'], 'pick'),
    omit: stringList(input['omit'], 'omit'),
    rename: renameMap(input['rename']),
  }
  const bad = shape.pick?.find((k) => FORBIDDEN_KEYS.has(k))
  if (bad) throw new AgentInputError(`"pick" may not use the key "${bad}"`)

  const selected = resolvePointer(cleanCopy(input['data'], ''), path ?? '')
  if (!shape.pick && !shape.omit && !shape.rename) return { result: selected }
  if (isObject(selected)) return { result: reshape(selected, shape) }
  if (Array.isArray(selected)) return { result: selected.map((v) => (isObject(v) ? reshape(v, shape) : v)) }
  throw new AgentInputError(`pick, omit and rename need an object or an array of objects, but the selected value is ${typeName(selected)}; point "path" at an object`)
}

const defaults: AgentDescription = {
  name: 'json-transform',
  description:
    'JSON transformer that reshapes JSON data: selects a nested value with a JSON Pointer path, then keeps ' +
    '(picks) or removes (omits) fields and renames keys of an object or of every record in a list. Use it ' +
    'to extract, filter, project or restructure JSON objects and arrays of records.',
  skills: ['json', 'transform', 'json-pointer', 'extract-fields', 'rename-keys', 'data-reshaping'],
  inputSchema: {
    $schema: JSON_SCHEMA_DRAFT,
    type: 'object',
    properties: {
      data: { description: 'Any JSON value.' },
      path: { type: 'string', description: 'RFC 6901 JSON Pointer applied first, e.g. "/users".', default: '' },
      pick: { type: 'array', items: { type: 'string' }, description: 'Keep only these keys.' },
      omit: { type: 'array', items: { type: 'string' }, description: 'Remove these keys.' },
      rename: { type: 'object', additionalProperties: { type: 'string', minLength: 1 }, description: 'Old key → new key.' },
    },
    required: ['data'],
    additionalProperties: false,
  },
  outputSchema: {
    $schema: JSON_SCHEMA_DRAFT,
    type: 'object',
    properties: { result: { description: 'The transformed JSON value.' } },
    required: ['result'],
    additionalProperties: false,
  },
  costPerCall: 0.1,
  latencyMs: 2,
  capacity: 64,
  policy: ['deterministic', 'no-network', 'stateless'],
}

export function createJsonTransformAgent(spec: AgentSpec): Agent {
  return deterministicAgent(defaults, spec, transform)
}
