// The requester's task driver (protocols/task/driver.ts), which the peer and the simulator both
// run, against a scripted I/O: what it asks for, what it ignores and what the router learns.
import { describe, it, expect } from 'vitest'
import { driveTask, parseTask, type AgreementRequest, type AgreementResult, type DispatchOutcome, type ExecuteCall, type ExecuteResult, type RouteAnswer, type TaskReport } from '../../protocols/task/index.ts'

/** A scripted I/O on a clock the test moves: every request is recorded and answered by the test. */
function scripted () {
  let now = 0
  const timers: Array<{ at: number, wake: () => void, cancelled: boolean }> = []
  const routes: Array<{ subtask: string, done: (a: RouteAnswer) => void }> = []
  const calls: Array<{ call: ExecuteCall, done: (r: ExecuteResult, ms: number) => void }> = []
  const cancelled: number[] = []
  const outcomes: DispatchOutcome[] = []
  const settled: string[] = []
  const agreements: Array<{ request: AgreementRequest, done: (r: AgreementResult) => void }> = []
  const reports: TaskReport[] = []
  const io = {
    now: () => now,
    timer: (at: number, wake: () => void) => { const t = { at, wake, cancelled: false }; timers.push(t); return () => { t.cancelled = true } },
    route: (subtask: string, _request: unknown, _exclude: string[], done: (a: RouteAnswer) => void) => { routes.push({ subtask, done }) },
    execute: (call: ExecuteCall, done: (r: ExecuteResult, ms: number) => void) => { calls.push({ call, done }) },
    cancel: (call: ExecuteCall) => { cancelled.push(call.attempt) },
    agree: (_subtask: string, request: AgreementRequest, done: (r: AgreementResult) => void) => { agreements.push({ request, done }) },
    outcome: (o: DispatchOutcome) => { outcomes.push(o) },
    settle: (subtask: string, agent: string, teach: string) => { settled.push(`${subtask} ${agent} ${teach}`) },
    finished: (r: TaskReport) => { reports.push(r) }
  }
  /** Moves the clock to `to`, firing the timers due on the way, earliest first. */
  const advance = (to: number): void => {
    for (;;) {
      const due = timers.filter(t => !t.cancelled && t.at <= to).sort((a, b) => a.at - b.at)[0]
      if (due === undefined) break
      timers.splice(timers.indexOf(due), 1)
      now = due.at
      due.wake()
    }
    now = to
  }
  return { io, timers, routes, calls, cancelled, outcomes, settled, agreements, reports, advance }
}

const candidates = (...agents: string[]): RouteAnswer => ({ candidates: agents.map(agent => ({ agent, cost: 1 })) })

describe('the requester task driver', () => {
  it('a result after its attempt timed out is ignored and teaches nothing more; the timeout taught a failure', () => {
    const s = scripted()
    const task = driveTask(parseTask({ id: 't', subtasks: [{ id: 'a', capability: { text: 'x' }, input: { n: 1 }, deadlineMs: 1000 }] }), s.io)
    task.start()
    s.routes[0]!.done(candidates('h1/slow', 'h2/fast'))
    expect(s.calls.map(c => [c.call.agent, c.call.deadline])).toEqual([['h1/slow', 1000]])
    s.advance(1000) // the deadline: the machine reroutes
    expect(s.cancelled).toEqual([s.calls[0]!.call.attempt])
    expect(s.outcomes).toEqual([{ subtask: 'a', agent: 'h1/slow', result: { ok: false, kind: 'timeout', error: 'deadline passed' }, latencyMs: Infinity }])
    s.calls[0]!.done({ ok: true, output: 'late' }, 1500)
    expect(s.outcomes).toHaveLength(1)
    s.calls[1]!.done({ ok: true, output: 'on time' }, 20)
    expect(s.reports.map(r => [r.status, r.outputs])).toEqual([['done', { a: 'on time' }]])
    expect(s.outcomes[1]).toMatchObject({ agent: 'h2/fast', latencyMs: 20 })
    // Finished: no wake-up left behind.
    expect(s.timers.filter(t => !t.cancelled)).toEqual([])
  })

  it('asks for the earliest wake-up only, and a superseded one does nothing', () => {
    const s = scripted()
    const task = driveTask(parseTask({ id: 't', subtasks: [{ id: 'a', capability: { text: 'x' }, input: {}, deadlineMs: 5000 }, { id: 'b', capability: { text: 'y' }, input: {}, deadlineMs: 1000 }] }), s.io)
    task.start()
    s.routes[0]!.done(candidates('h1/a'))
    s.routes[1]!.done(candidates('h2/b'))
    // Two deadlines, 5000 and 1000: a wake-up at 5000 first, replaced by one at 1000 once the second is known.
    expect(s.timers.map(t => [t.at, t.cancelled])).toEqual([[5000, true], [1000, false]])
    s.advance(1000) // b times out: routed again, and nobody is left
    expect(s.routes.map(r => r.subtask)).toEqual(['a', 'b', 'b'])
    s.routes[2]!.done(candidates())
    expect(s.reports.map(r => r.status)).toEqual(['escalated'])
    // The task ended: its wake-up (5000 again, for a) was cancelled, and were one to fire anyway, nothing happens.
    expect(s.timers.map(t => [t.at, t.cancelled])).toEqual([[5000, true], [5000, true]])
    for (const t of s.timers) t.wake()
    expect(s.reports).toHaveLength(1)
  })

  it('a trusted subtask asks executors to sign, fails an unsigned answer, and agrees on the signed ones', () => {
    const s = scripted()
    const task = driveTask(parseTask({ id: 't', subtasks: [{ id: 'a', capability: { text: 'x' }, input: { q: 1 }, trust: true, redundancy: 2 }] }), s.io)
    task.start()
    s.routes[0]!.done(candidates('h1/a', 'h2/a', 'h3/a'))
    expect(s.calls.map(c => c.call.sign?.subtask)).toEqual(['t/a', 't/a'])
    expect(s.calls[0]!.call.sign!.inputHash).toMatch(/^[0-9a-f]{64}$/)
    s.calls[0]!.done({ ok: true, output: 1 }, 5) // no signed answer: that attempt fails, h3 takes the slot
    expect(s.calls.map(c => c.call.agent)).toEqual(['h1/a', 'h2/a', 'h3/a'])
    s.calls[1]!.done({ ok: true, output: 1, answer: Uint8Array.of(2) }, 5)
    s.calls[2]!.done({ ok: true, output: 1, answer: Uint8Array.of(3) }, 5)
    expect(s.agreements).toHaveLength(1)
    expect(s.agreements[0]!.request).toMatchObject({ key: 't/a', final: false })
    expect(new Set(s.agreements[0]!.request.answers.map(a => `${a.agent} ${a.answer[0]}`))).toEqual(new Set(['h2/a 2', 'h3/a 3']))
    s.agreements[0]!.done({ kind: 'decided', value: 1 })
    expect(s.reports.map(r => [r.status, r.outputs])).toEqual([['done', { a: 1 }]])
    // Without an agreement service a trusted subtask cannot be decided: it escalates, saying why.
    const bare = scripted()
    const { agree: _, ...io } = bare.io
    const lone = driveTask(parseTask({ id: 'u', subtasks: [{ id: 'a', capability: { text: 'x' }, input: {}, trust: true, redundancy: 2 }] }), io)
    lone.start()
    bare.routes[0]!.done(candidates('h1/a', 'h2/a'))
    for (const c of bare.calls) c.done({ ok: true, output: 1, answer: Uint8Array.of(1) }, 1)
    expect(bare.reports[0]?.reason).toMatch(/this peer runs no consensus service/)
  })

  it('an input-error report teaches nothing until the machine settles it', () => {
    const s = scripted()
    const task = driveTask(parseTask({ id: 't', subtasks: [{ id: 'a', capability: { text: 'x' }, input: {} }] }), s.io)
    task.start()
    s.routes[0]!.done(candidates('h1/a', 'h2/a'))
    s.calls[0]!.done({ ok: false, kind: 'input', error: 'expected a number' }, 3)
    expect(s.outcomes).toEqual([])
    s.calls[1]!.done({ ok: true, output: 7 }, 3) // another agent took the same input: the claim was false
    expect(s.settled).toEqual(['a h1/a failure'])
  })
})
