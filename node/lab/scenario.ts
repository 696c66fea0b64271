/**
 * The `agentmesh lab` scenario: real agentmesh processes in the namespaced NAT lab (topology.ts).
 * S public seeds run `agentmesh node --public`; P peers in each of K LANs run `agentmesh join`
 * with the lab's network file. Then, in order:
 *   converge     every joining peer knows every agent (convergedMs from the first joining peer's first dial);
 *   crossNatTask a peer in LAN 1 runs a task only LAN 2's agents can do;
 *   trustedCommit a trusted subtask whose committee spans LANs commits a certificate;
 *   work rounds  every peer sends tasks to the next LAN's agents, before and after the relayed
 *                connections had time to become direct (WebRTC), so task latency is measured over both;
 *   natPairs     the cross-LAN (requester, host) pairs of all that work: direct, relayed or unconnected;
 *   seedKilled   seed 1 is killed (SIGKILL), a peer adds an agent (SIGHUP): every peer learns it and a task reaches it.
 * Every phase has a generous deadline (a loaded machine is slow, not wrong); a phase that misses it
 * is reported as failed with the reason, and the lab is always torn down.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import YAML from 'yaml'
import { loadOrCreateIdentity } from '../storage/identity.ts'
import type { TaskReport } from '../services/task-runner.ts'
import type { ConnectionView } from '../network/status.ts'
import { buildLab, type Lab, type LabOptions } from './topology.ts'
import { apiArgs, apiGetIn, cliJson, LAB_API_PORT, LabProcess } from './processes.ts'
import { certificateFromJson, decodeCommittee, verifyCertificate } from '../../protocols/consensus/index.ts'
import { ed25519Verifier } from '../network/crypto.ts'

export const LAB_NETWORK = 'lab'
const SEED_TCP = 4001
const SEED_WS = 4002

export interface LabScenarioOptions extends LabOptions {
  /** A line of progress for the person watching. */
  say?: (line: string) => void
  /** Deadline of the start and convergence phases (ms). */
  convergeTimeoutMs?: number
  /** How long relayed pairs get to become direct before the second work round (ms). */
  settleTimeoutMs?: number
  /** Keep every process's output here (`<name>.log`); set DEBUG=libp2p:… too for libp2p's own logs. */
  logDir?: string
  /** Tasks each requester sends per work round. */
  tasksPerRound?: number
}

export interface LatencySample { ms: number, via: PairKind }
export type PairKind = 'direct' | 'relayed' | 'none'

export interface LabResult {
  seeds: number
  lans: number
  peers: number
  converged: boolean
  convergedMs: number | null
  reachability: Record<string, number>
  natPairs: { direct: number, relayed: number, none: number, directShare: number | null, /** The pairs that are not direct. */ notDirect: string[] }
  crossNatTask: { ok: boolean, ms: number | null, reason?: string }
  /** Task latency between LANs over direct (WebRTC) connections, and over the relay (a probe pair joined with --no-hole-punching). */
  latency: { direct: Summary, relayed: Summary, note?: string }
  upgrades: { ok: number, failed: number }
  /** committee: members of the committee; lans: how many LANs they sit in; verified: the certificate checked offline here. */
  trustedCommit: { ok: boolean, committee: number | null, lans: number, verified: boolean, certificate?: string, reason?: string }
  seedKilled: { stillConverged: boolean, convergedMs: number | null, taskOk: boolean, reason?: string }
  namespacesLeft: number
  wallMs: number
  errors: string[]
}

interface Summary { tasks: number, medianMs: number | null }

interface Pair { requester: LabProcess, host: LabProcess }

export async function runLabScenario (o: LabScenarioOptions): Promise<LabResult> {
  const say = o.say ?? (() => {})
  const started = Date.now()
  const convergeTimeout = o.convergeTimeoutMs ?? 90_000
  const settleTimeout = o.settleTimeoutMs ?? 45_000
  const perRound = o.tasksPerRound ?? 2
  const errors: string[] = []
  const result: LabResult = {
    seeds: o.seeds,
    lans: o.lans,
    peers: o.lans * o.peersPerLan,
    converged: false,
    convergedMs: null,
    reachability: {},
    natPairs: { direct: 0, relayed: 0, none: 0, directShare: null, notDirect: [] },
    crossNatTask: { ok: false, ms: null },
    latency: { direct: { tasks: 0, medianMs: null }, relayed: { tasks: 0, medianMs: null } },
    upgrades: { ok: 0, failed: 0 },
    trustedCommit: { ok: false, committee: null, lans: 0, verified: false },
    seedKilled: { stillConverged: false, convergedMs: null, taskOk: false },
    namespacesLeft: -1,
    wallMs: 0,
    errors
  }
  say(`building the lab: ${o.seeds} seed${o.seeds === 1 ? '' : 's'}, ${o.lans} LAN${o.lans === 1 ? '' : 's'} behind NAT with ${o.peersPerLan} peer${o.peersPerLan === 1 ? '' : 's'} each${o.lossPct !== undefined ? `, ${o.lossPct}% loss` : ''}${o.delayMs !== undefined ? `, ${o.delayMs} ms delay` : ''}`)
  const lab = await buildLab(o)
  const dir = mkdtempSync(join(lab.dir, 'run-'))
  const procs: LabProcess[] = []
  try {
    await scenario(lab, dir, procs, o, { say, convergeTimeout, settleTimeout, perRound, result })
  } catch (err) {
    errors.push((err as Error).message)
    say(`error: ${(err as Error).message}`)
  } finally {
    await Promise.allSettled(procs.map(async p => { await p.stop() }))
    await lab.destroy().catch(err => { errors.push(`teardown: ${(err as Error).message}`) })
    result.namespacesLeft = await lab.namespacesLeft()
    result.wallMs = Date.now() - started
  }
  return result
}

interface Ctx { say: (line: string) => void, convergeTimeout: number, settleTimeout: number, perRound: number, result: LabResult }

async function scenario (lab: Lab, dir: string, procs: LabProcess[], o: LabScenarioOptions, ctx: Ctx): Promise<void> {
  const { say, result } = ctx
  // Seeds get their identities before they start, so one network file lists them all.
  const seedIds: string[] = []
  for (let i = 0; i < lab.seeds.length; i++) {
    const { key } = await loadOrCreateIdentity(join(dir, `seed${i}`))
    seedIds.push(peerIdFromPrivateKey(key).toString())
  }
  const networkFile = join(dir, 'network.yaml')
  const network = (stun: string[]): string => YAML.stringify({
    name: LAB_NETWORK,
    bootstrap: lab.seeds.map((s, i) => `/ip4/${s.addr}/tcp/${SEED_TCP}/p2p/${seedIds[i]}`),
    stun,
    // The lab's "public" side is 10.250.0.0/16, a private range: a lab setting, never the default on
    // the internet. LAN addresses (192.168.k.x) stay private, so nobody dials into another LAN.
    publicRanges: ['10.250.0.0/16']
  })
  writeFileSync(networkFile, network([`stun:${lab.stun.addr}:${lab.stun.port}`]))
  /** Writes (or rewrites) the agents file of `name`. */
  const agentsFile = (name: string, agents: unknown[]): string => {
    const path = join(dir, `${name}.agents.yaml`)
    writeFileSync(path, YAML.stringify({ agents }))
    return path
  }
  const seedAgents = agentsFile('seed', [{ kind: 'sort' }])
  // Every LAN peer can sit on a committee (arithmetic); only LAN k's peers convert units for skill lan-k.
  const lanAgents = (k: number, extra: unknown[] = []): unknown[] => [
    { kind: 'arithmetic' },
    { kind: 'unit-convert', name: `convert-lan${k}`, skills: ['unit-convert', `lan-${k}`] },
    ...extra
  ]
  const agentsPerSeed = 1
  const agentsPerPeer = lanAgents(1).length

  const deadline = Date.now() + ctx.convergeTimeout
  const seeds = lab.seeds.map((s, i) => new LabProcess(lab, `seed${i + 1}`, s, 0, [
    'node', '--public', '--network', networkFile,
    '--listen', `/ip4/0.0.0.0/tcp/${SEED_TCP}`, '--listen', `/ip4/0.0.0.0/tcp/${SEED_WS}/ws`,
    '--announce', `/ip4/${s.addr}/tcp/${SEED_TCP}`, '--announce', `/ip4/${s.addr}/tcp/${SEED_WS}/ws`,
    '--api-port', String(LAB_API_PORT), '--data', join(dir, `seed${i}`), '--agents', seedAgents, '--ttl', '3600', '--json'
  ], o.logDir))
  procs.push(...seeds)
  await ready(seeds, deadline)
  say(`${seeds.length} seed${seeds.length === 1 ? '' : 's'} up (public nodes: DHT server, circuit relay)`)

  const joinArgs = (name: string, k: number): string[] => [
    'join', networkFile, '--data', join(dir, name), '--agents', agentsFile(name, lanAgents(k)),
    '--api-port', String(LAB_API_PORT), '--ttl', '3600', '--json'
  ]
  const lanPeers: LabProcess[][] = lab.lans.map((lan, i) => lan.peers.map((h, j) => new LabProcess(lab, `lan${i + 1}-peer${j + 1}`, h, i + 1, joinArgs(`lan${i + 1}-peer${j + 1}`, i + 1), o.logDir)))
  const joiners = lanPeers.flat()
  procs.push(...joiners)
  await ready(joiners, deadline)
  say(`${joiners.length} peers started behind ${lab.lans.length} NAT${lab.lans.length === 1 ? '' : 's'}`)

  // Converge: every joining peer knows every agent, its own included.
  const expected = seeds.length * agentsPerSeed + joiners.length * agentsPerPeer
  const firstDial = Math.min(...joiners.map(p => p.events.find(e => e.event === 'dialling')?.at ?? Infinity))
  const reached = await Promise.all(joiners.map(async p => await p.waitFor(e => e.event === 'known' && Number(e.agents) >= expected, deadline)))
  result.converged = reached.every(e => e !== undefined)
  if (result.converged && Number.isFinite(firstDial)) result.convergedMs = Math.max(...reached.map(e => e!.at)) - firstDial
  const lagging = joiners.filter((_, i) => reached[i] === undefined)
  say(result.converged
    ? `converged: all ${joiners.length} peers know all ${expected} agents, ${result.convergedMs} ms after the first dial`
    : `not converged within ${ctx.convergeTimeout / 1000} s: ${lagging.map(p => `${p.name} knows ${lastKnown(p)}/${expected}${p.running ? '' : ` (exited: ${p.tail()})`}`).join(', ')}`)

  const byId = new Map(procs.map(p => [p.peerId ?? '', p]))
  const hostOf = (agent: string | undefined): LabProcess | undefined => agent === undefined ? undefined : byId.get(agent.split('/')[0] ?? '')
  const pairs = new Map<string, Pair>()
  const noteWork = (requester: LabProcess, report: TaskReport): void => {
    for (const t of report.trace) {
      const agents = t.kind === 'dispatch' ? [t.agent] : t.kind === 'agree' ? ((t.detail as { agreed?: string[] } | undefined)?.agreed ?? []) : []
      for (const a of agents) {
        const host = hostOf(a)
        if (host === undefined || host.lan === 0 || host.lan === requester.lan) continue
        const key = pairKey(requester, host)
        if (!pairs.has(key)) pairs.set(key, { requester, host })
      }
    }
  }

  // A task from LAN 1 that only LAN 2's agents can do.
  const requester = lanPeers[0]?.[0]
  if (requester !== undefined && lab.lans.length >= 2) {
    const report = await submit(lab, dir, requester, 'cross-nat', convertTask(2)).catch(err => { result.crossNatTask.reason = (err as Error).message; return undefined })
    if (report !== undefined) {
      noteWork(requester, report)
      const host = hostOf(lastDispatch(report))
      result.crossNatTask = {
        ok: report.status === 'done' && host?.lan === 2,
        ms: took(report),
        ...(report.status !== 'done' ? { reason: report.reason ?? report.status } : host?.lan !== 2 ? { reason: `ran on ${host?.name ?? 'an unknown host'}, not in LAN 2` } : {})
      }
    }
    say(`cross-NAT task LAN 1 → LAN 2: ${result.crossNatTask.ok ? `done in ${result.crossNatTask.ms} ms` : `failed: ${result.crossNatTask.reason}`}`)
  } else {
    result.crossNatTask.reason = 'needs at least 2 LANs with a peer'
  }

  // A trusted subtask: redundant answers, committee across LANs, a certificate.
  if (requester !== undefined) {
    const committee = Math.min(5, joiners.length)
    const yaml = YAML.stringify({
      id: 'lab-trusted', deadlineMs: 60_000,
      subtasks: [{ id: 'calc', capability: { text: 'calculate an arithmetic expression', skills: ['arithmetic'] }, input: { expression: '17 * 23 + 1' }, redundancy: Math.min(3, committee), trust: { committee } }]
    })
    const report = await submit(lab, dir, requester, 'trusted', yaml).catch(err => { result.trustedCommit.reason = (err as Error).message; return undefined })
    if (report !== undefined) {
      noteWork(requester, report)
      const agree = report.trace.find(t => t.kind === 'agree' && (t.detail as { certificate?: string } | undefined)?.certificate !== undefined)
      const detail = (agree?.detail ?? {}) as { certificate?: string }
      // The committee is in the certificate: fetch it from the requester and verify it here, offline.
      const members = detail.certificate === undefined ? undefined : await committeeOf(lab, requester, detail.certificate).catch(err => { result.trustedCommit.reason = (err as Error).message; return undefined })
      const lans = new Set((members?.ids ?? []).map(id => byId.get(id)?.lan).filter(l => l !== undefined && l > 0))
      const spans = lans.size >= Math.min(2, lab.lans.length)
      result.trustedCommit = {
        ok: report.status === 'done' && members?.verified === true && spans,
        committee: members?.ids.length ?? null,
        lans: lans.size,
        verified: members?.verified ?? false,
        ...(detail.certificate !== undefined ? { certificate: detail.certificate } : {}),
        ...(report.status !== 'done' ? { reason: report.reason ?? report.status } : members === undefined ? { reason: result.trustedCommit.reason ?? 'no certificate' } : !members.verified ? { reason: `the certificate does not verify: ${members.problems.join('; ')}` } : !spans ? { reason: 'the committee sits in one LAN' } : {})
      }
    }
    say(`trusted subtask: ${result.trustedCommit.ok ? `committed by a committee of ${result.trustedCommit.committee} across ${result.trustedCommit.lans} LANs` : `failed: ${result.trustedCommit.reason}`}`)
  }

  // Work rounds: every peer asks the next LAN's agents, over whatever connection the pair has.
  const round = async (label: string): Promise<void> => {
    if (lab.lans.length < 2) return
    const sent: Array<{ requester: LabProcess, report: TaskReport }> = []
    await Promise.all(joiners.map(async p => {
      for (let n = 0; n < ctx.perRound; n++) {
        const report = await submit(lab, dir, p, `${label}-${p.name}-${n}`, convertTask((p.lan % lab.lans.length) + 1)).catch(err => { ctx.result.errors.push(`${label} task from ${p.name}: ${(err as Error).message}`); return undefined })
        if (report === undefined) continue
        noteWork(p, report)
        sent.push({ requester: p, report })
      }
    }))
    const done = sent.filter(s => s.report.status === 'done').length
    say(`work round ${label}: ${done}/${sent.length} tasks done`)
  }
  await round('a')

  // Give relayed pairs time to upgrade to WebRTC, then measure again.
  const settleBy = Date.now() + ctx.settleTimeout
  let kinds = await pairKinds(lab, [...pairs.values()])
  while ([...kinds.values()].some(k => k !== 'direct') && Date.now() < settleBy) {
    await new Promise(resolve => setTimeout(resolve, 3000))
    kinds = await pairKinds(lab, [...pairs.values()])
  }
  await round('b')
  kinds = await pairKinds(lab, [...pairs.values()])
  for (const [pair, k] of kinds) {
    result.natPairs[k]++
    if (k !== 'direct') result.natPairs.notDirect.push(`${pair} (${k})`)
  }
  const counted = result.natPairs.direct + result.natPairs.relayed + result.natPairs.none
  result.natPairs.directShare = counted > 0 ? round2(result.natPairs.direct / counted) : null
  for (const p of joiners) {
    for (const e of p.events) if (e.event === 'upgrade') { if (e.ok === true) result.upgrades.ok++; else result.upgrades.failed++ }
    const verdict = [...p.events].reverse().find(e => e.event === 'reachability')?.reachability as { kind?: string } | undefined
    const kind = verdict?.kind ?? 'unknown'
    result.reachability[kind] = (result.reachability[kind] ?? 0) + 1
  }
  say(`cross-LAN pairs that exchanged work: ${result.natPairs.direct} direct, ${result.natPairs.relayed} relayed, ${result.natPairs.none} without a connection`)

  // Latency over direct connections: one requester, one task at a time, nothing else running.
  const samples: LatencySample[] = []
  if (requester !== undefined && lab.lans.length >= 2) {
    samples.push(...await series(lab, dir, requester, 'direct-series', convertTask(2), ctx.perRound * 4, hostOf))
    say(`latency series LAN 1 → LAN 2: ${samples.filter(s => s.via === 'direct').length} tasks over direct connections`)
  }

  // One seed dies; a peer adds an agent; the rest must learn it and route to it.
  await seedKilled(lab, dir, seeds, lanPeers, agentsFile, lanAgents, expected, ctx)

  // Task latency over the relay, for comparison with the direct pairs above.
  const relayed = await relayProbe(lab, dir, procs, lanPeers, networkFile, agentsFile, expected + 1, o, ctx)
  samples.push(...relayed)
  result.latency = { direct: summary(samples.filter(s => s.via === 'direct')), relayed: summary(samples.filter(s => s.via === 'relayed')), ...(result.latency.note !== undefined ? { note: result.latency.note } : {}) }
}

async function seedKilled (
  lab: Lab, dir: string, seeds: LabProcess[], lanPeers: LabProcess[][],
  agentsFile: (name: string, agents: unknown[]) => string, lanAgents: (k: number, extra?: unknown[]) => unknown[], expected: number, ctx: Ctx
): Promise<void> {
  const { say, result } = ctx
  const victim = seeds[0]
  const reloaded = lanPeers.at(-1)?.at(-1)
  const requester = lanPeers[0]?.[0]
  if (victim === undefined || reloaded === undefined || requester === undefined) {
    result.seedKilled.reason = 'needs a seed and a LAN peer'
    return
  }
  await victim.stop('SIGKILL')
  const killedAt = Date.now()
  say(`killed ${victim.name}; ${reloaded.name} now adds an agent (summarize: its agents file rewritten, then SIGHUP)`)
  agentsFile(reloaded.name, lanAgents(reloaded.lan, [{ kind: 'summarize' }]))
  reloaded.signal('SIGHUP')
  const deadline = Date.now() + ctx.convergeTimeout
  const everyone = lanPeers.flat()
  const reached = await Promise.all(everyone.map(async p => await p.waitFor(e => e.event === 'known' && e.at >= killedAt && Number(e.agents) >= expected + 1, deadline)))
  result.seedKilled.stillConverged = reached.every(e => e !== undefined)
  if (result.seedKilled.stillConverged) result.seedKilled.convergedMs = Math.max(...reached.map(e => e!.at)) - killedAt
  const yaml = YAML.stringify({
    id: 'after-seed-death', deadlineMs: 30_000,
    subtasks: [{ id: 'gist', capability: { text: 'summarize a text', skills: ['summarize'] }, input: { text: 'The seed died. The mesh kept going. Peers learnt of the new agent over the connections they still had.' } }]
  })
  const report = await submit(lab, dir, requester, 'after-seed', yaml).catch(err => { result.seedKilled.reason = (err as Error).message; return undefined })
  if (report !== undefined) {
    const host = lastDispatch(report)?.split('/')[0]
    result.seedKilled.taskOk = report.status === 'done' && host === reloaded.peerId
    if (!result.seedKilled.taskOk) result.seedKilled.reason = report.status !== 'done' ? (report.reason ?? report.status) : 'ran on another host'
  }
  if (!result.seedKilled.stillConverged) {
    const behind = everyone.filter((_, i) => reached[i] === undefined).map(p => `${p.name} knows ${lastKnown(p)}/${expected + 1}`)
    result.seedKilled.reason ??= `not every peer learnt the new agent within ${ctx.convergeTimeout / 1000} s: ${behind.join(', ')}`
  }
  say(`after the seed died: ${result.seedKilled.stillConverged ? `every peer knew the new agent ${result.seedKilled.convergedMs} ms after the kill` : 'not converged'}; task ${result.seedKilled.taskOk ? 'done' : `failed: ${result.seedKilled.reason}`}`)
}

/**
 * Two extra peers, in LAN 1 and LAN 2, joined with --no-hole-punching: their pair stays on the relay
 * of a seed still alive. Returns their task latencies.
 */
async function relayProbe (
  lab: Lab, dir: string, procs: LabProcess[], lanPeers: LabProcess[][], networkFile: string,
  agentsFile: (name: string, agents: unknown[]) => string, known: number, o: LabScenarioOptions, ctx: Ctx
): Promise<LatencySample[]> {
  const { say, result } = ctx
  const seedAlive = procs.some(p => p.lan === 0 && p.running)
  const [h1, h2] = [lanPeers[0]?.[0]?.host, lanPeers[1]?.[0]?.host]
  if (!seedAlive || h1 === undefined || h2 === undefined) {
    result.latency.note = 'relayed latency needs a seed alive after the kill (--seeds 2 or more) and 2 LANs'
    return []
  }
  const probe = (n: number, host: typeof h1, agents: unknown[]): LabProcess => new LabProcess(lab, `relay-probe${n}`, host, n, [
    'join', networkFile, '--data', join(dir, `relay-probe${n}`), '--agents', agentsFile(`relay-probe${n}`, agents),
    '--api-port', String(LAB_API_PORT + 1), '--ttl', '3600', '--no-hole-punching', '--json'
  ], o.logDir)
  const requester = probe(1, h1, [{ kind: 'sort', name: 'probe-sort' }])
  const host = probe(2, h2, [{ kind: 'unit-convert', name: 'convert-probe', skills: ['unit-convert', 'relay-probe'] }])
  procs.push(requester, host)
  const deadline = Date.now() + ctx.convergeTimeout
  await ready([requester, host], deadline)
  if (await requester.waitFor(e => e.event === 'known' && Number(e.agents) >= known + 2, deadline) === undefined) {
    result.latency.note = `the relay probe did not learn the probe agent within ${ctx.convergeTimeout / 1000} s`
    return []
  }
  const yaml = YAML.stringify({
    id: 'relay-probe', deadlineMs: 30_000,
    subtasks: [{ id: 'convert', capability: { text: 'convert a length between units', skills: ['relay-probe'] }, input: { value: 5, from: 'mi', to: 'km' } }]
  })
  const samples = await series(lab, dir, requester, 'relay-probe', yaml, ctx.perRound * 4, agent => agent?.startsWith(`${host.peerId ?? '?'}/`) === true ? host : undefined)
  const via = samples[0]?.via ?? 'none'
  say(`relay probe (--no-hole-punching): ${samples.length} tasks over a ${via} connection`)
  if (samples.some(s => s.via !== 'relayed')) result.latency.note = 'the relay probe pair was not relayed throughout'
  return samples
}

/**
 * `n` tasks from `requester`, one after the other; the first pays for the dial and is left out.
 * Each sample is labelled with what connects the requester to the host that ran it, checked after.
 */
async function series (lab: Lab, dir: string, requester: LabProcess, label: string, yaml: string, n: number, hostOf: (agent: string | undefined) => LabProcess | undefined): Promise<LatencySample[]> {
  const done: Array<{ ms: number, host: LabProcess }> = []
  for (let i = 0; i < n; i++) {
    const report = await submit(lab, dir, requester, `${label}-${i}`, yaml).catch(() => undefined)
    const host = report === undefined ? undefined : hostOf(lastDispatch(report))
    if (report?.status === 'done' && host !== undefined && i > 0) done.push({ ms: took(report) ?? 0, host })
  }
  const kinds = await pairKinds(lab, done.map(d => ({ requester, host: d.host })))
  return done.map(d => ({ ms: d.ms, via: kinds.get(pairKey(requester, d.host)) ?? 'none' }))
}

/** The committee members of the requester's certificate of consensus instance `instance`, and whether it verifies offline. */
async function committeeOf (lab: Lab, requester: LabProcess, instance: string): Promise<{ ids: string[], verified: boolean, problems: string[] }> {
  const cert = certificateFromJson(await apiGetIn<unknown>(lab, requester.host, requester.apiPort, `/certificates/${encodeURIComponent(instance)}`))
  const check = verifyCertificate(cert, ed25519Verifier())
  return { ids: decodeCommittee(cert.statement).body.members.map(m => m.id), verified: check.ok, problems: check.ok ? [] : check.problems }
}

async function ready (procs: LabProcess[], deadline: number): Promise<void> {
  const seen = await Promise.all(procs.map(async p => await p.waitFor(e => e.event === 'ready', deadline)))
  const failed = procs.filter((_, i) => seen[i] === undefined)
  if (failed.length > 0) throw new Error(`did not start: ${failed.map(p => `${p.name}${p.running ? ' (still starting)' : `: ${p.tail() || 'exited'}`}`).join('; ')}`)
}

function convertTask (lan: number): string {
  return YAML.stringify({
    id: `convert-lan${lan}`, deadlineMs: 30_000,
    subtasks: [{ id: 'convert', capability: { text: 'convert a length between units', skills: [`lan-${lan}`] }, input: { value: 5, from: 'mi', to: 'km' } }]
  })
}

/**
 * Submits a task under the id `name`, unique per submission: a peer answers a task id it already
 * holds with that task's report (submission is idempotent), so reusing one id measured the first
 * task again and again (the latency series reported its 619 ms route, DHT lookup included, for
 * every task).
 */
async function submit (lab: Lab, dir: string, from: LabProcess, name: string, yaml: string): Promise<TaskReport> {
  const file = join(dir, `task-${name}.yaml`)
  writeFileSync(file, YAML.stringify({ ...YAML.parse(yaml) as object, id: name }))
  return await cliJson<TaskReport>(lab, from.host, ['submit', file, ...apiArgs(from)])
}

/** Per pair, what connects the two now (seen from the requester): a direct connection, only a relayed one, or none. */
async function pairKinds (lab: Lab, pairs: Pair[]): Promise<Map<string, PairKind>> {
  const requesters = [...new Set(pairs.map(p => p.requester))]
  const views = new Map(await Promise.all(requesters.map(async r => {
    const view = await cliJson<{ peers: ConnectionView[] }>(lab, r.host, ['peers', ...apiArgs(r)]).catch(() => ({ peers: [] }))
    return [r, view.peers] as const
  })))
  const kinds = new Map<string, PairKind>()
  for (const { requester, host } of pairs) {
    const conns = (views.get(requester) ?? []).filter(c => c.peerId === host.peerId)
    kinds.set(pairKey(requester, host), conns.some(c => c.kind !== 'relayed') ? 'direct' : conns.length > 0 ? 'relayed' : 'none')
  }
  return kinds
}

/** One key per unordered pair: work in either direction is the same pair. */
function pairKey (a: LabProcess, b: LabProcess): string {
  return a.name < b.name ? `${a.name}~${b.name}` : `${b.name}~${a.name}`
}

function lastDispatch (report: TaskReport): string | undefined {
  return report.trace.filter(t => t.kind === 'dispatch').at(-1)?.agent
}

function took (report: TaskReport): number | null {
  return report.trace.length > 0 ? report.trace.at(-1)!.at - report.trace[0]!.at : null
}

function lastKnown (p: LabProcess): number {
  return Number([...p.events].reverse().find(e => e.event === 'known')?.agents ?? 0)
}

function summary (samples: LatencySample[]): Summary {
  const sorted = samples.map(s => s.ms).sort((a, b) => a - b)
  return { tasks: sorted.length, medianMs: sorted.length > 0 ? sorted[Math.floor((sorted.length - 1) / 2)]! : null }
}

const round2 = (x: number): number => Math.round(x * 100) / 100
