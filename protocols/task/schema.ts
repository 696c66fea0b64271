/**
 * A task is a DAG of subtasks. Parsing is strict: unknown fields, dangling references, duplicate
 * ids and cycles are refused with the reason (and, for a cycle, the path around it).
 *
 * ```yaml
 * id: report
 * deadlineMs: 30000
 * budget: 5
 * subtasks:
 *   - id: stats
 *     capability: { text: count the words in a text, skills: [text-analysis] }
 *     input: { text: "Agents talk. Peers gossip." }
 *   - id: top
 *     capability: { text: sort a list }
 *     input: { items: { $from: stats, path: /topWords } }   # an upstream output, by JSON Pointer
 * ```
 */
import { FORBIDDEN_KEYS, typeName } from '../json.ts'
import { validateRule } from '../consensus/equivalence.ts'
import type { EquivalenceRule } from '../consensus/types.ts'

export const taskLimits = {
  maxSubtasks: 256,
  maxIdLength: 64,
  maxTextLength: 2000,
  maxSkills: 16,
  maxRedundancy: 15,
  maxDeadlineMs: 24 * 60 * 60 * 1000,
  maxInputDepth: 32
} as const

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

export interface CapabilityRequest {
  /** What the subtask needs, in words; matched semantically against agent descriptions. */
  text?: string
  /** Skills every candidate must list. */
  skills?: string[]
  /** Policy flags every candidate must carry (e.g. `no-network`, `deterministic`). */
  policy?: string[]
  /** Only agents with exactly these input and output schemas (the VCV's schemaHash, hex). */
  schemaHash?: string
}

/** A value in a subtask's input that stands for (part of) an upstream subtask's output. */
export interface InputRef {
  $from: string
  /** RFC 6901 JSON Pointer into that output; the whole output when absent. */
  path?: string
}

export interface SubtaskSpec {
  id: string
  capability: CapabilityRequest
  /** JSON, in which any `{ $from, path? }` object is replaced by the referenced output. */
  input: unknown
  /** Explicit dependencies; references in `input` add theirs implicitly. */
  dependsOn: string[]
  /** How many distinct agents run it (results are then aggregated). */
  redundancy: number
  /** Per-attempt deadline in ms. */
  deadlineMs?: number
  /** Most this subtask may spend, in credits, over all its attempts. */
  budget?: number
  /** Run on several agents and commit one result by weighted BFT consensus, with a certificate. */
  trust?: TrustSpec
}

export interface TrustSpec {
  /** How answers are grouped into equivalence classes (default: canonical JSON equality). */
  rule: EquivalenceRule
  /** Executions added, one at a time, while the tally is too close to call (default 2). */
  extra: number
  /** Committee size: executors' hosts, the requester, then members drawn by hash (default 4, at least 4). */
  committee: number
}

export interface TaskSpec {
  id: string
  subtasks: SubtaskSpec[]
  /** Deadline for the whole task in ms from its start. */
  deadlineMs?: number
  budget?: number
}

export class TaskSpecError extends Error {
  override name = 'TaskSpecError'
}

const TASK_FIELDS = ['id', 'subtasks', 'deadlineMs', 'budget']
const SUBTASK_FIELDS = ['id', 'capability', 'input', 'dependsOn', 'redundancy', 'deadlineMs', 'budget', 'trust']
const TRUST_FIELDS = ['rule', 'extra', 'committee']

/** Validates a parsed JSON/YAML value as a task; `fallbackId` names a task that has no id. */
export function parseTask (value: unknown, fallbackId = 'task'): TaskSpec {
  const o = mapping(value, 'the task', TASK_FIELDS)
  const id = o.id === undefined ? fallbackId : identifier(o.id, 'task id')
  if (!Array.isArray(o.subtasks) || o.subtasks.length === 0) fail('"subtasks" must be a non-empty list')
  if (o.subtasks.length > taskLimits.maxSubtasks) fail(`a task has at most ${taskLimits.maxSubtasks} subtasks`)
  const subtasks = o.subtasks.map((s, i) => parseSubtask(s, `subtasks[${i}]`))
  const ids = new Set<string>()
  for (const s of subtasks) {
    if (ids.has(s.id)) fail(`two subtasks have the id "${s.id}"`)
    ids.add(s.id)
  }
  for (const s of subtasks) {
    for (const d of s.dependsOn) {
      if (!ids.has(d)) fail(`subtask "${s.id}" depends on "${d}", which is not a subtask of this task`)
      if (d === s.id) fail(`subtask "${s.id}" depends on itself`)
    }
  }
  const cycle = findCycle(subtasks)
  if (cycle !== undefined) fail(`the subtasks form a cycle: ${cycle.join(' -> ')}`)
  return {
    id,
    subtasks,
    ...(o.deadlineMs !== undefined ? { deadlineMs: positive(o.deadlineMs, 'deadlineMs', taskLimits.maxDeadlineMs) } : {}),
    ...(o.budget !== undefined ? { budget: nonNegative(o.budget, 'budget') } : {})
  }
}

function parseSubtask (value: unknown, at: string): SubtaskSpec {
  const o = mapping(value, at, SUBTASK_FIELDS)
  const id = identifier(o.id, `${at}.id`)
  const where = `subtask "${id}"`
  const cap = mapping(o.capability, `${where}: capability`, ['text', 'skills', 'policy', 'schemaHash'])
  const capability: CapabilityRequest = {}
  if (cap.text !== undefined) {
    if (typeof cap.text !== 'string' || cap.text.trim() === '' || cap.text.length > taskLimits.maxTextLength) {
      fail(`${where}: capability.text must be 1..${taskLimits.maxTextLength} characters`)
    }
    capability.text = cap.text
  }
  if (cap.skills !== undefined) {
    if (!Array.isArray(cap.skills) || cap.skills.length > taskLimits.maxSkills || !cap.skills.every(s => typeof s === 'string' && s !== '')) {
      fail(`${where}: capability.skills must be a list of at most ${taskLimits.maxSkills} words`)
    }
    capability.skills = cap.skills as string[]
  }
  if (cap.policy !== undefined) {
    if (!Array.isArray(cap.policy) || cap.policy.length > taskLimits.maxSkills || !cap.policy.every(s => typeof s === 'string' && s !== '')) {
      fail(`${where}: capability.policy must be a list of at most ${taskLimits.maxSkills} flags`)
    }
    capability.policy = cap.policy as string[]
  }
  if (cap.schemaHash !== undefined) {
    if (typeof cap.schemaHash !== 'string' || !/^[0-9a-f]{64}$/.test(cap.schemaHash)) fail(`${where}: capability.schemaHash must be 64 hex digits (an agent's schemaHash)`)
    capability.schemaHash = cap.schemaHash
  }
  if (capability.text === undefined && capability.skills === undefined) fail(`${where}: capability needs text, skills or both`)
  const refs = new Set<string>()
  checkInput(o.input ?? null, `${where}: input`, refs, 0)
  let dependsOn: string[] = []
  if (o.dependsOn !== undefined) {
    if (!Array.isArray(o.dependsOn) || !o.dependsOn.every(d => typeof d === 'string')) fail(`${where}: dependsOn must be a list of subtask ids`)
    dependsOn = o.dependsOn as string[]
  }
  const trust = o.trust === undefined || o.trust === false ? undefined : trustSpec(o.trust, where)
  const redundancy = o.redundancy === undefined ? (trust === undefined ? 1 : 3) : integer(o.redundancy, `${where}: redundancy`, 1, taskLimits.maxRedundancy)
  if (trust !== undefined && redundancy < 2) fail(`${where}: a trusted subtask runs on at least 2 agents; set redundancy to 2 or more (3 tolerates one wrong answer)`)
  return {
    id,
    capability,
    input: o.input ?? null,
    dependsOn: [...new Set([...dependsOn, ...refs])],
    redundancy,
    ...(trust !== undefined ? { trust } : {}),
    ...(o.deadlineMs !== undefined ? { deadlineMs: positive(o.deadlineMs, `${where}: deadlineMs`, taskLimits.maxDeadlineMs) } : {}),
    ...(o.budget !== undefined ? { budget: nonNegative(o.budget, `${where}: budget`) } : {})
  }
}

/** `trust: true`, or `{ rule?, extra?, committee? }`. */
function trustSpec (value: unknown, where: string): TrustSpec {
  if (value === true) return { rule: { kind: 'json' }, extra: 2, committee: 4 }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`${where}: trust must be true or a map with rule, extra, committee`)
  const t = value as Record<string, unknown>
  const unknown = Object.keys(t).find(k => !TRUST_FIELDS.includes(k))
  if (unknown !== undefined) fail(`${where}: trust has no field "${unknown}" (it has ${TRUST_FIELDS.join(', ')})`)
  let rule: EquivalenceRule = { kind: 'json' }
  if (t.rule !== undefined) {
    try {
      rule = validateRule(t.rule)
    } catch (err) {
      fail(`${where}: trust.rule: ${(err as Error).message}`)
    }
  }
  return {
    rule,
    extra: t.extra === undefined ? 2 : integer(t.extra, `${where}: trust.extra`, 0, taskLimits.maxRedundancy),
    committee: t.committee === undefined ? 4 : integer(t.committee, `${where}: trust.committee`, 4, 64)
  }
}

/** Checks that `value` is JSON and collects the subtasks its `$from` references name. */
function checkInput (value: unknown, at: string, refs: Set<string>, depth: number): void {
  if (depth > taskLimits.maxInputDepth) fail(`${at} is nested deeper than ${taskLimits.maxInputDepth} levels`)
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) fail(`${at} holds ${String(value)}, which is not JSON`)
    return
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => checkInput(v, `${at}[${i}]`, refs, depth + 1))
    return
  }
  if (typeof value !== 'object') fail(`${at} holds ${typeName(value)}, which is not JSON`)
  const o = value as Record<string, unknown>
  if ('$from' in o) {
    const extra = Object.keys(o).filter(k => k !== '$from' && k !== 'path')
    if (extra.length > 0) fail(`${at}: a reference has only "$from" and "path", not "${extra[0]}"`)
    if (typeof o.$from !== 'string') fail(`${at}: "$from" must name a subtask`)
    if (o.path !== undefined && (typeof o.path !== 'string' || (o.path !== '' && !o.path.startsWith('/')))) {
      fail(`${at}: "path" must be a JSON Pointer such as /words`)
    }
    refs.add(o.$from)
    return
  }
  for (const [k, v] of Object.entries(o)) {
    if (FORBIDDEN_KEYS.has(k)) fail(`${at} may not use the key "${k}"`)
    checkInput(v, `${at}.${k}`, refs, depth + 1)
  }
}

/** A dependency cycle as a list of ids (first = last), or undefined. Iterative DFS: no stack overflow at 256 nodes. */
export function findCycle (subtasks: ReadonlyArray<{ id: string, dependsOn: string[] }>): string[] | undefined {
  const deps = new Map(subtasks.map(s => [s.id, s.dependsOn]))
  const state = new Map<string, 'open' | 'done'>()
  for (const root of deps.keys()) {
    if (state.has(root)) continue
    const path: string[] = []
    const stack: Array<{ id: string, next: number }> = [{ id: root, next: 0 }]
    state.set(root, 'open')
    path.push(root)
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!
      const children = deps.get(top.id) ?? []
      if (top.next < children.length) {
        const child = children[top.next++]!
        if (state.get(child) === 'open') return [...path.slice(path.indexOf(child)), child]
        if (!state.has(child)) {
          state.set(child, 'open')
          path.push(child)
          stack.push({ id: child, next: 0 })
        }
      } else {
        state.set(top.id, 'done')
        path.pop()
        stack.pop()
      }
    }
  }
  return undefined
}

function fail (reason: string): never {
  throw new TaskSpecError(reason)
}

function mapping (value: unknown, what: string, fields: string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`${what} must be a mapping, not ${typeName(value)}`)
  for (const k of Object.keys(value)) {
    if (!fields.includes(k)) fail(`${what} has an unknown field "${k}" (allowed: ${fields.join(', ')})`)
  }
  return value as Record<string, unknown>
}

function identifier (value: unknown, what: string): string {
  if (typeof value !== 'string' || !ID_PATTERN.test(value)) fail(`${what} must be 1-64 letters, digits, ".", "_" or "-", not ${typeName(value)}`)
  return value
}

function integer (value: unknown, what: string, min: number, max: number): number {
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) fail(`${what} must be a whole number from ${min} to ${max}`)
  return value as number
}

function positive (value: unknown, what: string, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > max) fail(`${what} must be a number of ms from 1 to ${max}`)
  return value
}

function nonNegative (value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) fail(`${what} must be a number >= 0`)
  return value
}
