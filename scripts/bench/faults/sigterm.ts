/**
 * Fault 5: SIGTERM while tasks pour in and HTTP clients hold keep-alive connections (one idle,
 * one waiting on `?wait=1`). The peer must exit promptly and lose no acknowledged task.
 */
import { Agent, request } from 'node:http'
import { sleep, until, type Line, type Mesh } from './mesh.ts'
import { remember } from './kills.ts'
import { countStates } from './kills.ts'
import { ended, taskSpec, trySubmit, view, type View } from './tasks.ts'

export async function sigtermUnderLoad (mesh: Mesh, quick: boolean): Promise<Line> {
  const p = mesh.peers[0]!
  mesh.llm.delayMs = 3000
  const agent = new Agent({ keepAlive: true, maxSockets: 2 })
  const call = async (method: string, path: string, body?: unknown): Promise<{ status: number, text: string }> => await new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: p.apiPort, method, path, agent, headers: { authorization: `Bearer ${p.token}`, 'content-type': 'application/json' } }, res => {
      let text = ''
      res.setEncoding('utf8').on('data', (d: string) => { text += d }).on('end', () => resolve({ status: res.statusCode ?? 0, text }))
    })
    req.on('error', reject)
    req.end(body === undefined ? undefined : JSON.stringify(body))
  })
  try {
    await call('GET', '/status') // leaves an idle keep-alive socket in the agent
    const waitId = `st-wait-${Date.now().toString(36)}`
    remember(0, waitId)
    const status = (text: string): string => { try { return (JSON.parse(text) as { status?: string }).status ?? '' } catch { return `(not JSON: ${text.slice(0, 60)})` } }
    const waiting = call('POST', '/tasks?wait=1', taskSpec(waitId, 'slow')).then(r => `http ${r.status} ${status(r.text)}`, (err: Error) => `error ${(err as NodeJS.ErrnoException).code ?? err.message}`)
    const acked: string[] = []
    const attempted: string[] = []
    const refusals: Record<string, number> = {}
    let n = 0
    let loading = true
    const load = (async () => {
      while (loading) {
        const id = `st-${Date.now().toString(36)}-${n}`
        const kind = n++ % 2 === 0 ? 'fast' : 'slow'
        attempted.push(id)
        void trySubmit(mesh, p, id, kind).then(outcome => {
          if (outcome === 'ok') { acked.push(id); remember(0, id) } else refusals[outcome] = (refusals[outcome] ?? 0) + 1
        })
        await sleep(40)
      }
    })()
    await sleep(quick ? 1500 : 3000)
    const stopped = await mesh.stop(p, 'SIGTERM')
    loading = false
    await load
    const waitOutcome = await Promise.race([waiting, sleep(2000).then(() => 'no answer')])
    await sleep(500) // submissions in flight settle (refused once the port closed)
    const t0 = performance.now()
    await mesh.run(p)
    const readyMs = Math.round(performance.now() - t0)
    const ids = [waitId, ...acked]
    const after = new Map<string, View>()
    await until(async () => {
      for (const id of ids) if (!ended(after.get(id) ?? { status: 0, state: '', trace: [] })) after.set(id, await view(mesh, p, id))
      return ids.every(id => ended(after.get(id)!)) ? true : undefined
    }, 20_000)
    // Not acknowledged but taken anyway (the answer was lost on the way): fine if it answers now.
    const unacked = attempted.filter(id => !acked.includes(id))
    const takenUnacked = (await Promise.all(unacked.map(async id => (await view(mesh, p, id)).status === 200))).filter(Boolean).length
    const lost = ids.filter(id => !ended(after.get(id)!))
    // A task the stop cut short must say why (its report's reason), never end silently.
    const cut = ids.filter(id => after.get(id)!.state !== 'done' && ended(after.get(id)!))
    const silent = cut.filter(id => (after.get(id)!.reason ?? '') === '')
    return {
      fault: 'sigterm-under-load',
      tasksLost: lost.length,
      certificatesLost: 0,
      recoveredMs: Math.round(performance.now() - t0),
      loud: silent.length === 0,
      exitMs: stopped.exitMs,
      exitGoalMs: 5000,
      exitCode: stopped.code,
      ...(stopped.signal !== null ? { exitSignal: stopped.signal } : {}),
      attempted: attempted.length,
      acknowledged: acked.length,
      notAcknowledged: refusals,
      takenButNotAcknowledged: takenUnacked,
      waitRequest: waitOutcome,
      statesAfter: countStates([...after.values()]),
      cutShort: cut.length,
      cutReasons: [...new Set(cut.map(id => (after.get(id)!.reason ?? '').slice(0, 80)))],
      endedByRestartLines: mesh.lines(p).filter(e => e.event === 'task-ended-by-restart').length,
      readyMs,
      ...(lost.length > 0 ? { lostSample: lost.slice(0, 5).map(id => ({ id, state: after.get(id)!.state })) } : {})
    }
  } finally {
    agent.destroy()
  }
}
