/**
 * One beacon round: before choosing among its top-L candidates, a router asks their hosts for the
 * agents' live state. Hosts are asked in parallel; whoever has not answered by the deadline is
 * skipped, not waited for. Pure: the driver sends, delivers replies and fires the timer.
 */
import { splitAgentId } from '../capability/schema.ts'
import { encodeRpc, type LiveState, type RpcMessage } from '../rpc/wire.ts'

/** How long after a round ends a driver should still pass replies to it (they come back as `late`). */
export const LATE_REPLY_WINDOW_MS = 5000

export type BeaconEffect =
  | { type: 'send', to: string, data: Uint8Array }
  | { type: 'timer', at: number }
  /**
   * The round is over: live state per agent id, the agents whose host did not answer in time, and
   * each answering host's round trip (ms) when the driver passed times to `reply`.
   */
  | { type: 'done', states: Map<string, LiveState>, skipped: string[], rtts: Map<string, number> }
  /** A reply after the deadline: too late for this round, but its round trip tunes the next deadline. */
  | { type: 'late', host: string, rttMs: number }

export class BeaconRound {
  readonly id: number
  readonly #byHost = new Map<string, string[]>() // host -> local agent names asked
  readonly #states = new Map<string, LiveState>()
  readonly #answered = new Set<string>()
  readonly #rtts = new Map<string, number>()
  readonly #deadlineMs: number
  #startedAt = 0
  #done = false

  /** `agents` are full agent ids (`<host>/<name>`); `id` must be unique among this requester's rounds. */
  constructor (id: number, agents: string[], deadlineMs: number) {
    this.id = id
    this.#deadlineMs = deadlineMs
    for (const agent of agents) {
      const parts = splitAgentId(agent)
      if (parts === undefined) continue
      const names = this.#byHost.get(parts.host) ?? []
      if (!names.includes(parts.name)) names.push(parts.name)
      this.#byHost.set(parts.host, names)
    }
  }

  get done (): boolean { return this.#done }

  start (now: number): BeaconEffect[] {
    this.#startedAt = now
    if (this.#byHost.size === 0) return this.#finish()
    const effects: BeaconEffect[] = [...this.#byHost].map(([host, agents]) => ({ type: 'send', to: host, data: encodeRpc({ t: 'beacon', id: this.id, agents }) }))
    return [...effects, { type: 'timer', at: now + this.#deadlineMs }]
  }

  /**
   * A `beacon-reply` from `host`, received at `now` (optional: gives the host's round trip).
   * Replies to other rounds, from hosts not asked, or late ones change nothing.
   */
  reply (host: string, message: RpcMessage, now?: number): BeaconEffect[] {
    if (message.t !== 'beacon-reply' || message.id !== this.id) return []
    const asked = this.#byHost.get(host)
    if (asked === undefined || this.#answered.has(host)) return []
    if (this.#done) {
      this.#answered.add(host)
      return now === undefined ? [] : [{ type: 'late', host, rttMs: Math.max(0, now - this.#startedAt) }]
    }
    this.#answered.add(host)
    if (now !== undefined) this.#rtts.set(host, Math.max(0, now - this.#startedAt))
    for (const state of message.states) {
      if (asked.includes(state.agent)) this.#states.set(`${host}/${state.agent}`, state)
    }
    return this.#answered.size === this.#byHost.size ? this.#finish() : []
  }

  /** The deadline: finish with what has arrived. */
  tick (): BeaconEffect[] {
    return this.#done ? [] : this.#finish()
  }

  #finish (): BeaconEffect[] {
    this.#done = true
    const skipped = [...this.#byHost].flatMap(([host, names]) => names.map(n => `${host}/${n}`)).filter(a => !this.#states.has(a))
    return [{ type: 'done', states: new Map(this.#states), skipped, rtts: new Map(this.#rtts) }]
  }
}

/** The host's side: live state for the agents asked about that it hosts. */
export function answerBeacon (request: Extract<RpcMessage, { t: 'beacon' }>, stateOf: (name: string) => LiveState | undefined): RpcMessage {
  const states = request.agents.flatMap(name => { const s = stateOf(name); return s === undefined ? [] : [s] })
  return { t: 'beacon-reply', id: request.id, states }
}
