/**
 * The certificates a peer keeps, one per instance, oldest first, at most `max` (the oldest is
 * forgotten first). Each kept certificate gets a local sequence number in arrival order, so a peer
 * catching up can page through them with a cursor ("ids after sequence number c") that stays valid
 * while old ones are forgotten and new ones arrive. An order-independent digest of the ids (their
 * XOR) and the count let two peers holding the same set see it without listing them.
 */
import { fromString, toString } from 'uint8arrays'

export interface IdPage {
  ids: string[]
  /** The cursor to ask with for the next page (the sequence number of the last id listed). */
  next: number
  /** Whether ids follow this page. */
  more: boolean
}

export class CertificateStore {
  readonly #max: number
  readonly #bytes = new Map<string, Uint8Array>()
  /** Ids in arrival order from `#head`; the id at index i has sequence number `#base + i - #head`. */
  #order: string[] = []
  #head = 0
  #base = 0
  readonly #digest = new Uint8Array(32)
  /** Ids forgotten to stay under the cap (the most recent `max` of them): not fetched back. */
  readonly #forgotten = new Set<string>()

  constructor (max: number) {
    this.#max = max
  }

  get size (): number { return this.#bytes.size }
  has (id: string): boolean { return this.#bytes.has(id) }
  get (id: string): Uint8Array | undefined { return this.#bytes.get(id) }
  /** Whether this peer held the certificate and dropped it for the cap (catch-up does not fetch it back). */
  forgot (id: string): boolean { return this.#forgotten.has(id) }
  ids (): string[] { return this.#order.slice(this.#head) }
  /** Hex XOR of all ids held. */
  digest (): string { return toString(this.#digest, 'base16') }

  /** Keeps a certificate; false if its instance is held already. */
  add (id: string, bytes: Uint8Array): boolean {
    if (this.#bytes.has(id)) return false
    this.#bytes.set(id, bytes)
    this.#order.push(id)
    this.#xor(id)
    this.#forgotten.delete(id)
    while (this.#bytes.size > this.#max) this.#dropOldest()
    return true
  }

  /** Up to `limit` ids with sequence numbers after `cursor` (−1: from the oldest held). */
  after (cursor: number, limit: number): IdPage {
    const held = this.#order.length - this.#head
    const start = Math.max(0, Math.min(held, cursor + 1 - this.#base))
    const ids = this.#order.slice(this.#head + start, this.#head + start + limit)
    return { ids, next: ids.length > 0 ? this.#base + start + ids.length - 1 : Math.max(cursor, this.#base + start - 1), more: start + ids.length < held }
  }

  #dropOldest (): void {
    const id = this.#order[this.#head]!
    this.#head++
    this.#base++
    this.#bytes.delete(id)
    this.#xor(id)
    this.#forgotten.add(id)
    if (this.#forgotten.size > this.#max) this.#forgotten.delete(this.#forgotten.values().next().value!)
    if (this.#head > 1024 && this.#head * 2 > this.#order.length) {
      this.#order = this.#order.slice(this.#head)
      this.#head = 0
    }
  }

  #xor (id: string): void {
    const b = fromString(id, 'base16')
    for (let i = 0; i < 32; i++) this.#digest[i]! ^= b[i]!
  }
}
