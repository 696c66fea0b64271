/**
 * The task stream: which tasks arrive when, at which requester, as real task specs (parsed by
 * protocols/task like any submitted task), with the ground truth of every subtask.
 *
 * A subtask's input carries a number `x` (or, for a join, two upstream values `a` and `b`), its
 * kind of work `k` and its difficulty `d`; the correct answer is a fixed function of the task type and x. Chains and joins
 * take their input from upstream outputs, so a wrong upstream answer makes the task's final
 * answer wrong even when every later agent is right: accuracy is end to end.
 */
import { parseTask, type TaskSpec } from '../protocols/task/index.ts'
import { CATALOGUE } from './catalogue.ts'
import type { Difficulty } from './agents.ts'
import { pick, type Rng } from './rng.ts'
import type { Scenario } from './scenario.ts'

export interface SimTask {
  index: number
  at: number
  requester: number
  spec: TaskSpec
  /** Per subtask id: its type, difficulty and correct output value. */
  truth: Map<string, { type: string, difficulty: Difficulty, value: number }>
}

/** The correct answer of `type` for input x: a fixed hash, so agents and the oracle agree. */
export function correctValue (type: string, x: number): number {
  let h = 0x811c9dc5
  const s = `${type}:${x}`
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193)
  return (h >>> 0) % 100_000
}

/** The x of a resolved subtask input. */
export function inputValue (input: unknown): number | undefined {
  if (typeof input !== 'object' || input === null) return undefined
  const o = input as Record<string, unknown>
  if (typeof o.x === 'number') return o.x
  if (typeof o.a === 'number' && typeof o.b === 'number') return o.a + o.b
  return undefined
}

function weighted<K extends string> (rng: Rng, shares: Record<K, number>): K {
  let x = rng()
  const keys = Object.keys(shares) as K[]
  for (const k of keys) {
    x -= shares[k]
    if (x < 0) return k
  }
  return keys[keys.length - 1]!
}

export function makeTasks (scenario: Scenario, requesters: readonly number[], rng: Rng): SimTask[] {
  const types = CATALOGUE.filter(t => scenario.agents.types.includes(t.name))
  const { count, deadlineMs } = scenario.tasks
  const times = Array.from({ length: count }, () => rng() * scenario.durationS * 1000).sort((a, b) => a - b)
  return times.map((at, index) => {
    const shape = weighted(rng, scenario.tasks.shapes)
    const truth = new Map<string, { type: string, difficulty: Difficulty, value: number }>()
    const subtasks: Array<Record<string, unknown>> = []
    const add = (id: string, input: Record<string, unknown>, x: number): number => {
      const type = types[pick(rng, types.length)]!
      const difficulty = weighted(rng, scenario.tasks.difficulty)
      const trusted = rng() < scenario.tasks.trusted
      const value = correctValue(type.name, x)
      truth.set(id, { type: type.name, difficulty, value })
      // Some requests also name the skill: the index filters on it.
      const capability = rng() < 0.3 ? { text: type.ask[pick(rng, type.ask.length)], skills: [type.skill] } : { text: type.ask[pick(rng, type.ask.length)] }
      subtasks.push({
        id,
        capability,
        input: { ...input, k: type.name, d: difficulty },
        deadlineMs,
        ...(trusted ? { redundancy: scenario.tasks.redundancy, trust: { rule: { kind: 'json' }, extra: 2, committee: scenario.tasks.committee } } : {})
      })
      return value
    }
    const x = Math.floor(rng() * 1_000_000)
    if (shape === 'single') {
      add('s0', { x }, x)
    } else if (shape === 'chain') {
      const v0 = add('s0', { x }, x)
      const v1 = add('s1', { x: { $from: 's0', path: '/value' } }, v0)
      add('s2', { x: { $from: 's1', path: '/value' } }, v1)
    } else {
      const y = Math.floor(rng() * 1_000_000)
      const a = add('a', { x }, x)
      const b = add('b', { x: y }, y)
      add('join', { a: { $from: 'a', path: '/value' }, b: { $from: 'b', path: '/value' } }, a + b)
    }
    const spec = parseTask({ id: `t${index}`, deadlineMs: deadlineMs * 8, subtasks })
    return { index, at, requester: requesters[pick(rng, requesters.length)]!, spec, truth }
  })
}
