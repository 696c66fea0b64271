/**
 * `npm run bench -- faults [--json] [--quick]`: faults injected into 5 real peer processes on
 * 127.0.0.1 (kill -9 of a requester, an executor's host, a consensus member; store files torn in
 * half; SIGTERM under load). One line per fault: what was lost, whether the peer said so, how
 * long recovery took. The last line sums up; judging is the reader's, so it always exits 0.
 */
import type { BenchOptions } from '../bench.ts'
import { Mesh, until, type Line } from './faults/mesh.ts'
import { SlowLlm } from './faults/slow-llm.ts'
import { killExecutor, killMember, killRequester, remember } from './faults/kills.ts'
import { storeFiles, truncateStore } from './faults/stores.ts'
import { sigtermUnderLoad } from './faults/sigterm.ts'
import { ended, submit, view } from './faults/tasks.ts'

const PEERS = 5

export async function * faultsBench (options: BenchOptions): AsyncIterable<Record<string, unknown>> {
  const llm = new SlowLlm()
  await llm.start()
  const mesh = new Mesh(llm)
  const lines: Line[] = []
  try {
    const t0 = performance.now()
    await mesh.start(PEERS)
    const r = mesh.peers[0]!
    // Routing needs the table: wait until the requester knows every host's agents.
    const known = await until(async () => {
      const agents = (await mesh.api(r, 'GET', '/agents')).body as Array<{ agent: string }>
      return agents.filter(a => a.agent.endsWith('/slow')).length >= PEERS - 1 && agents.filter(a => a.agent.endsWith('/calc')).length >= PEERS ? true : undefined
    }, 60_000)
    if (known === undefined) throw new Error('the requester never learned every peer\'s agents')
    // Certificates the mesh holds before any fault: two trusted tasks that commit.
    const warm = [`warm-${Date.now().toString(36)}-0`, `warm-${Date.now().toString(36)}-1`]
    for (const id of warm) { await submit(mesh, r, id, 'trusted-fast'); remember(0, id) }
    const warmed = await until(async () => { const v = await Promise.all(warm.map(async id => await view(mesh, r, id))); return v.every(ended) ? v : undefined }, 60_000)
    yield { fault: 'setup', peers: PEERS, setupMs: Math.round(performance.now() - t0), warmTasks: warmed?.map(v => v.state) ?? 'not finished', certificates: (await mesh.certificates(r)).size }

    const faults: Array<[string, () => Promise<Line>]> = [
      ['kill-requester', async () => await killRequester(mesh, options.quick)],
      ['kill-executor', async () => await killExecutor(mesh, options.quick)],
      ['kill-member', async () => await killMember(mesh, options.quick)]
    ]
    for (const [name, run] of faults) { await revive(mesh); yield record(lines, await guarded(name, run)) }
    // The store files of the requester (it holds tasks, certificates, the bandit, the table).
    await mesh.stop(r, 'SIGTERM')
    const files = storeFiles(r.dir, !options.quick)
    await mesh.run(r)
    for (const file of files) { await revive(mesh); yield record(lines, await guarded(`truncate-${file}`, async () => await truncateStore(mesh, r, file))) }
    await revive(mesh)
    yield record(lines, await guarded('sigterm-under-load', async () => await sigtermUnderLoad(mesh, options.quick)))
  } catch (err) {
    yield record(lines, { fault: 'bench-error', error: (err as Error).message.slice(0, 500), tasksLost: 0, certificatesLost: 0, loud: false })
  } finally {
    await mesh.close()
    await llm.close()
  }
  yield {
    fault: 'summary',
    allZeroLost: lines.every(l => Number(l.tasksLost ?? 0) === 0 && Number(l.certificatesLost ?? 0) === 0),
    allLoud: lines.every(l => l.loud === true || l.loud === 'n/a'),
    faults: lines.length,
    lossy: lines.filter(l => Number(l.tasksLost ?? 0) > 0 || Number(l.certificatesLost ?? 0) > 0).map(l => l.fault),
    silent: lines.filter(l => !(l.loud === true || l.loud === 'n/a')).map(l => l.fault)
  }
}

/** A fault that broke its harness may leave a peer down: start it again before the next one. */
async function revive (mesh: Mesh): Promise<void> {
  for (const p of mesh.peers) if (!mesh.alive(p)) await mesh.run(p)
}

function record (lines: Line[], line: Line): Line { lines.push(line); return line }

/** A fault whose harness broke is a line too (with the error), not the end of the run. */
async function guarded (fault: string, run: () => Promise<Line>): Promise<Line> {
  try {
    return await run()
  } catch (err) {
    return { fault, error: (err as Error).message.slice(0, 400), tasksLost: -1, certificatesLost: -1, recoveredMs: -1, loud: false }
  }
}
