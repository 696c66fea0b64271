/**
 * Consensus commits per second with real Ed25519, against the Ed25519 ceiling measured in the same
 * run: how fast this machine could commit if checking signatures were the only work.
 *
 * A committee of n members (4 and 16), each hosting one executor agent, runs consensus instances
 * back to back in this process. Every instance is a fresh subtask: the requester (member 0) signs
 * a new committee statement, every member builds its ConsensusInstance and starts it, then each
 * executor's answer is signed in the loop (one Ed25519 signature per executor per instance,
 * counted) and handed to its own member. Every `send` effect goes through one in-memory FIFO
 * queue and is delivered at once: no latency, and time stands still (now = 0), so no timeout can
 * fire; `timer` effects are ignored. The queue runs dry when the instance is done, and every
 * member must then hold a certificate for the same value, or the bench fails.
 *
 * Signature checks are counted by wrapping the verifier (calls per commit, summed over all
 * members). The baseline replays exactly the checks of one commit — same keys, messages and
 * signatures — through bare node:crypto `verify` with ready key objects: verifies/s ÷ checks per
 * commit is the ceiling. Consensus chunks and ceiling chunks alternate, and medians are kept, so
 * load from elsewhere on the machine hits both alike. A second ceiling divides by the checks a
 * commit needs (each signed object once per member), which a redundant check cannot inflate.
 * Stderr gets a breakdown per commit: verifies, signs and messages, by kind.
 */
import { verify as rawVerify, createPublicKey, type KeyObject } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { toString } from 'uint8arrays'
import { ed25519Signer, ed25519Verifier } from '../../node/network/crypto.ts'
import { decodeCanonical } from '../../protocols/cbor.ts'
import {
  ConsensusInstance, defaultAggregationConfig, signAnswer, signCommittee, votingPowers, type InstanceEvent
} from '../../protocols/consensus/index.ts'
import { decodeMessage, type VoteBody } from '../../protocols/consensus/messages.ts'
import type { Effect } from '../../protocols/effects.ts'
import { ed25519FromPeerId, type Signer, type Verifier } from '../../protocols/identity.ts'
import type { Bench, BenchResult } from '../bench.ts'

const INPUT_HASH = 'cd'.repeat(32)

interface Counts { verifies: number, signs: number, messages: number, commits: number }
/** One recorded signature check: who, over what, with which signature. */
interface Check { peerId: string, message: Uint8Array, signature: Uint8Array }

interface Committee {
  n: number
  signers: Signer[]
  verifier: Verifier
  counts: Counts
  /** When set, every check and message is recorded here (for the breakdown and the baseline). */
  record: { checks: Check[], signed: string[], messages: string[] } | undefined
  next: number
}

function committee (keys: Signer[], n: number): Committee {
  const inner = ed25519Verifier()
  const c: Committee = { n, signers: [], verifier: inner, counts: { verifies: 0, signs: 0, messages: 0, commits: 0 }, record: undefined, next: 0 }
  c.verifier = {
    verify (peerId, message, signature) {
      c.counts.verifies++
      c.record?.checks.push({ peerId, message, signature })
      return inner.verify(peerId, message, signature)
    }
  }
  c.signers = keys.slice(0, n).map(s => ({
    peerId: s.peerId,
    sign (message) {
      c.counts.signs++
      c.record?.signed.push(domainOf(message))
      return s.sign(message)
    }
  }))
  return c
}

/** One instance, from the requester's statement to a certificate on every member. */
function commitOnce (c: Committee): void {
  const i = c.next++
  const { signers } = c
  const agents = signers.map(s => `${s.peerId}/exec`)
  const subtask = `bench-${c.n}/${i}`
  const statement = signCommittee({
    v: 1,
    subtask,
    inputHash: INPUT_HASH,
    requester: signers[0]!.peerId,
    members: votingPowers(new Map(signers.map(s => [s.peerId, 0.8]))),
    executors: agents.map(agent => ({ agent, reputation: 0.6, accuracy: 0.7 })).sort((a, b) => (a.agent < b.agent ? -1 : a.agent > b.agent ? 1 : 0)),
    rule: { kind: 'json' },
    aggregation: defaultAggregationConfig
  }, signers[0]!)
  const instances = new Map(signers.map(signer => [signer.peerId, new ConsensusInstance({ statement, signer, verifier: c.verifier })]))
  // A FIFO of deliveries; a ring-free array with a moving head (shift() is O(n)).
  const queue: Array<{ from: string, to: string, data: Uint8Array }> = []
  let head = 0
  const apply = (from: string, effects: Array<Effect<InstanceEvent>>): void => {
    for (const e of effects) {
      // A copy per recipient, as a network delivers it: members of one process must not share
      // arrays, or the decode-once caches (made for the simulator) would hide decoding costs.
      if (e.type === 'send') queue.push({ from, to: e.to, data: e.data.slice() })
      else if (e.type === 'event' && e.event.type === 'rejected') throw new Error(`${subtask}: ${from.slice(-6)} rejected a message: ${e.event.reason}`)
      // timers: ignored (time stands still); committed: read from `decided` below
    }
  }
  for (const [id, instance] of instances) apply(id, instance.start(0))
  signers.forEach((signer, m) => {
    const answer = signAnswer({ v: 1, subtask, inputHash: INPUT_HASH, agent: agents[m]!, answer: { sum: i }, confidence: 0.8 }, signer)
    apply(signer.peerId, instances.get(signer.peerId)!.addAnswer(answer.wire, 0))
  })
  while (head < queue.length) {
    const { from, to, data } = queue[head++]!
    c.counts.messages++
    if (c.record !== undefined) c.record.messages.push(kindOf(data))
    apply(to, instances.get(to)!.receive(from, data, 0))
  }
  for (const [peer, instance] of instances) {
    const certificate = instance.decided
    if (certificate === undefined) throw new Error(`${subtask}: member ${peer.slice(-6)} did not commit (round ${instance.round}, ${instance.step}) though every message was delivered`)
    // Members may hold different sets of precommits, but all for this one value.
    if (certificate.outcome.kind !== 'answer' || JSON.stringify(certificate.outcome.answer) !== JSON.stringify({ sum: i })) throw new Error(`${subtask}: member ${peer.slice(-6)} committed ${JSON.stringify(certificate.outcome)}`)
  }
  c.counts.commits++
}

/** The signing domain of a signed consensus object: "answer", "committee", "proposal" or "vote". */
function domainOf (message: Uint8Array): string {
  const head = new TextDecoder().decode(message.subarray(0, 24))
  return /^agentmesh:(\w+):1\n/.exec(head)?.[1] ?? 'other'
}

function kindOf (data: Uint8Array): string {
  const t = (decodeCanonical(data) as { t?: unknown }).t
  if (t === 'vote') return (decodeMessage(data).body as VoteBody).type
  return typeof t === 'string' ? t : 'other'
}

function tally (xs: string[]): string {
  const m = new Map<string, number>()
  for (const x of xs) m.set(x, (m.get(x) ?? 0) + 1)
  return [...m].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ')
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

export const consensusBench: Bench = async ({ quick }) => {
  const sizes = [4, 16]
  const keys: Signer[] = []
  for (let i = 0; i < Math.max(...sizes); i++) keys.push(ed25519Signer(await generateKeyPair('Ed25519')))
  const results: BenchResult[] = []
  for (const n of sizes) {
    const c = committee(keys, n)
    // One recorded commit: the breakdown, and the exact checks the ceiling replays.
    c.record = { checks: [], signed: [], messages: [] }
    commitOnce(c)
    const recorded = c.record
    c.record = undefined
    const keyObjects = new Map<string, KeyObject>()
    for (const { peerId } of recorded.checks) {
      if (!keyObjects.has(peerId)) keyObjects.set(peerId, createPublicKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', x: toString(ed25519FromPeerId(peerId)!, 'base64url') } }))
    }
    const replay = recorded.checks.map(x => ({ key: keyObjects.get(x.peerId)!, message: x.message, signature: x.signature }))
    const ceilingChunk = (): number => { // seconds to verify one commit's checks
      const start = performance.now()
      for (const x of replay) if (!rawVerify(null, x.message, x.key, x.signature)) throw new Error('a recorded signature does not verify')
      return (performance.now() - start) / 1000
    }

    // Warm-up: JIT, key caches.
    const warm = quick ? 3 : 10
    for (let i = 0; i < warm; i++) { commitOnce(c); ceilingChunk() }
    c.counts = { verifies: 0, signs: 0, messages: 0, commits: 0 }

    // Chunks of about 100 ms of each, interleaved.
    const perChunk = n <= 4 ? 10 : 1
    const passes = quick ? 8 : 40
    const commitRates: number[] = []
    const verifyRates: number[] = []
    for (let pass = 0; pass < passes; pass++) {
      let start = performance.now()
      for (let k = 0; k < perChunk; k++) commitOnce(c)
      commitRates.push(perChunk / ((performance.now() - start) / 1000))
      start = performance.now()
      let seconds = 0
      for (let k = 0; k < perChunk; k++) seconds += ceilingChunk()
      verifyRates.push(perChunk * replay.length / seconds)
    }
    const commitsPerS = median(commitRates)
    const verifiesPerS = median(verifyRates)
    const checksPerCommit = c.counts.verifies / c.counts.commits
    const ceiling = verifiesPerS / checksPerCommit
    if (recorded.checks.length !== checksPerCommit) {
      process.stderr.write(`consensus n=${n}: note: the recorded commit made ${recorded.checks.length} checks, the measured ones ${checksPerCommit.toFixed(1)} on average\n`)
    }
    process.stderr.write(
      `consensus n=${n}: per commit ${checksPerCommit.toFixed(1)} verifies (${tally(recorded.checks.map(x => domainOf(x.message)))}), ` +
      `${(c.counts.signs / c.counts.commits).toFixed(1)} signs (${tally(recorded.signed)}), ` +
      `${(c.counts.messages / c.counts.commits).toFixed(1)} messages (${tally(recorded.messages)}); ` +
      `raw verify ${verifiesPerS.toFixed(0)}/s; ${(1000 / commitsPerS).toFixed(2)} ms per commit, of which ~${(1000 * checksPerCommit / verifiesPerS).toFixed(2)} ms verifying\n`)
    // Every member checks every signed object it needs exactly once: the statement, n answers, one
    // proposal, n prevotes and n precommits. The ceiling above counts the checks this code makes,
    // so a redundant check raises its ratio; against this one it lowers it, as it should.
    const once = n * (3 * n + 2)
    results.push({ bench: 'consensus', metric: `commits-per-s-${n}`, value: commitsPerS, unit: 'commits/s', baseline: 'ed25519-ceiling', baselineValue: ceiling, ratio: commitsPerS / ceiling })
    results.push({ bench: 'consensus', metric: `commits-per-s-${n}`, value: commitsPerS, unit: 'commits/s', baseline: 'ed25519-ceiling-each-signature-once', baselineValue: verifiesPerS / once, ratio: commitsPerS * once / verifiesPerS })
    results.push({ bench: 'consensus', metric: `sig-checks-per-commit-${n}`, value: checksPerCommit, unit: 'checks', baseline: 'each-signature-once', baselineValue: once, ratio: checksPerCommit / once })
  }
  return results
}
