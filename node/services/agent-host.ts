/**
 * Runs this host's agents for the mesh: at most `capacity` calls of an agent at once (the rest
 * queue), each with a deadline and cancellable; keeps the live state beacons report.
 *
 * @example
 * ```ts
 * const host = new AgentHost(peer.agents)
 * const result = await host.run('calc', { expression: '6*7' }, 5000)   // { ok: true, output, confidence, latencyMs }
 * host.liveState('calc')                                               // { load, queue, latencyMs, available }
 * ```
 */
import type { FailureKind, LiveState } from '../../protocols/rpc/index.ts'
import { AgentInputError, type Agent, type CallInfo } from '../agents/agent.ts'
import type { Endorsement } from '../../protocols/consensus/index.ts'

export type RunResult =
  | { ok: true, output: unknown, confidence: number | null, latencyMs: number, /** The answer signed by its host, when asked for (consensus evidence). */ answer?: Uint8Array, endorsement?: Endorsement }
  | { ok: false, kind: FailureKind, error: string }

interface AgentSlot {
  agent: Agent
  capacity: number
  running: number
  waiting: Array<() => void>
  /** Recent call latencies (ms), newest last; the beacon reports their median. */
  latencies: number[]
  estimateMs: number
}

const LATENCY_WINDOW = 32

export class AgentHost {
  readonly #slots = new Map<string, AgentSlot>()
  readonly #report: (state: LiveState) => LiveState

  /** `report` turns the measured state into what beacons say (default: as measured). */
  constructor (agents: ReadonlyMap<string, Agent>, report: (state: LiveState) => LiveState = state => state) {
    this.#report = report
    for (const [name, agent] of agents) {
      const d = agent.describe()
      this.#slots.set(name, { agent, capacity: Math.max(1, d.capacity), running: 0, waiting: [], latencies: [], estimateMs: d.latencyMs })
    }
  }

  has (name: string): boolean { return this.#slots.has(name) }

  /** Hosts `agent` under `name` from now on (replacing one of that name); calls already running finish on the old one. */
  set (name: string, agent: Agent): void {
    const d = agent.describe()
    this.#slots.set(name, { agent, capacity: Math.max(1, d.capacity), running: 0, waiting: [], latencies: [], estimateMs: d.latencyMs })
  }

  /** Stops hosting `name`: new calls are refused as unknown; running ones finish. */
  remove (name: string): void { this.#slots.delete(name) }

  liveState (name: string): LiveState | undefined {
    const slot = this.#slots.get(name)
    if (slot === undefined) return undefined
    return this.#report({
      agent: name,
      load: slot.running / slot.capacity,
      queue: slot.waiting.length,
      latencyMs: slot.latencies.length === 0 ? slot.estimateMs : median(slot.latencies),
      available: true
    })
  }

  /** Runs one call. Never throws: every failure comes back with its kind and reason. */
  async run (name: string, input: unknown, deadlineMs: number, signal?: AbortSignal, sign?: CallInfo['sign']): Promise<RunResult> {
    const slot = this.#slots.get(name)
    if (slot === undefined) return { ok: false, kind: 'unavailable', error: `no agent named "${name}" on this host` }
    // One controller and a timer cleared on completion: AbortSignal.timeout's timers stay pending
    // until they fire, tens of thousands at a few thousand calls a second.
    const controller = new AbortController()
    let timedOut = false
    const timer = setTimeout(() => { timedOut = true; controller.abort(new DOMException('deadline passed', 'TimeoutError')) }, deadlineMs)
    const onCancel = (): void => { controller.abort(signal?.reason) }
    if (signal?.aborted === true) onCancel()
    else signal?.addEventListener('abort', onCancel, { once: true })
    const abort = controller.signal
    const started = performance.now()
    try {
      try {
        await this.#acquire(slot, abort)
      } catch {
        return failure(abort, timedOut)
      }
      try {
        const left = Math.max(0, deadlineMs - (performance.now() - started))
        const { output, confidence, endorsement } = await raceAbort(slot.agent.handle(input, abort, { deadlineMs: left, ...(sign === undefined ? {} : { sign }) }), abort)
        const latencyMs = performance.now() - started
        slot.latencies.push(latencyMs)
        if (slot.latencies.length > LATENCY_WINDOW) slot.latencies.shift()
        return { ok: true, output, confidence: confidence ?? null, latencyMs, ...(endorsement === undefined ? {} : { endorsement }) }
      } catch (err) {
        if (abort.aborted) return failure(abort, timedOut)
        if (err instanceof AgentInputError) return { ok: false, kind: 'input', error: err.message }
        return { ok: false, kind: 'failed', error: (err as Error).message ?? String(err) }
      } finally {
        this.#release(slot)
      }
    } finally {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onCancel)
    }
  }

  #acquire (slot: AgentSlot, signal: AbortSignal): Promise<void> {
    if (slot.running < slot.capacity) {
      slot.running++
      return Promise.resolve()
    }
    return new Promise((resolve, reject) => {
      const go = (): void => { signal.removeEventListener('abort', quit); slot.running++; resolve() }
      const quit = (): void => { slot.waiting.splice(slot.waiting.indexOf(go), 1); reject(signal.reason) }
      slot.waiting.push(go)
      signal.addEventListener('abort', quit, { once: true })
    })
  }

  #release (slot: AgentSlot): void {
    slot.running--
    slot.waiting.shift()?.()
  }
}

function failure (abort: AbortSignal, timedOut: boolean): RunResult {
  return timedOut
    ? { ok: false, kind: 'timeout', error: 'deadline passed' }
    : { ok: false, kind: 'cancelled', error: String((abort.reason as Error | undefined)?.message ?? 'cancelled') }
}

/** An agent that ignores its signal still cannot hold the caller past the deadline. */
function raceAbort<T> (work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}
