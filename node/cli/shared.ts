/** Defaults and the IPC messages between `agentmesh up` and its peer processes. */
import { homedir } from 'node:os'
import { join } from 'node:path'
import type { VcvJson } from '../api/present.ts'

export const DEFAULT_PORT = 7100
/** A peer's HTTP API listens this far above its p2p port. */
export const API_PORT_OFFSET = 1000

export function defaultDataDir (): string {
  return process.env.AGENTMESH_HOME ?? join(homedir(), '.agentmesh')
}

export type ChildMessage =
  | { type: 'ready', peerId: string, multiaddrs: string[], apiPort: number, localAgents: number }
  | { type: 'state', agents: string[] }
  | { type: 'dialed', failures: Array<{ addr: string, error: string }> }
  | { type: 'list', agents: VcvJson[] }
  | { type: 'fatal', message: string }

export type ParentMessage =
  | { type: 'dial', addrs: string[] }
  | { type: 'list' }
  | { type: 'stop' }
