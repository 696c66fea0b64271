/** `--network NAME|FILE`: the built-in local network, a network file, or a new network's name. */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import YAML from 'yaml'
import { LOCAL_NETWORK, NETWORK_NAME, NetworkFileError, parseNetworkSpec, type NetworkSpec } from '../../protocols/network/index.ts'
import { LOCAL } from './settings.ts'

/** 64 bootstrap addresses of 512 bytes fill half of it; the cap also bounds YAML parsing. */
export const MAX_NETWORK_FILE_BYTES = 64 * 1024

/**
 * - `local` (or nothing): peers on this machine.
 * - a path to a YAML network file.
 * - a name with a file `<home>/networks/<name>.yaml`: that file.
 * - any other valid name: a network of that name with no bootstrap list (start one, or give
 *   bootstrap addresses on the command line).
 */
export function loadNetwork (value: string | undefined, home: string): NetworkSpec {
  if (value === undefined || value === LOCAL_NETWORK) return LOCAL
  const named = join(home, 'networks', `${value}.yaml`)
  const path = existsSync(value) ? value : NETWORK_NAME.test(value) && existsSync(named) ? named : undefined
  if (path === undefined) {
    if (NETWORK_NAME.test(value)) return { name: value, bootstrap: [], stun: [], privateAddresses: false }
    throw new NetworkFileError(`--network ${value}: no such file, and not a network name (1–32 lower-case letters, digits and dashes)`)
  }
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new NetworkFileError(`cannot read network file ${path}: ${(err as Error).message}`)
  }
  if (text.length > MAX_NETWORK_FILE_BYTES) throw new NetworkFileError(`network file ${path} is larger than ${MAX_NETWORK_FILE_BYTES / 1024} KiB`)
  let doc: unknown
  try {
    doc = YAML.parse(text)
  } catch (err) {
    throw new NetworkFileError(`network file ${path} is not valid YAML: ${(err as Error).message.split('\n')[0]}`)
  }
  return parseNetworkSpec(doc, path)
}
