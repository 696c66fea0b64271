/**
 * The MQTT bridge's decisions, as a pure state machine: MQTT messages and the time in, effects
 * out. It knows which clients are online (any instance's retained status), which of their
 * adverts are valid and within quota, which requests wait for a reply, and each client's budget;
 * the driver (node/services/mqtt-bridge.ts) does the MQTT I/O, hosts the agents and runs tasks.
 *
 * An agent is in the mesh exactly while its client is online and its retained advert is valid:
 * the effect stream says `advertise` when that starts or the advert changes, `withdraw` (the
 * driver publishes a tombstone) when it stops. Everything refused comes back as a `refused`
 * effect with the reason, for the log and, within the client's budget, its errors topic.
 *
 * @example
 * ```ts
 * const bridge = new BridgeMachine({ prefix: 'agentmesh/v1/testnet', tag: peerId, maxAgents: 26, check: a => capability.check(a) })
 * bridge.message('agentmesh/v1/testnet/agents/edge-7/status', utf8('online'), {}, now)
 * bridge.message('agentmesh/v1/testnet/agents/edge-7/thermo/advert', advertJson, {}, now)
 * // → [{ type: 'advertise', client: 'edge-7', agent: { name: 'mqtt.edge-7.thermo', … } }]
 * ```
 */
import type { LocalAgent } from '../capability/table.ts'
import { AdvertError, parseAdvert } from './advert.ts'
import { meshAgentName, parseMqttTopic } from './topics.ts'
import { attemptId, MqttWireError, parseReply, parseSubmit, type MqttReply } from './wire.ts'
import { toString } from 'uint8arrays'
import { TokenBuckets, type Budget } from '../buckets.ts'

export interface BridgeInit {
  /** `agentmesh/v1/<network>`. */
  prefix: string
  /** This bridge's tag in reply topics (its peer id). */
  tag: string
  /** MQTT agents this bridge may host in all, asked each time (the network's per-host quota less the peer's other agents). */
  maxAgents: number | (() => number)
  /** The capability table's rules for a record; throws with the reason an agent cannot be advertised. */
  check: (agent: LocalAgent) => void
  budgets?: Partial<ClientBudgets>
  /** Keys pinned by an earlier run (from `pinnedKeys()`). */
  pinnedKeys?: Record<string, string>
}

export type { Budget }

/** What one client may make the bridge do. */
export interface ClientBudgets {
  /** Advert and status messages (the burst covers a client's retained state, replayed at each reconnect). */
  adverts: Budget
  /** Tasks submitted. */
  submits: Budget
  /** Refusals published back to the client (the rest are only logged): a client cannot make the bridge flood. */
  errors: Budget
}

export const DEFAULT_CLIENT_BUDGETS: ClientBudgets = {
  adverts: { burst: 80, perSecond: 2 },
  submits: { burst: 16, perSecond: 4 },
  errors: { burst: 8, perSecond: 1 }
}

/** Agents one client may have in the mesh through one bridge. */
export const MAX_AGENTS_PER_CLIENT = 8
/** Clients tracked at most (online or holding adverts); more are refused until some leave. */
export const MAX_CLIENTS = 1024
/** Instances of one client tracked at most. */
export const MAX_INSTANCES = 64
/** Budgets remembered (least recently used forgotten first): per client and kind, for four times the clients tracked, so going idle never refills one. */
const MAX_BUDGETED = 3 * 4 * MAX_CLIENTS

export interface MessageProperties {
  responseTopic?: string
  correlationData?: Uint8Array
  /** The `signature` user property of a reply (base64), from an agent with its own key. */
  signature?: string
}

export type BridgeEffect =
  | { type: 'advertise', client: string, agent: LocalAgent, publicKey?: Uint8Array }
  | { type: 'withdraw', client: string, name: string, reason: string }
  /** Calls in flight to a client that went away: fail them now (the requester reroutes) rather than at their deadline. */
  | { type: 'abandon', client: string, attempts: string[], reason: string }
  /** `raw` and `signature`: what an agent with its own key signed (checked by the driver, which holds the key). */
  | { type: 'answered', attempt: string, reply: MqttReply, raw: Uint8Array, signature?: string }
  | { type: 'submit', client: string, task: unknown, responseTopic: string, correlationData?: Uint8Array }
  /** `publish`: whether the client's budget lets this refusal go to its errors topic. */
  | { type: 'refused', client: string | undefined, topic: string, reason: string, publish: boolean }

interface Client {
  instances: Set<string>
  adverts: Map<string, { agent: LocalAgent, publicKey?: Uint8Array }>
  /** Adverts in the mesh now, by MQTT agent name, as the JSON they were advertised with. */
  advertised: Map<string, string>
}


export class BridgeMachine {
  readonly #init: BridgeInit
  readonly #clients = new Map<string, Client>()
  readonly #pending = new Map<string, { client: string, agent: string }>()
  readonly #budgets: ClientBudgets
  /** Budgets by client, kept apart from client state so that going idle does not refill them. */
  readonly #buckets: TokenBuckets<keyof ClientBudgets>
  /** Keys of agents that sign their replies, by `<client>/<agent>`: once seen, an advert must keep the key. */
  readonly #pins: Map<string, string>
  #advertisedCount = 0
  #pinChanges = 0

  constructor (init: BridgeInit) {
    this.#init = init
    this.#budgets = { ...DEFAULT_CLIENT_BUDGETS, ...init.budgets }
    this.#buckets = new TokenBuckets(this.#budgets, MAX_BUDGETED)
    this.#pins = new Map(Object.entries(init.pinnedKeys ?? {}))
  }

  /** Keys pinned so far (base64 by `<client>/<agent>`), for the driver to keep across restarts. */
  pinnedKeys (): Record<string, string> { return Object.fromEntries(this.#pins) }

  /** How many keys were pinned since start: the driver saves `pinnedKeys()` when this moves. */
  get pinChanges (): number { return this.#pinChanges }

  /** Whether `client`'s `agent` is in the mesh now: a call to one that is not fails at once. */
  isAdvertised (client: string, agent: string): boolean {
    return this.#clients.get(client)?.advertised.has(agent) === true
  }

  /**
   * The host could not take an agent this machine asked to advertise: it is not in the mesh, and
   * the client's next message tries again.
   */
  advertiseFailed (client: string, agent: string): void {
    const c = this.#clients.get(client)
    if (c?.advertised.delete(agent) === true) this.#advertisedCount--
  }

  /** Spends one of `client`'s error messages: whether a refusal may be published back to it. */
  errorBudget (client: string, now: number): boolean {
    return this.#buckets.take(client, 'errors', now)
  }

  /** Every topic filter the driver subscribes to. */
  subscriptions (): string[] {
    const p = this.#init.prefix
    return [`${p}/agents/+/status`, `${p}/agents/+/status/+`, `${p}/agents/+/+/advert`, `${p}/agents/+/+/reply/${this.#init.tag}`, `${p}/clients/+/tasks/submit`]
  }

  /** MQTT agents in the mesh through this bridge now. */
  advertisedCount (): number { return this.#advertisedCount }

  /** One MQTT message; never throws. */
  message (topic: string, payload: Uint8Array, props: MessageProperties, now: number): BridgeEffect[] {
    const t = parseMqttTopic(this.#init.prefix, topic)
    if (t === undefined) return [{ type: 'refused', client: undefined, topic: topic.slice(0, 300), reason: 'not a bridge topic', publish: false }]
    switch (t.kind) {
      case 'status': return this.#status(t.client, t.instance ?? '', topic, payload, now)
      case 'advert': return this.#advert(t.client, t.agent, topic, payload, now)
      case 'reply': return this.#reply(t.client, t.agent, t.bridge, topic, payload, props, now)
      case 'submit': return this.#submit(t.client, topic, payload, props, now)
      default: return [{ type: 'refused', client: t.client, topic, reason: `the bridge does not read ${t.kind} topics`, publish: false }]
    }
  }

  /** A request was published to `client`'s `agent`: its reply is expected under `attempt`. */
  sent (attempt: string, client: string, agent: string): void { this.#pending.set(attempt, { client, agent }) }

  /** A request is over (answered, timed out or cancelled): a reply after this is late. */
  settled (attempt: string): void { this.#pending.delete(attempt) }

  /** The connection to the broker is lost: nothing is known about any client until retained messages come again. */
  disconnected (reason: string): BridgeEffect[] {
    const effects: BridgeEffect[] = []
    for (const [name, client] of this.#clients) effects.push(...this.#unadvertiseAll(name, client, reason))
    this.#clients.clear()
    return effects
  }

  #status (name: string, instance: string, topic: string, payload: Uint8Array, now: number): BridgeEffect[] {
    if (!this.#buckets.take(name, 'adverts', now)) return [this.#refuse(name, topic, `over budget: at most ${this.#budgets.adverts.perSecond} status and advert messages per second`, now)]
    const text = new TextDecoder().decode(payload.subarray(0, 16)).trim().toLowerCase()
    if (payload.byteLength > 16 || (text !== 'online' && text !== 'offline' && text !== '')) return [this.#refuse(name, topic, 'a status is "online" or "offline" (retained, with "offline" as the last will)', now)]
    const online = text === 'online'
    if (!online && !this.#clients.has(name)) return [] // offline and unknown: nothing to do, nothing to keep
    const client = this.#client(name)
    if (client === undefined) return [this.#refuse(name, topic, `the bridge tracks at most ${MAX_CLIENTS} clients`, now)]
    if (online && !client.instances.has(instance) && client.instances.size >= MAX_INSTANCES) {
      this.#forgetIfIdle(name, client)
      return [this.#refuse(name, topic, `at most ${MAX_INSTANCES} instances of one client`, now)]
    }
    if (online) client.instances.add(instance)
    else client.instances.delete(instance)
    const effects = this.#reconcile(name, client, online ? 'online' : 'offline', now)
    this.#forgetIfIdle(name, client)
    return effects
  }

  #advert (name: string, agent: string, topic: string, payload: Uint8Array, now: number): BridgeEffect[] {
    if (!this.#buckets.take(name, 'adverts', now)) return [this.#refuse(name, topic, `over budget: at most ${this.#budgets.adverts.perSecond} status and advert messages per second`, now)]
    if (payload.byteLength === 0 && !this.#clients.has(name)) return []
    const client = this.#client(name)
    if (client === undefined) return [this.#refuse(name, topic, `the bridge tracks at most ${MAX_CLIENTS} clients`, now)]
    const effects: BridgeEffect[] = []
    try {
      const advert = parseAdvert(payload, name, agent)
      if (advert.kind === 'withdrawn') {
        client.adverts.delete(agent)
      } else {
        if (!client.adverts.has(agent) && client.adverts.size >= MAX_AGENTS_PER_CLIENT) throw new AdvertError(`a client may advertise at most ${MAX_AGENTS_PER_CLIENT} agents through this bridge`)
        // An agent that signs its replies keeps its key: whoever holds only the client's password
        // cannot turn signing off (or swap the key) by advertising again.
        const pinned = this.#pins.get(`${name}/${agent}`)
        const key = advert.publicKey === undefined ? undefined : toString(advert.publicKey, 'base64pad')
        if (pinned !== undefined && key !== pinned) throw new AdvertError(`this agent signs its replies with key ${pinned}; an advert without that publicKey is refused (to change keys, the bridge's operator unpins it: see README)`)
        this.#init.check(advert.agent)
        if (key !== undefined && pinned === undefined) {
          this.#pins.set(`${name}/${agent}`, key)
          this.#pinChanges++
        }
        client.adverts.set(agent, { agent: advert.agent, ...(advert.publicKey === undefined ? {} : { publicKey: advert.publicKey }) })
      }
    } catch (err) {
      // The advert it replaces is no longer what the client says: it leaves the mesh too.
      client.adverts.delete(agent)
      effects.push(this.#refuse(name, topic, `advert refused: ${(err as Error).message}`, now))
    }
    effects.push(...this.#reconcile(name, client, 'advert withdrawn', now))
    this.#forgetIfIdle(name, client)
    return effects
  }

  #reply (name: string, agent: string, bridge: string, topic: string, payload: Uint8Array, props: MessageProperties, now: number): BridgeEffect[] {
    if (bridge !== this.#init.tag) return []
    const refused = (reason: string, publish = true): BridgeEffect[] => [{ type: 'refused', client: name, topic, reason: `reply refused: ${reason}`, publish: publish && this.#buckets.take(name, 'errors', now) }]
    let attempt: string | undefined
    // The attempt from the correlation data first: a reply nobody waits for is dropped unparsed.
    try {
      if (props.correlationData !== undefined && props.correlationData.byteLength > 0) attempt = attemptId(props.correlationData)
    } catch (err) {
      return refused((err as Error).message)
    }
    const awaited = (a: string): BridgeEffect[] | undefined => {
      const pending = this.#pending.get(a)
      if (pending === undefined) return refused(`attempt ${a} came after its deadline, was answered already, or was never sent`)
      // Only reachable without broker ACLs: one client answering for another.
      if (pending.client !== name || pending.agent !== agent) return refused(`attempt ${a} went to ${pending.client}/${pending.agent}, not ${name}/${agent}`, false)
      return undefined
    }
    if (attempt !== undefined) {
      const no = awaited(attempt)
      if (no !== undefined) return no
    }
    let reply: MqttReply
    try {
      reply = parseReply(payload)
      attempt ??= attemptId(reply.attempt)
    } catch (err) {
      return refused((err as Error).message)
    }
    const no = awaited(attempt)
    if (no !== undefined) return no
    this.#pending.delete(attempt)
    return [{ type: 'answered', attempt, reply, raw: payload, ...(props.signature === undefined ? {} : { signature: props.signature }) }]
  }

  #submit (name: string, topic: string, payload: Uint8Array, props: MessageProperties, now: number): BridgeEffect[] {
    const own = `${this.#init.prefix}/clients/${name}/`
    if (!this.#buckets.take(name, 'submits', now)) return [this.#refuse(name, topic, `over budget: at most ${this.#budgets.submits.perSecond} tasks per second`, now)]
    if (props.responseTopic === undefined || !props.responseTopic.startsWith(own) || /[+#]/.test(props.responseTopic) || props.responseTopic.length > 256) {
      return [this.#refuse(name, topic, `a task needs a response topic under ${own} (MQTT 5 response topic), where its report is published`, now)]
    }
    try {
      return [{ type: 'submit', client: name, task: parseSubmit(payload), responseTopic: props.responseTopic, ...(props.correlationData === undefined ? {} : { correlationData: props.correlationData }) }]
    } catch (err) {
      return [this.#refuse(name, topic, `task refused: ${(err as MqttWireError).message}`, now)]
    }
  }

  /** Makes the mesh match what the client says now: online and valid adverts in, the rest out. */
  #reconcile (name: string, client: Client, reason: string, now: number): BridgeEffect[] {
    const online = client.instances.size > 0
    const effects: BridgeEffect[] = []
    for (const agent of client.advertised.keys()) {
      if (online && client.adverts.has(agent)) continue
      client.advertised.delete(agent)
      this.#advertisedCount--
      effects.push({ type: 'withdraw', client: name, name: meshAgentName(name, agent), reason })
    }
    if (!online) {
      const attempts = [...this.#pending].filter(([, p]) => p.client === name).map(([a]) => a)
      for (const a of attempts) this.#pending.delete(a)
      if (attempts.length > 0) effects.push({ type: 'abandon', client: name, attempts, reason: `MQTT client ${name} went ${reason === 'offline' ? 'offline' : 'away'}` })
      return effects
    }
    for (const [agent, advert] of client.adverts) {
      const json = JSON.stringify([advert.agent, advert.publicKey === undefined ? null : [...advert.publicKey]])
      const before = client.advertised.get(agent)
      if (before === json) continue
      const max = typeof this.#init.maxAgents === 'number' ? this.#init.maxAgents : this.#init.maxAgents()
      if (before === undefined && this.#advertisedCount >= max) {
        effects.push(this.#refuse(name, `${this.#init.prefix}/agents/${name}/${agent}/advert`, `this bridge hosts at most ${max} MQTT agents and all are taken`, now))
        continue
      }
      if (before === undefined) this.#advertisedCount++
      client.advertised.set(agent, json)
      effects.push({ type: 'advertise', client: name, agent: advert.agent, ...(advert.publicKey === undefined ? {} : { publicKey: advert.publicKey }) })
    }
    return effects
  }

  #unadvertiseAll (name: string, client: Client, reason: string): BridgeEffect[] {
    client.instances.clear()
    return this.#reconcile(name, client, reason, 0).filter(e => e.type !== 'refused')
  }

  #client (name: string): Client | undefined {
    let client = this.#clients.get(name)
    if (client === undefined) {
      if (this.#clients.size >= MAX_CLIENTS) return undefined
      client = { instances: new Set(), adverts: new Map(), advertised: new Map() }
      this.#clients.set(name, client)
    }
    return client
  }

  /** A client with nothing online and nothing advertised holds no state (its budgets are kept apart). */
  #forgetIfIdle (name: string, client: Client): void {
    if (client.instances.size === 0 && client.adverts.size === 0 && client.advertised.size === 0) this.#clients.delete(name)
  }

  #refuse (name: string, topic: string, reason: string, now: number): BridgeEffect {
    return { type: 'refused', client: name, topic, reason, publish: this.#buckets.take(name, 'errors', now) }
  }
}
