/**
 * Limits of the local API that its clients share: kept apart from api.ts so the CLI and the fuzzer
 * can read them without loading the peer.
 */

/** A YAML task body at most (its parser is slow on large input); larger tasks go as JSON. */
export const MAX_YAML_BYTES = 128 * 1024
