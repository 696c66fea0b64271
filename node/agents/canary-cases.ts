/**
 * Built-in spot-check cases for the built-in deterministic agent kinds: each draws a fresh input
 * and computes its known answer independently of the agent's code, so a colluder cannot learn a
 * fixed list of questions and a bug in a kind's code is not its own referee. Kinds whose output
 * is not a fixed function of the input (llm, summarize, MQTT agents) have no built-in case: add
 * cases for them in the node config (`canaries.cases`, see docs/configuration.md).
 */
import type { CanaryCase } from '../services/canaries.ts'

const int = (random: () => number, lo: number, hi: number): number => lo + Math.floor(random() * (hi - lo + 1))

export const BUILT_IN_CANARY_CASES: readonly CanaryCase[] = [
  {
    // arithmetic: a product plus a sum of integers, exact in doubles
    skills: ['arithmetic'],
    generate: random => {
      const [a, b, c] = [int(random, 12, 999), int(random, 12, 999), int(random, 1, 9999)]
      return { input: { expression: `${a} * ${b} + ${c}` }, answer: { value: a * b + c } }
    }
  },
  {
    // unit-convert: whole kilometres to metres (exact)
    skills: ['unit-conversion'],
    generate: random => {
      const km = int(random, 1, 5000)
      return { input: { value: km, from: 'km', to: 'm' }, answer: { value: km * 1000, unit: 'm' } }
    }
  },
  {
    // sort: distinct integers, ascending
    skills: ['sort'],
    generate: random => {
      const items = [...new Set(Array.from({ length: int(random, 4, 9) }, () => int(random, -500, 500)))]
      return { input: { items }, answer: { items: [...items].sort((x, y) => x - y), count: items.length } }
    }
  }
]
