/**
 * Fault 4: a store file torn in half while the peer was down (stopped cleanly, file truncated,
 * started again). The peer must say so (`store-damaged`) or refuse to start with the reason, and
 * lose nothing the mesh can give back.
 */
import { copyFileSync, existsSync, readdirSync, statSync, truncateSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { sleep, until, type Line, type Mesh, type MeshPeer } from './mesh.ts'
import { remember, submittedTo } from './kills.ts'
import { ended, submit, view } from './tasks.ts'

/** The files the brief names; the certificate store is whichever of .log / .cbor exists. */
const NAMED = ['consensus/certificates', 'consensus/reputation.json', 'tasks.sqlite', 'table.cbor', 'bandit.json', 'state.json', 'index-texts.json']


/** Every store file in a stopped peer's data dir: the named ones first, then the rest it wrote. */
export function storeFiles (dir: string, all: boolean): string[] {
  const named = NAMED.map(f => f === 'consensus/certificates'
    ? (existsSync(join(dir, 'consensus/certificates.log')) ? 'consensus/certificates.log' : 'consensus/certificates.cbor')
    : f)
  if (!all) return named
  const found: string[] = []
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (e.isDirectory()) walk(p)
      else if (!/\.damaged-|-wal$|-shm$|\.tmp|^lock$|\.lock$/.test(e.name)) found.push(relative(dir, p))
    }
  }
  walk(dir)
  // Index shards get new names at each save: name them by pattern, resolved when truncated.
  const rest = new Set(found.filter(f => !named.includes(f)).map(f => f.replace(/shard-[^/]*(\.[a-z0-9]+)$/, 'shard-*$1')))
  return [...named, ...[...rest].sort()]
}

/** `file` in `dir`, or the first file its `*` pattern matches there now. */
function resolve (dir: string, file: string): string {
  if (!file.includes('*')) return join(dir, file)
  const re = new RegExp(`^${file.replace(/[.]/g, '\\.').replace('*', '.*')}$`)
  const sub = dirname(file)
  const match = existsSync(join(dir, sub)) ? readdirSync(join(dir, sub)).map(n => join(sub, n)).find(f => re.test(f)) : undefined
  return join(dir, match ?? file)
}

export async function truncateStore (mesh: Mesh, p: MeshPeer, file: string): Promise<Line> {
  const fault = `truncate-${file}`
  // Tasks this peer ran before the damage: they must still answer after it.
  const ids = [`tr-${Date.now().toString(36)}-a`, `tr-${Date.now().toString(36)}-b`]
  for (const id of ids) if (await submit(mesh, p, id, 'fast')) remember(p.index, id)
  await until(async () => (await Promise.all(ids.map(async id => ended(await view(mesh, p, id))))).every(Boolean) ? true : undefined, 15_000)
  // Only ids that answer now count: an earlier fault may already have lost some.
  const all = (await Promise.all((submittedTo.get(p.index) ?? []).map(async id => ended(await view(mesh, p, id)) ? id : undefined))).filter(id => id !== undefined)
  const live = mesh.peers.filter(o => mesh.alive(o))
  const meshCerts = new Set((await Promise.all(live.map(async o => [...await mesh.certificates(o)]))).flat())
  const peerIdBefore = p.peerId
  const stopped = await mesh.stop(p, 'SIGTERM')
  const path = resolve(p.dir, file)
  if (!existsSync(path)) {
    await mesh.run(p)
    return { fault, tasksLost: 0, certificatesLost: 0, recoveredMs: 0, loud: 'n/a', note: 'the peer had not written this file (nothing to truncate)' }
  }
  const size = statSync(path).size
  const backup = `${path}.faults-backup`
  copyFileSync(path, backup)
  truncateSync(path, Math.floor(size / 2))
  const t0 = performance.now()
  let refused: string | undefined
  try {
    await mesh.run(p)
  } catch (err) {
    // It would not start: loud if it said why; put the file back so the rest of the bench can run.
    refused = (err as Error).message.slice(0, 300)
    copyFileSync(backup, path)
    await mesh.run(p)
  }
  const readyMs = Math.round(performance.now() - t0)
  await sleep(500) // the store-damaged lines follow "ready"
  const damagedLines = mesh.lines(p).filter(e => e.event === 'store-damaged' && typeof e.file === 'string' && (e.file === path || path.startsWith(`${e.file}/`) || e.file.startsWith(`${path}`)))
  let missingCerts = [...meshCerts]
  const BOUND = 20_000
  await until(async () => {
    const mine = await mesh.certificates(p)
    missingCerts = [...meshCerts].filter(c => !mine.has(c))
    return missingCerts.length === 0 ? true : undefined
  }, BOUND)
  const views = await Promise.all(all.map(async id => ({ id, v: await view(mesh, p, id) })))
  const lostTasks = views.filter(x => !ended(x.v)).map(x => x.id)
  // The index must hold every agent the table holds again (else routing silently misses some).
  const status = await until(async () => {
    const st = (await mesh.api(p, 'GET', '/status')).body as { agents?: number, index?: { size?: number } }
    return st.agents !== undefined && st.index?.size === st.agents ? st : undefined
  }, 10_000) ?? (await mesh.api(p, 'GET', '/status')).body as { agents?: number, index?: { size?: number } }
  const loud = damagedLines.length > 0 || (refused !== undefined && /\S/.test(refused))
  return {
    fault,
    tasksLost: lostTasks.length,
    certificatesLost: missingCerts.length,
    recoveredMs: Math.round(performance.now() - t0),
    loud,
    ...(file.includes('*') ? { file: relative(p.dir, path) } : {}),
    bytes: size,
    truncatedTo: Math.floor(size / 2),
    sigtermExitMs: stopped.exitMs,
    readyMs,
    ...(damagedLines.length > 0 ? { said: { lost: damagedLines[0]!.lost, error: String(damagedLines[0]!.error ?? '').slice(0, 100) } } : {}),
    ...(refused !== undefined ? { refusedToStart: refused, restoredFromBackup: true } : {}),
    tasksChecked: all.length,
    ...(lostTasks.length > 0 ? { lostSample: lostTasks.slice(0, 5), lostStates: [...new Set(views.filter(x => !ended(x.v)).map(x => x.v.state))] } : {}),
    meshCertificates: meshCerts.size,
    agentsInTable: status.agents,
    indexSize: status.index?.size,
    // An index short of the table means routing misses agents: keep what the peer said about it.
    ...(status.index?.size !== status.agents ? { indexShort: true, stderrTail: p.stderr.slice(-600) } : {}),
    ...(p.peerId !== peerIdBefore ? { peerIdChanged: true } : {})
  }
}
