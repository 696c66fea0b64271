import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { canonicalJson } from '../../protocols/hash.ts'
import { groupAnswers, validateRule, type AnswerEntry } from '../../protocols/consensus/equivalence.ts'
import {
  aggregate, coverage, defaultAggregationConfig, effectiveConfidence, majorityVerdict, summedConfidenceVerdict
} from '../../protocols/consensus/aggregate.ts'
import { newcomerReputation, ReputationBook, type CertificateFact } from '../../protocols/consensus/reputation.ts'
import type { AnswerBody, EquivalenceRule, Json, Standing, Verdict } from '../../protocols/consensus/types.ts'

function body (agent: string, answer: Json, confidence?: number): AnswerBody {
  return { v: 1, subtask: 't1/s1', inputHash: 'ab', agent, answer, ...(confidence === undefined ? {} : { confidence }) }
}

const agentsOf = (groups: Array<{ agents: string[] }>): string[][] => groups.map(g => g.agents)

/** Letter counts: anagrams are identical, unrelated words far apart. */
function letters (text: string): number[] {
  const v = new Array<number>(26).fill(0)
  for (const ch of text.toLowerCase()) {
    const i = ch.charCodeAt(0) - 97
    if (i >= 0 && i < 26) v[i]!++
  }
  return v
}

const fixed = (table: Record<string, Standing>, fallback: Standing = { reputation: 0, accuracy: 0 }) =>
  (agent: string): Standing => table[agent] ?? fallback

function value (v: Verdict): Json | undefined {
  return v.kind === 'decided' ? v.value : undefined
}

describe('equivalence', () => {
  it('json: canonical equality, key order irrelevant, array order relevant', () => {
    const groups = groupAnswers([
      { agent: 'h/a', answer: { x: 1, y: [1, 2] } }, { agent: 'h/b', answer: { y: [1, 2], x: 1 } },
      { agent: 'h/c', answer: { x: 1, y: [2, 1] } }, { agent: 'h/d', answer: '1' }, { agent: 'h/e', answer: 1 }
    ], { kind: 'json' })
    expect(agentsOf(groups)).toEqual([['h/a', 'h/b'], ['h/c'], ['h/d'], ['h/e']])
  })

  it('numeric: within tolerance of the class representative (lowest agent id); non-numbers exactly', () => {
    const rule: EquivalenceRule = { kind: 'numeric', tolerance: 0.01 }
    expect(agentsOf(groupAnswers([
      { agent: 'h/a', answer: 1 }, { agent: 'h/b', answer: 1.005 }, { agent: 'h/c', answer: 0.991 },
      { agent: 'h/d', answer: 2 }, { agent: 'h/e', answer: '1' }, { agent: 'h/f', answer: '1' }
    ], rule))).toEqual([['h/a', 'h/b', 'h/c'], ['h/d'], ['h/e', 'h/f']])
    // 1.015 is too far from the representative 1, though within tolerance of 1.008: no chaining.
    expect(agentsOf(groupAnswers([
      { agent: 'h/a', answer: 1 }, { agent: 'h/b', answer: 1.015 }, { agent: 'h/c', answer: 1.008 }
    ], rule))).toEqual([['h/a', 'h/c'], ['h/b']])
    expect(agentsOf(groupAnswers([{ agent: 'h/a', answer: 3 }, { agent: 'h/b', answer: 3 }], { kind: 'numeric', tolerance: 0 })))
      .toEqual([['h/a', 'h/b']])
  })

  it('text: NFKC, case, surrounding and repeated whitespace do not matter; punctuation does', () => {
    const groups = groupAnswers([
      { agent: 'h/a', answer: '  Hello\t\nWORLD ' }, { agent: 'h/b', answer: 'hello world' },
      { agent: 'h/c', answer: 'ｈｅｌｌｏ world' }, { agent: 'h/d', answer: 'hello, world' },
      { agent: 'h/e', answer: 5 }, { agent: 'h/f', answer: '5' }
    ], { kind: 'text' })
    expect(agentsOf(groups)).toEqual([['h/a', 'h/b', 'h/c'], ['h/d'], ['h/e'], ['h/f']])
  })

  it('embedding: cosine against the representative >= threshold; needs an embedder', () => {
    const answers: AnswerEntry[] = [
      { agent: 'h/a', answer: 'listen' }, { agent: 'h/b', answer: 'banana' }, { agent: 'h/c', answer: 'silent' },
      { agent: 'h/d', answer: 'enlists' }, { agent: 'h/e', answer: ['listen'] }
    ]
    const rule: EquivalenceRule = { kind: 'embedding', threshold: 0.9 }
    expect(agentsOf(groupAnswers(answers, rule, letters))).toEqual([['h/a', 'h/c', 'h/d'], ['h/b'], ['h/e']])
    expect(agentsOf(groupAnswers(answers, { kind: 'embedding', threshold: 1 }, letters))).toEqual([['h/a', 'h/c'], ['h/b'], ['h/d'], ['h/e']])
    expect(() => groupAnswers(answers, rule)).toThrow(/needs an embedder/)
    expect(() => groupAnswers(answers, rule, () => [Number.NaN])).toThrow(/non-finite/)
  })

  it('validateRule accepts good rules and says what is wrong with bad ones', () => {
    expect(validateRule({ kind: 'numeric', tolerance: 0.5 })).toEqual({ kind: 'numeric', tolerance: 0.5 })
    expect(validateRule({ kind: 'embedding', threshold: -1 })).toEqual({ kind: 'embedding', threshold: -1 })
    expect(validateRule({ kind: 'text' })).toEqual({ kind: 'text' })
    expect(() => validateRule({ kind: 'numeric', tolerance: -1 })).toThrow(/finite tolerance >= 0/)
    expect(() => validateRule({ kind: 'numeric', tolerance: Infinity })).toThrow(/finite tolerance/)
    expect(() => validateRule({ kind: 'numeric' })).toThrow(/finite tolerance/)
    expect(() => validateRule({ kind: 'embedding', threshold: 1.5 })).toThrow(/threshold in -1..1/)
    expect(() => validateRule({ kind: 'embedding', threshold: Number.NaN })).toThrow(/threshold/)
    expect(() => validateRule({ kind: 'json', extra: 1 })).toThrow(/unknown field "extra"/)
    expect(() => validateRule({ kind: 'fuzzy' })).toThrow(/must be json, numeric, text or embedding/)
    expect(() => validateRule(null)).toThrow(/must be an object/)
    expect(() => groupAnswers([], { kind: 'numeric', tolerance: Number.NaN })).toThrow(/tolerance/)
  })

  it('grouping is independent of input order, duplicates included', () => {
    const entry = fc.record({
      agent: fc.constantFrom('h1/a', 'h1/b', 'h2/a', 'h3/x', 'h4/y', 'h5/z'),
      answer: fc.oneof(fc.integer({ min: 0, max: 6 }).map(n => n / 2), fc.constantFrom('Yes', ' yes', 'listen', 'silent', 'no'))
    })
    const permuted = fc.array(entry, { maxLength: 12 })
      .chain(xs => fc.tuple(fc.constant(xs), fc.shuffledSubarray(xs, { minLength: xs.length, maxLength: xs.length })))
    const rules: EquivalenceRule[] = [{ kind: 'json' }, { kind: 'text' }, { kind: 'numeric', tolerance: 0.5 }, { kind: 'embedding', threshold: 0.8 }]
    fc.assert(fc.property(permuted, ([xs, ys]) => {
      for (const rule of rules) {
        const a = groupAnswers(xs, rule, letters)
        expect(groupAnswers(ys, rule, letters)).toEqual(a)
        const agents = a.flatMap(g => g.agents)
        expect(new Set(agents).size).toBe(agents.length)
      }
    }), { numRuns: 150 })
  })
})

describe('aggregation', () => {
  it('a confident, reputable liar does not beat six honest agents', () => {
    const honest = Array.from({ length: 6 }, (_, i) => body(`h${i}/a`, 42, 0.7))
    const liar = body('liar/a', 41, 1)
    const standing = (agent: string): Standing => agent === 'liar/a' ? { reputation: 0.9, accuracy: 0.7 } : { reputation: 0.6, accuracy: 0.7 }
    const v = aggregate([liar, ...honest], { kind: 'json' }, standing)
    expect(v.kind).toBe('decided')
    if (v.kind !== 'decided') return
    expect(v.value).toBe(42)
    expect(v.classes[0]!.weight).toBeCloseTo(6 * 0.6 * 0.7, 10)
    expect(v.classes[1]!.weight).toBeCloseTo(0.9 * (0.5 * 0.9 + 0.5 * 0.7), 10)
    expect(v.total).toBeCloseTo(v.classes[0]!.weight + v.classes[1]!.weight, 10)
  })

  it('summed raw confidence is fooled by inflated confidence where ours is not', () => {
    // 3 honest agents at 0.6 against 2 colluders claiming 1.0: 2.0 > 1.8 in raw confidence.
    const answers = [body('h/1', 'true', 0.6), body('h/2', 'true', 0.6), body('h/3', 'true', 0.6), body('x/1', 'lie', 1), body('x/2', 'lie', 1)]
    const same = (): Standing => ({ reputation: 0.5, accuracy: 0.6 })
    // Same standing for all, plain plurality (margin 0): the cap alone flips the outcome.
    expect(value(summedConfidenceVerdict(answers, { kind: 'json' }, { margin: 0 }))).toBe('lie')
    expect(value(aggregate(answers, { kind: 'json' }, same, { margin: 0 }))).toBe('true')
    // With default settings and a track record (liars measured at 0.3 accuracy), ours commits the truth.
    const record = (a: string): Standing => ({ reputation: 0.5, accuracy: a.startsWith('x/') ? 0.3 : 0.7 })
    expect(value(aggregate(answers, { kind: 'json' }, record))).toBe('true')
    const cp = summedConfidenceVerdict(answers, { kind: 'json' })
    expect(cp.kind !== 'empty' && cp.classes[0]!.value).toBe('lie')
    expect(value(majorityVerdict(answers, { kind: 'json' }, { margin: 0 }))).toBe('true')
  })

  it('a close tally is ambiguous and reports the lead; nothing is empty; no weight is ambiguous', () => {
    const answers = [...['a', 'b', 'c', 'd'].map(n => body(`h/${n}`, 1, 0.8)), ...['e', 'f', 'g'].map(n => body(`h/${n}`, 2, 0.8))]
    const v = aggregate(answers, { kind: 'json' }, () => ({ reputation: 0.5, accuracy: 0.8 }))
    expect(v.kind).toBe('ambiguous')
    if (v.kind !== 'ambiguous') return
    expect(v.lead).toBeCloseTo(1 / 7, 10)
    expect(v.classes.map(k => k.value)).toEqual([1, 2])
    expect(aggregate(answers, { kind: 'json' }, () => ({ reputation: 0.5, accuracy: 0.8 }), { margin: 0.1 }).kind).toBe('decided')
    expect(aggregate([], { kind: 'json' }, () => ({ reputation: 1, accuracy: 1 }))).toEqual({ kind: 'empty' })
    const zero = aggregate(answers, { kind: 'json' }, () => ({ reputation: 0, accuracy: 1 }))
    expect(zero).toMatchObject({ kind: 'ambiguous', total: 0, lead: 0 })
    // An exact tie is never decided, even with margin 0.
    expect(aggregate(answers.slice(1), { kind: 'json' }, () => ({ reputation: 0.5, accuracy: 0.8 }), { margin: 0 }).kind).toBe('ambiguous')
  })

  it('an agent answering several times counts once, in one class', () => {
    const standing = (): Standing => ({ reputation: 0.5, accuracy: 0.5 })
    const answers = [body('h/a', 'y', 0.5), body('h/a', 'x', 0.5), body('h/a', 'x', 0.5), body('h/b', 'y', 0.5), body('h/c', 'x', 0.5)]
    const v = aggregate(answers, { kind: 'json' }, standing)
    expect(v.kind).not.toBe('empty')
    if (v.kind === 'empty') return
    // h/a keeps its first answer by canonical JSON ("x"), whatever the order it sent them in.
    expect(v.classes.map(k => [k.value, k.agents])).toEqual([['x', ['h/a', 'h/c']], ['y', ['h/b']]])
    expect(v.classes[0]!.weight).toBeCloseTo(2 * 0.25, 10)
    expect(v.total).toBeCloseTo(3 * 0.25, 10)
  })

  it('effective confidence: capped, shrunk toward accuracy, missing or non-finite → accuracy', () => {
    const c = defaultAggregationConfig
    expect(effectiveConfidence(1, 0.4, c)).toBeCloseTo(0.5 * 0.9 + 0.5 * 0.4, 12)
    expect(effectiveConfidence(undefined, 0.4, c)).toBe(0.4)
    expect(effectiveConfidence(Number.NaN, 0.4, c)).toBe(0.4)
    expect(effectiveConfidence(Infinity, 0.4, c)).toBe(0.4)
    expect(effectiveConfidence(-3, 2, c)).toBe(0.5)
    expect(() => aggregate([], { kind: 'json' }, () => ({ reputation: 0, accuracy: 0 }), { margin: 2 })).toThrow(/margin must be a number in 0..1/)
  })

  it('coverage: share of executor reputation that answered, each executor once', () => {
    const standing = fixed({ 'h/a': { reputation: 0.5, accuracy: 0 }, 'h/b': { reputation: 0.25, accuracy: 0 }, 'h/c': { reputation: 0.25, accuracy: 0 } })
    const answers = [body('h/a', 1), body('h/a', 2), body('h/x', 1)]
    expect(coverage(answers, ['h/a', 'h/b', 'h/c', 'h/a'], standing)).toBeCloseTo(0.5, 12)
    expect(coverage([...answers, body('h/c', 1)], ['h/a', 'h/b', 'h/c'], standing)).toBeCloseTo(0.75, 12)
    expect(coverage(answers, ['h/y'], standing)).toBe(0)
  })

  const world = fc.record({
    answers: fc.array(fc.record({
      agent: fc.integer({ min: 0, max: 7 }).map(i => `h${i}/a`),
      answer: fc.constantFrom<Json>(1, 2, 'x', { k: 1 }),
      confidence: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined })
    }), { maxLength: 10 }),
    standings: fc.array(fc.record({ reputation: fc.double({ min: 0, max: 1, noNaN: true }), accuracy: fc.double({ min: 0, max: 1, noNaN: true }) }),
      { minLength: 9, maxLength: 9 })
  })
  const bodies = (w: { answers: Array<{ agent: string, answer: Json, confidence: number | undefined }> }): AnswerBody[] =>
    w.answers.map(a => body(a.agent, a.answer, a.confidence))
  const standingOf = (standings: Standing[]) => (agent: string): Standing => standings[Number(agent.slice(1, agent.indexOf('/')))]!

  it('adding a supporter never lowers its class weight', () => {
    fc.assert(fc.property(world, fc.constantFrom<Json>(1, 2, 'x', { k: 1 }), fc.double({ min: 0, max: 1, noNaN: true }), (w, answer, confidence) => {
      const before = aggregate(bodies(w), { kind: 'json' }, standingOf(w.standings))
      const after = aggregate([...bodies(w), body('h8/a', answer, confidence)], { kind: 'json' }, standingOf(w.standings))
      const weight = (v: Verdict): number => v.kind === 'empty' ? 0
        : v.classes.find(k => canonicalJson(k.value) === canonicalJson(answer))?.weight ?? 0
      expect(weight(after)).toBeGreaterThanOrEqual(weight(before))
      expect(after.kind !== 'empty' && after.classes.some(k => k.agents.includes('h8/a'))).toBe(true)
    }), { numRuns: 200 })
  })

  it('the verdict does not depend on answer order', () => {
    const permuted = world.chain(w => fc.tuple(fc.constant(w), fc.shuffledSubarray(bodies(w), { minLength: w.answers.length, maxLength: w.answers.length })))
    fc.assert(fc.property(permuted, ([w, shuffled]) => {
      for (const rule of [{ kind: 'json' }, { kind: 'numeric', tolerance: 1 }] as EquivalenceRule[]) {
        expect(aggregate(shuffled, rule, standingOf(w.standings))).toEqual(aggregate(bodies(w), rule, standingOf(w.standings)))
        expect(summedConfidenceVerdict(shuffled, rule)).toEqual(summedConfidenceVerdict(bodies(w), rule))
      }
    }), { numRuns: 200 })
  })
})

describe('reputation', () => {
  it('a newcomer starts low, with a neutral accuracy', () => {
    const book = new ReputationBook()
    expect(book.reputation('h/new')).toBe(newcomerReputation())
    expect(book.reputation('h/new')).toBeLessThanOrEqual(0.25)
    expect(book.accuracy('h/new')).toBe(0.5)
    expect(book.hostReputation('nobody')).toBe(newcomerReputation())
  })

  it('disagreement costs more than agreement gains; a failed canary costs more still', () => {
    const after = (facts: (b: ReputationBook) => void): ReputationBook => { const b = new ReputationBook(); facts(b); return b }
    for (const history of [0, 10, 40]) {
      // Eleven passed canaries: up to 44 agreements count (agreement never compounds past 4 per check).
      const base = (b: ReputationBook): void => {
        for (let i = 0; i < 11; i++) b.canary({ id: `k${i}`, agent: 'h/a', correct: true })
        for (let i = 0; i < history; i++) b.certificate({ id: `c${i}`, agreed: ['h/a'], disagreed: [] })
      }
      const r0 = after(base).reputation('h/a')
      const up = after(b => { base(b); b.certificate({ id: 'x', agreed: ['h/a'], disagreed: [] }) }).reputation('h/a') - r0
      const down = r0 - after(b => { base(b); b.certificate({ id: 'x', agreed: [], disagreed: ['h/a'] }) }).reputation('h/a')
      const canary = r0 - after(b => { base(b); b.canary({ id: 'x', agent: 'h/a', correct: false }) }).reputation('h/a')
      expect(up).toBeGreaterThan(0)
      expect(down).toBeGreaterThan(up)
      expect(canary).toBeGreaterThan(down)
    }
    // Slowly: ten agreements do not make an agent trusted. For accuracy a canary is strong evidence.
    const ten = (b: ReputationBook): void => {
      b.canary({ id: 'p0', agent: 'h/a', correct: true })
      for (let i = 0; i < 10; i++) b.certificate({ id: `c${i}`, agreed: ['h/a'], disagreed: [] })
    }
    expect(after(ten).reputation('h/a')).toBeLessThan(0.7)
    const acc = after(ten).accuracy('h/a')
    const byCanary = acc - after(b => { ten(b); b.canary({ id: 'k', agent: 'h/a', correct: false }) }).accuracy('h/a')
    const byDisagreement = acc - after(b => { ten(b); b.certificate({ id: 'k', agreed: [], disagreed: ['h/a'] }) }).accuracy('h/a')
    expect(byCanary).toBeGreaterThan(4 * byDisagreement)
  })

  it('a proven equivocation drops every agent of the host, including later ones', () => {
    const book = new ReputationBook()
    for (const a of ['bad/a', 'bad/b', 'good/a']) for (let i = 0; i < 5; i++) book.canary({ id: `k-${a}-${i}`, agent: a, correct: true })
    for (let i = 0; i < 20; i++) book.certificate({ id: `c${i}`, agreed: ['bad/a', 'bad/b', 'good/a'], disagreed: [] })
    expect(book.hostReputation('bad')).toBeGreaterThan(0.5)
    expect(book.equivocation({ id: 'e1', host: 'bad' })).toBe(true)
    expect(book.equivocation({ id: 'e1', host: 'bad' })).toBe(false)
    expect(book.reputation('bad/a')).toBe(0)
    expect(book.reputation('bad/b')).toBe(0)
    expect(book.reputation('bad/later')).toBe(0)
    expect(book.hostReputation('bad')).toBe(0)
    expect(book.reputation('good/a')).toBeGreaterThan(0.5)
    expect(book.isEquivocator('bad')).toBe(true)
  })

  it('facts are checked', () => {
    const book = new ReputationBook()
    expect(() => book.certificate({ id: 'c', agreed: ['h/a'], disagreed: ['h/a'] })).toThrow(/both agreeing and disagreeing/)
    expect(() => book.canary({ id: 'k', agent: 'noslash', correct: true })).toThrow(/<host peer id>\/<name>/)
    expect(() => book.feedback({ id: '', agent: 'h/a', good: true })).toThrow(/fact id/)
    expect(() => book.equivocation({ id: 'e', host: 'h/a' })).toThrow(/peer id/)
    expect(book.size).toBe(0)
    // An agent listed twice in one certificate counts once.
    book.certificate({ id: 'c', agreed: ['h/a', 'h/a'], disagreed: [] })
    expect(book.counts('h/a').agreed).toBe(1)
  })

  const fact = fc.oneof(
    fc.record({ kind: fc.constant('certificate' as const), agreed: fc.subarray(['h1/a', 'h1/b', 'h2/a']), disagreed: fc.subarray(['h3/a', 'h4/a']) }),
    fc.record({ kind: fc.constant('canary' as const), agent: fc.constantFrom('h1/a', 'h2/a', 'h3/a'), correct: fc.boolean() }),
    fc.record({ kind: fc.constant('feedback' as const), agent: fc.constantFrom('h1/b', 'h4/a'), good: fc.boolean() }),
    fc.record({ kind: fc.constant('equivocation' as const), host: fc.constantFrom('h2', 'h4') })
  )
  type Fact = typeof fact extends fc.Arbitrary<infer T> ? T : never
  function apply (book: ReputationBook, f: Fact, id: string): boolean {
    switch (f.kind) {
      case 'certificate': return book.certificate({ id, agreed: f.agreed, disagreed: f.disagreed } satisfies CertificateFact)
      case 'canary': return book.canary({ id, agent: f.agent, correct: f.correct })
      case 'feedback': return book.feedback({ id, agent: f.agent, good: f.good })
      case 'equivocation': return book.equivocation({ id, host: f.host })
    }
  }
  const everyone = ['h1/a', 'h1/b', 'h2/a', 'h3/a', 'h4/a', 'h5/a']

  it('is order independent and idempotent: any permutation, with duplicates, gives the same book', () => {
    const scenario = fc.array(fact, { maxLength: 25 }).chain(facts => fc.tuple(
      fc.constant(facts),
      fc.shuffledSubarray(facts.map((_, i) => i), { minLength: facts.length, maxLength: facts.length }),
      fc.array(fc.nat({ max: Math.max(0, facts.length - 1) }), { maxLength: facts.length === 0 ? 0 : 10 })))
    fc.assert(fc.property(scenario, ([facts, order, repeats]) => {
      const a = new ReputationBook()
      facts.forEach((f, i) => expect(apply(a, f, `f${i}`)).toBe(true))
      const b = new ReputationBook()
      for (const i of [...order, ...repeats, ...order.slice().reverse()]) apply(b, facts[i]!, `f${i}`)
      expect(b.toJSON()).toEqual(a.toJSON())
      expect(JSON.stringify(b)).toBe(JSON.stringify(a))
      for (const agent of everyone) expect(b.standing(agent)).toEqual(a.standing(agent))
      for (const host of ['h1', 'h2', 'h3', 'h4', 'h9']) expect(b.hostReputation(host)).toBe(a.hostReputation(host))
    }), { numRuns: 200 })
  })

  it('stays in 0..1 and moves the right way with each new fact', () => {
    fc.assert(fc.property(fc.array(fact, { maxLength: 20 }), fc.constantFrom(...everyone), (facts, agent) => {
      const book = new ReputationBook()
      facts.forEach((f, i) => apply(book, f, `f${i}`))
      const { reputation, accuracy } = book.standing(agent)
      for (const x of [reputation, accuracy]) expect(x >= 0 && x <= 1).toBe(true)
      const good = ReputationBook.fromJSON(book.toJSON())
      good.certificate({ id: 'g', agreed: [agent], disagreed: [] })
      good.canary({ id: 'g', agent, correct: true })
      const bad = ReputationBook.fromJSON(book.toJSON())
      bad.certificate({ id: 'b', agreed: [], disagreed: [agent] })
      bad.canary({ id: 'b', agent, correct: false })
      expect(good.reputation(agent)).toBeGreaterThanOrEqual(reputation)
      expect(good.accuracy(agent)).toBeGreaterThan(accuracy)
      expect(bad.reputation(agent)).toBeLessThanOrEqual(reputation)
      expect(bad.accuracy(agent)).toBeLessThan(accuracy)
    }), { numRuns: 100 })
  })

  it('survives a save and load, fact ids included', () => {
    const book = new ReputationBook()
    book.certificate({ id: 'c1', agreed: ['h1/a', 'h2/a'], disagreed: ['h3/a'] })
    book.canary({ id: 'k1', agent: 'h3/a', correct: false })
    book.feedback({ id: 'f1', agent: 'h1/a', good: true })
    book.equivocation({ id: 'e1', host: 'h2' })
    const loaded = ReputationBook.fromJSON(JSON.parse(JSON.stringify(book)))
    expect(loaded.toJSON()).toEqual(book.toJSON())
    for (const agent of ['h1/a', 'h2/a', 'h3/a']) expect(loaded.standing(agent)).toEqual(book.standing(agent))
    expect(loaded.size).toBe(4)
    expect(loaded.canary({ id: 'k1', agent: 'h3/a', correct: false })).toBe(false)
    expect(loaded.hostReputation('h2')).toBe(0)
    expect(() => ReputationBook.fromJSON({ v: 2 })).toThrow(/version must be 1/)
    expect(() => ReputationBook.fromJSON({ ...book.toJSON(), agents: [['h1/a', 1, 2, 3, 4, 5, -1]] })).toThrow(/feedbackBad must be a non-negative integer/)
  })

  it('canaries let two honest agents outvote five colluding faulty ones; one honest agent alone escalates rather than commit unconfirmed', () => {
    const honest = ['h0/a', 'h6/a']
    const faulty = Array.from({ length: 5 }, (_, i) => `h${i + 1}/a`)
    const answers = [...honest.map(a => body(a, 'right', 0.8)), ...faulty.map(a => body(a, 'wrong', 0.9))]
    const book = new ReputationBook()
    const standing = (agent: string): Standing => book.standing(agent)

    // Before any ground truth the five win, and the committee certifies them.
    expect(value(aggregate(answers, { kind: 'json' }, standing))).toBe('wrong')
    book.certificate({ id: 'cert-1', agreed: faulty, disagreed: honest })
    expect(value(aggregate(answers, { kind: 'json' }, standing))).toBe('wrong')
    expect(value(majorityVerdict(answers, { kind: 'json' }))).toBe('wrong')
    // Agreeing with each other earned the five nothing: nobody has checked them.
    expect(book.reputation(faulty[0]!)).toBe(newcomerReputation())

    // Three canaries each: the faulty fail theirs, the honest pass.
    for (let k = 0; k < 3; k++) {
      for (const a of faulty) book.canary({ id: `canary-${a}-${k}`, agent: a, correct: false })
      for (const a of honest) book.canary({ id: `canary-${a}-${k}`, agent: a, correct: true })
    }
    const v = aggregate(answers, { kind: 'json' }, standing)
    expect(v.kind).toBe('decided')
    expect(value(v)).toBe('right')
    expect(book.reputation(honest[0]!)).toBeGreaterThan(5 * book.reputation(faulty[0]!))
    // One credible agent against a discredited crowd: no commit either way (two of standing needed).
    expect(aggregate(answers.filter(a => a.agent !== 'h6/a'), { kind: 'json' }, standing).kind).toBe('ambiguous')
    // The plain rules still follow the crowd.
    expect(value(majorityVerdict(answers, { kind: 'json' }))).toBe('wrong')
    expect(value(summedConfidenceVerdict(answers, { kind: 'json' }))).toBe('wrong')
  })

})
