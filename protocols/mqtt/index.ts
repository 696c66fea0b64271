/**
 * The MQTT bridge's pure parts: the topic tree and the names MQTT agents take in the mesh, the
 * advert and request/reply formats, and the bridge's state machine (who is online, what is
 * advertised, which replies are awaited, each client's budget).
 *
 * @example
 * ```ts
 * const prefix = topicPrefix('testnet')                            // 'agentmesh/v1/testnet'
 * mqttTopic(prefix, { kind: 'advert', client: 'edge-7', agent: 'thermo' })
 * parseMqttTopic(prefix, 'agentmesh/v1/testnet/agents/edge-7/status') // { kind: 'status', client: 'edge-7' }
 * meshAgentName('edge-7', 'thermo')                                // 'mqtt.edge-7.thermo'
 * ```
 */
export { BRIDGE_TAG, meshAgentName, MQTT_NAME, mqttTopic, MqttTopicError, parseMeshAgentName, parseMqttTopic, topicPrefix } from './topics.ts'
export type { MqttTopic } from './topics.ts'
export { AdvertError, MAX_ADVERT_BYTES, parseAdvert } from './advert.ts'
export type { Advert } from './advert.ts'
export { attemptId, encodeRequest, expirySeconds, MAX_REPLY_BYTES, MAX_SUBMIT_BYTES, MqttWireError, parseReply, parseSubmit } from './wire.ts'
export type { MqttReply, MqttRequest } from './wire.ts'
export { BridgeMachine, DEFAULT_CLIENT_BUDGETS, MAX_AGENTS_PER_CLIENT, MAX_CLIENTS, MAX_INSTANCES } from './bridge.ts'
export type { BridgeEffect, BridgeInit, Budget, ClientBudgets, MessageProperties } from './bridge.ts'
