/**
 * Free-text reasons (written by the task machine, the table, the consensus machine, and often
 * carrying what a remote peer sent) reduced to small fixed sets of label values. A Prometheus
 * label value that came from a peer would let that peer mint a new time series per message: every
 * function here answers with a member of its list, whatever the input.
 */

export const TASK_REASONS = ['none', 'timeout', 'no-candidates', 'over-budget', 'disagreement', 'consensus', 'restarted', 'cancelled', 'input', 'unavailable', 'failed', 'other'] as const
export type TaskReason = typeof TASK_REASONS[number]

export const GOSSIP_REASONS = ['none', 'duplicate', 'expired', 'future', 'withdrawn', 'stale', 'over-quota', 'over-admission', 'equivocation', 'own', 'table-full', 'queue-full', 'bad-signature', 'id-work', 'too-large', 'malformed', 'other'] as const
export type GossipReason = typeof GOSSIP_REASONS[number]

export const CONSENSUS_REASONS = ['bad-certificate', 'not-member', 'malformed', 'internal', 'other'] as const
export type ConsensusReason = typeof CONSENSUS_REASONS[number]

export const REFUSAL_REASONS = ['graylisted', 'over-budget', 'other-network', 'id-work', 'other'] as const
export type RefusalReason = typeof REFUSAL_REASONS[number]

export const VERDICTS = ['accept', 'ignore', 'reject'] as const
export type Verdict = typeof VERDICTS[number]

/** How a remote execution ended, as the caller saw it (a beacon reply is `ok` or `late`). */
export const RUN_RESULTS = ['ok', 'input', 'unavailable', 'failed', 'timeout', 'cancelled', 'other'] as const
export type RunResultLabel = typeof RUN_RESULTS[number]

/** Regexes below only ever look at the head of a reason: enough to classify, and bounded work. */
const HEAD = 200
const RUN_FAILURE = /^(input|unavailable|failed|timeout|cancelled): /

/** Why a task ended or an attempt was rerouted, as a class. */
export function taskReason (reason: string | undefined): TaskReason {
  if (reason === undefined || reason === '') return 'none'
  // An escalation names its subtask first (an id the user chose): classify what follows.
  const text = String(reason).slice(0, HEAD).replace(/^subtask ".*?": /, '')
  if (text.startsWith('requester restarted')) return 'restarted'
  const kind = RUN_FAILURE.exec(text)?.[1]
  if (kind !== undefined) return kind as TaskReason
  if (/^timed out|^task deadline of \d+ ms passed/.test(text)) return 'timeout'
  if (text.startsWith('over budget')) return 'over-budget'
  if (/^no agent left|^no usable agent|^no agent matches/.test(text)) return 'no-candidates'
  if (/^consensus failed|runs no consensus service/.test(text)) return 'consensus'
  if (/^no majority among|ahead by the margin|no more executions are allowed/.test(text)) return 'disagreement'
  if (text.startsWith('input reference')) return 'input'
  if (text.startsWith('unsigned')) return 'failed'
  return 'other'
}

/** Why the capability table ignored or rejected a gossiped record, as a class. */
export function gossipReason (verdict: Verdict, reason: string | undefined): GossipReason {
  if (verdict === 'accept' || reason === undefined) return 'none'
  const text = String(reason).slice(0, HEAD)
  if (verdict === 'reject') {
    if (text === 'bad signature') return 'bad-signature'
    if (text.startsWith('host id has less than')) return 'id-work'
    if (/^record is \d+ bytes, limit/.test(text)) return 'too-large'
    // The table rejects nothing else than records that fail to decode or validate.
    return 'malformed'
  }
  if (text === 'duplicate') return 'duplicate'
  if (text === 'expired') return 'expired'
  if (text.startsWith('issued in the future')) return 'future'
  if (text === 'withdrawn') return 'withdrawn'
  if (text === 'stale version') return 'stale'
  if (text.startsWith('host over its quota')) return 'over-quota'
  if (text.startsWith('new host over the neighbour')) return 'over-admission'
  if (text === 'equivocation') return 'equivocation'
  if (text.startsWith('own agent')) return 'own'
  if (text === 'table full') return 'table-full'
  if (text === 'validation queue full') return 'queue-full'
  return 'other'
}

/** Why the consensus machine refused a message or certificate, as a class. */
export function consensusReason (reason: string): ConsensusReason {
  const text = String(reason).slice(0, HEAD)
  if (text.startsWith('certificate:')) return 'bad-certificate'
  if (text.includes('not a member of that committee')) return 'not-member'
  if (/^own certificate|^instance \S+ stopped/.test(text)) return 'internal'
  if (/must be|needs|^not a consensus gossip message|^unknown consensus message|^message is \d+ bytes/.test(text)) return 'malformed'
  return 'other'
}

/** Why a peer was hung up on and refused, as a class. */
export function refusalReason (reason: string): RefusalReason {
  const text = String(reason).slice(0, HEAD)
  // Anchored at the start: a network name in the text is the remote peer's choice.
  if (text.startsWith('gossip score')) return 'graylisted'
  if (/^more than \S+ its budget/.test(text)) return 'over-budget'
  if (text.startsWith('its peer id has less than')) return 'id-work'
  if (text.startsWith('it is a peer of network')) return 'other-network'
  return 'other'
}

/** One of `allowed`, or `fallback` for anything else (a label read off a remote answer). */
export function oneOf<T extends string> (value: unknown, allowed: readonly T[], fallback: T): T {
  return typeof value === 'string' && (allowed as readonly string[]).includes(value) ? value as T : fallback
}
