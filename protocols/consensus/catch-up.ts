/**
 * Catch-up, the fetching side, as a pure machine: a peer that learns another holds certificates it
 * lacks pages through the other's ids and fetches the missing ones, page after page, until it has
 * everything the other offers.
 *
 * Wire (canonical CBOR, one-way messages; the holder's side is in peer.ts):
 *   `inv`  {n, x}              "I hold n certificates whose ids XOR to x" (on connection)
 *   `list` {after}             "your ids after sequence number `after`" (−1: from your oldest)
 *   `ids`  {ids, next, more}   up to PAGE_IDS ids in the holder's arrival order, the cursor of the
 *                              last one, and whether more follow
 *   `get`  {ids}               up to GET_IDS certificates by instance id
 *   `certs`{certs}             those of them the holder has, at most CERTS_REPLY_BYTES in all
 * Peers holding the same set (same count and digest) exchange nothing more than the `inv`.
 *
 * Bounds, so a hostile holder cannot make this peer send or store without end: one request
 * outstanding per holder, at most MAX_SESSIONS holders at once (the least recently active one is
 * dropped for a new one), one page of ids queued per holder, at most `maxFetch` certificates
 * requested and 2 × `maxFetch` + PAGE_IDS ids listed per session, a cursor that must move forward,
 * and a request unanswered after RETRY_MS sent again at most MAX_TRIES times before the session
 * is dropped (reported). Ids another session is fetching, held, or forgotten for the cap are not
 * asked for.
 */
import { encodeCanonical } from '../cbor.ts'
import type { Effect } from '../effects.ts'

/** Ids in one `ids` page (~34 KB of CBOR). */
export const PAGE_IDS = 512
/** Certificates asked for in one `get`, and carried by one `certs`. */
export const GET_IDS = 64
/**
 * Bytes of certificates in one `certs` reply: it travels as one RPC frame, which may not exceed
 * 1 MiB (protocols/rpc/wire.ts), so a bigger reply would be dropped on the way.
 */
export const CERTS_REPLY_BYTES = 768 * 1024
export const MAX_SESSIONS = 8
/** A request unanswered this long is sent again. */
export const RETRY_MS = 10_000
export const MAX_TRIES = 3

export type CatchUpEvent = { type: 'rejected', from: string, reason: string }
type Out = Array<Effect<CatchUpEvent>>

interface Session {
  cursor: number
  more: boolean
  /** Ids of the current page this peer still lacks. */
  queue: string[]
  request: { kind: 'list' } | { kind: 'get', ids: string[] } | undefined
  sentAt: number
  tries: number
  listed: number
  fetched: number
  activeAt: number
}

export interface CatchUpInit {
  /** Whether a certificate is held, or was held and forgotten for the cap (either way: not fetched). */
  known: (id: string) => boolean
  /** Most certificates requested from one holder in one session (the certificate cap). */
  maxFetch: number
}

export class CatchUp {
  readonly #known: (id: string) => boolean
  readonly #maxFetch: number
  readonly #sessions = new Map<string, Session>()
  /** Ids requested and not yet answered → the holder asked. */
  readonly #inFlight = new Map<string, string>()

  constructor (init: CatchUpInit) {
    this.#known = init.known
    this.#maxFetch = init.maxFetch
  }

  /** Holders being caught up from. */
  sessions (): string[] { return [...this.#sessions.keys()] }

  /** A holder's summary: differs from ours, so start (or restart) paging through its ids. */
  offer (peer: string, theirs: { n: number, x: string }, mine: { n: number, x: string }, now: number): Out {
    if (theirs.n === 0 || (theirs.n === mine.n && theirs.x === mine.x)) return []
    this.#end(peer)
    if (this.#sessions.size >= MAX_SESSIONS) {
      let stalest: [string, Session] | undefined
      for (const entry of this.#sessions) if (stalest === undefined || entry[1].activeAt < stalest[1].activeAt) stalest = entry
      this.#end(stalest![0])
    }
    const s: Session = { cursor: -1, more: true, queue: [], request: undefined, sentAt: now, tries: 0, listed: 0, fetched: 0, activeAt: now }
    this.#sessions.set(peer, s)
    return this.#next(peer, s, now)
  }

  /** A page of the holder's ids, in answer to our `list`. */
  onIds (peer: string, page: { ids: string[], next: number, more: boolean }, now: number): Out {
    const s = this.#sessions.get(peer)
    if (s === undefined || s.request?.kind !== 'list') return [] // not asked for: ignored
    if (page.ids.length > 0 && page.next <= s.cursor) return this.#drop(peer, `its id page did not move forward (cursor ${page.next} after ${s.cursor})`)
    s.listed += page.ids.length
    if (s.listed > 2 * this.#maxFetch + PAGE_IDS) return this.#drop(peer, `it listed more than ${2 * this.#maxFetch + PAGE_IDS} certificate ids`)
    s.request = undefined
    s.activeAt = now
    if (page.ids.length > 0) s.cursor = page.next
    s.more = page.more && page.ids.length > 0
    s.queue = page.ids.filter(id => !this.#known(id) && !this.#inFlight.has(id))
    return this.#next(peer, s, now)
  }

  /**
   * Certificates arrived from `peer` (already verified and kept by the caller, or not). If they
   * answer our `get`: ids not delivered are asked again when some were (the holder stopped at its
   * byte limit), or given up on when none were (the holder no longer has them).
   */
  onCerts (peer: string, now: number): Out {
    const s = this.#sessions.get(peer)
    if (s === undefined || s.request?.kind !== 'get') return []
    const asked = s.request.ids
    for (const id of asked) this.#inFlight.delete(id)
    const missing = asked.filter(id => !this.#known(id))
    if (missing.length < asked.length) s.queue.unshift(...missing)
    s.request = undefined
    s.activeAt = now
    return this.#next(peer, s, now)
  }

  /** The holder is gone: its session ends (a new connection starts a new one). */
  disconnected (peer: string): void {
    this.#end(peer)
  }

  /** Requests unanswered for RETRY_MS are sent again; after MAX_TRIES the session is dropped. */
  tick (now: number): Out {
    const out: Out = []
    for (const [peer, s] of [...this.#sessions]) {
      if (s.request === undefined || s.sentAt + RETRY_MS > now) continue
      if (s.tries >= MAX_TRIES) {
        out.push(...this.#drop(peer, `it did not answer a catch-up request ${MAX_TRIES} times`))
        continue
      }
      out.push(this.#send(peer, s, now))
    }
    return out
  }

  /** When `tick` has something to do, or Infinity. */
  nextDeadline (): number {
    let at = Infinity
    for (const s of this.#sessions.values()) if (s.request !== undefined && s.sentAt + RETRY_MS < at) at = s.sentAt + RETRY_MS
    return at
  }

  #next (peer: string, s: Session, now: number): Out {
    s.queue = s.queue.filter(id => !this.#known(id) && !this.#inFlight.has(id))
    if (s.queue.length > 0 && s.fetched < this.#maxFetch) {
      const ids = s.queue.splice(0, Math.min(GET_IDS, this.#maxFetch - s.fetched))
      s.fetched += ids.length
      for (const id of ids) this.#inFlight.set(id, peer)
      s.request = { kind: 'get', ids }
    } else if (s.more && s.fetched < this.#maxFetch) {
      s.request = { kind: 'list' }
    } else {
      this.#end(peer) // everything it offered is here (or the fetch cap is reached)
      return []
    }
    s.tries = 0
    return [this.#send(peer, s, now)]
  }

  #send (peer: string, s: Session, now: number): Effect<CatchUpEvent> {
    s.sentAt = now
    s.tries++
    const r = s.request!
    return { type: 'send', to: peer, data: encodeCanonical(r.kind === 'list' ? { k: 'list', after: s.cursor } : { k: 'get', ids: r.ids }) }
  }

  #drop (peer: string, why: string): Out {
    this.#end(peer)
    return [{ type: 'event', event: { type: 'rejected', from: peer, reason: `catch-up from ${peer} stopped: ${why}` } }]
  }

  #end (peer: string): void {
    const s = this.#sessions.get(peer)
    if (s === undefined) return
    if (s.request?.kind === 'get') for (const id of s.request.ids) if (this.#inFlight.get(id) === peer) this.#inFlight.delete(id)
    this.#sessions.delete(peer)
  }
}
