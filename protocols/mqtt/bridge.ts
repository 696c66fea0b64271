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

export interface BridgeInit {
  /** `agentmesh/v1/<network>`. */
  prefix: string
  /** This bridge's tag in reply topics (its peer id). */
  tag: string
  /** MQTT agents this bridge may host in all (the network's per-host quota less its own agents). */
  maxAgents: number
  /** The capability table's rules for a record; throws with the reason an agent cannot be advertised. */
  check: (agent: LocalAgent) => void
  budgets?: Partial<ClientBudgets>
}

export interface Budget { burst: number, perSecond: number }

/** What one client may make the bridge do. */
export interface ClientBudgets {
  /** Advert and status messages. */
  adverts: Budget
  /** Tasks submitted. */
  submits: Budget
  /** Refusals published back to the client (the rest are only logged): a client cannot make the bridge flood. */
  errors: Budget
}

export const DEFAULT_CLIENT_BUDGETS: ClientBudgets = {
  adverts: { burst: 32, perSecond: 2 },
  submits: { burst: 16, perSecond: 4 },
  errors: { burst: 8, perSecond: 1 }
}

/** Agents one client may have in the mesh through one bridge. */
export const MAX_AGENTS_PER_CLIENT = 8
/** Clients tracked at most (online or holding adverts); more are refused until some leave. */
export const MAX_CLIENTS = 1024
/** Instances of one client tracked at most. */
export const MAX_INSTANCES = 64

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
  instances: Map<string, boolean>
  adverts: Map<string, { agent: LocalAgent, publicKey?: Uint8Array }>
  /** Adverts in the mesh now, by MQTT agent name, as the JSON they were advertised with. */
  advertised: Map<string, string>
  buckets: Map<keyof ClientBudgets, { tokens: number, at: number }>
}

export class BridgeMachine {
  readonly #init: BridgeInit
  readonly #budgets: ClientBudgets
  readonly #clients = new Map<string, Client>()
  readonly #pending = new Map<string, { client: string, agent: string }>()
  #advertisedCount = 0

  constructor (init: BridgeInit) {
    this.#init = init
    this.#budgets = { ...DEFAULT_CLIENT_BUDGETS, ...init.budgets }
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
    const client = this.#client(name)
    if (client === undefined) return [this.#refuse(undefined, name, topic, `the bridge tracks at most ${MAX_CLIENTS} clients`, now)]
    if (!this.#take(client, 'adverts', now)) return [this.#refuse(client, name, topic, `over budget: at most ${this.#budgets.adverts.perSecond} status and advert messages per second`, now)]
    const text = new TextDecoder().decode(payload.subarray(0, 16)).trim().toLowerCase()
    if (payload.byteLength > 16 || (text !== 'online' && text !== 'offline' && text !== '')) return [this.#refuse(client, name, topic, 'a status is "online" or "offline" (retained, with "offline" as the last will)', now)]
    const online = text === 'online'
    if (online && !client.instances.has(instance) && client.instances.size >= MAX_INSTANCES) return [this.#refuse(client, name, topic, `at most ${MAX_INSTANCES} instances of one client`, now)]
    if (online) client.instances.set(instance, true)
    else client.instances.delete(instance)
    const effects = this.#reconcile(name, client, online ? 'online' : 'offline', now)
    this.#forgetIfIdle(name, client)
    return effects
  }

  #advert (name: string, agent: string, topic: string, payload: Uint8Array, now: number): BridgeEffect[] {
    const client = this.#client(name)
    if (client === undefined) return [this.#refuse(undefined, name, topic, `the bridge tracks at most ${MAX_CLIENTS} clients`, now)]
    if (!this.#take(client, 'adverts', now)) return [this.#refuse(client, name, topic, `over budget: at most ${this.#budgets.adverts.perSecond} status and advert messages per second`, now)]
    const effects: BridgeEffect[] = []
    try {
      const advert = parseAdvert(payload, name, agent)
      if (advert.kind === 'withdrawn') {
        client.adverts.delete(agent)
      } else {
        if (!client.adverts.has(agent) && client.adverts.size >= MAX_AGENTS_PER_CLIENT) throw new AdvertError(`a client may advertise at most ${MAX_AGENTS_PER_CLIENT} agents through this bridge`)
        this.#init.check(advert.agent)
        client.adverts.set(agent, { agent: advert.agent, ...(advert.publicKey === undefined ? {} : { publicKey: advert.publicKey }) })
      }
    } catch (err) {
      // The advert it replaces is no longer what the client says: it leaves the mesh too.
      client.adverts.delete(agent)
      effects.push(this.#refuse(client, name, topic, `advert refused: ${(err as Error).message}`, now))
    }
    effects.push(...this.#reconcile(name, client, 'advert withdrawn', now))
    this.#forgetIfIdle(name, client)
    return effects
  }

  #reply (name: string, agent: string, bridge: string, topic: string, payload: Uint8Array, props: MessageProperties, now: number): BridgeEffect[] {
    if (bridge !== this.#init.tag) return []
    let reply: MqttReply
    let attempt: string
    try {
      reply = parseReply(payload)
      attempt = props.correlationData !== undefined && props.correlationData.byteLength > 0 ? attemptId(props.correlationData) : attemptId(reply.attempt)
    } catch (err) {
      return [{ type: 'refused', client: name, topic, reason: `reply refused: ${(err as Error).message}`, publish: this.#spend(name, now) }]
    }
    const pending = this.#pending.get(attempt)
    if (pending === undefined) return [{ type: 'refused', client: name, topic, reason: `reply to attempt ${attempt} refused: it came after its deadline, was answered already, or was never sent`, publish: this.#spend(name, now) }]
    if (pending.client !== name || pending.agent !== agent) {
      // Only reachable without broker ACLs: one client answering for another.
      return [{ type: 'refused', client: name, topic, reason: `reply to attempt ${attempt} refused: that request went to ${pending.client}/${pending.agent}, not ${name}/${agent}`, publish: false }]
    }
    this.#pending.delete(attempt)
    return [{ type: 'answered', attempt, reply, raw: payload, ...(props.signature === undefined ? {} : { signature: props.signature }) }]
  }

  #submit (name: string, topic: string, payload: Uint8Array, props: MessageProperties, now: number): BridgeEffect[] {
    const client = this.#client(name)
    if (client === undefined) return [this.#refuse(undefined, name, topic, `the bridge tracks at most ${MAX_CLIENTS} clients`, now)]
    const effects: BridgeEffect[] = []
    const own = `${this.#init.prefix}/clients/${name}/`
    if (!this.#take(client, 'submits', now)) {
      effects.push(this.#refuse(client, name, topic, `over budget: at most ${this.#budgets.submits.perSecond} tasks per second`, now))
    } else if (props.responseTopic === undefined || !props.responseTopic.startsWith(own) || /[+#]/.test(props.responseTopic) || props.responseTopic.length > 256) {
      effects.push(this.#refuse(client, name, topic, `a task needs a response topic under ${own} (MQTT 5 response topic), where its report is published`, now))
    } else {
      try {
        effects.push({ type: 'submit', client: name, task: parseSubmit(payload), responseTopic: props.responseTopic, ...(props.correlationData === undefined ? {} : { correlationData: props.correlationData }) })
      } catch (err) {
        effects.push(this.#refuse(client, name, topic, `task refused: ${(err as MqttWireError).message}`, now))
      }
    }
    this.#forgetIfIdle(name, client)
    return effects
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
      if (before === undefined && this.#advertisedCount >= this.#init.maxAgents) {
        effects.push(this.#refuse(client, name, `${this.#init.prefix}/agents/${name}/${agent}/advert`, `this bridge hosts at most ${this.#init.maxAgents} MQTT agents and all are taken`, now))
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
      client = { instances: new Map(), adverts: new Map(), advertised: new Map(), buckets: new Map() }
      this.#clients.set(name, client)
    }
    return client
  }

  /** A client with nothing online and nothing advertised holds no state (its budget starts afresh). */
  #forgetIfIdle (name: string, client: Client): void {
    if (client.instances.size === 0 && client.adverts.size === 0 && client.advertised.size === 0) this.#clients.delete(name)
  }

  #take (client: Client, kind: keyof ClientBudgets, now: number): boolean {
    const budget = this.#budgets[kind]
    const b = client.buckets.get(kind) ?? { tokens: budget.burst, at: now }
    b.tokens = Math.min(budget.burst, b.tokens + Math.max(0, now - b.at) / 1000 * budget.perSecond)
    b.at = now
    client.buckets.set(kind, b)
    if (b.tokens < 1) return false
    b.tokens -= 1
    return true
  }

  #refuse (client: Client | undefined, name: string, topic: string, reason: string, now: number): BridgeEffect {
    return { type: 'refused', client: name, topic, reason, publish: client !== undefined && this.#take(client, 'errors', now) }
  }

  /** Error budget of a client for refusals outside its tracked state (replies). */
  #spend (name: string, now: number): boolean {
    const client = this.#clients.get(name)
    return client !== undefined && this.#take(client, 'errors', now)
  }
}
