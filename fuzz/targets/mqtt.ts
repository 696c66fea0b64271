/**
 * What MQTT clients send the bridge: adverts, replies and tasks, as payloads on the bridge's topics.
 * The machine is driven the way the bridge drives it, with the capability table's real rules.
 */
import { CapabilityTable, type LocalAgent } from '../../protocols/capability/index.ts'
import { AdvertError, BridgeMachine, parseAdvert } from '../../protocols/mqtt/index.ts'
import { isDeepStrictEqual } from 'node:util'
import type { Fixtures } from '../fixtures.ts'
import { textCase } from '../text.ts'
import { invariant, type Target } from '../target.ts'

const PREFIX = 'agentmesh/v1/fuzz'
const ADVERTS = [
  '{"description":"reads the temperature of room 4","skills":["temperature","sensor"],"inputSchema":{"type":"object","properties":{"room":{"type":"integer"}}},"outputSchema":{"type":"object"},"costPerCall":0.1,"latencyMs":50,"capacity":2,"policy":["deterministic"]}',
  '{"description":"stats","publicKey":"' + 'A'.repeat(43) + '="}',
  ''
]
const REPLIES = ['{"output":{"c":21.5},"confidence":0.9}', '{"attempt":"a-1","error":"no sensor","kind":"input"}', '{"output":null}']
const TASKS = ['{"subtasks":[{"id":"s","capability":{"skills":["math"]},"input":{"expression":"1+1"}}]}']

export function mqttAdvertTarget (): Target {
  return {
    name: 'mqtt-advert',
    about: 'parseAdvert: an MQTT agent\'s retained advert',
    errors: [AdvertError],
    generate: rng => textCase(ADVERTS, rng),
    check: input => {
      const advert = parseAdvert(input, 'edge-7', 'thermo')
      if (advert.kind === 'withdrawn') return invariant(input.byteLength === 0, 'a non-empty advert read as a withdrawal')
      // What was accepted, written out again, reads back the same.
      const { name: _name, ...fields } = advert.agent
      const again = parseAdvert(new TextEncoder().encode(JSON.stringify({ ...fields, ...(advert.publicKey === undefined ? {} : { publicKey: Buffer.from(advert.publicKey).toString('base64') }) })), 'edge-7', 'thermo')
      invariant(isDeepStrictEqual(again, advert), 'an accepted advert does not read back to itself')
    }
  }
}

export function mqttBridgeTarget (f: Fixtures): Target {
  const table = new CapabilityTable({ signer: f.signers[0]!, verifier: f.verifier, random: () => 0.5 })
  const topics = (tag: string): string[] => [
    `${PREFIX}/agents/edge/thermo/advert`, `${PREFIX}/agents/edge/other/advert`, `${PREFIX}/agents/edge/thermo/reply/${tag}`,
    `${PREFIX}/clients/edge/tasks/submit`, `${PREFIX}/agents/edge/status`, `${PREFIX}/agents/edge/status/i1`
  ]
  return {
    name: 'mqtt-bridge',
    about: 'BridgeMachine.message: any payload on each topic the bridge reads; it never throws',
    errors: [],
    generate: rng => textCase([...ADVERTS, ...REPLIES, ...TASKS, 'online', 'offline'], rng),
    check: input => {
      const machine = new BridgeMachine({ prefix: PREFIX, tag: 'B', maxAgents: 1, check: (a: LocalAgent) => { table.check(a) } })
      machine.message(`${PREFIX}/agents/edge/status`, new TextEncoder().encode('online'), {}, 0)
      machine.sent('a-1', 'edge', 'thermo')
      for (const topic of topics('B')) {
        const effects = machine.message(topic, input, { correlationData: new TextEncoder().encode('a-1'), responseTopic: `${PREFIX}/clients/edge/r` }, 1000)
        for (const e of effects) {
          if (e.type === 'advertise') table.check(e.agent) // only what a record may carry is advertised
          if (e.type === 'refused') invariant(e.reason.length > 0 && e.reason.length < 2000, 'a refusal without a bounded reason')
        }
        // Two agents may be advertised by what the payload says; the bridge has room for one.
        invariant(machine.advertisedCount() <= 1, 'advertised past the quota')
      }
    }
  }
}
