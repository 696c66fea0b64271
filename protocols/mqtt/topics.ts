/**
 * The MQTT bridge's topic tree and names (issue 11), pure: what a topic means, and which mesh
 * agent an MQTT agent becomes. Every topic lives under a versioned prefix that names the network,
 * `agentmesh/v1/<network>`, so two networks can share a broker and a later layout can coexist:
 *
 * | topic (under the prefix)                  | who publishes        | what                                              |
 * |-------------------------------------------|----------------------|---------------------------------------------------|
 * | `agents/<client>/status[/<instance>]`     | the client (+ will)  | retained `online` / `offline`                     |
 * | `agents/<client>/<agent>/advert`          | the client           | retained advert (JSON); empty payload = withdrawn |
 * | `agents/<client>/<agent>/request`         | the bridge           | a routed subtask, with response topic + correlation |
 * | `agents/<client>/<agent>/reply/<bridge>`  | the client           | the answer to a request (the request's response topic) |
 * | `clients/<client>/tasks/submit`           | the client           | a task (the `POST /tasks` schema), with a response topic |
 * | `clients/<client>/errors`                 | the bridge           | why something of that client's was refused        |
 *
 * `<client>` is the client's MQTT username: with the broker's ACL
 * `pattern readwrite agentmesh/v1/<network>/agents/%u/#` (and the same for `clients/%u/#`) a
 * client can publish only under its own name, so whatever the bridge reads under
 * `agents/<client>/` came from that client. Several instances of one client (one username, their
 * own client ids) each keep a status under `status/<instance>` and share requests through
 * `$share`; the client is online while any of them is.
 *
 * Client ids, agent names and instances are one topic level each, lower-case letters, digits, `-`
 * and `_`: no MQTT wildcards (`+`, `#`), no `/`, no `$`, and no `.`, so the mesh name below splits
 * back unambiguously. `status` is not an agent name (it is the status level). An MQTT agent joins the mesh as `<bridge peer id>/mqtt.<client>.<agent>`, a name
 * the VCV schema already accepts (`NAME_PATTERN`, at most 64 characters), so no peer needs a new
 * wire format to hold it.
 */
import { NAME_PATTERN } from '../capability/schema.ts'
import { NETWORK_NAME } from '../network/ids.ts'

/** One topic level of a client id or agent name. */
export const MQTT_NAME = /^[a-z0-9][a-z0-9_-]{0,29}$/
const MESH_PREFIX = 'mqtt.'
/** A bridge's tag in reply topics: its peer id (base58) or any token of that alphabet. */
export const BRIDGE_TAG = /^[A-Za-z0-9]{1,64}$/

export type MqttTopic =
  | { kind: 'status', client: string, instance?: string }
  | { kind: 'advert', client: string, agent: string }
  | { kind: 'request', client: string, agent: string }
  | { kind: 'reply', client: string, agent: string, bridge: string }
  | { kind: 'submit', client: string }
  | { kind: 'errors', client: string }

export class MqttTopicError extends Error {
  override name = 'MqttTopicError'
}

/** `agentmesh/v1/<network>`: the prefix every bridge topic of `network` starts with. */
export function topicPrefix (network: string): string {
  if (!NETWORK_NAME.test(network)) throw new MqttTopicError(`"${network.slice(0, 40)}" is not a network name`)
  return `agentmesh/v1/${network}`
}

export function mqttTopic (prefix: string, t: MqttTopic): string {
  switch (t.kind) {
    case 'status': return `${prefix}/agents/${checkName(t.client, 'client id')}/status${t.instance === undefined ? '' : `/${checkName(t.instance, 'instance')}`}`
    case 'advert': return `${prefix}/agents/${checkName(t.client, 'client id')}/${checkAgent(t.agent)}/advert`
    case 'request': return `${prefix}/agents/${checkName(t.client, 'client id')}/${checkAgent(t.agent)}/request`
    case 'reply':
      if (!BRIDGE_TAG.test(t.bridge)) throw new MqttTopicError(`bridge tag "${t.bridge.slice(0, 70)}" must be 1–64 letters and digits`)
      return `${prefix}/agents/${checkName(t.client, 'client id')}/${checkAgent(t.agent)}/reply/${t.bridge}`
    case 'submit': return `${prefix}/clients/${checkName(t.client, 'client id')}/tasks/submit`
    case 'errors': return `${prefix}/clients/${checkName(t.client, 'client id')}/errors`
  }
}

/** What a topic under `prefix` means, or undefined for any other topic (never throws). */
export function parseMqttTopic (prefix: string, topic: string): MqttTopic | undefined {
  if (topic.length > 256 || !topic.startsWith(`${prefix}/`)) return undefined
  const levels = topic.slice(prefix.length + 1).split('/')
  const [a, b, c, d] = levels
  const named = (...names: Array<string | undefined>): boolean => names.every(n => n !== undefined && MQTT_NAME.test(n))
  const e = levels[4]
  if (a === 'clients' && named(b)) {
    if (levels.length === 3 && c === 'errors') return { kind: 'errors', client: b! }
    if (levels.length === 4 && c === 'tasks' && d === 'submit') return { kind: 'submit', client: b! }
    return undefined
  }
  if (a !== 'agents' || !named(b)) return undefined
  if (c === 'status') {
    if (levels.length === 3) return { kind: 'status', client: b! }
    if (levels.length === 4 && named(d)) return { kind: 'status', client: b!, instance: d! }
    return undefined
  }
  if (!named(c)) return undefined
  if (levels.length === 4 && (d === 'advert' || d === 'request')) return { kind: d, client: b!, agent: c! }
  if (levels.length === 5 && d === 'reply' && BRIDGE_TAG.test(e!)) return { kind: 'reply', client: b!, agent: c!, bridge: e! }
  return undefined
}

/** The local name of an MQTT agent in the mesh (the part after `<bridge peer id>/`). */
export function meshAgentName (client: string, agent: string): string {
  const name = `${MESH_PREFIX}${checkName(client, 'client id')}.${checkAgent(agent)}`
  // 5 + 30 + 1 + 30 = 66 > 64: the pair must also fit the VCV's name limit.
  if (!NAME_PATTERN.test(name)) throw new MqttTopicError(`client id and agent name together are too long for a mesh name ("${name}", at most 64 characters)`)
  return name
}

/** The MQTT client and agent behind a mesh agent name, or undefined if it is not an MQTT agent's. */
export function parseMeshAgentName (name: string): { client: string, agent: string } | undefined {
  if (!name.startsWith(MESH_PREFIX) || !NAME_PATTERN.test(name)) return undefined
  const parts = name.slice(MESH_PREFIX.length).split('.')
  if (parts.length !== 2 || !parts.every(p => MQTT_NAME.test(p)) || parts[1] === 'status') return undefined
  return { client: parts[0]!, agent: parts[1]! }
}

function checkAgent (name: string): string {
  if (name === 'status') throw new MqttTopicError('"status" is not an agent name: agents/<client>/status is the client\'s status topic')
  return checkName(name, 'agent name')
}

function checkName (name: string, what: string): string {
  if (!MQTT_NAME.test(name)) throw new MqttTopicError(`${what} "${name.slice(0, 40)}" must be 1–30 lower-case letters, digits, "-" or "_", starting with a letter or digit`)
  return name
}
