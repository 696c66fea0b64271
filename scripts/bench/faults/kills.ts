/** Faults 1–3: SIGKILL of the requester, of an executor's host, of a consensus member. */
import { RESTARTED } from '../../../node/services/tasks.ts'
import { sleep, until, type Mesh, type Line } from './mesh.ts'
import { ended, submit, view, type Kind, type View } from './tasks.ts'

let serial = 0
const newId = (fault: string): string => `${fault}-${Date.now().toString(36)}-${serial++}`

/** Every id any fault submitted to a peer, for the later store faults to look up again. */
export const submittedTo = new Map<number, string[]>()
export function remember (peer: number, id: string): void { submittedTo.set(peer, [...submittedTo.get(peer) ?? [], id]) }

/** 1. Tasks in flight on R, R killed and started again: every id answers, the interrupted ones loudly. */
export async function killRequester (mesh: Mesh, quick: boolean): Promise<Line> {
  const r = mesh.peers[0]!
  mesh.llm.delayMs = 4000
  const kinds: Kind[] = ['trusted-slow', 'slow', 'fast']
  const ids: Array<{ id: string, kind: Kind }> = []
  for (let i = 0; i < (quick ? 4 : 12); i++) ids.push({ id: newId('kr'), kind: kinds[i % 3]! })
  const acked = (await Promise.all(ids.map(async t => (await submit(mesh, r, t.id, t.kind)) ? t : undefined))).filter(t => t !== undefined)
  for (const t of acked) remember(0, t.id)
  // Kill once every slow task reached its executor (so they are surely in flight).
  const slowIds = acked.filter(t => t.kind !== 'fast').map(t => t.id)
  await until(() => slowIds.every(id => mesh.llm.requests.some(q => q.prompt === id)) ? true : undefined, 15_000)
  await sleep(300)
  const before = new Map(await Promise.all(acked.map(async t => [t.id, await view(mesh, r, t.id)] as const)))
  const killed = await mesh.stop(r, 'SIGKILL')
  const t0 = performance.now()
  let restartError: string | undefined
  try { await mesh.run(r) } catch (err) { restartError = (err as Error).message.slice(0, 300) }
  const readyMs = Math.round(performance.now() - t0)
  const after = new Map<string, View>()
  await until(async () => {
    for (const t of acked) if (!ended(after.get(t.id) ?? { status: 0, state: '', trace: [] })) after.set(t.id, await view(mesh, r, t.id))
    return acked.every(t => ended(after.get(t.id)!)) ? true : undefined
  }, 30_000)
  const recoveredMs = Math.round(performance.now() - t0)
  await sleep(300) // the restart lines come right after "ready", maybe in a later chunk
  const said = new Set(mesh.lines(r).filter(e => e.event === 'task-ended-by-restart').map(e => String(e.task)))
  const lost = acked.filter(t => !ended(after.get(t.id)!)).map(t => t.id)
  const interrupted = acked.filter(t => before.get(t.id)!.state === 'running' || after.get(t.id)!.reason === RESTARTED).map(t => t.id)
  const silent = interrupted.filter(id => !said.has(id) || after.get(id)!.reason !== RESTARTED)
  return {
    fault: 'kill-requester',
    tasksLost: lost.length,
    certificatesLost: 0,
    recoveredMs,
    loud: interrupted.length > 0 && silent.length === 0,
    submitted: ids.length,
    acknowledged: acked.length,
    runningAtKill: acked.filter(t => before.get(t.id)!.state === 'running').length,
    interrupted: interrupted.length,
    endedByRestartLines: said.size,
    silentlyInterrupted: silent,
    readyMs,
    killSignal: killed.signal,
    ...(lost.length > 0 ? { lost: lost.map(id => ({ id, state: after.get(id)?.state })) } : {}),
    ...(restartError !== undefined ? { restartError } : {}),
    statesAfter: countStates([...after.values()])
  }
}

/** 2. The host of a running task's agent is killed: the task reroutes (or escalates) and says why. */
export async function killExecutor (mesh: Mesh, quick: boolean): Promise<Line> {
  const r = mesh.peers[0]!
  mesh.llm.delayMs = 5000
  const ids = Array.from({ length: quick ? 2 : 4 }, () => newId('ke'))
  const start = mesh.llm.requests.length
  const acked = (await Promise.all(ids.map(async id => (await submit(mesh, r, id, 'slow')) ? id : undefined))).filter(id => id !== undefined)
  for (const id of acked) remember(0, id)
  const first = await until(() => mesh.llm.requests.slice(start).find(q => acked.includes(q.prompt)), 15_000)
  if (first === undefined) return { fault: 'kill-executor', tasksLost: acked.length, certificatesLost: 0, recoveredMs: -1, loud: false, error: 'no task reached an executor within 15 s' }
  await sleep(200) // let the other tasks reach theirs
  const victim = mesh.peers[first.peer]!
  const victimAgent = `${victim.peerId}/slow`
  const onVictim = new Set(mesh.llm.requests.slice(start).filter(q => q.peer === victim.index && acked.includes(q.prompt)).map(q => q.prompt))
  await mesh.stop(victim, 'SIGKILL')
  const t0 = performance.now()
  const after = new Map<string, View>()
  const BOUND = 45_000
  await until(async () => {
    for (const id of acked) if (!ended(after.get(id) ?? { status: 0, state: '', trace: [] })) after.set(id, await view(mesh, r, id))
    return acked.every(id => ended(after.get(id)!)) ? true : undefined
  }, BOUND)
  const recoveredMs = Math.round(performance.now() - t0)
  const settled = (v: View): boolean => v.state === 'done' || (v.state === 'escalated' && (v.reason ?? '') !== '')
  const lost = acked.filter(id => !settled(after.get(id)!))
  // Loud: the trace of each task that was on the killed host names what happened to that attempt.
  const said = (v: View): boolean => v.trace.some(e => (e.kind === 'reroute' || e.kind === 'escalate') && (e.agent === undefined || e.agent === victimAgent) && (e.reason ?? '') !== '')
  const silent = [...onVictim].filter(id => !said(after.get(id)!))
  const reasons = [...onVictim].flatMap(id => after.get(id)!.trace.filter(e => e.kind === 'reroute' || e.kind === 'escalate').map(e => e.reason ?? ''))
  const restart = performance.now()
  let restartError: string | undefined
  try { await mesh.run(victim) } catch (err) { restartError = (err as Error).message.slice(0, 300) }
  return {
    fault: 'kill-executor',
    tasksLost: lost.length,
    certificatesLost: 0,
    recoveredMs,
    loud: onVictim.size > 0 && silent.length === 0,
    tasks: acked.length,
    onKilledHost: onVictim.size,
    killedPeer: victim.index,
    rerouteReasons: [...new Set(reasons)].map(s => s.slice(0, 120)),
    silent,
    statesAfter: countStates([...after.values()]),
    boundMs: BOUND,
    victimRestartMs: Math.round(performance.now() - restart),
    ...(restartError !== undefined ? { restartError } : {})
  }
}

/**
 * 3. A trusted task: one executor's host answers, then dies before the committee meets (so it is a
 * member of a committee it cannot vote in); the others answer after. The task must commit or
 * escalate with a reason; the dead member, started again, must catch up on every certificate.
 */
export async function killMember (mesh: Mesh, quick: boolean): Promise<Line> {
  const r = mesh.peers[0]!
  const id = newId('km')
  const start = mesh.llm.requests.length
  mesh.llm.hold = q => q.prompt === id
  const others = mesh.peers.filter(p => mesh.alive(p))
  const certsBefore = new Map(await Promise.all(others.map(async p => [p.index, await mesh.certificates(p)] as const)))
  try {
    if (!(await submit(mesh, r, id, 'trusted-slow'))) return { fault: 'kill-member', tasksLost: 1, certificatesLost: 0, recoveredMs: -1, loud: false, error: 'the trusted task was refused' }
    remember(0, id)
    // Three executions of a trusted subtask (trust: true asks for 2 extra), on three hosts.
    await until(() => new Set(mesh.llm.held().filter(q => q.prompt === id).map(q => q.peer)).size >= 3 ? true : undefined, 15_000)
    const held = mesh.llm.held().filter(q => q.prompt === id)
    if (held.length === 0) return { fault: 'kill-member', tasksLost: 1, certificatesLost: 0, recoveredMs: -1, loud: false, error: 'the trusted task reached no executor' }
    const member = mesh.peers[held[0]!.peer]!
    mesh.llm.release(q => q === held[0]) // its signed answer goes to the requester…
    await sleep(quick ? 300 : 500)
    await mesh.stop(member, 'SIGKILL') // …then it dies before the committee meets
    const t0 = performance.now()
    mesh.llm.hold = () => false
    mesh.llm.release(q => q.prompt === id)
    const v = await until(async () => { const x = await view(mesh, r, id); return ended(x) ? x : undefined }, 60_000) ?? await view(mesh, r, id)
    const taskMs = Math.round(performance.now() - t0)
    const survivors = others.filter(p => p !== member)
    const certsAfter = new Map(await Promise.all(survivors.map(async p => [p.index, await mesh.certificates(p)] as const)))
    // Certificates held by the others are unchanged: none they had is gone.
    const othersChanged = survivors.reduce((n, p) => n + [...certsBefore.get(p.index)!].filter(c => !certsAfter.get(p.index)!.has(c)).length, 0)
    const t1 = performance.now()
    let restartError: string | undefined
    try { await mesh.run(member) } catch (err) { restartError = (err as Error).message.slice(0, 300) }
    const meshCerts = new Set([...certsAfter.values()].flatMap(s => [...s]))
    let missing = [...meshCerts]
    const BOUND = 30_000
    await until(async () => {
      const mine = await mesh.certificates(member)
      missing = [...meshCerts].filter(c => !mine.has(c))
      return missing.length === 0 ? true : undefined
    }, BOUND)
    const agree = v.trace.find(e => e.kind === 'agree')
    const committed = v.state === 'done' && agree !== undefined
    const escalatedLoudly = v.state === 'escalated' && (v.reason ?? '') !== ''
    return {
      fault: 'kill-member',
      tasksLost: committed || escalatedLoudly ? 0 : 1,
      certificatesLost: missing.length,
      recoveredMs: Math.round(performance.now() - t1),
      loud: committed || escalatedLoudly,
      task: v.state,
      ...(v.reason !== undefined ? { reason: v.reason.slice(0, 160) } : {}),
      taskMsAfterKill: taskMs,
      executions: mesh.llm.requests.slice(start).filter(q => q.prompt === id).length,
      killedPeer: member.index,
      committee: (agree?.detail as { committee?: number, power?: string } | undefined)?.committee,
      power: (agree?.detail as { power?: string } | undefined)?.power,
      othersCertificatesChanged: othersChanged,
      meshCertificates: meshCerts.size,
      catchUpBoundMs: BOUND,
      ...(restartError !== undefined ? { restartError } : {})
    }
  } finally {
    mesh.llm.hold = () => false
    mesh.llm.release()
  }
}

export function countStates (views: View[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const v of views) out[v.state] = (out[v.state] ?? 0) + 1
  return out
}
