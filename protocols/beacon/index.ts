/**
 * The beacon stage of routing: ask the top-L candidates' hosts for live load and latency, with a
 * deadline, and skip whoever does not answer in time.
 *
 * @example
 * ```ts
 * const round = new BeaconRound(nextId++, topL.map(c => c.agent), 150)
 * run(round.start(now))                        // send beacons, arm the deadline timer
 * run(round.reply(host, decodeRpc(bytes)))     // as replies arrive; the `done` effect carries the states
 * ```
 */
export { BeaconRound, answerBeacon, LATE_REPLY_WINDOW_MS } from './round.ts'
export type { BeaconEffect } from './round.ts'
