// An agent that waits until released (or aborted), so tests control timing with events, not sleeps.
import type { Agent, AgentDescription } from '../../node/agents/agent.ts'

export interface GatedAgent extends Agent {
  readonly started: number
  readonly aborted: number
  /** Lets every call waiting now finish. */
  release (): void
  /** Resolves once `n` calls have started in total. */
  whenStarted (n: number): Promise<void>
  /** Resolves once `n` calls have been aborted in total. */
  whenAborted (n: number): Promise<void>
}

export function gatedAgent (name: string, options: { capacity?: number, skills?: string[] } = {}): GatedAgent {
  let started = 0
  let aborted = 0
  let gates: Array<() => void> = []
  const waiters: Array<{ check: () => boolean, resolve: () => void }> = []
  const notify = (): void => {
    for (const w of [...waiters]) if (w.check()) { waiters.splice(waiters.indexOf(w), 1); w.resolve() }
  }
  const when = (check: () => boolean): Promise<void> => new Promise(resolve => {
    waiters.push({ check, resolve })
    notify()
  })
  return {
    get started () { return started },
    get aborted () { return aborted },
    release: () => { const g = gates; gates = []; g.forEach(f => f()) },
    whenStarted: async (n) => await when(() => started >= n),
    whenAborted: async (n) => await when(() => aborted >= n),
    describe: (): AgentDescription => ({
      name, description: 'waits until released', skills: options.skills ?? ['wait'], inputSchema: { type: 'object' }, outputSchema: { type: 'object' },
      costPerCall: 1, latencyMs: 5, capacity: options.capacity ?? 1, policy: []
    }),
    handle: async (input: unknown, signal?: AbortSignal) => {
      started++
      notify()
      await new Promise<void>((resolve, reject) => {
        gates.push(resolve)
        signal?.addEventListener('abort', () => { aborted++; notify(); reject(signal.reason) }, { once: true })
      })
      return { output: { echo: input }, confidence: 0.7 }
    }
  }
}
