/** How VCVs look to people and to JSON consumers (CLI, HTTP API). */
import { toString } from 'uint8arrays'
import { splitAgentId, type SignedVcv } from '../../protocols/capability/index.ts'

export interface VcvJson {
  agent: string
  host: string
  name: string
  version: number
  description: string
  skills: string[]
  inputSchema: unknown
  outputSchema: unknown
  schemaHash: string
  embedding: { model: string, dims: number } | null
  cost: number
  latencyMs: number
  capacity: number
  policy: string[]
  issuedAt: number
  expiresAt: number
}

export function vcvJson (vcv: SignedVcv): VcvJson {
  const b = vcv.body
  const id = splitAgentId(b.agent)
  return {
    agent: b.agent,
    host: id?.host ?? '',
    name: id?.name ?? '',
    version: b.version,
    description: b.description,
    skills: b.skills,
    inputSchema: JSON.parse(b.inputSchema),
    outputSchema: JSON.parse(b.outputSchema),
    schemaHash: toString(b.schemaHash, 'base16'),
    embedding: b.embedding === null ? null : { model: b.embedding.model, dims: b.embedding.vector.byteLength / 4 },
    cost: b.cost,
    latencyMs: b.latencyMs,
    capacity: b.capacity,
    policy: b.policy,
    issuedAt: b.issuedAt,
    expiresAt: b.expiresAt
  }
}

/** `12D3KooWAbCd…` → `…wXyZ12`: the tail of a peer id is the part that differs. */
export function shortId (peerId: string): string {
  return peerId.length > 12 ? `…${peerId.slice(-6)}` : peerId
}

/** A plain text table: columns padded to their widest cell. */
export function table (headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()
  return [line(headers), line(widths.map(w => '-'.repeat(w))), ...rows.map(line)].join('\n')
}

/** By agent name, then host: the order every agent table uses. */
export function sortAgents (agents: VcvJson[]): VcvJson[] {
  return [...agents].sort((a, b) => a.name.localeCompare(b.name) || a.host.localeCompare(b.host))
}

/** One table row per agent, in the order given. */
export function agentRows (agents: VcvJson[], now: number): string[][] {
  return agents.map(a => [
    a.name, shortId(a.host), String(a.version), a.skills.slice(0, 4).join(','), String(a.cost),
    `${a.latencyMs}ms`, String(a.capacity), `${Math.max(0, Math.round((a.expiresAt - now) / 1000))}s`
  ])
}

export const AGENT_HEADERS = ['AGENT', 'HOST', 'VER', 'SKILLS', 'COST', 'LATENCY', 'CAP', 'EXPIRES']
