/**
 * What one simulation run measures. Everything is recorded in virtual time and in event order,
 * so the same run gives the same numbers to the bit.
 */

export const CHANNELS = ['rpc', 'consensus', 'vcv-gossip', 'certificate-gossip'] as const
export type Channel = typeof CHANNELS[number]

export interface TaskRecord {
  index: number
  arrivedAt: number
  finishedAt: number
  status: 'done' | 'escalated' | 'cancelled' | 'unfinished'
  /** Done, and every subtask's output equals its ground truth. */
  accurate: boolean
  reroutes: number
  reason?: string
  /** With NAT: the task's first execute call went through a relay. */
  relayed?: boolean
}

/** How one aggregation rule did on the same signed answers. */
export interface RuleTally { decided: number, correct: number, escalated: number }

export const RULES = ['mesh', 'majority', 'cp-wbft'] as const
export type RuleName = typeof RULES[number]

export class Metrics {
  readonly tasks: TaskRecord[] = []
  /** Cumulative regret after each routing decision, and the decision's virtual time. */
  readonly regret: number[] = []
  readonly decisionAt: number[] = []
  /** Dispatches (fallbacks and redundant copies included) to agents a shock had hit, after it hit. */
  shockedDispatches = 0
  #regret = 0
  /** The part of the regret lost before selection: the best agent was not among the candidates shown to the policy. */
  screeningRegret = 0
  readonly messages: Record<Channel, number> = { rpc: 0, consensus: 0, 'vcv-gossip': 0, 'certificate-gossip': 0 }
  readonly bytes: Record<Channel, number> = { rpc: 0, consensus: 0, 'vcv-gossip': 0, 'certificate-gossip': 0 }
  dropped = 0
  decisions = 0
  /** Decisions whose chosen agent was of the subtask's type. */
  rightType = 0
  /** Dispatches to sybil agents. */
  sybilDispatches = 0
  canaries = 0
  /** VCVs requesters ignored as issued in the future (clock skew). */
  futureRecords = 0
  /** The colluders' and liars' share of the mesh rule's weight over all agents, at each trusted tally: the largest seen, the sum and how many. */
  readonly liarWeight = { max: 0, sum: 0, n: 0 }
  /** Safety violations count instances where Byzantine power < 1/3; those at or over it are counted apart. */
  readonly consensus = { instances: 0, committed: 0, committedUnderThreshold: 0, refused: 0, escalatedByCommittee: 0, timeouts: 0, safetyViolations: 0, overThreshold: 0, violationsOverThreshold: 0, certificatesAccepted: 0 }
  readonly rules: Record<RuleName, RuleTally> = { mesh: tally(), majority: tally(), 'cp-wbft': tally() }
  /**
   * With NAT (sim/nat.ts): messages (rpc, consensus) between pairs with a NAT'd end, sent direct
   * or through a relay, and gossip hops into NAT'd nodes, likewise (with the bytes relays
   * forwarded for gossip). The NAT model keeps the bytes per relay and the connections.
   */
  readonly nat = { messagesDirect: 0, messagesRelayed: 0, gossipHopsDirect: 0, gossipHopsRelayed: 0, gossipBytesRelayed: 0 }
  /** Virtual time when every requester had verified every honest agent's VCV (ms; -1 if never). */
  convergedAt = -1

  decision (regret: number, screening: number, rightType: boolean, at: number): void {
    this.decisions++
    this.#regret += regret
    this.screeningRegret += screening
    this.regret.push(this.#regret)
    this.decisionAt.push(at)
    if (rightType) this.rightType++
  }

  liarShare (share: number): void {
    this.liarWeight.max = Math.max(this.liarWeight.max, share)
    this.liarWeight.sum += share
    this.liarWeight.n++
  }

  send (channel: Channel, bytes: number): void {
    this.messages[channel]++
    this.bytes[channel] += bytes
  }

  rule (name: RuleName, verdict: 'correct' | 'wrong' | 'escalated'): void {
    const t = this.rules[name]
    if (verdict === 'escalated') t.escalated++
    else {
      t.decided++
      if (verdict === 'correct') t.correct++
    }
  }
}

function tally (): RuleTally {
  return { decided: 0, correct: 0, escalated: 0 }
}

/** Regret accumulated by decisions made at or after `at` (ms). */
export function regretSince (m: Pick<Metrics, 'regret' | 'decisionAt'>, at: number): number {
  const first = m.decisionAt.findIndex(t => t >= at)
  if (first < 0) return 0
  return m.regret.at(-1)! - (first === 0 ? 0 : m.regret[first - 1]!)
}

export function percentile (sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!
}

/**
 * Recovery after a shock: the rolling success rate (a task succeeds when it completes with the
 * correct result; window `w` tasks, in arrival order) before the shock is the baseline; recovery is the number of tasks after the shock until the rolling
 * rate is back to 90% of the baseline and stays there to the end. undefined: it never recovers.
 */
export function recovery (tasks: readonly TaskRecord[], shockAt: number, w = 50): { baseline: number, tasks: number | undefined, ms: number | undefined } {
  const ok: number[] = tasks.map(t => t.accurate ? 1 : 0)
  const first = tasks.findIndex(t => t.arrivedAt >= shockAt)
  if (first < 0) return { baseline: NaN, tasks: undefined, ms: undefined }
  const before = ok.slice(0, first)
  const baseline = before.length === 0 ? 1 : before.reduce((s, x) => s + x, 0) / before.length
  const target = 0.9 * baseline
  const rolling = (end: number): number => {
    const from = Math.max(first, end - w + 1)
    let s = 0
    for (let i = from; i <= end; i++) s += ok[i]!
    return s / (end - from + 1)
  }
  // The last index where the rolling rate is below target; recovery is right after it.
  let lastBelow = first - 1
  for (let i = first; i < ok.length; i++) if (rolling(i) < target) lastBelow = i
  if (lastBelow === ok.length - 1) return { baseline, tasks: undefined, ms: undefined }
  const at = lastBelow + 1
  return { baseline, tasks: at - first, ms: tasks[at]!.arrivedAt - shockAt }
}
