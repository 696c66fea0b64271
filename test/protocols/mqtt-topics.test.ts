import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { NAME_PATTERN } from '../../protocols/capability/schema.ts'
import { meshAgentName, mqttTopic, MqttTopicError, parseMeshAgentName, parseMqttTopic, topicPrefix, type MqttTopic } from '../../protocols/mqtt/index.ts'

const name = fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,29}$/)
const agentName = name.filter(n => n !== 'status')
const topicOf = fc.oneof(
  name.map((client): MqttTopic => ({ kind: 'status', client })),
  fc.tuple(name, name).map(([client, instance]): MqttTopic => ({ kind: 'status', client, instance })),
  name.map((client): MqttTopic => ({ kind: 'errors', client })),
  name.map((client): MqttTopic => ({ kind: 'submit', client })),
  fc.tuple(name, agentName).map(([client, agent]): MqttTopic => ({ kind: 'advert', client, agent })),
  fc.tuple(name, agentName).map(([client, agent]): MqttTopic => ({ kind: 'request', client, agent })),
  fc.tuple(name, agentName, fc.stringMatching(/^[A-Za-z0-9]{1,64}$/)).map(([client, agent, bridge]): MqttTopic => ({ kind: 'reply', client, agent, bridge }))
)

describe('MQTT topics', () => {
  const prefix = topicPrefix('testnet')

  it('every topic parses back to what built it, and carries no wildcard', () => {
    expect(prefix).toBe('agentmesh/v1/testnet')
    fc.assert(fc.property(topicOf, t => {
      const topic = mqttTopic(prefix, t)
      expect(topic).not.toMatch(/[+#$\0]/)
      expect(parseMqttTopic(prefix, topic)).toEqual(t)
      // Another network's prefix never claims it.
      expect(parseMqttTopic(topicPrefix('othernet'), topic)).toBeUndefined()
    }), { seed: 5, numRuns: 500 })
  })

  it('anything else is not a bridge topic: other prefixes, wildcards, extra or missing levels, bad names', () => {
    for (const topic of [
      'agentmesh/v1/testnet', 'agentmesh/v1/testnet/', 'agentmesh/v1/testnetx/clients/a/tasks/submit', 'agentmesh/v2/testnet/clients/a/tasks/submit',
      `${prefix}/tasks/submit`, `${prefix}/clients/a/tasks/submit/x`, `${prefix}/clients/a/tasks`, `${prefix}/agents/edge-7`,
      `${prefix}/agents/edge-7/status/Bad`, `${prefix}/agents/edge-7/status/a/b`, `${prefix}/agents/edge-7/thermo/reply`,
      `${prefix}/agents/edge-7/thermo/reply/a-b`, `${prefix}/agents/edge-7/status/advert`.replace('status/advert', 'status/x/advert'), `${prefix}/agents/+/status`, `${prefix}/agents/#`,
      `${prefix}/agents/Edge/status`, `${prefix}/agents/edge.7/status`, `${prefix}/agents/edge-7/thermo/answer`,
      `${prefix}/agents/edge-7/thermo/advert/x`, `${prefix}/agents/$SYS/status`, `${prefix}/clients/edge-7/errors/x`,
      `${prefix}/agents/${'a'.repeat(31)}/status`, `${prefix}/agents/${'a'.repeat(300)}/status`
    ]) expect(parseMqttTopic(prefix, topic), topic).toBeUndefined()
    // Never throws, whatever the string.
    fc.assert(fc.property(fc.string({ maxLength: 80 }), s => { parseMqttTopic(prefix, `${prefix}/${s}`) }), { seed: 6, numRuns: 500 })
  })

  it('refuses to build a topic from a name that is not one clean level, saying what a name may be', () => {
    for (const bad of ['', 'Edge', 'a/b', 'a+', '#', 'a.b', '-a', '$sys', 'x'.repeat(31)]) {
      expect(() => mqttTopic(prefix, { kind: 'status', client: bad })).toThrow(MqttTopicError)
    }
    expect(() => mqttTopic(prefix, { kind: 'advert', client: 'ok', agent: 'a/b' })).toThrow(/agent name "a\/b" must be 1–30 lower-case letters/)
    expect(() => topicPrefix('Bad Net')).toThrow(MqttTopicError)
    // "status" is the status level, never an agent: the two readings of agents/<c>/status/<x> cannot clash.
    expect(() => mqttTopic(prefix, { kind: 'advert', client: 'ok', agent: 'status' })).toThrow(/not an agent name/)
    expect(() => mqttTopic(prefix, { kind: 'reply', client: 'ok', agent: 'a', bridge: 'a/b' })).toThrow(MqttTopicError)
  })

  it('an MQTT agent\'s mesh name is a valid VCV name that splits back to its client and agent', () => {
    fc.assert(fc.property(name, agentName, (client, agent) => {
      let mesh: string
      try {
        mesh = meshAgentName(client, agent)
      } catch (err) {
        // Only a pair too long for the VCV's 64 characters is refused.
        expect(err).toBeInstanceOf(MqttTopicError)
        expect(5 + client.length + 1 + agent.length).toBeGreaterThan(64)
        return
      }
      expect(mesh).toMatch(NAME_PATTERN)
      expect(parseMeshAgentName(mesh)).toEqual({ client, agent })
    }), { seed: 7, numRuns: 500 })
    expect(meshAgentName('edge-7', 'thermo')).toBe('mqtt.edge-7.thermo')
    for (const other of ['arithmetic', 'mqtt.a', 'mqtt.a.b.c', 'mqtt..b', 'mqtt.A.b', 'xmqtt.a.b', 'mqtt.a.status']) expect(parseMeshAgentName(other), other).toBeUndefined()
  })
})
