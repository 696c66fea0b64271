// Ground truth enters reputation through canaries (known answers mixed into dispatches) and the
// user's feedback over the API; both lower a lying agent's reputation and measured accuracy.
import { describe, it, expect } from 'vitest'
import { createAgent } from '../../node/agents/registry.ts'
import type { Agent } from '../../node/agents/agent.ts'
import { startApi } from '../../node/api/api.ts'
import { usePeers } from '../helpers/peers.ts'
import { until } from '../helpers/until.ts'
import { loadNodeConfig } from '../../node/config.ts'
import { ConfigError } from '../../node/agents/config.ts'
import { mkdtemp, writeFile, rm } from 'node:fs/promises'
import { BUILT_IN_CANARY_CASES } from '../../node/agents/canary-cases.ts'
import type { AgentSpec } from '../../node/agents/agent.ts'
import { resolveCanaries } from '../../node/services/canaries.ts'
import { canaryPassed } from '../../protocols/consensus/index.ts'
import { mulberry32 } from '../../protocols/random.ts'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const { peer } = usePeers('agentmesh-spot-')

describe('spot-checks and feedback', () => {
  it('a canary with a known answer catches a lying agent; user feedback counts once per id', async () => {
    const honest = createAgent({ kind: 'arithmetic' })
    const liar: Agent = { describe: () => honest.describe(), handle: async () => ({ output: { value: 41 }, confidence: 1 }) }
    const requester = await peer({
      agents: [],
      canaries: { rate: 1, cases: [{ skills: ['arithmetic'], input: { expression: '2 + 2' }, answer: { value: 4 } }] }
    })
    const host = await peer({ agents: [], customAgents: [liar] })
    await requester.dial([host.multiaddrs()[0]!])
    const liarId = `${host.peerId}/arithmetic`
    await until(() => requester.capability.agents().some(v => v.body.agent === liarId))
    await requester.whenIndexed()
    const before = requester.consensus.book.standing(liarId)

    const report = await requester.tasks.submit({ subtasks: [{ id: 'sum', capability: { text: 'calculate 20 + 21', skills: ['arithmetic'] }, input: { expression: '20 + 21' } }] }).finished
    expect(report.result).toEqual({ sum: { value: 41 } }) // right by accident; the canary is what catches it
    await until(() => requester.consensus.book.counts(liarId).canaryFailed === 2) // the canary and the retest its failure triggers
    const after = requester.consensus.book.standing(liarId)
    expect(after.reputation).toBeLessThan(before.reputation)
    expect(after.accuracy).toBeLessThan(before.accuracy)

    const api = await startApi(requester, 0)
    try {
      const post = async (body: string): Promise<{ status: number, json: Record<string, unknown> }> => {
        const res = await fetch(`http://127.0.0.1:${api.port}/feedback`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${api.token}` }, body })
        return { status: res.status, json: await res.json() as Record<string, unknown> }
      }
      const first = await post(JSON.stringify({ agent: liarId, good: false, id: 'report-1' }))
      expect(first.status).toBe(200)
      expect(first.json.counted).toBe(true)
      expect(first.json.reputation as number).toBeLessThan(after.reputation)
      expect((await post(JSON.stringify({ agent: liarId, good: false, id: 'report-1' }))).json.counted).toBe(false)
      expect(await post('not json')).toMatchObject({ status: 400, json: { error: expect.stringMatching(/must be JSON/) } })
      expect(await post(JSON.stringify({ agent: 'nobody', good: true }))).toMatchObject({ status: 400, json: { error: expect.stringMatching(/full agent id/) } })
      expect(await post(JSON.stringify({ agent: liarId, good: 'yes' }))).toMatchObject({ status: 400, json: { error: 'good must be true or false' } })
      const standing = await (await fetch(`http://127.0.0.1:${api.port}/reputation?agent=${encodeURIComponent(liarId)}`)).json() as { counts: Record<string, number>, suspended: boolean }
      // the canary, and the retest its failure triggered at once (the next waits 30 s)
      expect(standing.counts).toMatchObject({ canaryFailed: 2, feedbackBad: 1 })
      expect(standing.suspended).toBe(true) // why it gets no weight or work here
      const book = await (await fetch(`http://127.0.0.1:${api.port}/reputation`)).json() as { suspended: string[] }
      expect(book.suspended).toEqual([liarId])
    } finally {
      await api.close()
    }
  }, 30_000)

  it('reads canaries from the node config file and refuses bad ones with the reason', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'agentmesh-canary-config-'))
    try {
      const load = async (yaml: string) => {
        const file = join(dir, 'node.yaml')
        await writeFile(file, yaml)
        return loadNodeConfig(file)
      }
      expect((await load('canaries:\n  rate: 0.1\n  cases:\n    - { skills: [arithmetic], input: { expression: "2 + 2" }, answer: { value: 4 } }\n')).canaries)
        .toEqual({ rate: 0.1, cases: [{ skills: ['arithmetic'], input: { expression: '2 + 2' }, answer: { value: 4 } }] })
      await expect(load('canaries: { rate: 2, cases: [] }\n')).rejects.toThrow(/rate must be a share of dispatches from 0 to 1/)
      await expect(load('canaries: { rate: 0.1, cases: [{ skills: [a], input: 1 }] }\n')).rejects.toThrow(/needs the known answer/)
      await expect(load('canaries: { rate: 0.1, cases: [{ skills: [a], answer: 1, rule: { kind: nope } }] }\n')).rejects.toThrow(ConfigError)
      // Off only when asked; partial settings keep the other defaults.
      expect((await load('canaries: off\n')).canaries).toBe(false)
      expect((await load('canaries: false\n')).canaries).toBe(false)
      expect((await load('canaries: { qualify: false }\n')).canaries).toEqual({ qualify: false, cases: [] })
      await expect(load('canaries: { onDissent: 1 }\n')).rejects.toThrow(/onDissent must be true or false/)
      await expect(load('canaries: { bogus: 1 }\n')).rejects.toThrow(/has no setting "bogus"/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('the built-in cases ask what the built-in agents answer: each generated question, run on the real agent, passes', async () => {
    const random = mulberry32(7)
    for (const c of BUILT_IN_CANARY_CASES) {
      if (!('generate' in c)) continue
      const kind = { arithmetic: 'arithmetic', 'unit-conversion': 'unit-convert', sort: 'sort' }[c.skills[0]!]!
      const agent = createAgent({ kind } as AgentSpec)
      expect(c.skills.every(skill => agent.describe().skills.includes(skill))).toBe(true)
      for (let i = 0; i < 25; i++) {
        const q = c.generate(random)
        const { output } = await agent.handle(q.input)
        expect(canaryPassed(q.answer, output, q.rule)).toBe(true)
      }
      // and a wrong answer fails it
      const q = c.generate(random)
      expect(canaryPassed(q.answer, { value: -1 }, q.rule)).toBe(false)
    }
    expect(resolveCanaries(undefined)).toMatchObject({ rate: 0.05, newcomerChecks: 2, onDissent: true, qualify: true })
    expect(resolveCanaries(undefined).cases.length).toBe(BUILT_IN_CANARY_CASES.length)
  })

  it('on by default: a peer with no canary settings checks a built-in kind that lies', async () => {
    const honest = createAgent({ kind: 'arithmetic' })
    const liar: Agent = { describe: () => honest.describe(), handle: async () => ({ output: { value: 41 }, confidence: 1 }) }
    const requester = await peer({ agents: [] })
    const host = await peer({ agents: [], customAgents: [liar] })
    await requester.dial([host.multiaddrs()[0]!])
    const liarId = `${host.peerId}/arithmetic`
    await until(() => requester.capability.agents().some(v => v.body.agent === liarId))
    await requester.whenIndexed()
    await requester.tasks.submit({ subtasks: [{ id: 'sum', capability: { text: 'calculate 20 + 21', skills: ['arithmetic'] }, input: { expression: '20 + 21' } }] }).finished
    await until(() => requester.consensus.book.counts(liarId).canaryFailed === 2) // the canary and the retest its failure triggers
    expect(requester.consensus.book.vetted(liarId)).toBe(false)
  }, 30_000)

  it('a trusted tally waits for the retest of a suspended executor whose answer decides it, instead of escalating', async () => {
    // B slips once: its second call (the newcomer canary after its first dispatch) comes back wrong,
    // at high confidence, so it is suspended while its right answer to the task waits in the tally.
    const honest = createAgent({ kind: 'arithmetic' })
    let calls = 0
    const slipsOnce: Agent = {
      describe: () => honest.describe(),
      handle: async (input, ctx) => ++calls === 2 ? { output: { value: -1 }, confidence: 0.9 } : await honest.handle(input, ctx)
    }
    const requester = await peer({ agents: [], canaries: { rate: 0, newcomerChecks: 1, qualify: true, onDissent: true, cases: [] } })
    const a = await peer({ agents: [], customAgents: [createAgent({ kind: 'arithmetic' })] })
    const b = await peer({ agents: [], customAgents: [slipsOnce] })
    const member = await peer({ agents: [] }) // a fourth committee member
    for (const p of [a, b, member]) expect(await requester.dial([p.multiaddrs()[0]!])).toEqual([])
    const bId = `${b.peerId}/arithmetic`
    // B has a record (ten good reports from users), but no canary yet: its first is checked before its answer counts.
    for (let i = 0; i < 10; i++) requester.consensus.book.feedback({ id: `report-${i}`, agent: bId, good: true })
    await until(() => requester.capability.agents().filter(v => v.body.skills.includes('arithmetic')).length === 2)
    await requester.whenIndexed()
    const report = await requester.tasks.submit({
      subtasks: [{ id: 'calc', capability: { text: 'calculate', skills: ['arithmetic'] }, input: { expression: '6 * 7' }, redundancy: 2, trust: { committee: 4 } }]
    }).finished
    expect(report.status, `${report.reason} ${JSON.stringify(report.trace).slice(0, 1500)}`).toBe('done')
    expect(report.result).toEqual({ calc: { value: 42 } })
    expect(report.trace.find(t => t.kind === 'agree')?.detail).toMatchObject({ agreed: expect.arrayContaining([bId]) })
    expect(requester.consensus.book.counts(bId)).toMatchObject({ canaryFailed: 1, canaryPassed: 1 }) // the slip, then the retest that cleared it
    expect(requester.suspects.has(bId)).toBe(false)
  }, 60_000)
})
