import { describe, it, expect } from 'vitest'
import { parseTask, TaskExecution, TaskSpecError, type TaskEffect } from '../../protocols/task/index.ts'

const task = (trust: unknown, redundancy?: number) => parseTask({
  id: 't',
  subtasks: [{ id: 's', capability: { skills: ['math'] }, input: { x: 1 }, trust, ...(redundancy === undefined ? {} : { redundancy }) }]
})

const of = <T extends TaskEffect['type']>(effects: TaskEffect[], type: T): Array<Extract<TaskEffect, { type: T }>> =>
  effects.filter((e): e is Extract<TaskEffect, { type: T }> => e.type === type)

/** Starts, routes to `agents`, and answers every dispatch with `value`. */
function answered (exec: TaskExecution, agents: string[], value: unknown): TaskEffect[] {
  exec.start(0)
  const dispatched = of(exec.routed('s', agents.map(agent => ({ agent, cost: 1 })), 1), 'dispatch')
  return dispatched.flatMap(d => exec.succeeded(d.attempt, value, 2))
}

describe('trusted subtasks in the task machine', () => {
  it('parses trust: defaults (3 agents, json rule, 2 extra, committee of 4), options, and refusals with reasons', () => {
    expect(task(true).subtasks[0]).toMatchObject({ redundancy: 3, trust: { rule: { kind: 'json' }, extra: 2, committee: 4 } })
    expect(task({ rule: { kind: 'numeric', tolerance: 0.01 }, extra: 0, committee: 7 }, 5).subtasks[0]).toMatchObject({ redundancy: 5, trust: { rule: { kind: 'numeric', tolerance: 0.01 }, extra: 0, committee: 7 } })
    expect(() => task(true, 1)).toThrow(/trusted subtask runs on at least 2 agents/)
    expect(() => task({ quorum: 3 })).toThrow(/trust has no field "quorum"/)
    expect(() => task({ committee: 3 })).toThrow(TaskSpecError)
    expect(() => task({ rule: { kind: 'vibes' } })).toThrow(/trust.rule/)
  })

  it('asks for agreement once every answer is in, and finishes with the agreed value', () => {
    const exec = new TaskExecution(task(true))
    const effects = answered(exec, ['a/x', 'b/x', 'c/x'], 42)
    const [agree] = of(effects, 'agree')
    expect(agree).toMatchObject({ subtask: 's', final: false })
    expect(agree!.attempts.map(a => a.agent)).toEqual(['a/x', 'b/x', 'c/x'])
    expect(exec.subtaskStatus('s')).toBe('agreeing')
    const done = exec.agreed('s', 42, 3, { certificate: 'abc' })
    expect(of(done, 'finished')).toEqual([{ type: 'finished', status: 'done' }])
    expect(exec.result()).toEqual({ s: 42 })
    expect(exec.trace.find(t => t.kind === 'agree')?.detail).toEqual({ certificate: 'abc' })
  })

  it('a close tally adds one execution at a time up to `extra`, then the last request is final', () => {
    const exec = new TaskExecution(task({ extra: 1 }))
    answered(exec, ['a/x', 'b/x', 'c/x', 'd/x'], 1)
    const more = exec.more('s', 'too close', 3)
    const [dispatch] = of(more, 'dispatch')
    expect(dispatch?.agent).toBe('d/x') // the next candidate takes the added slot
    const [agree] = of(exec.succeeded(dispatch!.attempt, 2, 4), 'agree')
    expect(agree?.attempts).toHaveLength(4)
    expect(agree?.final).toBe(true)
    // No extra execution is left: asking for more now escalates with the reason.
    const ended = exec.more('s', 'still too close', 5)
    expect(of(ended, 'finished')[0]).toMatchObject({ status: 'escalated' })
    expect(exec.reason).toMatch(/still too close, and no more executions are allowed/)
  })

  it('a committee that cannot commit an answer escalates the task with the reason', () => {
    const exec = new TaskExecution(task(true))
    answered(exec, ['a/x', 'b/x', 'c/x'], 1)
    const ended = exec.disagreed('s', 'the committee found no answer ahead by the margin', 3)
    expect(of(ended, 'finished')[0]).toMatchObject({ status: 'escalated' })
    expect(exec.trace.filter(t => t.kind === 'escalate')).toHaveLength(1)
  })
})
