/**
 * How the CLI reaches a running peer's API and finds its token.
 *
 * `--data DIR` names the peer's data directory: its port comes from DIR/api.json (unless
 * --api-port is given) and its token from DIR/api-token. Without --data, the port is --api-port
 * (default 8100) and the token is the one of the running peer, under $AGENTMESH_HOME, whose
 * api.json has that port: `node` (node/), `up` (up/peer-<i>/) and `join`
 * (networks/<name>/{node,peer}/) all keep their data there by default.
 */
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { integer, UsageError } from './args.ts'
import { API_PORT_OFFSET, defaultDataDir, DEFAULT_PORT } from './shared.ts'
import { readApiFile } from '../api/api-file.ts'
import { readClientToken, TOKEN_FILE } from '../api/token.ts'

export interface ApiTarget {
  base: string
  port: number
  /** Authorization, when the token was found. */
  headers: Record<string, string>
}

export async function apiTarget (command: string, options: { apiPort?: string | undefined, data?: string | undefined }): Promise<ApiTarget> {
  let port: number
  let dataDir: string | undefined
  if (options.data !== undefined) {
    dataDir = options.data
    const info = readApiFile(dataDir)
    if (info !== undefined && !info.url.startsWith('http://')) throw new UsageError(`${command}: the peer of ${dataDir} serves its API at ${info.url}; the CLI speaks plain HTTP to 127.0.0.1 only`)
    if (options.apiPort === undefined && info === undefined) throw new UsageError(`${command}: no running peer has its API on data directory ${dataDir} (no live ${join(dataDir, 'api.json')}) — start it, or give --api-port`)
    port = integer(command, 'api-port', options.apiPort, info?.port ?? 0, 1, 65535)
  } else {
    port = integer(command, 'api-port', options.apiPort, DEFAULT_PORT + API_PORT_OFFSET, 1, 65535)
    dataDir = findDataDir(port)
  }
  const token = dataDir !== undefined ? await readClientToken(join(dataDir, TOKEN_FILE)) : undefined
  return { base: `http://127.0.0.1:${port}`, port, headers: token !== undefined ? { authorization: `Bearer ${token}` } : {} }
}

/** The default data directory whose running peer serves its API on this port, if any. */
function findDataDir (port: number): string | undefined {
  const home = defaultDataDir()
  const dirs = [join(home, 'node')]
  for (const name of subdirs(join(home, 'up'))) if (/^peer-\d+$/.test(name)) dirs.push(join(home, 'up', name))
  for (const name of subdirs(join(home, 'networks'))) dirs.push(join(home, 'networks', name, 'node'), join(home, 'networks', name, 'peer'))
  return dirs.find(dir => readApiFile(dir)?.port === port)
}

function subdirs (dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter(e => e.isDirectory()).slice(0, 1000).map(e => e.name)
  } catch {
    return []
  }
}
