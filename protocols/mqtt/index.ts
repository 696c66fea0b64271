/**
 * The MQTT bridge's pure parts (issue 11, in progress): the topic tree and the names MQTT agents
 * take in the mesh.
 *
 * @example
 * ```ts
 * const prefix = topicPrefix('testnet')                            // 'agentmesh/v1/testnet'
 * mqttTopic(prefix, { kind: 'advert', client: 'edge-7', agent: 'thermo' })
 * parseMqttTopic(prefix, 'agentmesh/v1/testnet/agents/edge-7/status') // { kind: 'status', client: 'edge-7' }
 * meshAgentName('edge-7', 'thermo')                                // 'mqtt.edge-7.thermo'
 * ```
 */
export { meshAgentName, MQTT_NAME, mqttTopic, MqttTopicError, parseMeshAgentName, parseMqttTopic, topicPrefix } from './topics.ts'
export type { MqttTopic } from './topics.ts'
export { AdvertError, MAX_ADVERT_BYTES, parseAdvert } from './advert.ts'
export type { Advert } from './advert.ts'
