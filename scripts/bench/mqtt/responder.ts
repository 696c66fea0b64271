/**
 * The MQTT agent the mqtt bench measures against, as its own process: it answers both the raw
 * MQTT 5 request/response loop (`bench/raw/request`) and the bridge's requests for agent
 * `bench/echo`, with the same work (parse JSON, reply to the response topic with the correlation
 * data at QoS 1), so the two loops differ only in what sits between requester and agent.
 *
 *   node scripts/bench/mqtt/responder.ts <broker url> <username> <password>
 */
import mqtt from 'mqtt'

const [url, username, password] = process.argv.slice(2)
const prefix = 'agentmesh/v1/local/agents/bench'
const client = await mqtt.connectAsync(url!, { protocolVersion: 5, username, password, reconnectPeriod: 0, will: { topic: `${prefix}/status`, payload: Buffer.from('offline'), qos: 1, retain: true } })
// What the bridge does too: small request/response messages must not wait for Nagle's algorithm.
;(client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true)
client.on('message', (topic, payload, packet) => {
  const p = packet.properties
  if (p?.responseTopic === undefined) return
  const reply = topic === 'agentmesh/v1/local/agents/bench/raw/request'
    ? payload
    : JSON.stringify({ output: JSON.parse(payload.toString()).input, confidence: 1 })
  void client.publishAsync(p.responseTopic, reply, { qos: 1, properties: { correlationData: p.correlationData } })
})
await client.subscribeAsync([`${prefix}/echo/request`, `${prefix}/raw/request`], { qos: 1 })
await client.publishAsync(`${prefix}/status`, 'online', { qos: 1, retain: true })
await client.publishAsync(`${prefix}/echo/advert`, JSON.stringify({
  description: 'echoes its input back (the mqtt bench agent)', skills: ['echo'], capacity: 1000, latencyMs: 1
}), { qos: 1, retain: true })
process.stdout.write('ready\n')
