// The open network end to end, in the namespaced NAT lab: `agentmesh lab` with one seed and two LANs
// of two peers, all real agentmesh processes (node --public, join) over real TCP, circuit relay and
// WebRTC through nftables NATs. And Ctrl-C in the middle of a lab leaves no namespace behind.
// Needs root, nft and turnserver (CI has them); otherwise it is skipped with the reason printed.
import { describe, it, expect } from 'vitest'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { labSupport } from '../../node/lab/topology.ts'
import { listNamespaces, PREFIX_ROOT } from '../../node/lab/netns.ts'
import type { LabResult } from '../../node/lab/scenario.ts'

const support = await labSupport()
if (!support.ok) console.log(`lab: skipped, ${support.reason}`)

const CLI = fileURLToPath(new URL('../../bin/agentmesh.js', import.meta.url))

interface Run { lines: Array<Record<string, unknown>>, code: number | null, signal: NodeJS.Signals | null, pid: number }

/** Runs `agentmesh lab … --json`; `onLine` may signal the process. */
async function lab (args: string[], onLine?: (line: Record<string, unknown>, pid: number) => void): Promise<Run> {
  const child = spawn(process.execPath, [CLI, 'lab', ...args, '--json'], { stdio: ['ignore', 'pipe', 'inherit'] })
  const lines: Array<Record<string, unknown>> = []
  createInterface({ input: child.stdout }).on('line', l => {
    let parsed: Record<string, unknown>
    try { parsed = JSON.parse(l) as Record<string, unknown> } catch { return }
    lines.push(parsed)
    onLine?.(parsed, child.pid!)
  })
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>(resolve => child.once('exit', (c, s) => { resolve([c, s]) }))
  return { lines, code, signal, pid: child.pid! }
}

const ours = async (pid: number): Promise<string[]> => (await listNamespaces()).filter(n => n.startsWith(`${PREFIX_ROOT}${pid.toString(36)}-`))

describe.skipIf(!support.ok)('agentmesh lab', () => {
  it('peers behind two NATs converge, route across them, commit a trusted subtask and punch direct connections; one seed dies and the mesh goes on', async () => {
    const run = await lab(['--seeds', '1', '--lans', '2', '--peers-per-lan', '2'])
    const r = run.lines.at(-1) as unknown as LabResult
    expect(r.errors).toEqual([])
    expect(r.peers).toBe(4)
    expect(r.converged).toBe(true)
    expect(r.convergedMs).toBeGreaterThan(0)
    // Every LAN peer is reachable only through the seed's relay.
    expect(r.reachability).toEqual({ relayed: 4 })
    expect(r.crossNatTask.ok).toBe(true)
    expect(r.trustedCommit).toMatchObject({ ok: true, verified: true, lans: 2 })
    expect(r.trustedCommit.committee).toBeGreaterThanOrEqual(4)
    // Work crossed the NATs, and hole punching turned relayed pairs into direct WebRTC ones.
    const pairs = r.natPairs.direct + r.natPairs.relayed + r.natPairs.none
    expect(pairs).toBeGreaterThan(0)
    expect(r.natPairs.direct).toBeGreaterThan(0)
    expect(r.upgrades.ok).toBeGreaterThan(0)
    expect(r.latency.direct.tasks).toBeGreaterThan(0)
    // With its only seed dead the mesh still learns a new agent and routes to it.
    expect(r.seedKilled).toMatchObject({ stillConverged: true, taskOk: true })
    expect(r.namespacesLeft).toBe(0)
    expect(run.code).toBe(0)
    expect(await ours(run.pid)).toEqual([])
  }, 600_000)

  it('Ctrl-C in the middle removes every namespace the lab made', async () => {
    let interrupted = false
    const run = await lab(['--seeds', '1', '--lans', '1', '--peers-per-lan', '1'], (line, pid) => {
      if (!interrupted && line.event === 'progress' && /peers? started/.test(String(line.text))) {
        interrupted = true
        process.kill(pid, 'SIGINT')
      }
    })
    expect(interrupted).toBe(true)
    expect(run.signal === 'SIGINT' || run.code !== 0).toBe(true)
    expect(await ours(run.pid)).toEqual([])
  }, 300_000)
})
