/**
 * Beacons and remote execution over libp2p: one reused length-prefixed stream per requester→host
 * pair carries requests one way and answers the other, matched by request id.
 *
 * @example
 * ```ts
 * services: { rpc: rpcService({ host: new AgentHost(agents) }) }
 * const { states, skipped } = await node.services.rpc.beacon(['<peer>/calc', '<peer>/sort'], 150)
 * const result = await node.services.rpc.execute('<peer>/calc', { expression: '6*7' }, 5000)
 * ```
 */
import { serviceCapabilities, TypedEventEmitter, type ComponentLogger, type HistogramGroup, type Logger, type Metrics, type PeerId, type Startable, type Stream } from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import { answerBeacon, BeaconRound, LATE_REPLY_WINDOW_MS, type BeaconEffect } from '../../protocols/beacon/index.ts'
import { splitAgentId } from '../../protocols/capability/index.ts'
import { decodeRpc, encodeRpc, RPC_PROTOCOL, rpcLimits, wireDeadline, type LiveState, type RpcMessage, type SignRequest } from '../../protocols/rpc/index.ts'
import { signAnswer, type Json } from '../../protocols/consensus/index.ts'
import type { Signer } from '../../protocols/identity.ts'
import type { AgentHost, RunResult } from './agent-host.ts'
import { openStreamTo } from '../network/streams.ts'
import { PeerLimits } from '../network/peer-limits.ts'
import { oneOf, RUN_RESULTS, type RunResultLabel } from './metric-labels.ts'

/** Round trips in seconds: a loopback beacon (~1 ms) up to an agent's 30 s default deadline. */
const RTT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

export interface RpcServiceInit {
  host: AgentHost
  /** Signs answers when a requester asks for signed ones (consensus evidence). */
  signer?: Signer
  /** Extra wait past an execution's deadline for its answer to travel back (default 1 s). */
  graceMs?: number
  /** The network's RPC protocol id (default: the local network's). */
  protocol?: string
  /** Per-peer budgets for inbound requests (default: PeerLimits' defaults, no abuse hook). */
  limits?: PeerLimits
}

export interface RpcServiceComponents {
  peerId: PeerId
  registrar: Registrar
  connectionManager: ConnectionManager
  logger: ComponentLogger
  metrics?: Metrics
}

export interface BeaconResult {
  states: Map<string, LiveState>
  skipped: string[]
  /** Round trip per answering host (ms). */
  rtts?: Map<string, number>
}

export interface RpcEvents {
  /** A one-way message from a peer (consensus traffic), or from this peer to itself. */
  notify: CustomEvent<{ from: string, data: Uint8Array }>
}

export interface RpcService extends TypedEventEmitter<RpcEvents> {
  /**
   * Live state of agents (full ids), from their hosts; hosts silent past `deadlineMs` are
   * skipped. A skipped host's reply that comes within a few seconds more goes to `onLate`.
   */
  beacon (agents: string[], deadlineMs: number, onLate?: (host: string, rttMs: number) => void): Promise<BeaconResult>
  /**
   * Runs one call of an agent (full id) on its host. Never throws: failures carry their kind.
   * With `sign`, a successful result carries the answer signed by the agent's host.
   */
  execute (agent: string, input: unknown, deadlineMs: number, signal?: AbortSignal, sign?: SignRequest): Promise<RunResult>
  /** Sends a one-way message to a peer (its `notify` event: consensus traffic); drops it if unreachable. */
  notify (peer: string, data: Uint8Array): void
}

/** Calls one requester may have running on this host at once (per stream; streams per peer are capped by libp2p). */
const MAX_RUNNING_PER_STREAM = 64

/** Read errors that mean the requester sent something we refuse. */
const REJECTED = new Set(['RpcError', 'InvalidDataLengthError', 'InvalidDataLengthLengthError'])

interface Outbound {
  lp: LengthPrefixedStream<Stream>
  writes: Promise<void>
  /** Opened over a relayed (limited) connection: replaced once a direct connection exists. */
  limited: boolean
}

class DefaultRpcService extends TypedEventEmitter<RpcEvents> implements RpcService, Startable {
  readonly #components: RpcServiceComponents
  readonly #host: AgentHost
  readonly #graceMs: number
  readonly #protocol: string
  readonly #log: Logger
  readonly #self: string
  readonly #signer: Signer | undefined
  readonly #limits: PeerLimits
  /** Round trips of beacon replies (`ok`, or `late`: after the round's deadline) and of remote executions, in seconds (through the metrics component, when the node has one). */
  readonly #beaconRtt: HistogramGroup<'ok' | 'late'> | undefined
  readonly #executeRtt: HistogramGroup<RunResultLabel> | undefined
  readonly #outbound = new Map<string, Promise<Outbound>>()
  /** Requests awaiting an answer, by `<peer> <id>`: a beacon round asks several hosts under one id. */
  readonly #pending = new Map<string, { peer: string, id: number, answer: (m: RpcMessage) => void, via?: Promise<Outbound> }>()
  /** Outbound streams known to run over a relayed connection. */
  readonly #limited = new Set<Promise<Outbound>>()
  #nextId = 1
  #running = false

  constructor (components: RpcServiceComponents, init: RpcServiceInit) {
    super()
    this.#components = components
    this.#host = init.host
    this.#graceMs = init.graceMs ?? 1000
    this.#protocol = init.protocol ?? RPC_PROTOCOL
    this.#signer = init.signer
    this.#limits = init.limits ?? new PeerLimits()
    this.#beaconRtt = components.metrics?.registerHistogramGroup('agentmesh_rpc_beacon_seconds', { label: 'result', buckets: RTT_BUCKETS, help: "Beacon replies' round trips: ok, or late (after the round's deadline)" })
    this.#executeRtt = components.metrics?.registerHistogramGroup('agentmesh_rpc_execute_seconds', { label: 'result', buckets: RTT_BUCKETS, help: 'Remote executions by how they ended (ok, timeout, failed, …), from call to answer' })
    this.#log = components.logger.forComponent('agentmesh:rpc')
    this.#self = components.peerId.toString()
  }

  readonly [Symbol.toStringTag] = 'agentmesh/rpc'
  readonly [serviceCapabilities] = ['agentmesh/rpc']

  async start (): Promise<void> {
    this.#running = true
    await this.#components.registrar.handle(this.#protocol, (stream, connection) => {
      void this.#serve(stream, connection.remotePeer.toString())
    }, { runOnLimitedConnection: true })
  }

  async stop (): Promise<void> {
    this.#running = false
    await this.#components.registrar.unhandle(this.#protocol)
    for (const [key, p] of this.#pending) { this.#pending.delete(key); p.answer({ t: 'result', id: p.id, ok: false, kind: 'cancelled', error: 'peer stopping' }) }
    const streams = await Promise.allSettled(this.#outbound.values())
    this.#outbound.clear()
    await Promise.all(streams.map(async s => { if (s.status === 'fulfilled') await s.value.lp.unwrap().close().catch(() => {}) }))
  }

  async beacon (agents: string[], deadlineMs: number, onLate?: (host: string, rttMs: number) => void): Promise<BeaconResult> {
    const round = new BeaconRound(this.#nextId++, agents, deadlineMs)
    return await new Promise(resolve => {
      let timer: NodeJS.Timeout | undefined
      const forget = (): void => { for (const agent of agents) this.#pending.delete(`${splitAgentId(agent)?.host} ${round.id}`) }
      const run = (effects: BeaconEffect[]): void => {
        for (const e of effects) {
          if (e.type === 'timer') timer = setTimeout(() => run(round.tick()), Math.max(0, e.at - Date.now()))
          if (e.type === 'late') {
            this.#beaconRtt?.observe({ late: e.rttMs / 1000 })
            // Runs inside the host's stream reader: a throwing callback must not end that stream.
            try { onLate?.(e.host, e.rttMs) } catch (err) { this.#log('late beacon reply handler failed: %s', (err as Error).message) }
          }
          if (e.type === 'done') {
            clearTimeout(timer)
            for (const [host, ms] of e.rtts) if (host !== this.#self) this.#beaconRtt?.observe({ ok: ms / 1000 })
            // A late reply still measures its host's round trip: listen a while longer.
            if (onLate === undefined || e.skipped.length === 0) forget()
            else setTimeout(forget, LATE_REPLY_WINDOW_MS).unref()
            resolve({ states: e.states, skipped: e.skipped, rtts: e.rtts })
          }
          if (e.type === 'send') {
            const request = decodeRpc(e.data) as Extract<RpcMessage, { t: 'beacon' }>
            if (e.to === this.#self) run(round.reply(e.to, answerBeacon(request, n => this.#host.liveState(n)), Date.now()))
            else this.#request(e.to, request, m => run(round.reply(e.to, m, Date.now())))
          }
        }
      }
      run(round.start(Date.now()))
    })
  }

  notify (peer: string, data: Uint8Array): void {
    if (peer === this.#self) return void this.safeDispatchEvent('notify', { detail: { from: peer, data } })
    this.#send(peer, { t: 'notify', id: 0, data }, error => { this.#log('notify to %s dropped: %s', peer, error) })
  }

  async execute (agent: string, input: unknown, deadlineMs: number, signal?: AbortSignal, sign?: SignRequest): Promise<RunResult> {
    const parts = splitAgentId(agent)
    if (parts === undefined) return { ok: false, kind: 'unavailable', error: `"${agent}" is not an agent id` }
    deadlineMs = wireDeadline(deadlineMs)
    if (parts.host === this.#self) return this.#signed(parts.name, await this.#host.run(parts.name, input, deadlineMs, signal, this.#callSign(parts.name, sign)), sign)
    const id = this.#nextId++
    const started = performance.now()
    return await new Promise<RunResult>(resolve => {
      const finish = (result: RunResult): void => {
        clearTimeout(timer)
        this.#executeRtt?.observe({ [result.ok ? 'ok' : oneOf(result.kind, RUN_RESULTS, 'other')]: (performance.now() - started) / 1000 })
        signal?.removeEventListener('abort', onAbort)
        this.#pending.delete(`${parts.host} ${id}`)
        resolve(result)
      }
      const giveUp = (kind: 'timeout' | 'cancelled', error: string): void => {
        this.#send(parts.host, { t: 'cancel', id })
        finish({ ok: false, kind, error })
      }
      const onAbort = (): void => giveUp('cancelled', 'cancelled by the requester')
      const timer = setTimeout(() => giveUp('timeout', `no answer within ${deadlineMs} ms`), deadlineMs + this.#graceMs)
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#request(parts.host, { t: 'execute', id, agent: parts.name, input, deadlineMs, ...(sign === undefined ? {} : { sign }) }, m => {
        if (m.t !== 'result') return
        finish(m.ok ? { ok: true, output: m.output, confidence: m.confidence, latencyMs: m.latencyMs, ...(m.answer === undefined ? {} : { answer: m.answer }) } : { ok: false, kind: m.kind, error: m.error })
      }, error => finish({ ok: false, kind: 'unavailable', error }))
    })
  }

  /** What an agent that signs its own replies binds them to, when the requester wants a signed answer. */
  #callSign (name: string, sign: SignRequest | undefined): { subtask: string, inputHash: string, agent: string } | undefined {
    return sign === undefined ? undefined : { subtask: sign.subtask, inputHash: sign.inputHash, agent: `${this.#self}/${name}` }
  }

  #signed (name: string, result: RunResult, sign: SignRequest | undefined): RunResult {
    return signResult(this.#signer, this.#self, name, result, sign)
  }

  /** Sends a request and routes its answer (same id) to `onAnswer`; `onError` if it cannot be sent. */
  #request (peer: string, message: RpcMessage, onAnswer: (m: RpcMessage) => void, onError?: (error: string) => void): void {
    const key = `${peer} ${message.id}`
    const entry: { peer: string, id: number, answer: (m: RpcMessage) => void, via?: Promise<Outbound> } = { peer, id: message.id, answer: onAnswer }
    this.#pending.set(key, entry)
    entry.via = this.#send(peer, message, error => { this.#pending.delete(key); onError?.(error) })
  }

  #send (peer: string, message: RpcMessage, onError?: (error: string) => void): Promise<Outbound> | undefined {
    let data: Uint8Array
    try {
      data = encodeRpc(message)
    } catch (err) {
      onError?.((err as Error).message)
      return
    }
    let outbound = this.#outbound.get(peer)
    // A pair that upgraded from a relay to a direct connection moves new requests to it; answers
    // to requests already sent still come back over the relayed stream.
    if (outbound !== undefined && this.#limited.has(outbound) && this.#hasDirect(peer)) {
      this.#limited.delete(outbound)
      outbound = undefined
    }
    outbound ??= this.#open(peer)
    const current = outbound
    this.#outbound.set(peer, current)
    current.then(out => {
      out.writes = out.writes.then(async () => { await out.lp.write(data) })
      return out.writes
    }).catch(err => {
      if (this.#outbound.get(peer) === current) this.#outbound.delete(peer)
      onError?.(`cannot reach ${peer}: ${(err as Error).message}`)
    })
    return current
  }

  #hasDirect (peer: string): boolean {
    return this.#components.connectionManager.getConnections(peerIdFromString(peer)).some(c => c.status === 'open' && c.limits === undefined)
  }

  /** Opens the stream to `peer` and reads its answers until it closes. */
  #open (peer: string): Promise<Outbound> {
    const opened: Promise<Outbound> = this.#openStream(peer, () => opened)
    return opened
  }

  async #openStream (peer: string, self: () => Promise<Outbound>): Promise<Outbound> {
    const stream = await openStreamTo(this.#components.connectionManager, peerIdFromString(peer), this.#protocol)
    const lp = lpStream(stream, { maxDataLength: rpcLimits.maxMessageBytes })
    const limited = this.#components.connectionManager.getConnections(peerIdFromString(peer)).find(c => c.streams.includes(stream))?.limits !== undefined
    if (limited) this.#limited.add(self())
    void (async () => {
      try {
        while (this.#running) {
          const message = decodeRpc((await lp.read()).subarray())
          this.#pending.get(`${peer} ${message.id}`)?.answer(message)
        }
      } catch (err) {
        this.#log('stream to %s ended: %s', peer, (err as Error).message)
      } finally {
        const mine = self()
        this.#limited.delete(mine)
        if (this.#outbound.get(peer) === mine) this.#outbound.delete(peer)
        // Whatever was still waiting on this stream will not get an answer through it.
        for (const p of this.#pending.values()) if (p.peer === peer && (p.via === undefined || p.via === mine)) p.answer({ t: 'result', id: p.id, ok: false, kind: 'unavailable', error: `connection to ${peer} lost` })
      }
    })()
    return { lp, writes: Promise.resolve(), limited }
  }

  /** Answers one requester's stream: beacons at once, executions concurrently, cancels by id. */
  async #serve (stream: Stream, peer: string): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: rpcLimits.maxMessageBytes })
    const running = new Map<number, AbortController>()
    let writes = Promise.resolve()
    const reply = (m: RpcMessage): void => {
      let data: Uint8Array
      try {
        data = encodeRpc(m)
      } catch (err) {
        // An answer too large to send still gets an answer: the requester must not wait in vain.
        data = encodeRpc({ t: 'result', id: m.id, ok: false, kind: 'failed', error: (err as Error).message })
      }
      writes = writes.then(async () => { await lp.write(data) }).catch(() => {})
    }
    try {
      while (this.#running) {
        let message: RpcMessage
        try {
          message = decodeRpc((await lp.read()).subarray())
        } catch (err) {
          // Anything but garbage or an oversized message is the requester closing its side.
          if (!REJECTED.has((err as Error).name)) return
          // Garbage or an oversized message: close the stream with the reason, never a hanging read.
          this.#log('rejected a request from %s: %s', peer, (err as Error).message)
          this.#limits.allow(peer, 'invalid') // counted: a peer that keeps sending garbage is refused
          stream.abort(new Error(`rejected: ${(err as Error).message}`))
          return
        }
        // Over budget: an execution is answered "unavailable" (the requester reroutes), a beacon or a
        // one-way message dropped (the requester's deadline covers it).
        if (message.t === 'beacon' && this.#limits.allow(peer, 'beacon')) reply(answerBeacon(message, n => this.#host.liveState(n)))
        if (message.t === 'cancel') running.get(message.id)?.abort(new Error('cancelled by the requester'))
        if (message.t === 'notify' && this.#limits.allow(peer, 'notify')) this.safeDispatchEvent('notify', { detail: { from: peer, data: message.data } })
        if (message.t === 'execute' && !this.#limits.allow(peer, 'execute')) {
          reply({ t: 'result', id: message.id, ok: false, kind: 'unavailable', error: `rate limited: this host takes ${this.#limits.rate('execute')} executions per second from one peer` })
        } else if (message.t === 'execute' && running.size >= MAX_RUNNING_PER_STREAM) {
          reply({ t: 'result', id: message.id, ok: false, kind: 'unavailable', error: `busy: ${MAX_RUNNING_PER_STREAM} of your calls are already running here` })
        } else if (message.t === 'execute') {
          const controller = new AbortController()
          running.set(message.id, controller)
          const { id, sign } = message
          void this.#host.run(message.agent, message.input, message.deadlineMs, controller.signal, this.#callSign(message.agent, sign)).then(run => {
            running.delete(id)
            const result = this.#signed(message.agent, run, sign)
            reply({ t: 'result', id, ...(result.ok ? { ok: true, output: result.output ?? null, confidence: result.confidence, latencyMs: result.latencyMs, ...(result.answer === undefined ? {} : { answer: result.answer }) } : result) } as RpcMessage)
          })
        }
      }
    } finally {
      for (const c of running.values()) c.abort(new Error('requester disconnected'))
    }
  }
}

/**
 * The result with the answer signed by this host, when asked for. An output that is not JSON (or
 * too large to sign) fails the call: a requester that needs evidence cannot use it.
 */
function signResult (signer: Signer | undefined, self: string, name: string, result: RunResult, sign: SignRequest | undefined): RunResult {
  if (sign === undefined || !result.ok) return result
  if (signer === undefined) return { ok: false, kind: 'unavailable', error: 'this host does not sign answers' }
  try {
    const answer = signAnswer({
      v: 1,
      subtask: sign.subtask,
      inputHash: sign.inputHash,
      agent: `${self}/${name}`,
      answer: (result.output ?? null) as Json,
      ...(result.confidence === null ? {} : { confidence: result.confidence }),
      ...(result.endorsement === undefined ? {} : { endorsement: result.endorsement })
    }, signer)
    return { ...result, answer: answer.wire }
  } catch (err) {
    return { ok: false, kind: 'failed', error: `cannot sign the answer: ${(err as Error).message}` }
  }
}

export function rpcService (init: RpcServiceInit): (components: RpcServiceComponents) => RpcService {
  return (components) => new DefaultRpcService(components, init)
}
