/**
 * The mesh cannot be captured with default settings: agreement does not compound without
 * independent evidence, a discredited crowd cannot commit by numbers, escalations and failed
 * canaries trigger checks, and in the simulator colluding confident liars (and sleepers) neither
 * win the tally nor hold a third of the weight while the honest agents are the majority; when the
 * honest agents are the minority the mesh escalates instead of committing wrong.
 */
import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import {
  aggregate, Cohorts, decisiveSuspects, RETEST_BACKOFF, cpWbftVerdict, defaultAggregationConfig, defaultCanaryPolicy, effectiveConfidence, ReputationBook, Suspects,
  unit, unqualified, wantsCanary, type AnswerBody, type Json
} from '../../protocols/consensus/index.ts'
import { provenAt } from '../../protocols/consensus/aggregate.ts'
import { newcomerReputation } from '../../protocols/consensus/reputation.ts'
import { statementAggregation, validateCommitteeBody } from '../../protocols/consensus/committee.ts'
import { mulberry32 } from '../../protocols/random.ts'
import { TaskExecution, parseTask, type TaskEffect } from '../../protocols/task/index.ts'
import { loadScenario } from '../../sim/scenario.ts'
import { runOnce, withFaulty } from '../../sim/run.ts'

const body = (agent: string, answer: Json, confidence: number): AnswerBody => ({ v: 1, subtask: 't/s', inputHash: 'ab', agent, answer, confidence })

describe('reputation earned by agreeing does not compound', () => {
  it('an agent nobody has checked gains nothing from any number of agreeing certificates; each check lets four count', () => {
    fc.assert(fc.property(fc.nat({ max: 500 }), fc.nat({ max: 6 }), (agreements, checks) => {
      const book = new ReputationBook()
      for (let i = 0; i < agreements; i++) book.certificate({ id: `c${i}`, agreed: ['x/a', 'x/b', 'x/c'], disagreed: [] })
      for (let i = 0; i < checks; i++) book.canary({ id: `k${i}`, agent: 'x/a', correct: true })
      const credited = Math.min(agreements, 4 * checks)
      // reputation = (2.5 + credited + 3·checks) / (10 + credited + 3·checks)
      expect(book.reputation('x/a')).toBeCloseTo((2.5 + credited + 3 * checks) / (10 + credited + 3 * checks), 12)
      expect(book.reputation('x/b')).toBe(newcomerReputation())
      expect(book.vetted('x/b')).toBe(false)
    }), { numRuns: 200 })
  })

  it('colluding liars never reach a third of the weight by agreeing with each other (property over seeds, tallies and executor draws)', () => {
    // 7 agents: 3 liars agree on one wrong answer at confidence 1.0 and failed one canary each;
    // 4 honest agents passed two canaries each and answer right 80% of the time (wrong answers
    // scatter). Every round draws 5 executors, tallies with the mesh rule, and certifies the
    // outcome. Whatever the draws, the liars' share of the weight stays below 1/3.
    fc.assert(fc.property(fc.integer(), seed => {
      const rng = mulberry32(seed)
      const liars = ['l1/a', 'l2/a', 'l3/a']
      const honest = ['h1/a', 'h2/a', 'h3/a', 'h4/a']
      const book = new ReputationBook()
      for (const a of liars) book.canary({ id: `k-${a}`, agent: a, correct: false })
      for (const a of honest) for (const k of [1, 2]) book.canary({ id: `k-${a}-${k}`, agent: a, correct: true })
      const weight = (a: string, conf: number): number => { const s = book.standing(a); return unit(s.reputation) * effectiveConfidence(conf, s.accuracy, defaultAggregationConfig) }
      for (let round = 0; round < 60; round++) {
        const all = [...liars, ...honest].sort(() => rng() - 0.5).slice(0, 5)
        const answers = all.map(a => liars.includes(a) ? body(a, 666, 1) : body(a, rng() < 0.8 ? 42 : 1000 + Math.floor(rng() * 1000), 0.8))
        const v = aggregate(answers, { kind: 'json' }, a => book.standing(a))
        if (v.kind === 'decided') {
          expect(v.value).not.toBe(666)
          const agreed = answers.filter(a => a.answer === v.value).map(a => a.agent)
          book.certificate({ id: `c${round}`, agreed, disagreed: answers.map(a => a.agent).filter(a => !agreed.includes(a)) })
        }
        const liarWeight = liars.reduce((s, a) => s + weight(a, 1), 0)
        const total = liarWeight + honest.reduce((s, a) => s + weight(a, 0.8), 0)
        expect(liarWeight / total).toBeLessThan(1 / 3)
      }
    }), { numRuns: 100 })
  })
})

describe('a discredited crowd cannot commit', () => {
  it('the leading class needs two supporters of standing (one when only one agent answered)', () => {
    const book = new ReputationBook()
    const crowd = ['l1/a', 'l2/a', 'l3/a', 'l4/a', 'l5/a', 'l6/a']
    for (const a of crowd) for (const k of [1, 2]) book.canary({ id: `k-${a}-${k}`, agent: a, correct: false })
    book.canary({ id: 'k-h', agent: 'h1/a', correct: true })
    const answers = crowd.map(a => body(a, 'wrong', 1))
    // unanimous, but nobody in it has standing: no commit
    expect(aggregate(answers, { kind: 'json' }, a => book.standing(a)).kind).toBe('ambiguous')
    // one credible agent alone against them: no commit either
    expect(aggregate([...answers, body('h1/a', 'right', 0.8)], { kind: 'json' }, a => book.standing(a)).kind).toBe('ambiguous')
    // a single answering agent of standing may decide (a redundancy-1 tally)
    expect(aggregate([body('h1/a', 'right', 0.8)], { kind: 'json' }, a => book.standing(a)).kind).toBe('decided')
    // the floor is off at 0, as statements made before it read
    expect(aggregate(answers, { kind: 'json' }, a => book.standing(a), { minStanding: 0 }).kind).toBe('decided')
    expect(defaultAggregationConfig.minStanding).toBe(0.1)
  })

  it('a committee statement made before the floor existed is read with it off', () => {
    const old = {
      v: 1, subtask: 't/s', inputHash: 'a'.repeat(64), requester: '12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp',
      members: ['12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp', '12D3KooWGRUVh8fLsHGx1UGVVHZhMBvJ7pkLqZuEEbFh9NB7PRVB', '12D3KooWJ8Fq1oNMmr8hMpzQjvA8H5Skc2iTZvzH9ZJx2xoXb4i5', '12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK'].sort().map(id => ({ id, power: 100 })),
      executors: [{ agent: '12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp/calc', reputation: 0.5, accuracy: 0.5 }],
      rule: { kind: 'json' },
      aggregation: { confidenceCap: 0.9, shrink: 0.5, margin: 0.2, coverage: 2 / 3 }
    }
    // kept as signed (absent), decided as 0
    expect(validateCommitteeBody(old).aggregation.minStanding).toBeUndefined()
    expect(statementAggregation(validateCommitteeBody(old).aggregation).minStanding).toBe(0)
    expect(validateCommitteeBody({ ...old, aggregation: { ...old.aggregation, minStanding: 0.1 } }).aggregation.minStanding).toBe(0.1)
  })
})

describe('checks where they matter', () => {
  it('dissent and qualification ask for a canary; off means off; one at a time', () => {
    const book = new ReputationBook()
    const never = (): number => 0.99
    expect(wantsCanary(defaultCanaryPolicy, book, 'h/a', never, 0, 'dissent')).toBe(true)
    expect(wantsCanary(defaultCanaryPolicy, book, 'h/a', never, 1, 'dissent')).toBe(false)
    expect(wantsCanary(defaultCanaryPolicy, book, 'h/a', never, 0, 'qualify')).toBe(true)
    expect(unqualified(defaultCanaryPolicy, book, ['h/a', 'h/a', 'h/b'])).toEqual(['h/a', 'h/b'])
    book.canary({ id: 'k', agent: 'h/a', correct: false })
    expect(wantsCanary(defaultCanaryPolicy, book, 'h/a', never, 0, 'qualify')).toBe(false) // judged once: qualified (even if it failed)
    expect(unqualified(defaultCanaryPolicy, book, ['h/a', 'h/b'])).toEqual(['h/b'])
    const off = { rate: 0 }
    expect(wantsCanary(off, book, 'h/b', never, 0, 'dissent')).toBe(false)
    expect(wantsCanary(off, book, 'h/b', never, 0, 'qualify')).toBe(false)
    expect(unqualified(off, book, ['h/b'])).toEqual([])
  })

  it('a failed canary points at the agents that agreed with the one who failed it', () => {
    const cohorts = new Cohorts(3)
    cohorts.note(['a/1', 'b/1', 'c/1'])
    cohorts.note(['a/1', 'd/1'])
    cohorts.note(['e/1'])
    expect(cohorts.take('a/1').sort()).toEqual(['b/1', 'c/1', 'd/1'])
    expect(cohorts.take('a/1')).toEqual([]) // taken once
    expect(cohorts.take('e/1')).toEqual([])
    cohorts.note(['x/1', 'p/1', 'q/1', 'r/1', 's/1'])
    expect(cohorts.take('x/1')).toHaveLength(3) // bounded per agent
  })

  it('a failed canary suspends the agent\'s weight until it passes one; a failure is retested at once', () => {
    const book = new ReputationBook()
    for (const k of [1, 2, 3, 4, 5]) book.canary({ id: `k${k}`, agent: 's/1', correct: true })
    const suspects = new Suspects()
    const view = suspects.view(book)
    expect(view.standing('s/1').reputation).toBeGreaterThan(0.5)
    book.canary({ id: 'k6', agent: 's/1', correct: false })
    suspects.judged('s/1', false)
    // banked standing does not carry a sleeper that just failed
    expect(book.reputation('s/1')).toBeGreaterThan(0.3)
    expect(view.standing('s/1').reputation).toBe(0)
    expect(wantsCanary(defaultCanaryPolicy, book, 's/1', () => 0.99, 0, 'retest')).toBe(true)
    suspects.judged('s/1', true)
    expect(view.standing('s/1').reputation).toBe(book.reputation('s/1'))
  })

  it('a suspended agent is retested at once, then after a doubling backoff (one retest at a time, judged or not); passing clears it', () => {
    const suspects = new Suspects()
    expect(suspects.retestAt('s/1', 0)).toBeUndefined() // not suspended
    expect(suspects.judged('s/1', false, 1)).toBe(true)
    expect(suspects.retestAt('s/1', 1000)).toBe(1000) // the suspending failure: at once
    expect(suspects.retestAt('s/1', 1000)).toBeUndefined() // one scheduled at a time
    expect(suspects.retestDue('s/1')).toBe(true)
    expect(suspects.judged('s/1', false, 1)).toBe(false) // already suspended
    expect(suspects.retestAt('s/1', 2000)).toBe(2000 + RETEST_BACKOFF.firstMs)
    expect(suspects.retestDue('s/1')).toBe(true)
    // that retest ended in an error (not judged): the next one is still scheduled, later
    expect(suspects.retestAt('s/1', 3000)).toBe(3000 + 2 * RETEST_BACKOFF.firstMs)
    for (let i = 0; i < 40; i++) { suspects.retestDue('s/1'); suspects.retestAt('s/1', 0) }
    suspects.retestDue('s/1')
    expect(suspects.retestAt('s/1', 0)).toBe(RETEST_BACKOFF.maxMs) // capped
    suspects.judged('s/1', true)
    expect(suspects.has('s/1')).toBe(false)
    expect(suspects.retestDue('s/1')).toBe(false) // a retest that fires after a pass sends nothing
    expect(suspects.retestAt('s/1', 0)).toBeUndefined()
    // an unsure wrong answer does not suspend
    expect(suspects.judged('u/1', false, 0.3)).toBe(false)
    expect(suspects.has('u/1')).toBe(false)
  })

  it('an undecided tally names the suspended executors that would decide it, and no others', () => {
    const book = new ReputationBook()
    const passes = (agent: string, n: number): void => { for (let i = 0; i < n; i++) book.canary({ id: `${agent}-${i}`, agent, correct: true }) }
    passes('h/1', 6); passes('h/2', 6); passes('h/3', 6); passes('w/1', 8)
    for (let i = 0; i < 12; i++) book.canary({ id: `l-${i}`, agent: 'l/1', correct: false }) // a liar caught many times
    const suspects = new Suspects()
    suspects.judged('h/2', false, 0.9) // an honest slip
    suspects.judged('l/1', false, 1)
    const body = (agent: string, value: number): AnswerBody => ({ v: 1, subtask: 't/s', inputHash: 'x', agent, answer: { value }, confidence: 0.8 })
    const view = suspects.view(book)
    const rule = { kind: 'json' } as const
    const has = (a: string): boolean => suspects.has(a)
    // h/1 alone in the right class cannot decide (two supporters of standing); cleared, h/2 makes it
    expect(decisiveSuspects([body('h/1', 7), body('h/2', 7), body('w/1', 9)], rule, view, book, has)).toEqual(['h/2'])
    // the liar, cleared, still carries too little standing to decide anything
    expect(decisiveSuspects([body('h/1', 7), body('l/1', 7), body('w/1', 9)], rule, view, book, has)).toEqual([])
    // already decided: nobody to retest
    expect(decisiveSuspects([body('h/1', 7), body('h/3', 7), body('h/2', 7)], rule, view, book, has)).toEqual([])
    // cleared, it would still be too close to call: no retest
    expect(decisiveSuspects([body('h/2', 7), body('w/1', 9)], rule, view, book, has)).toEqual([])
  })

  it('property: a liar failing every check costs a logarithmic number of retests over time', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 30 * 24 }), hours => {
      const suspects = new Suspects()
      const end = hours * 3_600_000
      suspects.judged('l/1', false, 1)
      let retests = 0
      for (let at = suspects.retestAt('l/1', 0); at !== undefined && at <= end; at = suspects.retestAt('l/1', at)) {
        expect(suspects.retestDue('l/1')).toBe(true)
        retests++
        suspects.judged('l/1', false, 1)
      }
      // 1 at once, then 30 s, 1, 2, 4 … 32 min (7 doubling steps to the 1 h cap), then hourly
      expect(retests).toBeLessThanOrEqual(1 + 8 + hours)
    }), { seed: 13, numRuns: 50 })
  })

  it('a trusted subtask that runs out of agents agrees on the answers it has (at least two), said in the trace', () => {
    const spec = parseTask({ id: 't', subtasks: [{ id: 's', capability: { text: 'calc' }, input: 1, redundancy: 3, trust: { extra: 1 } }] })
    const ex = new TaskExecution(spec)
    const dispatches = (effects: TaskEffect[]): Array<Extract<TaskEffect, { type: 'dispatch' }>> => effects.filter((e): e is Extract<TaskEffect, { type: 'dispatch' }> => e.type === 'dispatch')
    ex.start(0)
    const sent = dispatches(ex.routed('s', ['a/1', 'b/1', 'c/1'].map(agent => ({ agent, cost: 0 })), 1))
    expect(sent).toHaveLength(3)
    ex.succeeded(sent[0]!.attempt, 7, 2)
    ex.succeeded(sent[1]!.attempt, 7, 3)
    // the third fails and nobody else is left: agree on the two answers there are
    const effects = ex.failure(sent[2]!.attempt, 'failed: boom', 4)
    const route = effects.find(e => e.type === 'route')
    expect(route).toBeDefined()
    const after = ex.routed('s', [], 5)
    const agree = after.find((e): e is Extract<TaskEffect, { type: 'agree' }> => e.type === 'agree')
    expect(agree).toMatchObject({ final: true })
    expect(agree!.attempts.map(a => a.agent)).toEqual(['a/1', 'b/1'])
    expect(ex.trace.some(t => t.kind === 'more' && /agreeing on the 2 answers there are/.test(t.reason ?? ''))).toBe(true)
  })
})

describe('learned calibration', () => {
  it('an agent whose confidence tracks its correctness earns its self-report; a confident liar loses its claims\' worth; the book keeps it', () => {
    const book = new ReputationBook()
    for (let i = 0; i < 30; i++) book.canary({ id: `r${i}`, agent: 'c/1', correct: true, confidence: 0.95 })
    for (let i = 0; i < 10; i++) book.canary({ id: `w${i}`, agent: 'c/1', correct: false, confidence: 0.3 })
    for (let i = 0; i < 10; i++) book.canary({ id: `l${i}`, agent: 'l/1', correct: false, confidence: 1 })
    const c = book.standing('c/1')
    const fixed = effectiveConfidence(0.95, c.accuracy, defaultAggregationConfig)
    expect(effectiveConfidence(0.95, c.accuracy, defaultAggregationConfig, c.calibration)).toBeGreaterThan(Math.max(fixed, 0.9)) // past the cap: earned
    expect(effectiveConfidence(0.3, c.accuracy, defaultAggregationConfig, c.calibration)).toBeLessThan(effectiveConfidence(0.3, c.accuracy, defaultAggregationConfig))
    const l = book.standing('l/1')
    expect(effectiveConfidence(1, l.accuracy, defaultAggregationConfig, l.calibration)).toBeLessThan(effectiveConfidence(1, l.accuracy, defaultAggregationConfig))
    expect(provenAt(c.calibration, 0.95)).toBe(true)
    expect(provenAt(c.calibration, 0.3)).toBe(false)
    expect(provenAt([0, 0, 0, 0, 19, 1, 0, 0], 0.8)).toBe(false) // 95% of twenty is not proof of 90%
    expect(ReputationBook.fromJSON(JSON.parse(JSON.stringify(book))).standing('c/1')).toEqual(c)
    // a proven answer decides alone only beside another agent in good standing
    const proven = body('c/1', 'right', 0.95)
    const discredited = ['l/1', 'l/2', 'l/3'].map(a => body(a, 'lie', 1))
    for (const a of ['l/2', 'l/3']) for (let i = 0; i < 5; i++) book.canary({ id: `${a}${i}`, agent: a, correct: false, confidence: 1 })
    expect(aggregate([proven, ...discredited], { kind: 'json' }, a => book.standing(a)).kind).toBe('ambiguous')
    book.canary({ id: 'h0', agent: 'h/1', correct: true, confidence: 0.8 })
    const verdict = aggregate([proven, body('h/1', 'other', 0.2), ...discredited], { kind: 'json' }, a => book.standing(a))
    expect(verdict.kind === 'decided' && verdict.value).toBe('right')
  })
})

describe('collusion-7 and sleepers-7 (the simulator, default settings)', () => {
  const run = (name: string, liars: number): ReturnType<typeof runOnce>['summary'] =>
    runOnce(withFaulty(loadScenario(name), liars / 7), 'linucb', undefined, liars / 7).summary

  it('3 colluding confident liars of 7: accuracy ≥ 0.95, no wrong commit, their weight below a third; CP-WBFT\'s rule is captured', () => {
    const s = run('collusion-7', 3)
    expect(s.accuracy).toBeGreaterThanOrEqual(0.95)
    expect(s.wrongRate).toBe(0)
    expect(s.liarWeightMax).toBeLessThan(1 / 3)
    expect(s.ruleAccuracy['cp-wbft']).toBeLessThan(0.1)
  }, 60_000)

  it('5 of 7 colluding (honest minority): the mesh escalates instead of committing wrong', () => {
    const s = run('collusion-7', 5)
    expect(s.wrongRate).toBe(0)
    expect(s.escalated).toBeGreaterThan(0)
    expect(s.ruleWrong.majority).toBeGreaterThan(0.5)
  }, 60_000)

  it('3 sleepers of 7 (honest through their first checks): accuracy ≥ 0.9 and no wrong commit; 6 of 7: at most 1% wrong', () => {
    const s = run('sleepers-7', 3)
    expect(s.accuracy).toBeGreaterThanOrEqual(0.9)
    expect(s.wrongRate).toBe(0)
    expect(run('sleepers-7', 6).wrongRate).toBeLessThanOrEqual(0.01)
  }, 90_000)

  it('calibrated agents (calibrated-7): the mesh earns from their self-reports (≥ 0.95, like CP-WBFT) without committing wrong', () => {
    const s = run('calibrated-7', 0)
    expect(s.accuracy).toBeGreaterThanOrEqual(0.95)
    expect(s.wrongRate).toBe(0)
  }, 60_000)

  it('CP-WBFT\'s rule against one confident liar, on the same answers: captured, where the mesh rule is not', () => {
    const answers = [body('a/1', 42, 0.8), body('b/1', 42, 0.85), body('c/1', 42, 0.8), body('d/1', 42, 0.9), body('x/1', 7, 1)]
    expect((cpWbftVerdict(answers, { kind: 'json' }) as { value: Json }).value).toBe(7)
    const fresh = new ReputationBook()
    expect((aggregate(answers, { kind: 'json' }, a => fresh.standing(a)) as { value: Json }).value).toBe(42)
  })
})
