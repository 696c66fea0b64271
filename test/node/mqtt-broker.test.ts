// What the MQTT bridge will rely on, checked against the real broker users run (Debian's
// mosquitto 2.0.x) through MQTT.js with MQTT 5: request/response with response topic and
// correlation data, message expiry, retained status with a last will, and $share subscriptions.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import mqtt, { type MqttClient } from 'mqtt'
import { startMosquitto, type Broker } from '../helpers/mosquitto.ts'

let broker: Broker
const clients: MqttClient[] = []

beforeAll(async () => { broker = await startMosquitto() })
afterAll(async () => {
  await Promise.all(clients.map(async c => await c.endAsync(true).catch(() => {})))
  await broker?.stop()
})

async function client (options: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const c = await mqtt.connectAsync(broker.url, { protocolVersion: 5, reconnectPeriod: 0, ...options })
  clients.push(c)
  return c
}

function next (c: MqttClient, topic: string): Promise<{ payload: Buffer, packet: mqtt.IPublishPacket }> {
  return new Promise(resolve => {
    const on = (t: string, payload: Buffer, packet: mqtt.IPublishPacket): void => {
      if (t !== topic) return
      c.off('message', on)
      resolve({ payload, packet })
    }
    c.on('message', on)
  })
}

describe('mosquitto with MQTT 5', () => {
  it('request/response: the answer comes back on the response topic with the same correlation data', async () => {
    const agent = await client({ clientId: 'agent-1' })
    await agent.subscribeAsync('t/agents/agent-1/calc/request', { qos: 1 })
    agent.on('message', (_topic, payload, packet) => {
      const p = packet.properties ?? {}
      const { expression } = JSON.parse(payload.toString()) as { expression: string }
      void agent.publishAsync(p.responseTopic!, JSON.stringify({ value: expression.length }), { qos: 1, properties: { correlationData: p.correlationData } })
    })
    const requester = await client({ clientId: 'bridge' })
    await requester.subscribeAsync('t/bridge/replies', { qos: 1 })
    const reply = next(requester, 't/bridge/replies')
    const correlation = Buffer.from('attempt-42')
    await requester.publishAsync('t/agents/agent-1/calc/request', JSON.stringify({ expression: '1 + 2' }), {
      qos: 1,
      properties: { responseTopic: 't/bridge/replies', correlationData: correlation, messageExpiryInterval: 30, userProperties: { deadlineMs: '30000' } }
    })
    const { payload, packet } = await reply
    expect(JSON.parse(payload.toString())).toEqual({ value: 5 })
    expect(Buffer.from(packet.properties!.correlationData!)).toEqual(correlation)
  })

  it('a retained "online" status is replaced by the last will when the client vanishes', async () => {
    const status = 't/agents/edge-7/status'
    const edge = await client({ clientId: 'edge-7', will: { topic: status, payload: Buffer.from('offline'), qos: 1, retain: true } })
    await edge.publishAsync(status, 'online', { qos: 1, retain: true })
    const watcher = await client({ clientId: 'watcher' })
    const retained = next(watcher, status)
    await watcher.subscribeAsync(status, { qos: 1 })
    expect((await retained).payload.toString()).toBe('online')
    const will = next(watcher, status)
    edge.stream.destroy() // no DISCONNECT packet: the broker publishes the will
    expect((await will).payload.toString()).toBe('offline')
  })

  it('$share subscriptions split requests between instances of one agent', async () => {
    const seen = new Map<string, number>()
    let all!: () => void
    const allSeen = new Promise<void>(resolve => { all = resolve })
    for (const id of ['w1', 'w2']) {
      const w = await client({ clientId: id })
      await w.subscribeAsync('$share/calc/t/shared/request', { qos: 1 })
      w.on('message', () => {
        seen.set(id, (seen.get(id) ?? 0) + 1)
        if ((seen.get('w1') ?? 0) + (seen.get('w2') ?? 0) === 20) all()
      })
    }
    const sender = await client({ clientId: 'sender' })
    for (let i = 0; i < 20; i++) await sender.publishAsync('t/shared/request', String(i), { qos: 1 })
    await allSeen
    // Each message went to exactly one instance, and both took some.
    expect((seen.get('w1') ?? 0) + (seen.get('w2') ?? 0)).toBe(20)
    expect(seen.get('w1')).toBeGreaterThan(0)
    expect(seen.get('w2')).toBeGreaterThan(0)
  })
})
