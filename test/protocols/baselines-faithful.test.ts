/**
 * The baselines named after other systems run those systems' rules: Symphony-Coord's selector
 * checked against a reference written line by line from their linucb_selector.py / routing.py
 * (with ml-matrix solving the ridge system, not our Sherman–Morrison), and CP-WBFT's aggregation
 * against hand-worked cases from their llm_agent.py / consensus_engine.py.
 */
import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { inverse, Matrix } from 'ml-matrix'
import { createPolicy, symphonyBeta, symphonyScreenScore, type CandidateState } from '../../protocols/routing/index.ts'
import { cpWbftNeighbours, cpWbftVerdict, CP_WBFT_TOPOLOGIES, type CpWbftTopology } from '../../protocols/consensus/index.ts'
import type { AnswerBody, Json, Verdict } from '../../protocols/consensus/types.ts'
import { seeded } from '../helpers/hosts.ts'

// ---- Symphony-Coord: a reference from their code, with ml-matrix --------------------------------

class ReferenceSymphony {
  A = Matrix.eye(6)
  b = Matrix.zeros(6, 1)
  t = 0
  readonly rep = new Map<string, number>()
  x (c: CandidateState): number[] {
    const lat = Math.max(0, Math.min(1, c.latencyMs / 2000))
    const x = [1, Math.min(1, Math.max(0, c.similarity)), Math.min(1, Math.max(0, c.load)), lat, this.rep.get(c.agent) ?? 0.5, c.available ? 1 : 0]
    const norm = Math.hypot(...x)
    return norm > 1 ? x.map(v => v / norm) : x
  }

  select (cs: CandidateState[]): { chosen: string, x: number[] } {
    const screen = cs.filter(c => c.available).map(c => {
      const lat = Math.max(0, Math.min(1, c.latencyMs / 2000))
      const stability = (1 - c.load) * 0.4 + (1 - lat) * 0.4 + 0.2
      const sim = 0.5 * (c.similarity + 1)
      return { c, s: Math.min(1, Math.max(0, 0.5 * sim + 0.35 * (this.rep.get(c.agent) ?? 0.5) + 0.15 * stability)) }
    }).sort((p, q) => q.s - p.s).slice(0, 3)
    const Ainv = inverse(this.A)
    const theta = Ainv.mmul(this.b)
    const t = Math.max(1, this.t)
    const beta = Math.sqrt(6 * Math.log(1 + t) + 2 * Math.log(1 / 0.05)) + 1
    let best = -1e18
    let chosen = screen[0]!
    let bx: number[] = []
    for (const s of screen) {
      const x = this.x(s.c)
      const xv = Matrix.columnVector(x)
      const ucb = theta.transpose().mmul(xv).get(0, 0) + beta * Math.sqrt(xv.transpose().mmul(Ainv).mmul(xv).get(0, 0))
      if (ucb > best + 1e-12) { best = ucb; chosen = s; bx = x }
    }
    return { chosen: chosen.c.agent, x: bx }
  }

  update (agent: string, x: number[], ok: boolean): void {
    const xv = Matrix.columnVector(x)
    this.A = this.A.add(xv.mmul(xv.transpose()))
    this.b = this.b.add(xv.mul(ok ? 1 : 0))
    this.t++
    this.rep.set(agent, 0.95 * (this.rep.get(agent) ?? 0.5) + 0.05 * (ok ? 1 : 0))
  }
}

describe('Symphony-Coord selector (faithful)', () => {
  it('screening score, β_t and the success EMA are their formulas', () => {
    const c: CandidateState = { agent: 'h/a', similarity: 0.6, load: 0.25, latencyMs: 500, cost: 1, reputation: 0.9, available: true }
    // 0.5·(1.6/2) + 0.35·0.5 + 0.15·(0.4·0.75 + 0.4·0.75 + 0.2)
    expect(symphonyScreenScore(c, 0.5)).toBeCloseTo(0.5 * 0.8 + 0.35 * 0.5 + 0.15 * 0.8, 12)
    expect(symphonyBeta(0, 1)).toBeCloseTo(Math.sqrt(6 * Math.log(2) + 2 * Math.log(20)) + 1, 12)
    expect(symphonyBeta(99, 1)).toBeCloseTo(Math.sqrt(6 * Math.log(100) + 2 * Math.log(20)) + 1, 12)
  })

  it('drops unavailable candidates, keeps three, and learns success only (latency and cost teach it nothing)', () => {
    const cs: CandidateState[] = [0.9, 0.8, 0.7, 0.6, 0.95].map((s, i) => ({ agent: `h${i}/a`, similarity: s, load: 0, latencyMs: 100, cost: 1, reputation: 0.5, available: i !== 4 }))
    const p = createPolicy('symphony')
    const sel = p.select(cs, {}, seeded(1), { id: 'd1', now: 0 })
    expect(sel.scores.map(s => s.agent)).toEqual(['h0/a', 'h1/a', 'h2/a'])
    const q = createPolicy('symphony')
    q.select(cs, {}, seeded(1), { id: 'd1', now: 0 })
    p.feedback('d1', { success: true, latencyMs: 10, cost: 0 }, 1)
    q.feedback('d1', { success: true, latencyMs: 9000, cost: 50, agreement: 0 }, 1)
    expect(q.toJSON().model).toEqual(p.toJSON().model)
  })

  it('chooses exactly what a reference built from their code chooses, over 600 decisions in a drifting environment', () => {
    const rng = seeded(42)
    const agents = Array.from({ length: 8 }, (_, i) => ({ agent: `h${i}/calc`, p: 0.3 + 0.08 * i, sim: 0.4 + 0.5 * rng(), lat: 50 + 1500 * rng() }))
    const policy = createPolicy('symphony')
    const ref = new ReferenceSymphony()
    let agree = 0
    let decisions = 0
    for (let t = 0; t < 600; t++) {
      const cs: CandidateState[] = agents.map(a => ({ agent: a.agent, similarity: a.sim, load: rng(), latencyMs: a.lat * (0.5 + rng()), cost: 1, reputation: 0.5, available: rng() < 0.9 }))
      if (!cs.some(c => c.available)) continue
      const mine = policy.select(cs, {}, rng, { id: `d${t}`, now: t })
      const theirs = ref.select(cs)
      decisions++
      if (mine.chosen === theirs.chosen) agree++
      const a = agents.find(x => x.agent === theirs.chosen)!
      const ok = rng() < a.p
      policy.feedback(`d${t}`, { success: ok, latencyMs: 10, cost: 1 }, t)
      ref.update(theirs.chosen, theirs.x, ok)
      // Both continue from the reference's choice, so one disagreement cannot cascade unseen.
      if (mine.chosen !== theirs.chosen) break
    }
    expect(decisions).toBeGreaterThan(550)
    expect(agree).toBe(decisions)
  })
})

// ---- CP-WBFT -------------------------------------------------------------------------------------

function body (agent: string, answer: Json, confidence?: number): AnswerBody {
  return { v: 1, subtask: 't1/s1', inputHash: 'ab', agent, answer, ...(confidence === undefined ? {} : { confidence }) }
}
const valueOf = (v: Verdict): Json | undefined => v.kind === 'decided' ? v.value : undefined

describe('CP-WBFT aggregation (faithful)', () => {
  it('topologies are built as theirs: binary tree from 0, star on 0, chain, layered 3/2/2 complete inside', () => {
    expect(cpWbftNeighbours('tree', 7)).toEqual([[1, 2], [0, 3, 4], [0, 5, 6], [1], [1], [2], [2]])
    expect(cpWbftNeighbours('star', 4)).toEqual([[1, 2, 3], [0], [0], [0]])
    expect(cpWbftNeighbours('chain', 3)).toEqual([[1], [0, 2], [1]])
    expect(cpWbftNeighbours('complete', 3)).toEqual([[1, 2], [0, 2], [0, 1]])
    const layered = cpWbftNeighbours('layered', 7, seeded(3))
    for (const [a, b] of [[0, 1], [0, 2], [1, 2], [3, 4], [5, 6]] as const) expect(layered[a]).toContain(b)
    // random: connected whatever the draw
    for (let s = 0; s < 20; s++) {
      const g = cpWbftNeighbours('random', 9, seeded(s))
      const seen = new Set([0])
      const stack = [0]
      while (stack.length > 0) for (const w of g[stack.pop()!]!) if (!seen.has(w)) { seen.add(w); stack.push(w) }
      expect(seen.size).toBe(9)
    }
  })

  it('one confident liar takes every complete-topology vote: everyone adopts the highest mean confidence', () => {
    const answers = [body('a/1', 42, 0.8), body('b/1', 42, 0.85), body('c/1', 42, 0.8), body('d/1', 42, 0.9), body('x/1', 7, 1)]
    expect(valueOf(cpWbftVerdict(answers, { kind: 'json' }))).toBe(7)
    // In a chain only the liar's neighbours are pulled: d/1 adopts 7 (mean 1.0 > 0.9 of itself),
    // c/1 sees (42: 0.8, 0.9 mean 0.85) before d/1's adoption counts, so it keeps 42; the final
    // mean over ≥ 0.5 is still highest for 7 (1.0, 1.0).
    expect(valueOf(cpWbftVerdict(answers, { kind: 'json' }, { topology: 'chain' }))).toBe(7)
  })

  it('the final keeps confidences ≥ 0.5 per answer (all of an answer\'s if none reach it), ties by count', () => {
    // Star centred on a/1 (lowest id), whose own pool is everybody: it adopts the best mean.
    const answers = [body('a/1', 1, 0.6), body('b/1', 1, 0.6), body('c/1', 2, 0.4), body('d/1', 2, 0.45)]
    // chain: a(1,.6) b(1,.6) c(2,.4) d(2,.45). a: {1:[.6,.6]} → 1 .6; b: {1:[.6,.6],2:[.4]} → 1 .6;
    // c: {1:[.6],2:[.45,.4]} → 1 .6; d: {2:[.4,.45]} → 2 .425. Final: 1: [.6,.6,.6] mean .6; 2: [.425] (none ≥ .5, kept) → 1.
    expect(valueOf(cpWbftVerdict(answers, { kind: 'json' }, { topology: 'chain' }))).toBe(1)
    // All-zero confidence: plain majority.
    const zero = [body('a/1', 'x', 0), body('b/1', 'y', 0), body('c/1', 'y', 0)]
    expect(valueOf(cpWbftVerdict(zero, { kind: 'json' }, { topology: 'chain' }))).toBe('y')
    // A missing confidence counts 0 (their parser's default).
    const missing = [body('a/1', 'x'), body('b/1', 'y', 0.7)]
    expect(valueOf(cpWbftVerdict(missing, { kind: 'json' }, { topology: 'chain' }))).toBe('y')
    expect(cpWbftVerdict([], { kind: 'json' }).kind).toBe('empty')
  })

  it('the verdict does not depend on the order answers arrive in (property)', () => {
    const answer = fc.record({ agent: fc.constantFrom('a/1', 'b/1', 'c/1', 'd/1', 'e/1', 'f/1'), value: fc.integer({ min: 0, max: 3 }), conf: fc.double({ min: 0, max: 1, noNaN: true }) })
    fc.assert(fc.property(fc.uniqueArray(answer, { minLength: 1, maxLength: 6, selector: a => a.agent }), fc.constantFrom(...CP_WBFT_TOPOLOGIES), fc.integer(), (list, topology: CpWbftTopology, seed) => {
      const bodies = list.map(a => body(a.agent, a.value, a.conf))
      const shuffled = [...bodies].reverse()
      expect(valueOf(cpWbftVerdict(shuffled, { kind: 'json' }, { topology, rng: seeded(seed) })))
        .toEqual(valueOf(cpWbftVerdict(bodies, { kind: 'json' }, { topology, rng: seeded(seed) })))
    }), { numRuns: 300 })
  })
})
