// Spot-checks (protocols/task/canary-driver.ts), which the peer and the simulator both run, against
// a scripted I/O on a virtual clock: one canary at a time per agent, what a judgement does, who
// waits for what, deadlines, backoff and stopping; and, as properties, that every wait ends once.
import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { ReputationBook, RETEST_BACKOFF, unqualified, type CanaryPolicy } from '../../protocols/consensus/index.ts'
import { CanaryDesk, CANARY_DEADLINE_MS, type CanaryReply, type CanaryResult } from '../../protocols/task/index.ts'
import { fastSigners } from '../helpers/committee.ts'

const { signers } = fastSigners(4, 11)
const agents = signers.map(s => `${s.peerId}/calc`)
const [a, b, c, d] = agents as [string, string, string, string]
const ANSWER = { value: 42 }

/** A desk whose calls wait for the test to answer them, on a clock the test moves. */
function scripted (policy: CanaryPolicy = { rate: 0, newcomerChecks: 2, onDissent: true, qualify: true }) {
  const book = new ReputationBook()
  let now = 1_000
  const timers: Array<{ at: number, f: () => void }> = []
  const asks: Array<{ agent: string, reply: (r: CanaryReply) => void, gaveUp: boolean }> = []
  const judged: CanaryResult[] = []
  let ids = 0
  const desk = new CanaryDesk({
    policy,
    book,
    now: () => now,
    later: (at, f) => { timers.push({ at, f }) },
    random: () => 0.5,
    question: agent => agent === d ? undefined : { input: { q: 'six times seven' }, answer: ANSWER },
    ask: (agent, _input, _ms, reply) => {
      const ask = { agent, reply, gaveUp: false }
      asks.push(ask)
      return () => { ask.gaveUp = true }
    },
    id: () => `c${ids++}`,
    judged: r => { judged.push(r) }
  })
  /** Moves the clock to `to`, firing the timers due on the way, in order. */
  const advance = (to: number): void => {
    for (;;) {
      const due = timers.filter(t => t.at <= to).sort((x, y) => x.at - y.at)[0]
      if (due === undefined) break
      timers.splice(timers.indexOf(due), 1)
      now = Math.max(now, due.at)
      due.f()
    }
    now = to
  }
  const open = (agent: string) => asks.filter(x => x.agent === agent)
  return { desk, book, asks, judged, advance, open, get now () { return now } }
}

describe('the canary driver', () => {
  it('checks a newcomer after a dispatch, one canary at a time, and records a right answer', () => {
    const s = scripted()
    const got: Array<CanaryResult | undefined> = []
    s.desk.check(a, 'dispatch', r => got.push(r))
    s.desk.check(a, 'dispatch', r => got.push(r)) // under way already: not sent twice
    expect(s.asks.map(x => x.agent)).toEqual([a])
    expect(got).toEqual([undefined])
    s.asks[0]!.reply({ ok: true, output: ANSWER, confidence: 0.9 })
    expect(got).toEqual([undefined, { agent: a, correct: true, got: ANSWER, suspended: false }])
    expect(s.book.counts(a)).toMatchObject({ canaryPassed: 1, canaryFailed: 0 })
    expect(s.judged).toHaveLength(1)
  })

  it('a wrong answer suspends the agent, retests it at once and then after the backoff, and checks its recent partners', () => {
    const s = scripted()
    s.desk.noteAgreement([a, b, c])
    s.desk.check(a, 'dispatch')
    s.asks[0]!.reply({ ok: true, output: { value: 41 }, confidence: 0.95 })
    expect(s.desk.suspects.has(a)).toBe(true)
    expect(s.book.counts(a).canaryFailed).toBe(1)
    // Its partners get a canary each at once; its retest is a timer due now.
    expect(s.asks.map(x => x.agent)).toEqual([a, b, c])
    s.advance(s.now)
    expect(s.open(a)).toHaveLength(2)
    s.open(a)[1]!.reply({ ok: true, output: { value: 41 } })
    s.advance(s.now + RETEST_BACKOFF.firstMs - 1)
    expect(s.open(a)).toHaveLength(2)
    s.advance(s.now + 1)
    expect(s.open(a)).toHaveLength(3)
    // Passing clears the suspension, and no more retests follow.
    s.open(a)[2]!.reply({ ok: true, output: ANSWER })
    expect(s.desk.suspects.has(a)).toBe(false)
    s.advance(s.now + RETEST_BACKOFF.maxMs)
    expect(s.open(a)).toHaveLength(3)
  })

  it('an answer the agent itself called unsure is judged but does not suspend', () => {
    const s = scripted()
    s.desk.check(a, 'dispatch')
    s.asks[0]!.reply({ ok: true, output: { value: 41 }, confidence: 0.2 })
    expect(s.book.counts(a).canaryFailed).toBe(1)
    expect(s.desk.suspects.has(a)).toBe(false)
  })

  it('no answer by the deadline is not judged: the call is given up and the waiters go on', () => {
    const s = scripted()
    const got: Array<CanaryResult | undefined> = []
    s.desk.check(a, 'dispatch', r => got.push(r))
    s.advance(s.now + CANARY_DEADLINE_MS - 1)
    expect([got, s.asks[0]!.gaveUp]).toEqual([[], false])
    s.advance(s.now + 1)
    expect([got, s.asks[0]!.gaveUp]).toEqual([[undefined], true])
    s.asks[0]!.reply({ ok: true, output: { value: 41 } }) // too late: ignored
    expect(s.book.counts(a)).toMatchObject({ canaryPassed: 0, canaryFailed: 0 })
    expect(s.judged).toEqual([])
  })

  it('qualification checks only the unchecked, joins canaries under way, and goes on once every one has ended', () => {
    const s = scripted()
    s.book.canary({ id: 'old', agent: c, correct: true })
    s.desk.check(a, 'dispatch')
    let done = 0
    s.desk.qualify([a, b, c, d], () => done++) // c is checked already; d has no question: skipped
    expect(s.asks.map(x => x.agent)).toEqual([a, b])
    s.open(b)[0]!.reply({ ok: false })
    expect(done).toBe(0)
    s.open(a)[0]!.reply({ ok: true, output: ANSWER })
    expect(done).toBe(1)
    let again = 0
    s.desk.qualify([a, c], () => again++)
    expect(again).toBe(1)
  })

  it('retests wait for the canary each agent has under way', () => {
    const s = scripted()
    s.desk.check(a, 'dispatch')
    let done = 0
    s.desk.retest([a, a, b], () => done++)
    expect(s.asks.map(x => x.agent)).toEqual([a, b])
    s.open(b)[0]!.reply({ ok: true, output: ANSWER })
    s.open(a)[0]!.reply({ ok: true, output: ANSWER })
    expect(done).toBe(1)
  })

  it('stopping ends the canaries under way unjudged, and no timer of the desk fires after', () => {
    const s = scripted()
    let done = 0
    s.desk.qualify([a, b], () => done++)
    s.open(a)[0]!.reply({ ok: true, output: { value: 41 } }) // suspended: a retest is scheduled
    s.desk.stop()
    expect(done).toBe(1)
    expect(s.open(b)[0]!.gaveUp).toBe(true)
    s.advance(s.now + RETEST_BACKOFF.maxMs)
    expect(s.asks).toHaveLength(2)
    s.desk.check(c, 'dispatch')
    expect(s.asks).toHaveLength(2)
  })

  it('off means off: at rate 0 with its defaults, nothing is ever sent', () => {
    const s = scripted({ rate: 0 })
    let done = 0
    s.desk.check(a, 'dispatch')
    s.desk.dissent([a, b])
    s.desk.qualify([a, b], () => done++)
    expect([s.asks.length, done]).toEqual([0, 1])
  })

  it('property: at most one canary per agent at a time, and every wait ends exactly once, after the canaries it waits for', () => {
    const step = fc.oneof(
      fc.record({ op: fc.constant('check' as const), agent: fc.nat(3), why: fc.constantFrom('dispatch' as const, 'dissent' as const, 'retest' as const) }),
      fc.record({ op: fc.constantFrom('qualify' as const, 'retest-all' as const), agents: fc.uniqueArray(fc.nat(3), { maxLength: 4 }) }),
      fc.record({ op: fc.constant('reply' as const), pick: fc.nat(), ok: fc.boolean(), right: fc.boolean() }),
      fc.record({ op: fc.constant('note' as const), agents: fc.uniqueArray(fc.nat(3), { minLength: 2, maxLength: 4 }) }),
      fc.record({ op: fc.constant('time' as const), ms: fc.integer({ min: 0, max: 40_000 }) })
    )
    fc.assert(fc.property(fc.array(step, { maxLength: 60 }), fc.boolean(), (steps, stopAtEnd) => {
      const policy = { rate: 0.5, newcomerChecks: 1 }
      const s = scripted(policy)
      const waits: Array<{ calls: number, on: string[] }> = []
      const replied = new Set<(typeof s.asks)[number]>()
      const pending = () => s.asks.filter(x => !replied.has(x) && !x.gaveUp)
      for (const st of steps) {
        if (st.op === 'check') s.desk.check(agents[st.agent]!, st.why)
        else if (st.op === 'qualify' || st.op === 'retest-all') {
          const w = { calls: 0, on: st.agents.map(i => agents[i]!) }
          waits.push(w)
          let awaited: typeof s.asks = []
          const end = (): void => {
            w.calls++
            // None of the canaries it waited for is still under way.
            expect(pending().filter(x => awaited.includes(x))).toEqual([])
          }
          // Qualification waits only for those not yet judged.
          const on = st.op === 'qualify' ? unqualified(policy, s.book, w.on) : w.on
          if (st.op === 'qualify') s.desk.qualify(w.on, end)
          else s.desk.retest(w.on, end)
          awaited = pending().filter(x => on.includes(x.agent))
        } else if (st.op === 'reply') {
          const open = pending()
          if (open.length === 0) continue
          const x = open[st.pick % open.length]!
          replied.add(x)
          x.reply(st.ok ? { ok: true, output: st.right ? ANSWER : { value: 0 } } : { ok: false })
        } else if (st.op === 'note') s.desk.noteAgreement(st.agents.map(i => agents[i]!))
        else if (st.op === 'time') s.advance(s.now + st.ms)
        const agentsOpen = pending().map(x => x.agent)
        expect(new Set(agentsOpen).size).toBe(agentsOpen.length)
      }
      if (stopAtEnd) s.desk.stop()
      else s.advance(s.now + CANARY_DEADLINE_MS)
      // Every canary has ended (answered, given up or stopped), so every wait has ended, once.
      for (const w of waits) expect(w.calls).toBe(1)
      // Only answers are judged.
      const counts = agents.map(x => s.book.counts(x)).reduce((n, k) => n + k.canaryPassed + k.canaryFailed, 0)
      expect(counts).toBe(s.judged.length)
    }), { seed: 15, numRuns: 300 })
  })
})
