import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { parse } from 'yaml'
import { parseTask, TaskExecution, type TaskEffect, type TaskSpec } from '../../protocols/task/index.ts'

const T0 = 1_000_000

function dispatches (effects: TaskEffect[]): Array<Extract<TaskEffect, { type: 'dispatch' }>> {
  return effects.filter((e): e is Extract<TaskEffect, { type: 'dispatch' }> => e.type === 'dispatch')
}
function routes (effects: TaskEffect[]): Array<Extract<TaskEffect, { type: 'route' }>> {
  return effects.filter((e): e is Extract<TaskEffect, { type: 'route' }> => e.type === 'route')
}
const finished = (effects: TaskEffect[]): TaskEffect | undefined => effects.find(e => e.type === 'finished')
const c = (agent: string, cost = 1): { agent: string, cost: number } => ({ agent, cost })

describe('parsing a task', () => {
  it('reads YAML with references, and adds their dependencies', () => {
    const task = parseTask(parse(`
      id: report
      budget: 5
      subtasks:
        - id: stats
          capability: { text: count the words, skills: [text-analysis] }
          input: { text: "Agents talk. Peers gossip." }
        - id: top
          capability: { text: sort a list }
          input: { items: { $from: stats, path: /topWords } }
    `))
    expect(task.subtasks[1]).toMatchObject({ id: 'top', dependsOn: ['stats'], redundancy: 1 })
    expect(task.budget).toBe(5)
  })

  it('refuses malformed DAGs with the reason', () => {
    const sub = (id: string, extra: object = {}): object => ({ id, capability: { text: 'x' }, ...extra })
    const cases: Array<[unknown, RegExp]> = [
      [{ subtasks: [sub('a', { dependsOn: ['b'] }), sub('b', { dependsOn: ['c'] }), sub('c', { dependsOn: ['a'] })] }, /cycle: (a -> b -> c -> a|b -> c -> a -> b|c -> a -> b -> c)/],
      [{ subtasks: [sub('a', { dependsOn: ['ghost'] })] }, /depends on "ghost", which is not a subtask/],
      [{ subtasks: [sub('a', { input: { x: { $from: 'ghost' } } })] }, /"ghost", which is not a subtask/],
      [{ subtasks: [sub('a'), sub('a')] }, /two subtasks have the id "a"/],
      [{ subtasks: [sub('a', { retries: 3 })] }, /unknown field "retries"/],
      [{ subtasks: [sub('a', { redundancy: 0 })] }, /redundancy must be a whole number from 1/],
      [{ subtasks: [{ id: 'a', capability: {} }] }, /capability needs text, skills or both/],
      [{ subtasks: [sub('a', { input: JSON.parse('{"__proto__": {"x": 1}}') })] }, /may not use the key "__proto__"/],
      [{ subtasks: [sub('a', { input: { x: { $from: 'a', extra: 1 } } })] }, /only "\$from" and "path"/],
      [{ subtasks: [] }, /non-empty list/],
      [{ subtasks: [sub('a')], deadline: 5 }, /unknown field "deadline"/],
      [{ subtasks: [{ id: 'a', capability: { text: 'x', schemaHash: 'abc' } }] }, /schemaHash must be 64 hex digits/],
      [{ subtasks: [{ id: 'a', capability: { text: 'x', policy: 'fast' } }] }, /capability.policy must be a list/]
    ]
    for (const [value, reason] of cases) expect(() => parseTask(value)).toThrow(reason)
  })
})

describe('running a task', () => {
  const chain: TaskSpec = parseTask({
    subtasks: [
      { id: 'a', capability: { text: 'make numbers' }, input: { n: 3 } },
      { id: 'b', capability: { text: 'sort' }, input: { items: { $from: 'a', path: '/items' } } },
      { id: 'c', capability: { text: 'count' }, input: { text: { $from: 'a', path: '/text' } } },
      { id: 'd', capability: { text: 'join' }, input: { sorted: { $from: 'b' }, counted: { $from: 'c' } } }
    ]
  })

  it('releases subtasks as their dependencies finish, fans out, and substitutes references', () => {
    const task = new TaskExecution(chain)
    const start = task.start(T0)
    expect(routes(start).map(r => r.subtask)).toEqual(['a'])
    const [da] = dispatches(task.routed('a', [c('x')], T0))
    expect(da).toMatchObject({ subtask: 'a', agent: 'x', input: { n: 3 } })
    const fanOut = task.succeeded(da!.attempt, { items: [3, 1, 2], text: 'one two' }, T0 + 1)
    expect(routes(fanOut).map(r => r.subtask).sort()).toEqual(['b', 'c'])
    const [db] = dispatches(task.routed('b', [c('y')], T0 + 2))
    const [dc] = dispatches(task.routed('c', [c('z')], T0 + 2))
    expect(db!.input).toEqual({ items: [3, 1, 2] })
    expect(dc!.input).toEqual({ text: 'one two' })
    expect(routes(task.succeeded(db!.attempt, [1, 2, 3], T0 + 3))).toEqual([]) // d still waits for c
    const last = routes(task.succeeded(dc!.attempt, 2, T0 + 4))
    expect(last.map(r => r.subtask)).toEqual(['d'])
    const [dd] = dispatches(task.routed('d', [c('w')], T0 + 5))
    expect(dd!.input).toEqual({ sorted: [1, 2, 3], counted: 2 })
    expect(finished(task.succeeded(dd!.attempt, 'ok', T0 + 6))).toEqual({ type: 'finished', status: 'done' })
    expect(task.result()).toEqual({ d: 'ok' })
    expect(task.spent).toBe(4)
  })

  it('reroutes around a failed agent and a timed-out one, and says so in the trace', () => {
    const task = new TaskExecution(parseTask({ subtasks: [{ id: 'a', capability: { text: 'x' }, deadlineMs: 1000 }] }))
    task.start(T0)
    const [first] = dispatches(task.routed('a', [c('x'), c('y'), c('z')], T0))
    const [second] = dispatches(task.failure(first!.attempt, 'agent crashed', T0 + 10))
    expect(second!.agent).toBe('y')
    const timedOut = task.tick(T0 + 10 + 1000)
    expect(timedOut).toContainEqual({ type: 'cancel', subtask: 'a', attempt: second!.attempt, agent: 'y', why: 'timeout' })
    const [third] = dispatches(timedOut)
    expect(third!.agent).toBe('z')
    expect(task.succeeded(second!.attempt, 'late', T0 + 1100)).toEqual([]) // abandoned: its late answer is ignored
    task.succeeded(third!.attempt, 'fine', T0 + 1200)
    expect(task.status).toBe('done')
    expect(task.result()).toEqual({ a: 'fine' })
    expect(task.trace.filter(t => t.kind === 'reroute').map(t => [t.agent, t.reason])).toEqual([['x', 'agent crashed'], ['y', 'timed out']])
  })

  it('routes again excluding failed agents, then escalates with the reason when nobody is left', () => {
    const task = new TaskExecution(parseTask({ subtasks: [{ id: 'a', capability: { text: 'x' } }] }))
    task.start(T0)
    const [d1] = dispatches(task.routed('a', [c('x')], T0))
    const again = task.failure(d1!.attempt, 'refused input', T0 + 1)
    expect(routes(again)).toEqual([{ type: 'route', subtask: 'a', request: { text: 'x' }, exclude: ['x'] }])
    const end = task.routed('a', [c('x')], T0 + 2) // the router offers only the failed agent again
    expect(finished(end)).toMatchObject({ status: 'escalated', reason: expect.stringMatching(/no usable agent \(failed here: x\)/) })
    expect(task.trace.at(-1)).toMatchObject({ kind: 'escalate', subtask: 'a' })
  })

  it('skips candidates over budget, and escalates when none is affordable', () => {
    const task = new TaskExecution(parseTask({ budget: 3, subtasks: [{ id: 'a', capability: { text: 'x' }, budget: 2 }] }))
    task.start(T0)
    const [d] = dispatches(task.routed('a', [c('gold', 5), c('silver', 2)], T0))
    expect(d!.agent).toBe('silver')
    expect(task.trace.find(t => t.kind === 'reroute')).toMatchObject({ agent: 'gold', reason: 'over budget (costs 5)' })
    const end = task.failure(d!.attempt, 'crashed', T0 + 1)
    const final = task.routed('a', [c('bronze', 1)], T0 + 2) // 2 spent of the subtask's 2
    expect(routes(end)).toHaveLength(1)
    expect(finished(final)).toMatchObject({ status: 'escalated' })
    expect(task.spent).toBe(2)
  })

  it('runs redundant copies on distinct agents and takes the majority, or escalates without one', () => {
    const spec = parseTask({ subtasks: [{ id: 'a', capability: { text: 'x' }, redundancy: 3 }] })
    const agree = new TaskExecution(spec)
    agree.start(T0)
    const ds = dispatches(agree.routed('a', [c('p'), c('q'), c('r'), c('s')], T0))
    expect(ds.map(d => d.agent)).toEqual(['p', 'q', 'r'])
    agree.succeeded(ds[0]!.attempt, { v: 1, w: 2 }, T0)
    agree.succeeded(ds[1]!.attempt, { v: 9 }, T0)
    agree.succeeded(ds[2]!.attempt, { w: 2, v: 1 }, T0)
    expect(agree.result()).toEqual({ a: { v: 1, w: 2 } })

    const split = new TaskExecution(spec)
    split.start(T0)
    const es = dispatches(split.routed('a', [c('p'), c('q'), c('r')], T0))
    es.forEach((d, i) => split.succeeded(d.attempt, i, T0))
    expect(split.status).toBe('escalated')
    expect(split.reason).toMatch(/no majority among 3 results/)
  })

  it('stops everything at the task deadline, cancelling what is in flight', () => {
    const task = new TaskExecution(parseTask({ deadlineMs: 500, subtasks: [{ id: 'a', capability: { text: 'x' } }, { id: 'b', capability: { text: 'y' } }] }))
    const start = task.start(T0)
    expect(start).toContainEqual({ type: 'timer', at: T0 + 500 })
    const [da] = dispatches(task.routed('a', [c('x')], T0))
    const effects = task.tick(T0 + 500)
    expect(effects).toContainEqual({ type: 'cancel', subtask: 'a', attempt: da!.attempt, agent: 'x', why: 'task-ended' })
    expect(finished(effects)).toMatchObject({ status: 'escalated', reason: 'task deadline of 500 ms passed' })
    expect([task.subtaskStatus('a'), task.subtaskStatus('b')]).toEqual(['cancelled', 'cancelled'])
  })

  it('escalates when an input reference does not resolve', () => {
    const task = new TaskExecution(parseTask({ subtasks: [
      { id: 'a', capability: { text: 'x' } },
      { id: 'b', capability: { text: 'y' }, input: { v: { $from: 'a', path: '/missing' } } }
    ] }))
    task.start(T0)
    const [d] = dispatches(task.routed('a', [c('x')], T0))
    task.succeeded(d!.attempt, { present: 1 }, T0)
    const end = task.routed('b', [c('y')], T0)
    expect(finished(end)).toMatchObject({ status: 'escalated', reason: expect.stringMatching(/input reference: \/missing: the object at \/ has no key "missing"/) })
  })

  it('never loses a task: every run ends done or escalated, and every failure is in the trace', () => {
    const dag = fc.integer({ min: 1, max: 7 }).chain(n => fc.tuple(
      ...Array.from({ length: n }, (_, i) => fc.record({
        deps: fc.subarray(Array.from({ length: i }, (_, j) => `s${j}`)),
        redundancy: fc.integer({ min: 1, max: 2 })
      }))
    ))
    const world = fc.record({
      agents: fc.integer({ min: 1, max: 5 }),
      outcomes: fc.array(fc.constantFrom('ok', 'fail', 'timeout'), { minLength: 50, maxLength: 50 }),
      offers: fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 50, maxLength: 50 })
    })
    fc.assert(fc.property(dag, world, (shape, { agents, outcomes, offers }) => {
      const spec = parseTask({ subtasks: shape.map((s, i) => ({ id: `s${i}`, capability: { text: 'x' }, dependsOn: s.deps, redundancy: s.redundancy, deadlineMs: 100 })) })
      const task = new TaskExecution(spec)
      let now = T0
      let step = 0
      const pending: Array<Extract<TaskEffect, { type: 'dispatch' }>> = []
      const queue: TaskEffect[] = [...task.start(now)]
      const failures: number[] = []
      while (task.status === 'running' && step < 2000) {
        step++
        const effect = queue.shift()
        if (effect === undefined) {
          const next = pending.shift()
          if (next === undefined) break
          const outcome = outcomes[step % outcomes.length]
          if (outcome === 'ok') queue.push(...task.succeeded(next.attempt, `${next.subtask}-out`, ++now))
          if (outcome === 'fail') { failures.push(next.attempt); queue.push(...task.failure(next.attempt, 'failed', ++now)) }
          if (outcome === 'timeout') { failures.push(next.attempt); now = next.deadline; queue.push(...task.tick(now)) }
          continue
        }
        if (effect.type === 'route') {
          const offered = Array.from({ length: Math.min(agents, offers[step % offers.length]!) }, (_, i) => c(`agent${(i + step) % agents}`))
          queue.push(...task.routed(effect.subtask, offered, ++now))
        }
        if (effect.type === 'dispatch') pending.push(effect)
      }
      expect(['done', 'escalated']).toContain(task.status)
      if (task.status === 'done') expect(Object.keys(task.outputs()).sort()).toEqual(spec.subtasks.map(s => s.id).sort())
      else expect(task.trace.some(t => t.kind === 'escalate' && t.reason !== undefined)).toBe(true)
      // Every failed attempt shows up as a reroute, or the task ended first.
      const rerouted = new Set(task.trace.filter(t => t.kind === 'reroute').map(t => t.attempt))
      for (const attempt of failures) expect(rerouted.has(attempt) || task.status !== 'running').toBe(true)
      // A subtask is dispatched only after every dependency is done.
      task.trace.forEach((t, i) => {
        if (t.kind !== 'dispatch') return
        for (const d of spec.subtasks.find(s => s.id === t.subtask)!.dependsOn) {
          expect(task.trace.findIndex(x => x.kind === 'done' && x.subtask === d)).toBeLessThan(i)
        }
      })
    }), { numRuns: 300 })
  })
})
