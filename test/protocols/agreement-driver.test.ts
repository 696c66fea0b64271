// A trusted subtask's agreement (protocols/task/agreement-driver.ts), which the peer and the
// simulator both run, against a scripted I/O: the order of checks, what waits for what, and what
// each outcome teaches.
import { describe, it, expect } from 'vitest'
import { ReputationBook, signAnswer, type CertificateSummary, type Json, type SignedCommittee, type Standings } from '../../protocols/consensus/index.ts'
import { agree, type AgreementIo, type AgreementRequest, type AgreementResult } from '../../protocols/task/index.ts'
import { fastSigners, INPUT_HASH } from '../helpers/committee.ts'

const { signers } = fastSigners(3, 5)
const agents = signers.map(s => `${s.peerId}/exec`)
const KEY = 't1/s'

function request (values: Json[], final = false): AgreementRequest {
  return {
    key: KEY,
    inputHash: INPUT_HASH,
    trust: { rule: { kind: 'json' }, extra: 2, committee: 4 },
    answers: values.map((answer, i) => ({ agent: agents[i]!, answer: signAnswer({ v: 1, subtask: KEY, inputHash: INPUT_HASH, agent: agents[i]!, answer }, signers[i]!).wire })),
    final
  }
}

/** An I/O whose every call is recorded; waits and consensus are answered by the test. */
function scripted (suspended = new Set<string>()) {
  const book = new ReputationBook()
  const log: string[] = []
  const waits: Array<() => void> = []
  const runs: Array<{ done: (s: CertificateSummary) => void, fail: (reason: string) => void }> = []
  const view: Standings = { standing: a => suspended.has(a) ? { ...book.standing(a), reputation: 0 } : book.standing(a), hostReputation: h => book.hostReputation(h) }
  const io: AgreementIo = {
    standings: () => view,
    cleared: book,
    suspended: a => suspended.has(a),
    qualify: (executors, done) => { log.push(`qualify ${executors.length}`); waits.push(done) },
    retest: (retested, done) => { log.push(`retest ${retested.map(a => agents.indexOf(a)).join(',')}`); waits.push(done) },
    dissent: executors => { log.push(`dissent ${executors.map(a => agents.indexOf(a)).join(',')}`) },
    candidates: () => signers.map(s => s.peerId),
    committee: o => { log.push(`committee of ${o.size} from ${o.candidates?.length}`); return { body: { members: [{}, {}, {}, {}] } } as unknown as SignedCommittee },
    run: (_statement, answers, done, fail) => { log.push(`run ${answers.length}`); runs.push({ done, fail }) },
    agreed: (agent, ok) => { log.push(`${ok ? 'agreed' : 'disagreed'} ${agents.indexOf(agent)}`) },
    committed: agreed => { log.push(`cohort ${agreed.map(a => agents.indexOf(a)).join(',')}`) }
  }
  return { io, log, waits, runs }
}

const summary = (outcome: CertificateSummary['outcome'], agreed: number[], disagreed: number[]): CertificateSummary =>
  ({ instance: 'i1', subtask: KEY, inputHash: INPUT_HASH, requester: signers[0]!.peerId, outcome, agreed: agreed.map(i => agents[i]!), disagreed: disagreed.map(i => agents[i]!), power: 3, total: 4 }) as CertificateSummary

describe('the agreement driver', () => {
  it('qualifies the executors before anything else; a split tally asks for one more execution and spot-checks them', () => {
    const s = scripted()
    const results: AgreementResult[] = []
    agree(request([1, 2]), s.io, r => results.push(r))
    expect([s.log, results]).toEqual([['qualify 2'], []])
    s.waits[0]!()
    expect(s.log).toEqual(['qualify 2', 'dissent 0,1'])
    expect(results).toEqual([{ kind: 'more', reason: expect.stringMatching(/^too close to call: /) }])
  })

  it('agreeing answers go to a committee; what it commits teaches the router and the spot-checks', () => {
    const s = scripted()
    const results: AgreementResult[] = []
    agree(request([7, 7, 8]), s.io, r => results.push(r))
    s.waits[0]!()
    expect(s.log).toEqual(['qualify 3', 'committee of 4 from 3', 'run 3'])
    s.runs[0]!.done(summary({ kind: 'answer', answer: 7 } as CertificateSummary['outcome'], [0, 1], [2]))
    expect(s.log.slice(3)).toEqual(['agreed 0', 'agreed 1', 'disagreed 2', 'dissent 0,1,2', 'cohort 0,1'])
    expect(results).toEqual([{ kind: 'decided', value: 7, detail: { certificate: 'i1', committee: 4, power: '3/4', agreed: [agents[0], agents[1]], disagreed: [agents[2]] } }])
  })

  it('a suspended executor whose answer would decide the tally is retested first, and the tally reads the result', () => {
    const suspended = new Set([agents[0]!])
    const s = scripted(suspended)
    const results: AgreementResult[] = []
    agree(request([7, 7, 8]), s.io, r => results.push(r))
    s.waits[0]!() // qualified
    expect(s.log).toEqual(['qualify 3', 'retest 0'])
    suspended.delete(agents[0]!) // it passed its retest
    s.waits[1]!()
    expect(s.log.slice(2)).toEqual(['committee of 4 from 3', 'run 3'])
    expect(results).toEqual([])
  })

  it('a suspended executor that fails its retest leaves the tally undecided: one more execution', () => {
    const s = scripted(new Set([agents[0]!]))
    const results: AgreementResult[] = []
    agree(request([7, 7, 8]), s.io, r => results.push(r))
    s.waits[0]!()
    s.waits[1]!()
    expect(s.log).toEqual(['qualify 3', 'retest 0', 'dissent 0,1,2'])
    expect(results.map(r => r.kind)).toEqual(['more'])
  })

  it('escalates, saying why: no committee, consensus failed, or a committee that found no answer ahead', () => {
    const noCommittee = scripted()
    noCommittee.io.committee = () => { throw new Error('only 1 candidate') }
    const results: AgreementResult[] = []
    agree(request([7, 7, 7]), noCommittee.io, r => results.push(r))
    noCommittee.waits[0]!()
    const failed = scripted()
    agree(request([7, 7, 7]), failed.io, r => results.push(r))
    failed.waits[0]!()
    failed.runs[0]!.fail('the committee did not commit within 20000 ms')
    const split = scripted()
    agree(request([7, 8], true), split.io, r => results.push(r))
    split.waits[0]!()
    split.runs[0]!.done(summary({ kind: 'escalate' } as CertificateSummary['outcome'], [], [0, 1]))
    expect(results.map(r => [r.kind, 'reason' in r ? r.reason : ''])).toEqual([
      ['escalate', 'consensus failed: no committee: only 1 candidate'],
      ['escalate', 'consensus failed: the committee did not commit within 20000 ms'],
      ['escalate', expect.stringMatching(/^the committee found no answer ahead by the margin: 1 × 7 \(.*\) vs 1 × 8/)]
    ])
    expect(split.log).toContain('disagreed 0')
    expect(split.log).toContain('dissent 0,1')
    expect(split.log.some(l => l.startsWith('cohort'))).toBe(false)
  })
})
