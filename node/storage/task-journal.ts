/**
 * The task journal: every task a peer runs for its user, written before its first dispatch and
 * again when it ends, so neither a restart nor a kill -9 loses it. `node:sqlite` (built into
 * Node 24) in WAL mode with `synchronous = FULL`: each write is one transaction, fsynced before
 * the call returns; SQLite's journal detects a torn write and rolls it back, and lookups by id
 * need no scan. An append-only log would need its own checksums, compaction and index to offer
 * the same.
 *
 * SQLite survives a torn write but not a file cut short or a bad sector, and no other peer holds a
 * requester's tasks. So every write goes to two files, `tasks.sqlite` and `tasks.mirror.sqlite`,
 * reconciled at open: a damaged one is set aside, everything still readable in it is read back,
 * and the other copy fills in the rest. Two fsyncs per task event; tasks come from users, not in
 * thousands a second.
 *
 * @example
 * ```ts
 * const journal = TaskJournal.open(join(dataDir, 'tasks.sqlite'))
 * journal.started('report', spec, Date.now())
 * journal.finished('report', report, Date.now())
 * journal.get('report')   // { id, status: 'done', spec, report }
 * ```
 */
import { DatabaseSync } from 'node:sqlite'
import { renameSync } from 'node:fs'
import { asideName, type Damage } from './damaged.ts'
import type { TaskSpec } from '../../protocols/task/index.ts'
import type { TaskReport } from '../services/task-runner.ts'

export interface JournaledTask {
  id: string
  status: 'running' | TaskReport['status']
  spec: TaskSpec
  report?: TaskReport
  submittedAt: number
}


/** A copy of the journal that did not open: set aside, with what the peer lost and what it read back. */
export type JournalDamage = Damage & { lost: string, readBack: number }

/** Finished tasks kept (the oldest beyond are deleted); running ones are always kept. */
const KEEP_FINISHED = 10_000
/** Finishes between prunes: the prune sorts every finished task, so it is not run on each one. */
const PRUNE_EVERY = 100

export class TaskJournal {
  readonly #files: JournalFile[]
  #sincePrune = 0
  /**
   * The files found damaged at open, each moved aside, with what was lost and how many tasks were
   * read back from it; empty when both read back.
   */
  readonly damage: JournalDamage[]

  private constructor (files: JournalFile[], damage: JournalDamage[]) {
    this.#files = files
    this.damage = damage
  }

  /**
   * Opens (or creates) the journal at `path` and its mirror beside it. A damaged file is renamed
   * aside, never overwritten; what it still holds and what the other copy holds are put back.
   */
  static open (path: string): TaskJournal {
    const found: Array<Omit<JournalDamage, 'lost'>> = []
    const files = [path, mirrorOf(path)].map(file => {
      try {
        return new JournalFile(openDb(file))
      } catch (err) {
        const keptAs = asideName(file)
        for (const suffix of ['', '-wal', '-shm']) {
          try { renameSync(file + suffix, keptAs + suffix) } catch {}
        }
        const db = new JournalFile(openDb(file))
        found.push({ file, keptAs, error: (err as Error).message.slice(0, 300), readBack: salvage(keptAs, db) })
        return db
      }
    })
    const damage = found.map(d => ({
      ...d,
      lost: found.length === 1
        ? `nothing: ${d.readBack} tasks read back from it, the rest from the journal's other copy`
        : `the tasks in the unreadable parts of both copies of the journal (${d.readBack} read back from this one); no other peer holds a requester's tasks`
    }))
    // Each copy takes what the other holds: after damage, a crash between the two writes, or the
    // first start beside a journal written before the mirror existed.
    const [a, b] = files as [JournalFile, JournalFile]
    const [sa, sb] = [a.states(), b.states()]
    a.absorb(b, sa, sb)
    b.absorb(a, sb, sa)
    return new TaskJournal(files, damage)
  }

  /** Journals a task before its first dispatch. */
  started (id: string, spec: TaskSpec, now: number): void {
    const text = JSON.stringify(spec)
    for (const f of this.#files) f.insert.run(id, text, now)
  }

  finished (id: string, report: TaskReport, now: number): void {
    const text = JSON.stringify(report)
    for (const f of this.#files) f.finish.run(report.status, text, now, id)
    if (++this.#sincePrune >= PRUNE_EVERY) {
      this.#sincePrune = 0
      for (const f of this.#files) f.prune.run()
    }
  }

  get (id: string): JournaledTask | undefined {
    const row = this.#files[0]!.select.get(id) as Row | undefined
    return row === undefined ? undefined : fromRow(row)
  }

  /** Tasks that were running when the peer last stopped (or crashed). */
  unfinished (): JournaledTask[] {
    return (this.#files[0]!.db.prepare('SELECT id, status, spec, report, submitted_at FROM tasks WHERE status = \'running\' ORDER BY submitted_at').all() as unknown as Row[]).map(fromRow)
  }

  /** The highest n of ids `task-<n>` this journal holds, so generated ids continue after it. */
  highestGenerated (): number {
    const row = this.#files[0]!.db.prepare('SELECT MAX(CAST(SUBSTR(id, 6) AS INTEGER)) AS n FROM tasks WHERE id GLOB \'task-[0-9]*\'').get() as { n: number | null }
    return row.n ?? 0
  }

  close (): void {
    for (const f of this.#files) if (f.db.isOpen) f.db.close()
  }
}

/** Where the journal's second copy lives: beside it. */
export function mirrorOf (path: string): string {
  return path.endsWith('.sqlite') ? `${path.slice(0, -'.sqlite'.length)}.mirror.sqlite` : `${path}.mirror`
}

/** One of the journal's two files and its statements. */
class JournalFile {
  readonly db: DatabaseSync
  readonly insert
  readonly finish
  readonly select
  readonly prune
  readonly #upsert
  readonly #states
  readonly #full

  constructor (db: DatabaseSync) {
    this.db = db
    this.insert = db.prepare('INSERT INTO tasks (id, status, spec, submitted_at) VALUES (?, \'running\', ?, ?)')
    this.finish = db.prepare('UPDATE tasks SET status = ?, report = ?, finished_at = ? WHERE id = ?')
    this.select = db.prepare('SELECT id, status, spec, report, submitted_at FROM tasks WHERE id = ?')
    this.prune = db.prepare(`DELETE FROM tasks WHERE status != 'running' AND rowid NOT IN (SELECT rowid FROM tasks WHERE status != 'running' ORDER BY finished_at DESC LIMIT ${KEEP_FINISHED})`)
    // A task this copy lacks is added; one it holds as running that the other saw end takes the end.
    this.#upsert = db.prepare(`INSERT INTO tasks (id, status, spec, report, submitted_at, finished_at) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (id) DO UPDATE SET status = excluded.status, report = excluded.report, finished_at = excluded.finished_at
      WHERE tasks.status = 'running' AND excluded.status != 'running'`)
    this.#states = db.prepare('SELECT id, status FROM tasks')
    this.#full = db.prepare('SELECT id, status, spec, report, submitted_at, finished_at FROM tasks WHERE id = ?')
  }

  /**
   * Takes in what `other` holds that this copy lacks (a crash between the two writes, or damage).
   * Ids and statuses are compared first: at a normal start the copies agree and no spec or
   * report is read.
   */
  absorb (other: JournalFile, mine: Map<string, string>, theirs: Map<string, string>): void {
    const behind = [...theirs].filter(([id, status]) => !mine.has(id) || (mine.get(id) === 'running' && status !== 'running'))
    if (behind.length > 0) this.transaction(() => { for (const [id] of behind) this.put(other.#full.get(id) as unknown as FullRow) })
  }

  /** Each task's status, by id. */
  states (): Map<string, string> {
    return new Map((this.#states.all() as unknown as Array<{ id: string, status: string }>).map(r => [r.id, r.status]))
  }

  /** Runs `work` as one transaction: one fsync, not one per row. */
  transaction (work: () => void): void {
    this.db.exec('BEGIN')
    try {
      work()
      this.db.exec('COMMIT')
    } catch (err) {
      this.db.exec('ROLLBACK')
      throw err
    }
  }

  /** Adds one row; true when it changed this copy. */
  put (r: FullRow): boolean {
    return this.#upsert.run(r.id, r.status, r.spec, r.report, r.submitted_at, r.finished_at).changes > 0
  }
}

interface Row { id: string, status: string, spec: string, report: string | null, submitted_at: number }
interface FullRow extends Row { finished_at: number | null }

function fromRow (row: Row): JournaledTask {
  return {
    id: row.id,
    status: row.status as JournaledTask['status'],
    spec: JSON.parse(row.spec) as TaskSpec,
    ...(row.report === null ? {} : { report: JSON.parse(row.report) as TaskReport }),
    submittedAt: row.submitted_at
  }
}

function openDb (path: string): DatabaseSync {
  const db = new DatabaseSync(path)
  try {
    db.exec('PRAGMA journal_mode = WAL')
    db.exec('PRAGMA synchronous = FULL')
    db.exec(`CREATE TABLE IF NOT EXISTS tasks (
      id TEXT PRIMARY KEY,
      status TEXT NOT NULL,
      spec TEXT NOT NULL,
      report TEXT,
      submitted_at INTEGER NOT NULL,
      finished_at INTEGER
    )`)
    // Reads the whole file once: a damaged page is found now, at start, not mid-run.
    const check = db.prepare('PRAGMA quick_check').all() as Array<Record<string, string>>
    const verdict = Object.values(check[0] ?? {})[0]
    if (verdict !== 'ok') throw new Error(`integrity check: ${check.map(r => Object.values(r)[0]).join('; ').slice(0, 300)}`)
    return db
  } catch (err) {
    db.close()
    throw err
  }
}

/**
 * Copies every task row still readable in the damaged journal at `from` into `to`. A scan stops
 * at the first unreadable page, so the table is read from both ends: what lies before and after
 * the damage is kept. The damaged file is opened read-only; it stays as it was found.
 */
function salvage (from: string, to: JournalFile): number {
  let src: DatabaseSync
  try {
    // Not defensive, and writable_schema: SQLite then reads a file shorter than its header says
    // (a truncation) as far as it goes instead of refusing it whole. Read-only all the same.
    src = new DatabaseSync(from, { readOnly: true, defensive: false })
    src.exec('PRAGMA writable_schema = 1')
  } catch {
    return 0
  }
  let recovered = 0
  try {
    to.transaction(() => {
      for (const order of ['ASC', 'DESC']) {
        try {
          const rows = src.prepare(`SELECT id, status, spec, report, submitted_at, finished_at FROM tasks ORDER BY rowid ${order}`).iterate()
          for (const r of rows as Iterable<FullRow>) {
            if (plausible(r) && to.put(r)) recovered++
          }
        } catch {} // the damaged page: the other direction reads what lies beyond it
      }
    })
  } finally {
    src.close()
  }
  return recovered
}

/** A row from a damaged file is kept only if it reads back as a task (JSON that parses). */
function plausible (r: Row): boolean {
  if (typeof r.id !== 'string' || typeof r.spec !== 'string' || typeof r.submitted_at !== 'number') return false
  if (!['running', 'done', 'escalated', 'cancelled'].includes(r.status)) return false
  try {
    JSON.parse(r.spec)
    if (r.report !== null) JSON.parse(r.report)
    return true
  } catch {
    return false
  }
}
