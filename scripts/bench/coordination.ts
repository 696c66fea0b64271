/**
 * `npm run bench -- coordination`: the coordination table of issue 13, from the simulator (same
 * protocol code as a peer, virtual time, seeded: the same command gives the same numbers).
 *
 * - shock-fail (40 seeds: sets of 8 gave ratios anywhere from 0.22 to 0.37 for the same code):
 *   regret from the shock and subtasks sent to the agent that started failing every call, for
 *   LinUCB with and without change detection and Symphony-Coord's selector.
 * - collusion-7 and sleepers-7 (5 seeds each, 0–6 colluding confident liars of 7): task accuracy,
 *   wrong commits and the liars' largest share of the weight for the mesh; CP-WBFT's rule and plain
 *   majority on the same signed answers.
 * - calibrated-7 (5 seeds, 0–3 liars): the mesh with and without learned calibration, against
 *   CP-WBFT's rule.
 * - CP-WBFT's rule over its six topologies on synthetic answers (7 agents, honest right 80% at
 *   confidence 0.8 ± 0.05, liars colluding at 1.0), 2,000 draws per liar count.
 */
import { cpWbftVerdict, CP_WBFT_TOPOLOGIES, type AnswerBody } from '../../protocols/consensus/index.ts'
import { mulberry32 } from '../../protocols/random.ts'
import { runOnce, withFaulty, type RunSummary } from '../../sim/run.ts'
import { loadScenario, type Scenario } from '../../sim/scenario.ts'
import type { BenchOptions, LineBench } from '../bench.ts'

const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length
const r3 = (x: number): number => Math.round(x * 1000) / 1000

function runs (scenario: (seed: number) => Scenario, seeds: number[], policy: 'linucb' | 'symphony' = 'linucb'): RunSummary[] {
  return seeds.map(seed => runOnce(scenario(seed), policy).summary)
}

export const coordinationBench: LineBench = async function * (options: BenchOptions) {
  const shockSeeds = options.quick ? [3, 5] : Array.from({ length: 40 }, (_, i) => 3 + i)
  const seeds = options.quick ? [13] : [13, 14, 15, 16, 17]

  // ---- forgetting after a shock ----------------------------------------------------------------
  const shock = (cd: boolean) => (seed: number): Scenario => { const s = loadScenario('shock-fail', { seed }); return { ...s, routing: { changeDetection: cd } } }
  const on = runs(shock(true), shockSeeds)
  const off = runs(shock(false), shockSeeds)
  const sym = runs(shock(true), shockSeeds, 'symphony')
  const sum = (xs: RunSummary[], k: 'shockRegret' | 'shockedDispatches'): number => xs.reduce((s, x) => s + (x[k] ?? 0), 0)
  yield {
    table: 'shock-fail',
    seeds: shockSeeds.length,
    regretFromShock: { linucb: r3(sum(on, 'shockRegret')), linucbWithoutChangeDetection: r3(sum(off, 'shockRegret')), symphony: r3(sum(sym, 'shockRegret')) },
    ratioToSymphony: r3(sum(on, 'shockRegret') / sum(sym, 'shockRegret')),
    subtasksToFailingAgentSummary: Object.fromEntries(([['linucb', on], ['linucbWithoutChangeDetection', off], ['symphony', sym]] as const).map(([k, xs]) => {
      const d = xs.map(x => x.shockedDispatches)
      return [k, { mean: r3(mean(d)), max: Math.max(...d), seedsOver5: d.filter(n => n > 5).length }]
    })),
    subtasksToFailingAgent: { linucb: on.map(s => s.shockedDispatches), linucbWithoutChangeDetection: off.map(s => s.shockedDispatches), symphony: sym.map(s => s.shockedDispatches) }
  }

  // ---- colluding confident liars and sleepers ----------------------------------------------------
  for (const name of ['collusion-7', 'sleepers-7']) {
    for (let liars = 0; liars <= 6; liars++) {
      const all = runs(seed => withFaulty(loadScenario(name, { seed }), liars / 7), seeds)
      yield {
        table: name,
        liars,
        mesh: { accuracy: r3(mean(all.map(s => s.accuracy))), min: r3(Math.min(...all.map(s => s.accuracy))), wrong: r3(mean(all.map(s => s.wrongRate))), wrongMax: r3(Math.max(...all.map(s => s.wrongRate))), liarWeightMax: r3(Math.max(...all.map(s => Number.isNaN(s.liarWeightMax) ? 0 : s.liarWeightMax))) },
        cpWbft: { accuracy: r3(mean(all.map(s => s.ruleAccuracy['cp-wbft']!))), wrong: r3(mean(all.map(s => s.ruleWrong['cp-wbft']!))) },
        majority: { accuracy: r3(mean(all.map(s => s.ruleAccuracy.majority!))), wrong: r3(mean(all.map(s => s.ruleWrong.majority!))) }
      }
    }
  }

  // ---- calibrated agents -----------------------------------------------------------------------
  for (let liars = 0; liars <= 3; liars++) {
    const calibrated = runs(seed => withFaulty(loadScenario('calibrated-7', { seed }), liars / 7), seeds)
    const fixed = runs(seed => { const s = withFaulty(loadScenario('calibrated-7', { seed }), liars / 7); return { ...s, consensus: { calibration: false } } }, seeds)
    yield {
      table: 'calibrated-7',
      liars,
      meshLearnedCalibration: { accuracy: r3(mean(calibrated.map(s => s.accuracy))), wrong: r3(mean(calibrated.map(s => s.wrongRate))) },
      meshFixedCapAndShrink: { accuracy: r3(mean(fixed.map(s => s.accuracy))), wrong: r3(mean(fixed.map(s => s.wrongRate))) },
      cpWbft: { accuracy: r3(mean(calibrated.map(s => s.ruleAccuracy['cp-wbft']!))), wrong: r3(mean(calibrated.map(s => s.ruleWrong['cp-wbft']!))) }
    }
  }

  // ---- CP-WBFT over its topologies ---------------------------------------------------------------
  const draws = options.quick ? 200 : 2000
  for (let liars = 0; liars <= 3; liars++) {
    const rng = mulberry32(1000 + liars)
    const right: Record<string, number> = {}
    for (const t of CP_WBFT_TOPOLOGIES) right[t] = 0
    for (let d = 0; d < draws; d++) {
      const answers: AnswerBody[] = Array.from({ length: 7 }, (_, i) => {
        const agent = `${String.fromCharCode(97 + i)}/agent`
        const liar = i < liars
        const value = liar ? -1 : rng() < 0.8 ? 42 : 1000 + Math.floor(rng() * 1000)
        return { v: 1, subtask: 't/s', inputHash: 'ab', agent, answer: value, confidence: liar ? 1 : 0.8 + 0.05 * (rng() - 0.5) }
      })
      for (const t of CP_WBFT_TOPOLOGIES) {
        const v = cpWbftVerdict(answers, { kind: 'json' }, { topology: t, rng })
        if (v.kind === 'decided' && v.value === 42) right[t]!++
      }
    }
    yield { table: 'cp-wbft-topologies', liars, draws, accuracy: Object.fromEntries(Object.entries(right).map(([t, n]) => [t, r3(n / draws)])) }
  }
}
