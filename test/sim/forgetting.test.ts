/**
 * Forgetting: LinUCB's per-agent change detector drops an agent's own coefficients once it fails
 * far more than the model expects, so an agent that starts failing every call stops getting work
 * within a few calls; fallbacks teach the policy too; the detector's state survives a restart.
 */
import { describe, it, expect } from 'vitest'
import { mulberry32 } from '../../protocols/random.ts'
import { createPolicy, HybridLinUCB, perAgentDims, restorePolicy, RoutingCore, sharedDims, defaultContextConfig, type CandidateState, type BeaconState, type ScreenHit } from '../../protocols/routing/index.ts'
import { loadScenario } from '../../sim/scenario.ts'
import { runOnce } from '../../sim/run.ts'

const candidate = (agent: string, latencyMs = 100): CandidateState => ({ agent, similarity: 0.9, load: 0.1, latencyMs, cost: 0.2, reputation: 0.5, available: true })

/** Three agents of one kind; `a` is best until `shockAt`, then fails every call. Returns dispatches to `a` after the shock. */
function shock (changeDetection: boolean, seed: number, shockAt = 400, rounds = 700): { after: number, learned: ReturnType<typeof createPolicy> } {
  // Three agents that differ only in success, as a pure bandit problem: α = 1 finds the best before
  // the shock in every seed here (at the default 0.5, seed 1 settles on the 0.8 agent and never
  // calls the one that breaks).
  const policy = createPolicy('linucb', { alpha: 1, ...(changeDetection ? {} : { changeDetection: false }) })
  const rng = mulberry32(seed)
  const p: Record<string, number> = { 'h1/a': 0.95, 'h2/b': 0.8, 'h3/c': 0.75 }
  let after = 0
  for (let t = 0; t < rounds; t++) {
    const { chosen } = policy.select(Object.keys(p).map(a => candidate(a)), { taskType: 'calc' }, rng, { id: `d${t}`, now: t })
    if (t >= shockAt && chosen === 'h1/a') after++
    const ok = t >= shockAt && chosen === 'h1/a' ? false : rng() < p[chosen]!
    policy.feedback(`d${t}`, { success: ok, latencyMs: 100, cost: 0.2 }, t)
  }
  return { after, learned: policy }
}

describe('forgetting after a shock', () => {
  it('an agent that starts failing every call gets at most 5 more calls with change detection, many more without', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const on = shock(true, seed)
      const off = shock(false, seed)
      expect(on.after).toBeLessThanOrEqual(5)
      expect(off.after).toBeGreaterThan(on.after)
      expect((on.learned.toJSON().model as { changes: number }).changes).toBeGreaterThanOrEqual(1)
    }
  })

  it('a stationary agent is rarely re-learned: no alarm on 0.8-0.95 agents over 2,000 calls', () => {
    let changes = 0
    for (const seed of [11, 12, 13]) {
      const { learned } = shock(true, seed, Infinity, 2000)
      changes += (learned.toJSON().model as { changes: number }).changes
    }
    expect(changes).toBe(0)
  })

  it('the detector watches success against the model, and its state survives a save and restore', () => {
    const policy = createPolicy('linucb')
    const rng = mulberry32(9)
    for (let t = 0; t < 60; t++) {
      policy.select([candidate('h1/a')], { taskType: 'calc' }, rng, { id: `d${t}`, now: t })
      // two failures in a row at the end: a run the detector is counting, not yet an alarm
      policy.feedback(`d${t}`, { success: t < 58, latencyMs: 100, cost: 0.2 }, t)
    }
    const saved = JSON.parse(JSON.stringify(policy.toJSON()))
    const arm = (saved.model as { arms: Array<{ down?: number, recent?: number[][], judged?: number, answered?: number }> }).arms[0]!
    expect(arm.down).toBeGreaterThan(0)
    // The first call made the agent's arm; the 59 after it are on record, 57 of them answered.
    expect([arm.judged, arm.answered]).toEqual([59, 57])
    expect(arm.recent).toHaveLength(2)
    const again = restorePolicy(saved)
    expect(again.toJSON()).toEqual(saved)
    // A model saved before change detection existed still loads (its agents start unwatched).
    const old = JSON.parse(JSON.stringify(saved))
    for (const a of old.model.arms) { delete a.down; delete a.recent; delete a.judged; delete a.answered }
    delete old.model.changes
    delete old.config.changeDetection
    expect(() => restorePolicy(old)).not.toThrow()
  })

  it('p0 is the share of calls the agent answered, not the reward the model expects: a slow, costly but reliable agent that breaks is caught on its 3rd failure', () => {
    const k = sharedDims(defaultContextConfig)
    const d = perAgentDims(defaultContextConfig)
    const x = new Float64Array(d); x[0] = 1
    const z = new Float64Array(k); z[0] = 1; z[1] = 0.9
    const failuresToAlarm = (answers: (i: number) => boolean): number => {
      const m = new HybridLinUCB({ alpha: 1, lambda: 1, refreshEvery: 0, maxAgents: 100, sharedDims: k, perAgentDims: d, changeDetection: { threshold: 7.5, minUpdates: 20 } })
      let alarms = 0
      m.onChange = () => { alarms++ }
      // Rewards of 0.3 when it answers: the model's mean (its old p0) is 0.3, a run of 21 failures.
      for (let i = 0; i < 100; i++) m.update('h/a', x, 0, z, 0, answers(i) ? 0.3 : -0.2, answers(i))
      let failures = 0
      while (alarms === 0 && failures < 40) { m.update('h/a', x, 0, z, 0, -0.2, false); failures++ }
      return failures
    }
    expect(failuresToAlarm(() => true)).toBe(3) // p0 = 0.95 (the cap): 3 × 3.0 > 7.5
    expect(failuresToAlarm(i => i % 10 !== 0)).toBe(4) // answered 90%: 4 × 2.3
    expect(failuresToAlarm(i => i % 5 !== 0)).toBe(5) // answered 80%: 5 × 1.6
  })

  it('a re-learned agent keeps what the shared part learned from it and is scored like the others at once', () => {
    const k = sharedDims(defaultContextConfig)
    const d = perAgentDims(defaultContextConfig)
    const m = new HybridLinUCB({ alpha: 1, lambda: 1, refreshEvery: 0, maxAgents: 100, sharedDims: k, perAgentDims: d, changeDetection: { threshold: 7.5, minUpdates: 20 } })
    const x = new Float64Array(d); x[0] = 1
    const z = new Float64Array(k); z[0] = 1; z[1] = 0.9
    const alarms: string[] = []
    m.onChange = agent => { alarms.push(agent) }
    for (let i = 0; i < 100; i++) m.update('h/a', x, 0, z, 0, 1, true)
    const before = m.shared().A0
    let failures = 0
    while (alarms.length === 0 && failures < 20) { m.update('h/a', x, 0, z, 0, 0, false); failures++ }
    expect(alarms).toEqual(['h/a'])
    expect(failures).toBeLessThanOrEqual(4)
    expect(m.changes).toBe(1)
    expect(m.arm('h/a')!.updates).toBe(failures) // re-learned from the run of failures only
    // The shared part was not rolled back: what it learned stays.
    expect(m.shared().A0[0]).toBeGreaterThanOrEqual(before[0]!)
    expect(m.score('h/a', x, z).mean).toBeLessThan(0.5)
  })
})

describe('fallbacks teach the policy', () => {
  it('an outcome of a fallback (not the choice) is learned in the state it was scored in', () => {
    const policy = createPolicy('linucb')
    const core = new RoutingCore({ policy })
    const hits: ScreenHit[] = [{ agent: 'h1/calc', similarity: 0.9, cost: 1, latencyMs: 40 }, { agent: 'h2/calc', similarity: 0.8, cost: 1, latencyMs: 40 }]
    const live: BeaconState = { load: 0.1, latencyMs: 40, available: true }
    const decision = core.decide(hits, new Map(hits.map(h => [h.agent, live])), [], mulberry32(1), 0)
    const [chosen, fallback] = decision.candidates.map(c => c.agent)
    const updates = (): number => (policy.toJSON().model as { updates: number }).updates
    core.outcome(fallback!, { ok: false, latencyMs: 50 }, 10)
    expect(updates()).toBe(1)
    core.outcome(fallback!, { ok: false, latencyMs: 50 }, 11) // once per decision
    expect(updates()).toBe(1)
    core.outcome(chosen!, { ok: true, latencyMs: 50 }, 12)
    expect(updates()).toBe(2)
  })
})

describe('shock-fail scenario (the simulator, the benchmark\'s eight seeds)', () => {
  it('LinUCB sends the failing agent a handful of subtasks after the shock, far fewer than without change detection', () => {
    const seeds = [3, 4, 5, 6, 7, 8, 9, 10]
    const on = seeds.map(seed => runOnce(loadScenario('shock-fail', { seed }), 'linucb').summary)
    const off = seeds.map(seed => { const s = loadScenario('shock-fail', { seed }); return runOnce({ ...s, routing: { changeDetection: false } }, 'linucb').summary })
    const sum = (xs: typeof on): number => xs.reduce((n, x) => n + x.shockedDispatches, 0)
    // The goal is 5: met on these eight seeds; 2 of the bench's 40 exceed it (npm run bench -- coordination).
    for (const x of on) expect(x.shockedDispatches).toBeLessThanOrEqual(5)
    expect(sum(on)).toBeLessThan(sum(off) / 2)
    for (const x of on) expect(x.shockRegret).not.toBeNull()
  })
})
