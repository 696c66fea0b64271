/**
 * The MQTT bridge: agents in any language, and devices that speak only MQTT, join the mesh
 * through a broker. It drives the pure BridgeMachine (protocols/mqtt) over an MQTT 5 connection:
 * a client's valid advert becomes an agent this peer hosts (signed, gossiped and re-issued like
 * its own), a routed call becomes a QoS 1 request with a response topic, correlation data and
 * the deadline as message expiry, and a task published on the submit topic runs here with its
 * report published back.
 *
 * @example
 * ```ts
 * const bridge = await startMqttBridge(peer, { url: 'mqtt://127.0.0.1:1883' })
 * bridge.stats()   // { connected: true, agents: 2, requests: 10, answered: 10, … }
 * await bridge.stop()
 * ```
 */
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { setAside } from '../storage/damaged.ts'
import { TokenBuckets } from '../../protocols/buckets.ts'
import { writeAtomic } from '../storage/identity.ts'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import type { LocalAgent } from '../../protocols/capability/index.ts'
import {
  BridgeMachine, encodeRequest, expirySeconds, mqttTopic, parseMeshAgentName, topicPrefix,
  type BridgeEffect, type ClientBudgets
} from '../../protocols/mqtt/index.ts'
import type { Agent, CallInfo } from '../agents/agent.ts'
import { checkEndorsement, endorsementMessage, MAX_ENDORSED_REPLY_BYTES } from '../../protocols/consensus/index.ts'
import { canonicalJson, sha256Hex } from '../../protocols/hash.ts'
import { peerIdFromEd25519 } from '../../protocols/identity.ts'
import { ed25519Verifier } from '../network/crypto.ts'
import { mqttAgent, type MqttCall } from '../agents/mqtt-agent.ts'
import type { SubmittedTask } from './tasks.ts'

/** What the bridge needs of its peer (a Peer has all of it). */
export interface BridgeHost {
  readonly peerId: string
  readonly capability: { check: (agent: LocalAgent) => void }
  readonly tasks: { submit: (value: unknown) => SubmittedTask }
  hostAgent: (agent: Agent) => void
  unhostAgent: (name: string) => boolean
  agentRoom: () => number
}

export interface MqttBridgeOptions {
  /** mqtt://, mqtts://, ws:// or wss:// URL of the broker. */
  url: string
  /** The network whose topics the bridge serves (its prefix is agentmesh/v1/<network>). */
  network: string
  /** Names of the environment variables holding the broker username and password (credentials never live in config files). */
  usernameEnv?: string
  passwordEnv?: string
  /** PEM file of the CA that signed the broker's certificate, for mqtts:// and wss://. */
  ca?: string
  /** Topic prefix instead of agentmesh/v1/<network>. */
  prefix?: string
  /** MQTT client id (default agentmesh-bridge-<random>). */
  clientId?: string
  budgets?: Partial<ClientBudgets>
  /** How long the first connection may take before the bridge gives up (default 10 s). */
  connectTimeoutMs?: number
  /** Where the bridge says what happens (agents joining and leaving, refusals, connection). */
  onEvent?: (event: string, detail: Record<string, unknown>) => void
  /** Environment to read credentials from (default process.env). */
  env?: Record<string, string | undefined>
  /** Where the keys of agents that sign their replies are pinned across restarts (the peer's data directory has one). */
  pinsFile?: string
}

export interface BridgeStats {
  connected: boolean
  agents: number
  requests: number
  answered: number
  failed: number
  refused: number
  tasks: number
}

export interface MqttBridge {
  readonly prefix: string
  /** This bridge's tag in reply topics. */
  readonly tag: string
  stats (): BridgeStats
  stop (): Promise<void>
}

/** A mistake in the bridge's settings or a broker that refuses it, with what to do. */
export class MqttBridgeError extends Error {
  override name = 'MqttBridgeError'
}

export const DEFAULT_USERNAME_ENV = 'AGENTMESH_MQTT_USERNAME'
export const DEFAULT_PASSWORD_ENV = 'AGENTMESH_MQTT_PASSWORD'
/** Tasks submitted over MQTT running at once on this peer; more are refused until some finish. */
const MAX_RUNNING_TASKS = 256
/** Refusals logged per second beyond those published to clients (the rest are counted). */
const LOG_PER_SECOND = 10

type Reply = Awaited<ReturnType<MqttCall>>

export async function startMqttBridge (host: BridgeHost, options: MqttBridgeOptions): Promise<MqttBridge> {
  const prefix = options.prefix ?? topicPrefix(options.network)
  const tag = host.peerId
  const say = options.onEvent ?? (() => {})
  const pinsPath = options.pinsFile
  const pins = pinsPath === undefined ? {} : await readPins(pinsPath, say)
  const machine: BridgeMachine = new BridgeMachine({
    prefix,
    tag,
    // Asked each time: agents added to the peer later (SIGHUP) take room from MQTT ones.
    maxAgents: () => machine.advertisedCount() + host.agentRoom(),
    check: agent => { host.capability.check(agent) },
    pinnedKeys: pins,
    ...(options.budgets === undefined ? {} : { budgets: options.budgets })
  })
  let savedPins = 0
  const client = mqtt.connect(options.url, clientOptions(options))
  const stats: BridgeStats = { connected: false, agents: 0, requests: 0, answered: 0, failed: 0, refused: 0, tasks: 0 }
  /**
   * Calls waiting for a reply, by attempt id: `reply` takes what the agent sent (checked against
   * its key, when it has one), `fail` ends the call for a reason of the bridge's own.
   */
  const waiting = new Map<string, { reply: (reply: Reply, signed: { raw: Uint8Array, signature: string | undefined }) => void, fail: (error: string) => void }>()
  const run = randomBytes(6).toString('hex')
  let attempts = 0
  let runningTasks = 0
  const logBudget = new TokenBuckets({ log: { burst: LOG_PER_SECOND, perSecond: LOG_PER_SECOND } }, 1)
  let stopping = false

  const call = (mqttClient: string, agent: string, meshName: string, publicKey: Uint8Array | undefined) => async (input: unknown, info: CallInfo, signal: AbortSignal | undefined): Promise<Reply> => {
    if (!client.connected) return { ok: false, kind: 'failed', error: 'the bridge has lost its broker connection' }
    // A call that waited in the host's queue while its client left fails now, not at its deadline.
    if (!machine.isAdvertised(mqttClient, agent)) return { ok: false, kind: 'failed', error: `MQTT client ${mqttClient} is offline` }
    const attempt = `${run}-${++attempts}`
    const deadlineMs = info.deadlineMs
    // An agent with its own key signs every reply; outside a trusted subtask the binding has no subtask.
    const sign = publicKey === undefined
      ? undefined
      : info.sign ?? { subtask: '', inputHash: sha256Hex(canonicalJson(input ?? null)), agent: `${tag}/${meshName}` }
    let payload: Uint8Array
    try {
      payload = encodeRequest({ attempt, input, deadlineMs, ...(sign === undefined ? {} : { sign }) })
    } catch (err) {
      return { ok: false, kind: 'input', error: (err as Error).message }
    }
    stats.requests++
    return await new Promise<Reply>(resolve => {
      const done = (reply: Reply): void => {
        if (!waiting.delete(attempt)) return // settled already (a late reply, a second abort)
        machine.settled(attempt)
        signal?.removeEventListener('abort', onAbort)
        if (reply.ok) stats.answered++
        else stats.failed++
        resolve(reply)
      }
      // The host's deadline or the requester's cancel: the reply, if it ever comes, is late.
      const onAbort = (): void => { done({ ok: false, kind: 'failed', error: 'deadline passed or cancelled' }) }
      waiting.set(attempt, {
        fail: error => { done({ ok: false, kind: 'failed', error }) },
        reply: (reply, signed) => {
          if (publicKey === undefined || sign === undefined) return done(reply)
          // The agent's key must have signed exactly these bytes: nobody else answers for it.
          const checked = endorse(publicKey, sign, reply, signed, info.sign !== undefined)
          if (typeof checked === 'string') {
            refuse(mqttClient, mqttTopic(prefix, { kind: 'reply', client: mqttClient, agent, bridge: tag }), `reply to attempt ${attempt} refused: ${checked}`, machine.errorBudget(mqttClient, Date.now()))
            return done({ ok: false, kind: 'failed', error: `the MQTT agent's reply was refused: ${checked}` })
          }
          done(checked)
        }
      })
      machine.sent(attempt, mqttClient, agent)
      signal?.addEventListener('abort', onAbort, { once: true })
      client.publishAsync(mqttTopic(prefix, { kind: 'request', client: mqttClient, agent }), Buffer.from(payload), {
        qos: 1,
        properties: {
          responseTopic: mqttTopic(prefix, { kind: 'reply', client: mqttClient, agent, bridge: tag }),
          correlationData: Buffer.from(attempt),
          messageExpiryInterval: expirySeconds(deadlineMs),
          userProperties: { attempt }
        }
      }).catch((err: Error) => { done({ ok: false, kind: 'failed', error: `could not publish the request: ${err.message}` }) })
    })
  }

  const publish = (topic: string, body: unknown, correlationData?: Uint8Array): void => {
    client.publishAsync(topic, JSON.stringify(body), { qos: 1, ...(correlationData === undefined ? {} : { properties: { correlationData: Buffer.from(correlationData) } }) })
      .catch((err: Error) => { say('mqtt-publish-failed', { topic, error: err.message }) })
  }

  const apply = (effects: BridgeEffect[]): void => {
    for (const e of effects) {
      switch (e.type) {
        case 'advertise': {
          const names = parseMeshAgentName(e.agent.name)!
          try {
            host.hostAgent(mqttAgent(e.agent, call(e.client, names.agent, e.agent.name, e.publicKey)))
            say('mqtt-agent-advertised', { agent: e.agent.name, client: e.client })
          } catch (err) {
            machine.advertiseFailed(e.client, names.agent)
            refuse(e.client, mqttTopic(prefix, { kind: 'advert', client: e.client, agent: names.agent }), (err as Error).message, machine.errorBudget(e.client, Date.now()))
          }
          break
        }
        case 'withdraw':
          if (host.unhostAgent(e.name)) say('mqtt-agent-withdrawn', { agent: e.name, client: e.client, reason: e.reason })
          break
        case 'abandon':
          for (const a of e.attempts) waiting.get(a)?.fail(e.reason)
          break
        case 'answered':
          waiting.get(e.attempt)?.reply(e.reply.ok
            ? { ok: true, output: e.reply.output, ...(e.reply.confidence === undefined ? {} : { confidence: e.reply.confidence }) }
            : { ok: false, kind: e.reply.kind, error: e.reply.error }, { raw: e.raw, signature: e.signature })
          break
        case 'submit':
          void runTask(e)
          break
        case 'refused':
          refuse(e.client, e.topic, e.reason, e.publish)
          break
      }
    }
    stats.agents = machine.advertisedCount()
    if (pinsPath !== undefined && machine.pinChanges !== savedPins) {
      savedPins = machine.pinChanges
      void writeAtomic(pinsPath, JSON.stringify(machine.pinnedKeys()) + '\n').catch((err: Error) => { say('mqtt-pins-not-saved', { file: pinsPath, error: err.message }) })
    }
  }

  const refuse = (from: string | undefined, topic: string, reason: string, toClient: boolean): void => {
    stats.refused++
    const now = Date.now()
    // Every refusal sent back to its client is logged; the others within the log's own budget.
    if (toClient || logBudget.take('', 'log', now)) say('mqtt-refused', { client: from ?? '-', topic, reason })
    if (toClient && from !== undefined) publish(mqttTopic(prefix, { kind: 'errors', client: from }), { topic, reason, at: new Date(now).toISOString() })
  }

  const runTask = async (e: Extract<BridgeEffect, { type: 'submit' }>): Promise<void> => {
    if (runningTasks >= MAX_RUNNING_TASKS) {
      const reason = `this peer already runs ${MAX_RUNNING_TASKS} tasks from MQTT; submit again later`
      if (machine.errorBudget(e.client, Date.now())) publish(e.responseTopic, { error: reason }, e.correlationData)
      refuse(e.client, mqttTopic(prefix, { kind: 'submit', client: e.client }), reason, false)
      return
    }
    let task: SubmittedTask
    try {
      task = host.tasks.submit(e.task)
    } catch (err) {
      publish(e.responseTopic, { error: (err as Error).message }, e.correlationData)
      return
    }
    stats.tasks++
    runningTasks++
    say('mqtt-task', { client: e.client, task: task.id })
    try {
      publish(e.responseTopic, await task.finished, e.correlationData)
    } finally {
      runningTasks--
    }
  }

  client.on('message', (topic, payload, packet) => {
    const p = packet.properties ?? {}
    const signature = p.userProperties?.signature
    apply(machine.message(topic, payload, {
      ...(p.responseTopic === undefined ? {} : { responseTopic: p.responseTopic }),
      ...(p.correlationData === undefined ? {} : { correlationData: p.correlationData }),
      ...(typeof signature === 'string' ? { signature } : {})
    }, Date.now()))
  })
  client.on('connect', () => {
    // Small request/response messages: without this, Nagle's algorithm adds ~40 ms to each.
    ;(client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true)
    stats.connected = true
    say('mqtt-connected', { broker: redact(options.url), prefix })
    // Clean session: subscribe on every connect; the broker then replays the retained statuses and adverts.
    client.subscribeAsync(machine.subscriptions(), { qos: 1 }).then(granted => {
      const refused = granted.filter(g => g.qos > 2)
      if (refused.length > 0) say('mqtt-subscribe-refused', { topics: refused.map(g => g.topic).join(' '), hint: 'the broker\'s ACL must let the bridge read agentmesh/v1/<network>/#' })
    }).catch((err: Error) => { say('mqtt-subscribe-failed', { error: err.message }) })
  })
  client.on('close', () => {
    if (!stats.connected) return
    stats.connected = false
    // Nothing the bridge advertised can be reached now: it leaves the mesh until the broker is back.
    apply(machine.disconnected('the bridge lost its broker connection'))
    if (!stopping) say('mqtt-disconnected', { broker: redact(options.url), retry: 'every 1 s' })
  })
  client.on('error', err => { if (stats.connected) say('mqtt-error', { error: err.message }) })

  try {
    await firstConnect(client, options.connectTimeoutMs ?? 10_000, options.url)
  } catch (err) {
    client.end(true)
    throw err
  }
  return {
    prefix,
    tag,
    stats: () => ({ ...stats }),
    async stop () {
      stopping = true
      apply(machine.disconnected('the bridge is stopping'))
      for (const w of [...waiting.values()]) w.fail('the bridge is stopping')
      await client.endAsync().catch(() => {})
    }
  }
}

const verifier = ed25519Verifier()

/**
 * A keyed agent's reply, with its endorsement when it answers a signed (trusted) call; or why it is
 * refused. An error reply is checked as signed bytes too (nobody else may make the agent fail).
 */
function endorse (key: Uint8Array, sign: { subtask: string, inputHash: string, agent: string }, reply: Reply, signed: { raw: Uint8Array, signature: string | undefined }, evidence: boolean): Reply | string {
  if (signed.signature === undefined || !/^[A-Za-z0-9+/]{86}==$/.test(signed.signature)) return 'it has no "signature" user property (base64 Ed25519), and its advert has a publicKey'
  const endorsement = { key, sig: new Uint8Array(Buffer.from(signed.signature, 'base64')), reply: signed.raw }
  const bad = 'its signature does not verify with the advert\'s publicKey'
  // A signed answer for a trusted subtask carries the signature into the certificate:
  // checkEndorsement verifies it there and then, so each reply costs one verification.
  if (reply.ok && evidence && signed.raw.byteLength <= MAX_ENDORSED_REPLY_BYTES) {
    return checkEndorsement(endorsement, { ...sign, answer: reply.output, confidence: reply.confidence }, verifier) ? { ...reply, endorsement } : bad
  }
  if (!verifier.verify(peerIdFromEd25519(key), endorsementMessage(sign.subtask, sign.inputHash, sign.agent, signed.raw), endorsement.sig)) return bad
  if (reply.ok && evidence) return `a signed reply to a trusted subtask is at most ${MAX_ENDORSED_REPLY_BYTES / 1024} KiB (it travels inside the certificate), this one is ${signed.raw.byteLength} bytes`
  return reply
}

/** Keys pinned by earlier runs; a damaged file is set aside loudly, never silently dropped. */
async function readPins (path: string, say: (event: string, detail: Record<string, unknown>) => void): Promise<Record<string, string>> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch {
    return {}
  }
  try {
    const o = JSON.parse(text) as unknown
    if (typeof o === 'object' && o !== null && !Array.isArray(o) && Object.values(o).every(v => typeof v === 'string')) return o as Record<string, string>
    throw new Error('not a map of keys')
  } catch (err) {
    const damage = await setAside(path, err as Error)
    say('mqtt-pins-damaged', { ...damage, effect: 'agents that signed their replies may advertise without a key until they advertise with one again' })
    return {}
  }
}

function clientOptions (options: MqttBridgeOptions): IClientOptions {
  let url: URL
  try {
    url = new URL(options.url)
  } catch {
    throw new MqttBridgeError(`MQTT broker "${options.url}" is not a URL — write it like mqtt://127.0.0.1:1883 or mqtts://broker.example:8883`)
  }
  if (!['mqtt:', 'mqtts:', 'ws:', 'wss:'].includes(url.protocol)) throw new MqttBridgeError(`MQTT broker URL must start with mqtt://, mqtts://, ws:// or wss://, not ${url.protocol}//`)
  if (url.username !== '' || url.password !== '') throw new MqttBridgeError(`put the MQTT username and password in the environment (${options.usernameEnv ?? DEFAULT_USERNAME_ENV}, ${options.passwordEnv ?? DEFAULT_PASSWORD_ENV}), not in the URL: URLs end up in logs and process lists`)
  const env = options.env ?? process.env
  const username = env[options.usernameEnv ?? DEFAULT_USERNAME_ENV]
  const password = env[options.passwordEnv ?? DEFAULT_PASSWORD_ENV]
  if (options.usernameEnv !== undefined && username === undefined) throw new MqttBridgeError(`the MQTT username should be in environment variable ${options.usernameEnv}, which is not set`)
  if (options.passwordEnv !== undefined && password === undefined) throw new MqttBridgeError(`the MQTT password should be in environment variable ${options.passwordEnv}, which is not set`)
  let ca: Buffer | undefined
  if (options.ca !== undefined) {
    try {
      ca = readFileSync(options.ca)
    } catch (err) {
      throw new MqttBridgeError(`cannot read the MQTT CA file ${options.ca}: ${(err as Error).message}`)
    }
  }
  return {
    protocolVersion: 5,
    clientId: options.clientId ?? `agentmesh-bridge-${randomBytes(6).toString('hex')}`,
    clean: true,
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
    resubscribe: false,
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
    ...(ca === undefined ? {} : { ca, rejectUnauthorized: true })
  }
}

/** The first connection, or why there is none (a wrong password is not retried for ever in silence). */
async function firstConnect (client: MqttClient, timeoutMs: number, url: string): Promise<void> {
  if (client.connected) return
  await new Promise<void>((resolve, reject) => {
    let last = 'no answer'
    const timer = setTimeout(() => { finish(new MqttBridgeError(`cannot connect to the MQTT broker ${redact(url)} within ${timeoutMs / 1000} s (${last}) — is it running, and is the URL right?`)) }, timeoutMs)
    const onError = (err: Error & { code?: number | string }): void => {
      last = err.message
      // CONNACK refusals (bad credentials, not authorised) will not get better by retrying.
      if (typeof err.code === 'number' && err.code >= 0x80) finish(new MqttBridgeError(`the MQTT broker ${redact(url)} refused the bridge: ${err.message} — check ${DEFAULT_USERNAME_ENV}/${DEFAULT_PASSWORD_ENV} and the broker's password file`))
      // A certificate this bridge cannot trust will not become trustworthy by retrying either.
      if (typeof err.code === 'string' && /CERT|SSL|TLS|HOSTNAME|ALTNAME/.test(err.code)) finish(new MqttBridgeError(`cannot trust the MQTT broker ${redact(url)}: ${err.message} — give the PEM file of the CA that signed its certificate with --mqtt-ca FILE (config mqtt.ca)`))
    }
    const onConnect = (): void => { finish() }
    const finish = (err?: Error): void => {
      clearTimeout(timer)
      client.off('error', onError)
      client.off('connect', onConnect)
      if (err === undefined) resolve()
      else reject(err)
    }
    client.on('error', onError)
    client.on('connect', onConnect)
  })
}

function redact (url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//')
}
