/**
 * What a protocol state machine asks its driver to do. Machines never do I/O or read clocks: the
 * driver (node/ over libp2p, sim/ in virtual time) carries these out and feeds results back in.
 */
export type Effect<Event = never> =
  /** Publish to every subscriber of the machine's gossip topic. */
  | { type: 'broadcast', data: Uint8Array }
  /** Send to one connected peer over the machine's direct protocol. */
  | { type: 'send', to: string, data: Uint8Array }
  /** Call the machine's `tick(now)` at or after `at` (ms). A later timer effect replaces an earlier one. */
  | { type: 'timer', at: number }
  /** Something the application above may care about (logs, indexes, metrics). */
  | { type: 'event', event: Event }
