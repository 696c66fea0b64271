/**
 * The built-in agent kinds, and `createAgent` to build one from an `AgentSpec`.
 */
import type { Agent, AgentSpec } from './agent.ts'
import { createArithmeticAgent } from './arithmetic.ts'
import { createJsonTransformAgent } from './json-transform.ts'
import { createLlmAgent } from './llm.ts'
import { createSortAgent } from './sort.ts'
import { createSummarizeAgent } from './summarize.ts'
import { createTextStatsAgent } from './text-stats.ts'
import { createUnitConvertAgent } from './unit-convert.ts'

export type AgentFactory = (spec: AgentSpec) => Agent

// A Map, so kind names like "constructor" can never reach Object.prototype.
const FACTORIES: ReadonlyMap<string, AgentFactory> = new Map([
  ['arithmetic', createArithmeticAgent],
  ['unit-convert', createUnitConvertAgent],
  ['text-stats', createTextStatsAgent],
  ['sort', createSortAgent],
  ['json-transform', createJsonTransformAgent],
  ['summarize', createSummarizeAgent],
  ['llm', (spec) => createLlmAgent(spec)],
])

/** The deterministic demo kinds: runnable anywhere, with nothing to configure. */
export const demoKinds: readonly string[] = Object.freeze(['arithmetic', 'unit-convert', 'text-stats', 'sort', 'json-transform', 'summarize'])

/** Names of the built-in kinds, in a fixed order. */
export const agentKinds: readonly string[] = Object.freeze([...FACTORIES.keys()])

export function isAgentKind(kind: string): boolean {
  return FACTORIES.has(kind)
}

/** Builds an agent of `spec.kind` with the spec's overrides; throws for an unknown kind. */
export function createAgent(spec: AgentSpec): Agent {
  const factory = FACTORIES.get(spec.kind)
  if (!factory) {
    throw new Error(`unknown agent kind ${JSON.stringify(spec.kind)}; known kinds are ${agentKinds.join(', ')}`)
  }
  return factory(spec)
}

/** One spec of each demo kind, with the kind's defaults. */
export function defaultAgentSpecs(): AgentSpec[] {
  return demoKinds.map((kind) => ({ kind }))
}
