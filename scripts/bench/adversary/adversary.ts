/**
 * `npm run bench -- adversary [--json] [--quick] [--attack NAME[,NAME…]]`: for each attack, a fresh
 * mesh of 8 honest peer processes and 1 rogue process on 127.0.0.1; the honest peers keep running
 * normal and trusted tasks while the rogue attacks; one line per attack:
 * {"attack","honestTaskSuccess","honestLinksKept","apiP99Ms","rssGrowthMb","rogueBannedMs","crashes",…}.
 * Targets once defended: success ≥ 0.95, links ≥ 0.9, p99 ≤ 200 ms, RSS ≤ 100 MB, 0 crashes,
 * rogue banned within 10 s.
 */
import { getJson, postJson } from './api.ts'
import { HTTP_ATTACKS } from './attacks.ts'
import { startMesh, type HonestPeer, type Mesh } from './harness.ts'
import { honestLinks, Monitor, percentile, rssOf } from './measure.ts'
import { ATTACKS, DEFAULT_SETTINGS, type AttackName, type AttackSettings } from './protocol.ts'
import { Workload, type WorkloadOptions } from './workload.ts'

export interface AdversaryConfig {
  honestPeers: number
  attackMs: number
  drainMs: number
  workload: WorkloadOptions
  settings: AttackSettings
}

/**
 * Defaults, each overridable from the environment for exploring (ADVERSARY_ATTACK_MS,
 * ADVERSARY_DRAIN_MS, ADVERSARY_TASK_INTERVAL_MS, ADVERSARY_PEERS, and ADVERSARY_SETTINGS as JSON
 * over AttackSettings, e.g. '{"slowConnections":200}').
 */
export function adversaryConfig (quick: boolean, env: NodeJS.ProcessEnv = process.env): AdversaryConfig {
  const num = (name: string, fallback: number): number => {
    const v = Number(env[name])
    return env[name] !== undefined && Number.isFinite(v) && v > 0 ? v : fallback
  }
  return {
    honestPeers: num('ADVERSARY_PEERS', 8),
    attackMs: num('ADVERSARY_ATTACK_MS', quick ? 12_000 : 30_000),
    drainMs: num('ADVERSARY_DRAIN_MS', quick ? 10_000 : 20_000),
    workload: { intervalMs: num('ADVERSARY_TASK_INTERVAL_MS', 3000), normalDeadlineMs: 15_000, trustedDeadlineMs: 30_000 },
    settings: { ...DEFAULT_SETTINGS, ...(env.ADVERSARY_SETTINGS !== undefined ? JSON.parse(env.ADVERSARY_SETTINGS) as Partial<AttackSettings> : {}) }
  }
}

/** Which attacks `--attack` names (all of them, baseline first, when it names none). */
export function selectAttacks (names: string | undefined): AttackName[] {
  if (names === undefined) return [...ATTACKS]
  return names.split(',').map(n => {
    if (!(ATTACKS as readonly string[]).includes(n)) throw new Error(`no attack "${n}": choose from ${ATTACKS.join(', ')}`)
    return n as AttackName
  })
}

export async function * adversaryBench (options: { quick: boolean, attack?: string }): AsyncGenerator<Record<string, unknown>> {
  const config = adversaryConfig(options.quick)
  for (const attack of selectAttacks(options.attack)) {
    process.stderr.write(`adversary: ${attack}: starting ${config.honestPeers} honest peers and the rogue\n`)
    const mesh = await startMesh(config.honestPeers, config.settings.idWorkBits)
    try {
      yield await runAttack(mesh, attack, config, options.quick)
    } finally {
      await mesh.close()
    }
  }
}

async function runAttack (mesh: Mesh, attack: AttackName, config: AdversaryConfig, quick: boolean): Promise<Record<string, unknown>> {
  const { honest } = mesh
  const expected = (honest.length + 1) * 6
  const convergedMs = await converge(honest, expected, 60_000)
  const warmup = await warmUp(honest[0]!, config.workload.trustedDeadlineMs)
  const linksBefore = await honestLinks(honest)
  const rssBefore = await rssOf(honest)
  process.stderr.write(`adversary: ${attack}: converged in ${convergedMs ?? '—'} ms, warm-up ${warmup}, ${linksBefore.size} honest links; attacking for ${config.attackMs} ms\n`)

  const monitor = new Monitor(honest, mesh.rogue.peerId)
  const workload = new Workload(honest, config.workload)
  const report = await mesh.attack(attack, config.attackMs, config.settings)
  const tasks = await workload.finish(config.drainMs)
  monitor.stop()
  const linksAfter = await honestLinks(honest)
  const rssAfter = await rssOf(honest)

  const growth = [...rssAfter].map(([i, mb]) => mb - (rssBefore.get(i) ?? mb))
  const peak = [...monitor.rssPeak].map(([i, mb]) => mb - (rssBefore.get(i) ?? mb))
  const ban = HTTP_ATTACKS.has(attack) ? { bannedMs: null, droppedBy: null, graylistedBy: null } : monitor.bannedAfter(report.firstAttackAt)
  const crashed = honest.filter(h => h.crashed !== undefined)
  const submitted = tasks.normal.submitted + tasks.trusted.submitted
  const round = (x: number | null, d = 1): number | null => x === null ? null : Math.round(x * 10 ** d) / 10 ** d
  const share = (ok: number, n: number): number | null => n === 0 ? null : round(ok / n, 3)
  return {
    attack,
    honestTaskSuccess: share(tasks.normal.ok + tasks.trusted.ok, submitted),
    honestLinksKept: share([...linksBefore].filter(pair => linksAfter.has(pair)).length, linksBefore.size),
    apiP99Ms: round(percentile(monitor.latencies, 99)),
    rssGrowthMb: round(growth.length === 0 ? null : Math.max(...growth)),
    rogueBannedMs: ban.bannedMs,
    crashes: crashed.length,
    normalTaskSuccess: share(tasks.normal.ok, tasks.normal.submitted),
    trustedTaskSuccess: share(tasks.trusted.ok, tasks.trusted.submitted),
    tasks: { normal: tasks.normal, trusted: tasks.trusted, failures: tasks.failures },
    links: { before: linksBefore.size, after: linksAfter.size },
    api: { polls: monitor.latencies.length, p50Ms: round(percentile(monitor.latencies, 50)), maxMs: round(percentile(monitor.latencies, 100)), errors: Object.fromEntries(monitor.apiErrors) },
    rssPeakGrowthMb: round(peak.length === 0 ? null : Math.max(...peak)),
    rogue: { droppedBy: ban.droppedBy, graylistedBy: ban.graylistedBy, sent: report.sent, sendErrors: report.sendErrors, ...report.detail },
    crashReasons: crashed.map(h => `peer ${h.index}: exit ${h.crashed!.code ?? h.crashed!.signal} ${h.crashed!.stderr.slice(-300)}`),
    setup: { convergedMs, warmup },
    attackMs: config.attackMs,
    taskIntervalMs: config.workload.intervalMs,
    quick
  }
}

/** Ms until every honest peer knows and has indexed `expected` agents; null if not within `timeoutMs`. */
async function converge (honest: HonestPeer[], expected: number, timeoutMs: number): Promise<number | null> {
  const started = Date.now()
  while (Date.now() - started < timeoutMs) {
    const done = await Promise.all(honest.map(async h => {
      try {
        const s = await getJson(h.apiPort, '/status') as { agents: number, index: { size: number } }
        return s.agents >= expected && s.index.size >= expected
      } catch { return false }
    }))
    if (done.every(Boolean)) return Date.now() - started
    await new Promise(resolve => setTimeout(resolve, 250))
  }
  return null
}

/** One trusted task before the attack: warms routing and leaves a certificate for the rogue to replay. */
async function warmUp (h: HonestPeer, deadlineMs: number): Promise<string> {
  const task = { id: 'warm-up', deadlineMs, subtasks: [{ id: 'calc', capability: { text: 'calculate an arithmetic expression', skills: ['arithmetic'] }, input: { expression: '17 * 23 + 1' }, trust: true }] }
  try {
    const { body } = await postJson(h.apiPort, '/tasks?wait=1', task, deadlineMs + 10_000)
    const report = body as { status?: string, reason?: string }
    return report.status === 'done' ? 'done' : `${report.status ?? '?'}: ${(report.reason ?? '').slice(0, 80)}`
  } catch (err) {
    return `failed: ${(err as Error).message.slice(0, 80)}`
  }
}
