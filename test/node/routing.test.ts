// The mesh router end to end over real peers: semantic screening, beacon, bandit, the task API.
import { describe, it, expect, afterEach } from 'vitest'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { startApi } from '../../node/api/api.ts'
import { connectRing, untilTables } from '../../node/cli/local-mesh.ts'
import type { Peer } from '../../node/peer.ts'
import { usePeers } from '../helpers/peers.ts'
import type { TaskReport } from '../../node/services/task-runner.ts'

const run = promisify(execFile)
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'agentmesh.js')
const { peer, stop } = usePeers('agentmesh-route-')
const closers: Array<() => Promise<void>> = []
const dirs: string[] = []
afterEach(async () => {
  await Promise.all(closers.splice(0).map(async c => { await c() }))
  await Promise.all(dirs.splice(0).map(async d => { await rm(d, { recursive: true, force: true }) }))
})

async function mesh (n: number): Promise<Peer[]> {
  const peers = await Promise.all(Array.from({ length: n }, async () => await peer()))
  await connectRing(peers)
  await untilTables(peers, () => peers.every(p => p.capability.agents().length === 6 * n))
  return peers
}

/** Waits until embedding has caught up with the table, and checks it did. */
async function indexed (p: Peer): Promise<void> {
  await p.whenIndexed()
  expect(p.index.size).toBe(p.capability.agents().length)
}

describe('routing through the mesh', () => {
  it('finds the right agent for paraphrased requests and explains the choice', async () => {
    const peers = await mesh(3)
    const router = peers[0]!.router
    await indexed(peers[0]!)
    const cases: Array<[string, string]> = [
      ['what is 17 times 23 plus 4', 'arithmetic'],
      ['how many kilometres is 26 miles', 'unit-convert'],
      ['put these names in alphabetical order', 'sort'],
      ['give me the gist of this article', 'summarize']
    ]
    for (const [text, kind] of cases) {
      const answer = await router.route({ text }, [])
      expect(answer.candidates.length).toBeGreaterThan(0)
      expect(answer.candidates[0]!.agent.endsWith(`/${kind}`)).toBe(true)
      const why = answer.explanation as { policy: string, scores: Array<{ agent: string, mean: number, bonus: number }>, chosen: string }
      expect(why.policy).toBe('linucb')
      expect(why.chosen).toBe(answer.candidates[0]!.agent)
      expect(why.scores.length).toBe(3) // top-L = 3: the three hosts of that kind
      for (const s of why.scores) expect(Number.isFinite(s.mean) && s.bonus > 0).toBe(true)
    }
    // Excluded agents are never offered.
    const first = (await router.route({ text: 'sort these numbers' }, [])).candidates.map(c => c.agent)
    const again = (await router.route({ text: 'sort these numbers' }, [first[0]!])).candidates.map(c => c.agent)
    expect(again).not.toContain(first[0])
  })

  it('filters by policy flags and I/O schema before ranking, and leaves out hosts that missed a beacon', async () => {
    const peers = await mesh(3)
    const router = peers[0]!.router
    await indexed(peers[0]!)
    expect((await router.route({ text: 'sort a list', policy: ['network'] }, [])).candidates).toEqual([])
    expect((await router.route({ text: 'sort a list', policy: ['deterministic', 'no-network'] }, [])).candidates.length).toBe(3)
    const sortVcv = peers[0]!.capability.agents().find(v => v.body.agent.endsWith('/sort'))!
    const hash = Buffer.from(sortVcv.body.schemaHash).toString('hex')
    const bySchema = await router.route({ text: 'do something with this', schemaHash: hash }, [])
    expect(bySchema.candidates.map(c => c.agent.split('/')[1])).toEqual(['sort', 'sort', 'sort'])

    const gone = peers[2]!
    await stop(gone)
    const first = await router.route({ text: 'sort a list' }, [])
    expect((first.explanation as { skipped: string[] }).skipped).toEqual([`${gone.peerId}/sort`])
    const second = await router.route({ text: 'sort a list' }, [])
    const screened = (second.explanation as { screened: Array<{ agent: string }> }).screened.map(h => h.agent)
    expect(screened.some(a => a.startsWith(gone.peerId))).toBe(false) // filtered before ranking, no beacon wasted
    expect(second.candidates).toHaveLength(2)
  })

  it('a host this peer refuses (banned for misbehaving) is never screened, though its agents are still in the table', async () => {
    const peers = await mesh(3)
    const p = peers[0]!
    await indexed(p)
    const banned = peers[1]!
    p.guard.refuse(banned.peerId, 'test: flooding')
    for (let i = 0; i < 5; i++) {
      const answer = await p.router.route({ text: 'sort a list' }, [])
      const screened = (answer.explanation as { screened: Array<{ agent: string }> }).screened.map(h => h.agent)
      expect(screened.length).toBeGreaterThan(0)
      expect(screened.some(a => a.startsWith(banned.peerId))).toBe(false)
    }
    expect(p.capability.agents().some(v => v.body.agent.startsWith(banned.peerId))).toBe(true)
  })

  it('learns from outcomes, and its state survives a restart', async () => {
    const peers = await mesh(2)
    const p = peers[0]!
    await indexed(p)
    for (let i = 0; i < 5; i++) {
      const report = await p.tasks.submit({ subtasks: [{ id: 'calc', capability: { text: 'calculate an arithmetic expression' }, input: { expression: `${i} + 1` } }] }).finished
      expect(report).toMatchObject({ status: 'done', result: { calc: { value: i + 1 } } })
    }
    // Every chosen dispatch was rewarded: the model now expects a good outcome from arithmetic agents.
    const scores = ((await p.router.route({ text: 'calculate an arithmetic expression' }, [])).explanation as { scores: Array<{ mean: number }> }).scores
    expect(Math.max(...scores.map(x => x.mean))).toBeGreaterThan(0.3)
    const dataDir = p.dataDir
    const atStop = JSON.stringify(p.router.policy.toJSON())
    await stop(p) // flushes the policy to the data directory
    const saved = JSON.parse(await readFile(join(dataDir, 'bandit.json'), 'utf8')) as { format: string, policy: string }
    expect(saved).toMatchObject({ format: 'agentmesh/routing-policy', policy: 'linucb' })
    const again = await peer({ dataDir })
    expect(JSON.stringify(again.router.policy.toJSON())).toBe(atStop)
  })

  it('the task API runs tasks, reports their trace, and refuses malformed ones with the reason', async () => {
    const peers = await mesh(2)
    await indexed(peers[0]!)
    const api = await startApi(peers[0]!, 0)
    closers.push(api.close)
    const base = `http://127.0.0.1:${api.port}`
    const auth = { authorization: `Bearer ${api.token}` }
    const ran = await (await fetch(`${base}/run`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify({ text: 'convert units of measurement', input: { value: 100, from: 'C', to: 'F' } }) })).json() as TaskReport
    expect(ran).toMatchObject({ status: 'done', result: { run: { value: 212, unit: 'F' } } })
    expect(ran.trace.map(t => t.kind)).toEqual(['start', 'route', 'dispatch', 'result', 'done'])

    const yaml = 'subtasks:\n  - id: s\n    capability: { text: sort a list }\n    input: { items: [3, 1, 2] }\n'
    const accepted = await fetch(`${base}/tasks`, { method: 'POST', body: yaml, headers: auth })
    expect(accepted.status).toBe(202)
    const { id } = await accepted.json() as { id: string }
    await peers[0]!.tasks.get(id) // known at once, running or done
    const waited = await (await fetch(`${base}/tasks?wait=1`, { method: 'POST', body: yaml, headers: auth })).json() as TaskReport
    expect(waited.result).toEqual({ s: { items: [1, 2, 3], count: 3 } })
    const view = await (await fetch(`${base}/tasks/${waited.id}`)).json() as { status: string, report?: TaskReport }
    expect(view).toMatchObject({ id: waited.id, status: 'done', report: { result: { s: { items: [1, 2, 3], count: 3 } } } })
    expect((await (await fetch(`${base}/tasks/${id}`)).json() as { id: string }).id).toBe(id)

    const cyclic = await fetch(`${base}/tasks`, { method: 'POST', body: JSON.stringify({ subtasks: [{ id: 'a', capability: { text: 'x' }, dependsOn: ['b'] }, { id: 'b', capability: { text: 'y' }, dependsOn: ['a'] }] }), headers: { 'content-type': 'application/json', ...auth } })
    expect(cyclic.status).toBe(400)
    expect((await cyclic.json() as { error: string }).error).toMatch(/cycle: (a -> b -> a|b -> a -> b)/)
    const garbage = await fetch(`${base}/tasks`, { method: 'POST', body: '{ not: [yaml', headers: { 'content-type': 'application/yaml', ...auth } })
    expect(garbage.status).toBe(400)
    expect((await fetch(`${base}/tasks/nope`)).status).toBe(404)
    const huge = await fetch(`${base}/tasks`, { method: 'POST', body: 'x'.repeat(2 * 1024 * 1024), headers: auth }).catch(() => undefined)
    expect(huge === undefined || huge.status === 413).toBe(true)
  })

  it('agentmesh run and submit print the result and the routing explanation', async () => {
    const peers = await mesh(2)
    await indexed(peers[0]!)
    const api = await startApi(peers[0]!, 0)
    closers.push(api.close)
    const port = String(api.port)
    // --data: the CLI reads the peer's API token from its data directory.
    const data = peers[0]!.dataDir
    const ran = await run(process.execPath, [BIN, 'run', 'what is 6 times 7', '--input', '{"expression": "6*7"}', '--api-port', port, '--data', data])
    expect(ran.stdout).toMatch(/task task-\d+: done/)
    expect(ran.stdout).toMatch(/"value": 42/)
    expect(ran.stdout).toMatch(/CANDIDATE\s+SIMILARITY\s+UCB MEAN\s+BONUS\s+SCORE/)
    expect(ran.stdout).toMatch(/→ +…\w+\/arithmetic/)

    const submitted = await run(process.execPath, [BIN, 'submit', join(import.meta.dirname, '..', '..', 'node', 'agents', 'demo-task.yaml'), '--data', data, '--json'])
    const report = JSON.parse(submitted.stdout) as TaskReport
    expect(report.status).toBe('done')
    expect(report.result).toEqual({ report: { result: { words: 28, power: 1000, top: ['asks', 'bandit', 'candidates'] } } })

    const dir = await mkdtemp(join(tmpdir(), 'agentmesh-task-'))
    dirs.push(dir)
    await writeFile(join(dir, 'bad.yaml'), 'subtasks:\n  - id: a\n    capability: { text: x }\n    dependsOn: [ghost]\n')
    const bad = await run(process.execPath, [BIN, 'submit', join(dir, 'bad.yaml'), '--api-port', port, '--data', data]).catch((err: { code: number, stderr: string }) => err)
    expect(bad).toMatchObject({ code: 2, stderr: expect.stringMatching(/refused the task: subtask "a" depends on "ghost"/) })
  })
})
