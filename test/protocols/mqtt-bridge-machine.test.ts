import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { BridgeMachine, MAX_AGENTS_PER_CLIENT, meshAgentName, type BridgeEffect } from '../../protocols/mqtt/index.ts'

const prefix = 'agentmesh/v1/testnet'
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)
const advert = (description = 'reads a thermometer'): Uint8Array => utf8(JSON.stringify({ description, skills: ['temperature'] }))
const machine = (maxAgents = 20): BridgeMachine => new BridgeMachine({
  prefix,
  tag: 'BridgeA',
  maxAgents,
  // Stands in for the capability table's rules: one rule the adverts below can break.
  check: a => { if (a.description.includes('forbidden')) throw new Error('description has a forbidden word') }
})

/** Applies effects to a model of the mesh: which MQTT agents this bridge has advertised. */
function track (mesh: Map<string, string>, effects: BridgeEffect[]): void {
  for (const e of effects) {
    if (e.type === 'advertise') mesh.set(e.agent.name, e.agent.description)
    if (e.type === 'withdraw') {
      expect(mesh.has(e.name), `withdrew ${e.name} that was not advertised`).toBe(true)
      mesh.delete(e.name)
    }
  }
}

describe('MQTT bridge machine', () => {
  it('an agent is in the mesh exactly while its client is online and its advert valid, within quota (property)', () => {
    const clients = ['c1', 'c2', 'c3']
    const agents = ['a', 'b', 'c']
    const instances = ['', 'i1', 'i2']
    const step = fc.oneof(
      fc.record({ k: fc.constant('status' as const), client: fc.constantFrom(...clients), instance: fc.constantFrom(...instances), online: fc.boolean() }),
      fc.record({ k: fc.constant('advert' as const), client: fc.constantFrom(...clients), agent: fc.constantFrom(...agents), body: fc.constantFrom('ok one', 'ok two', 'forbidden', '', 'junk') }),
      fc.record({ k: fc.constant('disconnect' as const) })
    )
    fc.assert(fc.property(fc.array(step, { maxLength: 60 }), fc.integer({ min: 1, max: 9 }), (steps, maxAgents) => {
      const m = machine(maxAgents)
      const mesh = new Map<string, string>()
      // The model: what each client has said, as the broker would replay it.
      const online = new Map<string, Set<string>>()
      const adverts = new Map<string, string>()
      let now = 0
      for (const s of steps) {
        now += 1000 // budgets refill: this property is about state, not rates
        if (s.k === 'disconnect') {
          track(mesh, m.disconnected('test'))
          online.clear()
          continue
        }
        if (s.k === 'status') {
          const topic = `${prefix}/agents/${s.client}/status${s.instance === '' ? '' : `/${s.instance}`}`
          track(mesh, m.message(topic, utf8(s.online ? 'online' : 'offline'), {}, now))
          const set = online.get(s.client) ?? new Set()
          if (s.online) set.add(s.instance)
          else set.delete(s.instance)
          online.set(s.client, set)
        } else {
          const payload = s.body === '' ? new Uint8Array() : s.body === 'junk' ? utf8('{') : advert(s.body)
          track(mesh, m.message(`${prefix}/agents/${s.client}/${s.agent}/advert`, payload, {}, now))
          if (s.body.startsWith('ok')) adverts.set(`${s.client}/${s.agent}`, s.body)
          else adverts.delete(`${s.client}/${s.agent}`)
        }
        // Invariants after every step.
        expect(mesh.size).toBe(m.advertisedCount())
        expect(mesh.size).toBeLessThanOrEqual(maxAgents)
        for (const [name, description] of mesh) {
          const [, client, agent] = name.split('.')
          expect((online.get(client!)?.size ?? 0) > 0, `${name} advertised while its client is offline`).toBe(true)
          expect(adverts.get(`${client}/${agent}`), `${name} advertised with another advert than the client's`).toBe(description)
        }
      }
      // Quota allowing, nothing that should be in the mesh is missing.
      if (maxAgents >= clients.length * agents.length) {
        for (const [key, description] of adverts) {
          const [client, agent] = key.split('/')
          if ((online.get(client!)?.size ?? 0) > 0) expect(mesh.get(meshAgentName(client!, agent!))).toBe(description)
        }
      }
    }), { seed: 11, numRuns: 300 })
  })

  it('the last instance going offline withdraws the agent and abandons its calls in flight; one instance keeps it', () => {
    const m = machine()
    m.message(`${prefix}/agents/edge/status/i1`, utf8('online'), {}, 0)
    m.message(`${prefix}/agents/edge/status/i2`, utf8('online'), {}, 0)
    const added = m.message(`${prefix}/agents/edge/thermo/advert`, advert(), {}, 0)
    expect(added).toMatchObject([{ type: 'advertise', client: 'edge', agent: { name: 'mqtt.edge.thermo', skills: ['temperature'] } }])
    m.sent('att-1', 'edge', 'thermo')
    expect(m.message(`${prefix}/agents/edge/status/i1`, utf8('offline'), {}, 0)).toEqual([])
    const gone = m.message(`${prefix}/agents/edge/status/i2`, new Uint8Array(), {}, 0)
    expect(gone).toEqual([
      { type: 'withdraw', client: 'edge', name: 'mqtt.edge.thermo', reason: 'offline' },
      { type: 'abandon', client: 'edge', attempts: ['att-1'], reason: 'MQTT client edge went offline' }
    ])
  })

  it('takes the first reply of an attempt only, from the client it was sent to; refuses late, forged and malformed ones with reasons', () => {
    const m = machine()
    m.message(`${prefix}/agents/edge/status`, utf8('online'), {}, 0)
    m.sent('att-1', 'edge', 'thermo')
    const reply = `${prefix}/agents/edge/thermo/reply/BridgeA`
    const corr = { correlationData: utf8('att-1') }
    expect(m.message(`${prefix}/agents/other/thermo/reply/BridgeA`, utf8('{"output":1}'), corr, 0)).toMatchObject([{ type: 'refused', reason: expect.stringMatching(/went to edge\/thermo, not other\/thermo/) }])
    const raw = utf8('{"output":{"c":21},"confidence":0.8}')
    expect(m.message(reply, raw, { ...corr, signature: 'c2ln' }, 0)).toEqual([{ type: 'answered', attempt: 'att-1', reply: { ok: true, output: { c: 21 }, confidence: 0.8 }, raw, signature: 'c2ln' }])
    expect(m.message(reply, utf8('{"output":{"c":22}}'), corr, 0)).toMatchObject([{ type: 'refused', client: 'edge', reason: expect.stringMatching(/after its deadline, was answered already/), publish: true }])
    // Another bridge's replies are not this one's business.
    expect(m.message(`${prefix}/agents/edge/thermo/reply/BridgeB`, utf8('{"output":1}'), corr, 0)).toEqual([])
    m.sent('att-2', 'edge', 'thermo')
    for (const [bad, why] of [['{"output":1,"confidence":2}', /confidence/], ['{"output":1,"error":"x"}', /not both/], ['[1]', /JSON object/], ['{"nope":1}', /no field "nope"/]] as const) {
      expect(m.message(reply, utf8(bad), { correlationData: utf8('att-2') }, 0)).toMatchObject([{ type: 'refused', reason: expect.stringMatching(why) }])
    }
    // The attempt id may come in the payload instead (mosquitto_pub without -D).
    expect(m.message(reply, utf8('{"attempt":"att-2","error":"no sensor","kind":"input"}'), {}, 0)).toMatchObject([{ type: 'answered', attempt: 'att-2', reply: { attempt: 'att-2', ok: false, kind: 'input', error: 'no sensor' } }])
  })

  it('holds each client to its quota and budgets, and publishes only so many refusals back', () => {
    const m = machine(100)
    m.message(`${prefix}/agents/edge/status`, utf8('online'), {}, 0)
    const effects: BridgeEffect[] = []
    for (let i = 0; i < MAX_AGENTS_PER_CLIENT + 2; i++) effects.push(...m.message(`${prefix}/agents/edge/a${i}/advert`, advert(), {}, i * 1000))
    expect(effects.filter(e => e.type === 'advertise')).toHaveLength(MAX_AGENTS_PER_CLIENT)
    expect(effects.filter(e => e.type === 'refused').map(e => (e as { reason: string }).reason)).toEqual(Array(2).fill(`advert refused: a client may advertise at most ${MAX_AGENTS_PER_CLIENT} agents through this bridge`))
    // A burst past the advert budget is refused, and only the first few refusals go back to the client.
    const flood: BridgeEffect[] = []
    for (let i = 0; i < 200; i++) flood.push(...m.message(`${prefix}/agents/edge/a0/advert`, advert(`version ${i}`), {}, 100_000))
    const refused = flood.filter((e): e is Extract<BridgeEffect, { type: 'refused' }> => e.type === 'refused')
    expect(refused.length).toBe(200 - 80) // all but the burst
    expect(refused.filter(e => e.publish).length).toBeLessThanOrEqual(8)
    expect(refused[0]!.reason).toMatch(/over budget/)
  })

  it('runs a task only with a response topic under the client\'s own tree', () => {
    const m = machine()
    const submit = `${prefix}/clients/edge/tasks/submit`
    const task = utf8(JSON.stringify({ subtasks: [{ id: 's', capability: { skills: ['math'] }, input: null }] }))
    expect(m.message(submit, task, {}, 0)).toMatchObject([{ type: 'refused', reason: expect.stringMatching(/needs a response topic under agentmesh\/v1\/testnet\/clients\/edge\//) }])
    expect(m.message(submit, task, { responseTopic: `${prefix}/agents/victim/thermo/reply/BridgeA` }, 0)).toMatchObject([{ type: 'refused' }])
    expect(m.message(submit, task, { responseTopic: `${prefix}/clients/edge/reports`, correlationData: utf8('x') }, 0)).toMatchObject([{ type: 'submit', client: 'edge', responseTopic: `${prefix}/clients/edge/reports` }])
  })

  it('keeps a client\'s budgets when it goes idle: a client that never goes online cannot reset them by being forgotten', () => {
    const m = machine()
    const submit = `${prefix}/clients/ghost/tasks/submit`
    const task = utf8(JSON.stringify({ subtasks: [{ id: 's', capability: { skills: ['math'] }, input: null }] }))
    const effects: BridgeEffect[] = []
    for (let i = 0; i < 1000; i++) effects.push(...m.message(submit, task, { responseTopic: `${prefix}/clients/ghost/r` }, 5000))
    expect(effects.filter(e => e.type === 'submit')).toHaveLength(16)
    const bad: BridgeEffect[] = []
    for (let i = 0; i < 1000; i++) bad.push(...m.message(`${prefix}/agents/ghost/a/advert`, utf8('{'), {}, 5000))
    expect(bad.filter(e => e.type === 'refused' && e.publish).length).toBeLessThanOrEqual(8)
    // An offline status from an unknown client leaves nothing behind.
    expect(m.message(`${prefix}/agents/nobody/status`, utf8('offline'), {}, 5000)).toEqual([])
  })

  it('pins the key of an agent that signs its replies: an advert without it (or with another) is refused, across restarts', () => {
    const key = Buffer.alloc(32, 7).toString('base64')
    const keyed = utf8(JSON.stringify({ description: 'signs its replies', publicKey: key }))
    const m = machine()
    m.message(`${prefix}/agents/edge/status`, utf8('online'), {}, 0)
    expect(m.message(`${prefix}/agents/edge/stats/advert`, keyed, {}, 0)).toMatchObject([{ type: 'advertise', publicKey: new Uint8Array(32).fill(7) }])
    expect(m.pinnedKeys()).toEqual({ 'edge/stats': key })
    // A stolen password re-advertises without the key: refused, and the agent leaves the mesh.
    expect(m.message(`${prefix}/agents/edge/stats/advert`, advert(), {}, 1000)).toEqual([
      { type: 'refused', client: 'edge', topic: `${prefix}/agents/edge/stats/advert`, reason: expect.stringMatching(/^advert refused: this agent signs its replies with key /), publish: true },
      { type: 'withdraw', client: 'edge', name: 'mqtt.edge.stats', reason: 'advert withdrawn' }
    ])
    // Withdrawing does not unpin; a bridge started with the saved pins refuses too.
    m.message(`${prefix}/agents/edge/stats/advert`, new Uint8Array(), {}, 2000)
    const again = new BridgeMachine({ prefix, tag: 'BridgeA', maxAgents: 20, check: () => {}, pinnedKeys: m.pinnedKeys() })
    again.message(`${prefix}/agents/edge/status`, utf8('online'), {}, 0)
    expect(again.message(`${prefix}/agents/edge/stats/advert`, advert(), {}, 0)).toMatchObject([{ type: 'refused' }])
    expect(again.message(`${prefix}/agents/edge/stats/advert`, keyed, {}, 0)).toMatchObject([{ type: 'advertise' }])
  })

  it('rolls back an agent the host refused, so the quota is not leaked and the next message tries again; asks the quota each time', () => {
    let max = 1
    const m = new BridgeMachine({ prefix, tag: 'BridgeA', maxAgents: () => max, check: () => {} })
    m.message(`${prefix}/agents/edge/status`, utf8('online'), {}, 0)
    expect(m.message(`${prefix}/agents/edge/a/advert`, advert(), {}, 0)).toMatchObject([{ type: 'advertise' }])
    expect(m.isAdvertised('edge', 'a')).toBe(true)
    m.advertiseFailed('edge', 'a')
    expect(m.isAdvertised('edge', 'a')).toBe(false)
    expect(m.advertisedCount()).toBe(0)
    expect(m.message(`${prefix}/agents/edge/status`, utf8('online'), {}, 1000)).toMatchObject([{ type: 'advertise', agent: { name: 'mqtt.edge.a' } }])
    // The quota is asked each time: it grows and shrinks with the peer's other agents.
    expect(m.message(`${prefix}/agents/edge/b/advert`, advert(), {}, 2000)).toMatchObject([{ type: 'refused', reason: expect.stringMatching(/hosts at most 1 MQTT agents/) }])
    max = 2
    expect(m.message(`${prefix}/agents/edge/b/advert`, advert(), {}, 3000)).toMatchObject([{ type: 'advertise', agent: { name: 'mqtt.edge.b' } }])
  })

  it('drops a reply nobody waits for before parsing it', () => {
    const m = machine()
    // Not JSON at all: had it been parsed, the reason would say so.
    expect(m.message(`${prefix}/agents/edge/a/reply/BridgeA`, utf8('x'.repeat(1000)), { correlationData: utf8('nobody') }, 0)).toMatchObject([{ type: 'refused', reason: expect.stringMatching(/attempt nobody came after its deadline/) }])
  })
})
