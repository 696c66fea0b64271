// The task journal: tasks survive a restart and a kill -9; a damaged journal is set aside loudly.
import { afterEach, describe, expect, it } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { mirrorOf, TaskJournal } from '../../node/storage/task-journal.ts'
import { RESTARTED } from '../../node/services/tasks.ts'
import { parseTask } from '../../protocols/task/index.ts'
import { usePeers } from '../helpers/peers.ts'
import { gatedAgent } from '../helpers/gated-agent.ts'
import { freePort } from '../helpers/ports.ts'
import { until } from '../helpers/until.ts'

const dirs: string[] = []
const children: ChildProcess[] = []
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL')
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})
const tempDir = (): string => { const d = mkdtempSync(join(tmpdir(), 'agentmesh-journal-')); dirs.push(d); return d }
const { peer } = usePeers('agentmesh-journal-peer-')

describe('task journal', () => {
  it('keeps tasks across reopening: running ones listed as unfinished, finished ones with their report', () => {
    const path = join(tempDir(), 'tasks.sqlite')
    const j = TaskJournal.open(path)
    const spec = parseTask({ subtasks: [{ id: 's', capability: { skills: ['x'] }, input: { n: 1 } }] }, 'task-7')
    j.started('task-7', spec, 1000)
    j.started('named', { ...spec, id: 'named' }, 1001)
    j.finished('named', { id: 'named', status: 'done', result: { s: 1 }, outputs: { s: 1 }, spent: 1, trace: [] }, 2000)
    j.close()
    const again = TaskJournal.open(path)
    expect(again.damage).toEqual([])
    expect(again.unfinished().map(t => t.id)).toEqual(['task-7'])
    expect(again.unfinished()[0]!.spec).toEqual(spec)
    expect(again.get('named')).toMatchObject({ status: 'done', report: { outputs: { s: 1 } } })
    expect(again.highestGenerated()).toBe(7)
    expect(() => again.started('named', spec, 3000)).toThrow() // one row per id
    again.close()
  })

  it('sets a damaged journal aside (renamed, not overwritten), says so, and takes every task back from its other copy', () => {
    const dir = tempDir()
    const path = join(dir, 'tasks.sqlite')
    const j = TaskJournal.open(path)
    const spec = parseTask({ subtasks: [{ id: 's', capability: { skills: ['x'] } }] }, 't')
    j.started('t', spec, 1)
    j.started('u', { ...spec, id: 'u' }, 2)
    j.finished('u', { id: 'u', status: 'done', result: { s: 1 }, outputs: { s: 1 }, spent: 1, trace: [] }, 3)
    j.close()
    const garbage = Buffer.from('SQLite format 3\0' + 'x'.repeat(5000))
    writeFileSync(path, garbage)
    const again = TaskJournal.open(path)
    expect(again.damage).toMatchObject([{ file: path, keptAs: expect.stringContaining('tasks.sqlite.damaged-'), error: expect.any(String), readBack: 0 }])
    expect(readFileSync(again.damage[0]!.keptAs)).toEqual(garbage)
    expect(again.get('t')?.status).toBe('running')
    expect(again.get('u')).toMatchObject({ status: 'done', report: { outputs: { s: 1 } } })
    again.close()
    // Both copies whole again: the next open finds nothing to say.
    const third = TaskJournal.open(path)
    expect(third.damage).toEqual([])
    expect(third.unfinished().map(t => t.id)).toEqual(['t'])
    third.close()
  })

  it('with both copies truncated, reads back every task still readable in each; the damaged files stay as found', () => {
    const path = join(tempDir(), 'tasks.sqlite')
    const j = TaskJournal.open(path)
    const spec = parseTask({ subtasks: [{ id: 's', capability: { skills: ['x'] }, input: { pad: 'p'.repeat(900) } }] }, 'x')
    const N = 400
    for (let i = 0; i < N; i++) {
      j.started(`t${i}`, { ...spec, id: `t${i}` }, i)
      if (i % 2 === 0) j.finished(`t${i}`, { id: `t${i}`, status: 'done', result: { i }, outputs: { s: i }, spent: 1, trace: [] }, i + 1)
    }
    j.close()
    const torn = [path, mirrorOf(path)].map(file => {
      truncateSync(file, Math.floor(readFileSync(file).byteLength / 2))
      return readFileSync(file)
    })
    const again = TaskJournal.open(path)
    expect(again.damage.map(d => d.file)).toEqual([path, mirrorOf(path)])
    again.damage.forEach((d, i) => { expect(readFileSync(d.keptAs)).toEqual(torn[i]) })
    const back = Array.from({ length: N }, (_, i) => again.get(`t${i}`)).filter(t => t !== undefined)
    // About half the pages of each are gone; what survives is read back whole and consistent.
    expect(again.damage[0]!.readBack).toBe(back.length)
    expect(back.length).toBeGreaterThan(N / 5)
    expect(back.length).toBeLessThan(N)
    for (const t of back) {
      const i = Number(t.id.slice(1))
      expect(t.spec.id).toBe(t.id)
      expect(t.status).toBe(i % 2 === 0 ? 'done' : 'running')
      if (i % 2 === 0) expect(t.report?.outputs).toEqual({ s: i })
    }
    again.close()
  })

  it('a copy that missed the last write (a crash between the two) takes it from the other at open', () => {
    const path = join(tempDir(), 'tasks.sqlite')
    const j = TaskJournal.open(path)
    const spec = parseTask({ subtasks: [{ id: 's', capability: { skills: ['x'] } }] }, 'a')
    j.started('a', spec, 1)
    j.close()
    // Write one copy alone, as if the process died between the two writes.
    const db = new DatabaseSync(path)
    db.prepare("UPDATE tasks SET status = 'done', report = ?, finished_at = 2 WHERE id = 'a'").run(JSON.stringify({ id: 'a', status: 'done', result: 1, outputs: {}, spent: 0, trace: [] }))
    db.prepare("INSERT INTO tasks (id, status, spec, submitted_at) VALUES ('b', 'running', ?, 3)").run(JSON.stringify({ ...spec, id: 'b' }))
    db.close()
    const again = TaskJournal.open(path)
    expect(again.damage).toEqual([])
    again.close()
    const mirror = new DatabaseSync(mirrorOf(path))
    expect(mirror.prepare('SELECT id, status FROM tasks ORDER BY id').all().map(r => ({ ...r }))).toEqual([{ id: 'a', status: 'done' }, { id: 'b', status: 'running' }])
    mirror.close()
  })

  it('deletes the temporary files a crash left in the data directory, and only those, at start', async () => {
    const dir = tempDir()
    const { mkdirSync } = await import('node:fs')
    mkdirSync(join(dir, 'consensus'), { recursive: true })
    mkdirSync(join(dir, 'index'), { recursive: true })
    const stale = [join(dir, 'table.cbor.4242.tmp'), join(dir, 'consensus', 'certificates.cbor.17.tmp'), join(dir, 'index', 'meta.json.tmp-99')]
    const kept = [join(dir, 'notes.tmp.txt'), join(dir, 'consensus', 'notes.txt')]
    for (const f of [...stale, ...kept]) writeFileSync(f, 'x')
    const p = await peer({ dataDir: dir })
    expect([...p.recovered.staleTemps].sort()).toEqual([...stale].sort())
    for (const f of stale) expect(existsSync(f)).toBe(false)
    for (const f of kept) expect(existsSync(f)).toBe(true)
  })

  it('a kill -9 of the requester loses no task: after restart it is escalated with the reason, and resubmitting its id is idempotent', async () => {
    const gate = gatedAgent('waiter', { skills: ['wait'] })
    const executor = await peer({ agents: [], customAgents: [gate] })
    const home = tempDir()
    const apiPort = await freePort()
    const start = (): { child: ChildProcess, ready: Promise<Record<string, unknown>>, lines: Array<Record<string, unknown>> } => {
      const child = spawn(process.execPath, ['bin/agentmesh.js', 'node', '--listen', '/ip4/127.0.0.1/tcp/0', '--api-port', String(apiPort), '--data', join(home, 'node'),
        '--agents', join(home, 'none.yaml'), '--bootstrap', executor.multiaddrs()[0]!, '--json'], { env: { ...process.env, AGENTMESH_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] })
      children.push(child)
      const lines: Array<Record<string, unknown>> = []
      let buffer = ''
      const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
        child.stdout!.setEncoding('utf8').on('data', (d: string) => {
          buffer += d
          const parts = buffer.split('\n')
          buffer = parts.pop()!
          for (const l of parts) { const e = JSON.parse(l) as Record<string, unknown>; lines.push(e); if (e.event === 'ready') resolve(e) }
        })
        child.once('exit', code => { reject(new Error(`node exited ${code}`)) })
      })
      return { child, ready, lines }
    }
    writeFileSync(join(home, 'none.yaml'), 'agents:\n  - kind: sort\n')
    const first = start()
    await first.ready
    const token = readFileSync(join(home, 'node', 'api-token'), 'utf8').trim()
    const api = async (method: string, path: string, body?: unknown): Promise<{ status: number, body: Record<string, unknown> }> => {
      const res = await fetch(`http://127.0.0.1:${apiPort}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
      return { status: res.status, body: await res.json() as Record<string, unknown> }
    }
    // The requester is another process: poll its API until it knows the executor's agent.
    const waiter = `${executor.peerId}/waiter`
    for (let i = 0; !((await api('GET', '/agents')).body as unknown as Array<{ agent: string }>).some(a => a.agent === waiter); i++) {
      if (i > 750) throw new Error('the requester never learned the executor\'s agent')
      await new Promise(resolve => setTimeout(resolve, 20))
    }
    const task = { id: 'survivor', deadlineMs: 120_000, subtasks: [{ id: 'w', capability: { skills: ['wait'] }, input: { n: 1 }, deadlineMs: 100_000 }] }
    let accepted = await api('POST', '/tasks', task)
    expect(accepted).toMatchObject({ status: 202, body: { id: 'survivor', status: 'running' } })
    await gate.whenStarted(1)
    first.child.kill('SIGKILL')
    await new Promise(resolve => first.child.once('exit', resolve))

    const second = start()
    await second.ready
    // Said right after "ready" (stdout may bring it in a later chunk).
    await until(() => second.lines.some(e => e.event === 'task-ended-by-restart'))
    expect(second.lines).toContainEqual(expect.objectContaining({ event: 'task-ended-by-restart', task: 'survivor', reason: RESTARTED }))
    const view = await api('GET', '/tasks/survivor')
    expect(view).toMatchObject({ status: 200, body: { id: 'survivor', status: 'escalated', report: { reason: RESTARTED } } })
    // The same id again is the same task: no second run reaches the executor.
    accepted = await api('POST', '/tasks', task)
    expect(accepted.body).toMatchObject({ id: 'survivor' })
    expect((await api('POST', '/tasks?wait=1', task)).body).toMatchObject({ id: 'survivor', status: 'escalated' })
    expect(gate.started).toBe(1)
    // The same id with another spec is refused with the reason, not answered with the old report.
    const other = await api('POST', '/tasks', { ...task, subtasks: [{ ...task.subtasks[0], input: { n: 2 } }] })
    expect(other).toMatchObject({ status: 400, body: { error: expect.stringMatching(/task "survivor" was submitted before with a different spec/) } })
    expect(existsSync(join(home, 'node', 'tasks.sqlite'))).toBe(true)
  })
})
