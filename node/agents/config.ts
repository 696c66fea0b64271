/**
 * Loads the YAML agents file that says which agents a node hosts:
 *
 * ```yaml
 * agents:
 *   - kind: arithmetic
 *     name: calc         # optional; defaults to the kind
 *     costPerCall: 0.5   # optional overrides of the kind's defaults
 * ```
 *
 * Validation is strict and every message names the file, the entry, what is wrong and the fix.
 */
import { readFileSync } from 'node:fs'
import { parse } from 'yaml'
import type { AgentSpec } from './agent.ts'
import { agentKinds, isAgentKind } from './registry.ts'
import { suggest } from '../suggest.ts'
import { NAME_PATTERN } from '../../protocols/capability/schema.ts'

export class ConfigError extends Error {
  override name = 'ConfigError'
}

const MAX_DESCRIPTION = 2000
const MAX_LIST = 32
const MAX_TOKEN = 64
const FIELDS = ['kind', 'name', 'description', 'skills', 'costPerCall', 'latencyMs', 'capacity', 'policy', 'llm'] as const
const LLM_FIELDS = ['url', 'model', 'systemPrompt', 'apiKeyEnv', 'temperature', 'maxTokens', 'timeoutMs'] as const

export function loadAgentsFile(path: string): AgentSpec[] {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err)
    throw new ConfigError(`cannot read agents file ${path}: ${reason} — check the path and file permissions`)
  }
  return parseAgentsYaml(text, path)
}

/** An agents file lists at most a host's quota of agents: 128 KiB is room for hundreds (and bounds YAML parsing). */
export const MAX_AGENTS_FILE_BYTES = 128 * 1024

export function parseAgentsYaml(text: string, source: string): AgentSpec[] {
  if (Buffer.byteLength(text) > MAX_AGENTS_FILE_BYTES) {
    throw new ConfigError(`${source}: an agents file may be at most ${MAX_AGENTS_FILE_BYTES / 1024} KiB — move long descriptions or prompts elsewhere`)
  }
  const doc = parseYaml(text, source)
  if (!isMapping(doc) || !Object.hasOwn(doc, 'agents')) {
    throw new ConfigError(`${source}: expected a mapping with an "agents" list at the top level — write ${EXAMPLE}`)
  }
  const extra = Object.keys(doc).filter((k) => k !== 'agents')
  if (extra.length) {
    throw new ConfigError(`${source}: unknown top-level field "${extra[0]}" — only "agents" is allowed`)
  }
  return parseAgentList(doc['agents'], source)
}

const EXAMPLE = 'e.g.\nagents:\n  - kind: arithmetic'

/** Parses YAML text; a syntax error becomes a ConfigError with the line and column. */
export function parseYaml(text: string, source: string): unknown {
  try {
    return parse(text, { logLevel: 'error' }) // unique keys are enforced by default
  } catch (err) {
    throw new ConfigError(`${source}: ${yamlErrorSummary(err)} — fix the YAML syntax (indentation, quotes, brackets)`)
  }
}

/** Validates the value of an `agents:` key: a non-empty list of entries with distinct names. */
export function parseAgentList(entries: unknown, source: string): AgentSpec[] {
  if (!Array.isArray(entries)) {
    throw new ConfigError(`${source}: "agents" must be a list of entries (each starting with "- kind: …") — write ${EXAMPLE}`)
  }
  if (entries.length === 0) {
    throw new ConfigError(`${source}: the "agents" list is empty — add at least one entry, ${EXAMPLE}`)
  }
  const owners = new Map<string, number>()
  return entries.map((entry, index) => {
    const spec = parseEntry(entry, `${source}: agents[${index}]`)
    const name = spec.name ?? spec.kind
    const first = owners.get(name)
    if (first !== undefined) {
      throw new ConfigError(
        `${source}: agents[${index}]: name "${name}" is already used by agents[${first}] (names default to the kind) — give each agent a distinct "name"`,
      )
    }
    owners.set(name, index)
    return spec
  })
}

function parseEntry(entry: unknown, at: string): AgentSpec {
  if (!isMapping(entry)) {
    throw new ConfigError(`${at}: expected a mapping such as "kind: arithmetic", but got ${describe(entry)} — write each entry as "- kind: <kind>" plus optional fields`)
  }
  for (const key of Object.keys(entry)) {
    if (!(FIELDS as readonly string[]).includes(key)) {
      const hint = suggest(key, FIELDS)
      throw new ConfigError(`${at}: unknown field "${key}"${hint ? ` (did you mean "${hint}"?)` : ''} — allowed fields are ${FIELDS.join(', ')}`)
    }
  }
  const kind = entry['kind']
  if (kind === undefined) throw new ConfigError(`${at}: missing "kind" — add "kind: <kind>", one of ${agentKinds.join(', ')}`)
  if (typeof kind !== 'string' || !isAgentKind(kind)) {
    throw new ConfigError(`${at}: unknown kind ${describe(kind)} — use one of ${agentKinds.join(', ')}`)
  }
  const spec: AgentSpec = { kind }
  if ((kind === 'llm') !== (entry['llm'] !== undefined)) {
    throw new ConfigError(kind === 'llm'
      ? `${at}: an llm agent needs an "llm" section — add llm: { url: http://127.0.0.1:8080/v1, model: <model> }`
      : `${at}: "llm" settings belong only to kind llm`)
  }
  if (kind === 'llm') spec.llm = parseLlm(entry['llm'], `${at}: llm`)
  const name = entry['name']
  if (name !== undefined) {
    if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
      throw new ConfigError(`${at}: "name" ${describe(name)} is invalid — use 1 to 64 lower-case letters, digits, ".", "_" or "-", starting with a letter or digit (e.g. "calc-2")`)
    }
    spec.name = name
  }
  const description = entry['description']
  if (description !== undefined) {
    if (typeof description !== 'string' || description.trim() === '' || description.length > MAX_DESCRIPTION) {
      throw new ConfigError(`${at}: "description" must be a non-empty string of at most ${MAX_DESCRIPTION} characters, but got ${describe(description)}`)
    }
    spec.description = description
  }
  for (const field of ['skills', 'policy'] as const) {
    const list = entry[field]
    if (list !== undefined) spec[field] = tokenList(list, `${at}: "${field}"`)
  }
  for (const field of ['costPerCall', 'latencyMs'] as const) {
    const value = entry[field]
    if (value !== undefined) {
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
        throw new ConfigError(`${at}: "${field}" must be a finite number ≥ 0, but got ${describe(value)} — write e.g. "${field}: 0.5"`)
      }
      spec[field] = value
    }
  }
  const capacity = entry['capacity']
  if (capacity !== undefined) {
    if (typeof capacity !== 'number' || !Number.isInteger(capacity) || capacity < 1) {
      throw new ConfigError(`${at}: "capacity" must be a whole number ≥ 1 (calls run at once), but got ${describe(capacity)} — write e.g. "capacity: 8"`)
    }
    spec.capacity = capacity
  }
  return spec
}

function parseLlm(value: unknown, at: string): NonNullable<AgentSpec['llm']> {
  if (!isMapping(value)) throw new ConfigError(`${at} must be a mapping with url and model`)
  for (const key of Object.keys(value)) {
    if (!(LLM_FIELDS as readonly string[]).includes(key)) {
      const hint = suggest(key, LLM_FIELDS)
      throw new ConfigError(`${at}: unknown field "${key}"${hint ? ` (did you mean "${hint}"?)` : ''} — allowed fields are ${LLM_FIELDS.join(', ')}`)
    }
  }
  const url = value['url']
  if (typeof url !== 'string' || !/^https?:\/\/[^\s]+$/.test(url)) throw new ConfigError(`${at}: "url" must be an http(s) URL such as http://127.0.0.1:8080/v1`)
  const model = value['model']
  if (typeof model !== 'string' || model === '') throw new ConfigError(`${at}: "model" must name the model, e.g. "gpt-4o-mini"`)
  const out: NonNullable<AgentSpec['llm']> = { url, model }
  for (const key of ['systemPrompt', 'apiKeyEnv'] as const) {
    const v = value[key]
    if (v === undefined) continue
    if (typeof v !== 'string' || v === '') throw new ConfigError(`${at}: "${key}" must be a non-empty string`)
    if (key === 'apiKeyEnv' && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(v)) throw new ConfigError(`${at}: "apiKeyEnv" names an environment variable (e.g. OPENAI_API_KEY); the key itself never goes in this file`)
    out[key] = v
  }
  for (const [key, min, max] of [['temperature', 0, 2], ['maxTokens', 1, 1_000_000], ['timeoutMs', 1, 3_600_000]] as const) {
    const v = value[key]
    if (v === undefined) continue
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw new ConfigError(`${at}: "${key}" must be a number from ${min} to ${max}`)
    out[key] = v
  }
  return out
}

function tokenList(value: unknown, at: string): string[] {
  const ok = (v: unknown): v is string => typeof v === 'string' && v.trim() !== '' && v.length <= MAX_TOKEN
  if (!Array.isArray(value) || value.length > MAX_LIST || !value.every(ok)) {
    throw new ConfigError(`${at} must be a list of at most ${MAX_LIST} non-empty strings of up to ${MAX_TOKEN} characters, but got ${describe(value)} — write e.g. [math, calculator]`)
  }
  return [...value]
}

export function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return 'nothing'
  if (Array.isArray(value)) return `a list ${short(listText(value))}`
  if (typeof value === 'object') return 'a mapping'
  return `${typeof value} ${short(JSON.stringify(value) ?? String(value))}`
}

/** A YAML alias can make a list contain itself (`agents: &a [*a]`), which JSON cannot write. */
function listText(value: unknown[]): string {
  try {
    return JSON.stringify(value)
  } catch {
    return '(that contains itself through a YAML alias)'
  }
}

const short = (s: string): string => (s.length > 60 ? `${s.slice(0, 60)}…` : s)

function yamlErrorSummary(err: unknown): string {
  if (!(err instanceof Error)) return `YAML error: ${String(err)}`
  const pos = (err as { linePos?: { line: number; col: number }[] }).linePos?.[0]
  const what = err.message.split(' at line ')[0]!.split('\n')[0]!
  return pos ? `YAML syntax error at line ${pos.line}, column ${pos.col}: ${what}` : `YAML syntax error: ${what}`
}
