/**
 * Shared plumbing for the built-in demo agents: spec overrides, abort handling and the
 * small hand-written input checks each agent uses before doing its work.
 */
import { AgentInputError } from './agent.ts'
import { typeName } from '../../protocols/json.ts'
import type { Agent, AgentDescription, AgentResult, AgentSpec } from './agent.ts'

export const JSON_SCHEMA_DRAFT = 'https://json-schema.org/draft/2020-12/schema'

/** Applies the spec's overrides over the kind's defaults. `kind` itself is not a field of the description. */
export function applySpec(defaults: AgentDescription, spec: AgentSpec): AgentDescription {
  return {
    ...defaults,
    name: spec.name ?? defaults.name,
    description: spec.description ?? defaults.description,
    skills: spec.skills ?? defaults.skills,
    costPerCall: spec.costPerCall ?? defaults.costPerCall,
    latencyMs: spec.latencyMs ?? defaults.latencyMs,
    capacity: spec.capacity ?? defaults.capacity,
    policy: spec.policy ?? defaults.policy,
  }
}

/**
 * Builds a deterministic agent: checks the abort signal, checks the input is an object with only
 * the allowed fields, runs `run` and reports confidence 1 (a deterministic answer is certain).
 */
export function deterministicAgent(
  defaults: AgentDescription,
  spec: AgentSpec,
  run: (input: Record<string, unknown>) => unknown,
): Agent {
  const description = structuredClone(applySpec(defaults, spec))
  const properties = Object.keys((description.inputSchema['properties'] ?? {}) as object)
  return {
    // A fresh deep copy each time, so callers cannot mutate the agent's own description.
    describe: () => structuredClone(description),
    async handle(input: unknown, signal?: AbortSignal): Promise<AgentResult> {
      signal?.throwIfAborted()
      const fields = inputObject(input, properties, description.name)
      return { output: run(fields), confidence: 1 }
    },
  }
}

/** The input must be a plain JSON object holding only known fields. */
export function inputObject(input: unknown, allowed: string[], agent: string): Record<string, unknown> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new AgentInputError(
      `${agent} expects a JSON object with fields ${allowed.join(', ')}, but got ${typeName(input)}`,
    )
  }
  for (const key of Object.keys(input)) {
    if (!allowed.includes(key)) {
      throw new AgentInputError(
        `${agent} does not accept field "${key}"; allowed fields are ${allowed.join(', ')}`,
      )
    }
  }
  return input as Record<string, unknown>
}

/** A required string field, at most `maxLength` characters. */
export function stringField(
  input: Record<string, unknown>,
  field: string,
  maxLength: number,
  hint: string,
): string {
  const value = input[field]
  if (typeof value !== 'string') {
    throw new AgentInputError(`field "${field}" must be a string, but got ${typeName(value)}; ${hint}`)
  }
  if (value.length > maxLength) {
    throw new AgentInputError(
      `field "${field}" is ${value.length} characters long; send at most ${maxLength} characters`,
    )
  }
  return value
}

/** A required finite number field. */
export function numberField(input: Record<string, unknown>, field: string, hint: string): number {
  const value = input[field]
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new AgentInputError(`field "${field}" must be a finite number, but got ${typeName(value)}; ${hint}`)
  }
  return value
}

/** An optional boolean field. */
export function booleanField(input: Record<string, unknown>, field: string, fallback: boolean): boolean {
  const value = input[field]
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') {
    throw new AgentInputError(`field "${field}" must be true or false, but got ${typeName(value)}`)
  }
  return value
}

/** Names the JSON type of a value for error messages. */
export { typeName }

/** Rounds to `digits` decimals; used for human-facing statistics. */
export function round(value: number, digits: number): number {
  const scale = 10 ** digits
  return Math.round(value * scale) / scale
}
