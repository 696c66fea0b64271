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

/** What a child says; `peer` is the mesh index of the peer it is about (a child may host several). */
export type ChildMessage =
  | { type: 'ready', peer?: number, peerId: string, multiaddrs: string[], apiPort: number, localAgents: number }
  | { type: 'state', peer?: number, agents: string[] }
  | { type: 'dialed', peer?: number, failures: Array<{ addr: string, error: string }> }
  | { type: 'list', peer?: number, agents: VcvJson[] }
  | { type: 'fatal', peer?: number, message: string }
  | { type: 'usage', rssBytes: number }

/** What the parent asks; `peer` picks a peer of the child's group (default: its first). */
export type ParentMessage =
  | { type: 'dial', peer?: number, addrs: string[], /** tag them keep-alive: libp2p re-dials them when the link drops */ keepAlive?: boolean }
  | { type: 'list', peer?: number }
  | { type: 'usage' }
  | { type: 'stop' }
