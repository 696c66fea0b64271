/**
 * The user's mistakes are the user's: a subtask's input is checked against the agent's declared
 * schema before dispatch, a missing input becomes the request text where the schema takes text,
 * an input error ends the subtask with what to fix, and the bandit learns nothing from it.
 */
import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { createAgent } from '../../node/agents/registry.ts'
import type { AgentSpec } from '../../node/agents/agent.ts'
import { mulberry32 } from '../../protocols/random.ts'
import { createPolicy, RoutingCore, type BeaconState, type ScreenHit } from '../../protocols/routing/index.ts'
import { inputFromText, inputProblem, parseTask, prepareFromSchema, TaskExecution, type TaskEffect } from '../../protocols/task/index.ts'
import { usePeers } from '../helpers/peers.ts'
import { until } from '../helpers/until.ts'

const schemaOf = (kind: string): string => JSON.stringify(createAgent({ kind } as AgentSpec).describe().inputSchema)

describe('input checks against the declared schema', () => {
  it('says what the agent needs and what is wrong; fits pass; text fills a schema that takes text', () => {
    const uc = schemaOf('unit-convert')
    expect(inputProblem(uc, null, 'unit-convert')).toMatch(/^unit-convert needs \{ value: number, from: string, to: string \} \(e\.g\. \{"value":100,"from":"F","to":"C"\}\); no input was given$/)
    expect(inputProblem(uc, { value: '100', from: 'F', to: 'C' }, 'unit-convert')).toMatch(/at \/value: .*Expected "number"/)
    expect(inputProblem(uc, { value: 100, from: 'F', to: 'C' }, 'unit-convert')).toBeUndefined()
    expect(inputProblem(schemaOf('arithmetic'), { expr: '1' }, 'arithmetic')).toMatch(/\/expr is not a field it takes/)
    expect(inputFromText(schemaOf('summarize'), 'Agents talk.')).toEqual({ text: 'Agents talk.' })
    expect(inputFromText(schemaOf('arithmetic'), '6*7')).toEqual({ expression: '6*7' })
    expect(inputFromText(uc, 'convert 100 F to C')).toBeUndefined()
    expect(prepareFromSchema(schemaOf('summarize'), 'summarize', null, { text: 'Peers gossip.' })).toEqual({ input: { text: 'Peers gossip.' } })
    expect(prepareFromSchema(undefined, 'x', 5, {})).toEqual({ input: 5 })
  })

  it('a hostile schema cannot hang or crash the requester: foreign regexes are not run, unusable schemas are not used', () => {
    // A catastrophic backtracking pattern: with it, this string takes minutes; without, microseconds.
    expect(inputProblem('{"type":"string","pattern":"^(a+)+$"}', 'a'.repeat(40) + '!', 'x')).toBeUndefined()
    expect(inputProblem('{"type":"object","patternProperties":{"^(a+)+$":{"type":"number"}}}', { ['a'.repeat(40) + '!']: 'no' }, 'x')).toBeUndefined()
    expect(inputProblem('not json', 1, 'x')).toBeUndefined()
    expect(inputProblem('[1,2]', 1, 'x')).toBeUndefined()
    expect(inputProblem('{"$ref":"https://evil.example/schema"}', 1, 'x')).toBeUndefined()
    let deep: unknown = { type: 'number' }
    for (let i = 0; i < 100; i++) deep = { type: 'object', properties: { a: deep } }
    expect(inputProblem(JSON.stringify(deep), { a: 1 }, 'x')).toBeUndefined()
    // fuzz: any schema text and any input: a string or undefined, never a throw
    fc.assert(fc.property(fc.json(), fc.jsonValue(), (schema, input) => {
      const r = inputProblem(schema, input, 'x')
      expect(r === undefined || typeof r === 'string').toBe(true)
    }), { numRuns: 300 })
  })
})

const spec = (input: unknown, trust = false): ReturnType<typeof parseTask> => parseTask({ id: 't', subtasks: [{ id: 's', capability: { text: 'convert 100 fahrenheit to celsius' }, input, ...(trust ? { redundancy: 2, trust: true } : {}) }] })
const ofType = <T extends TaskEffect['type']>(effects: TaskEffect[], type: T): Array<Extract<TaskEffect, { type: T }>> => effects.filter((e): e is Extract<TaskEffect, { type: T }> => e.type === type)

describe('the task machine: input errors are the requester\'s', () => {
  const prepare = (agent: string, input: unknown, request: { text?: string }) => prepareFromSchema(agent.endsWith('/convert') ? schemaOf('unit-convert') : schemaOf('summarize'), agent.split('/')[1]!, input, request)

  it('no candidate takes the input: nothing is sent, each decision teaches nothing, and the escalation says what to fix', () => {
    const ex = new TaskExecution(spec(null), { prepareInput: prepare })
    ex.start(0)
    const effects = ex.routed('s', ['a/convert', 'b/convert'].map(agent => ({ agent, cost: 0.1 })), 1)
    expect(ofType(effects, 'dispatch')).toEqual([])
    expect(ofType(effects, 'settle')).toEqual([{ type: 'settle', subtask: 's', agent: 'a/convert', teach: 'nothing' }, { type: 'settle', subtask: 's', agent: 'b/convert', teach: 'nothing' }])
    expect(ex.status).toBe('escalated')
    expect(ex.reason).toMatch(/the input fits no candidate: convert needs \{ value: number, from: string, to: string \}.*no input was given/)
    expect(ex.spent).toBe(0)
  })

  it('a missing input goes as the request text to the first candidate whose schema takes text', () => {
    const ex = new TaskExecution(spec(null), { prepareInput: prepare })
    ex.start(0)
    const effects = ex.routed('s', [{ agent: 'a/convert', cost: 0.1 }, { agent: 'b/summarize', cost: 0.1 }], 1)
    expect(ofType(effects, 'dispatch')).toMatchObject([{ agent: 'b/summarize', input: { text: 'convert 100 fahrenheit to celsius' } }])
  })

  it('"your input is wrong" from agents of two hosts ends the subtask with what they said, blaming neither', () => {
    const ex = new TaskExecution(spec({ expression: '1/0' }))
    ex.start(0)
    const [first] = ofType(ex.routed('s', ['a/calc', 'a/calc2', 'b/calc'].map(agent => ({ agent, cost: 0.1 })), 1), 'dispatch')
    // the same host saying it again is not a second opinion
    const [second] = ofType(ex.failure(first!.attempt, 'input: division by zero', 2, 'input'), 'dispatch')
    expect(second!.agent).toBe('a/calc2')
    const [third] = ofType(ex.failure(second!.attempt, 'input: division by zero', 3, 'input'), 'dispatch')
    expect(third!.agent).toBe('b/calc')
    const end = ex.failure(third!.attempt, 'input: division by zero', 4, 'input')
    expect(ex.status).toBe('escalated')
    expect(ex.reason).toMatch(/the input was refused by 3 agents .*division by zero; fix the input/)
    expect(ofType(end, 'settle').map(e => [e.agent, e.teach])).toEqual([['a/calc', 'nothing'], ['a/calc2', 'nothing'], ['b/calc', 'nothing']])
  })

  it('an input-error report that another agent contradicts is that agent\'s failure', () => {
    const ex = new TaskExecution(spec({ expression: '6*7' }))
    ex.start(0)
    const [first] = ofType(ex.routed('s', ['a/calc', 'b/calc'].map(agent => ({ agent, cost: 0.1 })), 1), 'dispatch')
    const [second] = ofType(ex.failure(first!.attempt, 'input: nonsense', 2, 'input'), 'dispatch')
    const done = ex.succeeded(second!.attempt, { value: 42 }, 3)
    expect(ofType(done, 'settle')).toEqual([{ type: 'settle', subtask: 's', agent: 'a/calc', teach: 'failure' }])
    expect(ex.status).toBe('done')
  })
})

describe('the bandit learns nothing from a requester\'s input error', () => {
  it('property: decisions withdrawn for input errors leave the model exactly as if they never happened', () => {
    const hits: ScreenHit[] = ['h1/convert', 'h2/convert', 'h3/convert'].map((agent, i) => ({ agent, similarity: 0.9 - 0.05 * i, cost: 0.1, latencyMs: 20 }))
    const live = new Map<string, BeaconState>(hits.map(h => [h.agent, { load: 0.1, latencyMs: 20, available: true }]))
    fc.assert(fc.property(fc.array(fc.record({ inputError: fc.boolean(), ok: fc.boolean() }), { maxLength: 60 }), fc.integer(), (events, seed) => {
      const withErrors = new RoutingCore({ policy: createPolicy('linucb') })
      const clean = new RoutingCore({ policy: createPolicy('linucb') })
      const r1 = mulberry32(seed)
      const r2 = mulberry32(seed)
      events.forEach((e, t) => {
        const d = withErrors.decide(hits, live, [], r1, t).candidates[0]!.agent
        if (e.inputError) { withErrors.withdraw(d); r2(); return } // the same draws on both sides
        const c = clean.decide(hits, live, [], r2, t).candidates[0]!.agent
        expect(c).toBe(d)
        withErrors.outcome(d, { ok: e.ok, latencyMs: 30 }, t)
        clean.outcome(c, { ok: e.ok, latencyMs: 30 }, t)
      })
      expect(withErrors.policy.toJSON().model).toEqual(clean.policy.toJSON().model)
      expect(withErrors.policy.pending).toBe(clean.policy.pending)
    }), { numRuns: 100 })
  })
})

const { peer } = usePeers('agentmesh-input-')

describe('real peers', () => {
  it('run "convert 100 fahrenheit to celsius" without input: an escalation that says what to fix, nothing sent, learned means unchanged; summarize gets the request text', async () => {
    const requester = await peer({ agents: [] })
    const hosts = [await peer({ agents: [{ kind: 'unit-convert' }, { kind: 'summarize' }] }), await peer({ agents: [{ kind: 'unit-convert' }, { kind: 'arithmetic' }] })]
    for (const h of hosts) await requester.dial([h.multiaddrs()[0]!])
    await until(() => requester.capability.agents().length === 4)
    await requester.whenIndexed()
    // Teach the bandit about the unit converters first, with a correct input.
    for (let i = 0; i < 3; i++) {
      const ok = await requester.tasks.submit({ subtasks: [{ id: 's', capability: { text: 'convert 5 miles to km' }, input: { value: 5, from: 'mi', to: 'km' } }] }).finished
      expect(ok.status).toBe('done')
    }
    const before = JSON.stringify(requester.router.policy.toJSON().model)
    const report = await requester.tasks.submit({ subtasks: [{ id: 'run', capability: { text: 'convert 100 fahrenheit to celsius' }, input: null }] }).finished
    expect(report.status).toBe('escalated')
    // (the VCV's schema is canonical JSON: its fields in sorted order)
    expect(report.reason).toMatch(/unit-convert needs \{ from: string, to: string, value: number \}.*no input was given/)
    expect(report.spent).toBe(0)
    expect(report.trace.some(t => t.kind === 'dispatch')).toBe(false)
    expect(JSON.stringify(requester.router.policy.toJSON().model)).toBe(before)
    // 1/0: two hosts' calculators say the input is wrong; the subtask ends there, nobody blamed.
    const calc = await requester.tasks.submit({ subtasks: [{ id: 'c', capability: { text: 'calculate an arithmetic expression', skills: ['arithmetic'] }, input: { expression: '1/0' } }] }).finished
    expect(calc.status).toBe('escalated')
    expect(calc.reason).toMatch(/by zero/)
    // text in, summary out
    const summary = await requester.tasks.submit({ subtasks: [{ id: 'sum', capability: { text: 'summarize: Agents talk. Peers gossip. Nodes route.' }, input: null }] }).finished
    expect(summary.status).toBe('done')
  }, 60_000)
})
