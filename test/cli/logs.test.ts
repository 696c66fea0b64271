// Structured logs of `agentmesh node`: reroutes and escalations with their task and reason, levels
// that hide what they should, a bad level refused, and rejection logs a hostile peer cannot flood.
import { afterEach, describe, expect, it } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Activity } from '../../node/services/activity.ts'
import { logActivity } from '../../node/cli/activity-log.ts'
import { makeLogger } from '../../node/cli/logger.ts'
import { freePort } from '../helpers/ports.ts'

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'agentmesh.js')
const dirs: string[] = []
const children: ChildProcess[] = []
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL')
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})
const tempDir = (): string => { const d = mkdtempSync(join(tmpdir(), 'agentmesh-logs-')); dirs.push(d); return d }

type Line = Record<string, unknown>

/** Lines written to an in-memory destination, parsed. */
function sink (): { write: (line: string) => void, lines: Line[], raw: string[] } {
  const raw: string[] = []
  return { raw, lines: [], write (line: string) { raw.push(line); this.lines.push(...line.split('\n').filter(l => l !== '').map(l => JSON.parse(l) as Line)) } }
}

describe('rejection logs', () => {
  it('a hostile flood gives a bounded number of lines, and the suppressed ones are counted', () => {
    let now = 1_000_000
    const activity = new Activity(() => now)
    const out = sink()
    const log = makeLogger({ level: 'info', json: true, to: out })
    const stop = logActivity(activity, log, { budget: { perWindow: 3, windowMs: 1000, maxReasons: 4 }, now: () => now })
    const hostile = '12D3KooWHostile'
    // One reason over and over, and (to dodge a per-reason budget) a new reason each time.
    for (let i = 0; i < 5000; i++) activity.emit({ type: 'gossip-rejected', from: hostile, reason: 'bad signature' })
    for (let i = 0; i < 5000; i++) activity.emit({ type: 'gossip-rejected', from: hostile, reason: `unknown field #${i}` })
    for (let i = 0; i < 100; i++) activity.emit({ type: 'peer-refused', peer: hostile, reason: 'another network' })
    const rejected = (): Line[] => out.lines.filter(l => l['event'] === 'gossip-rejected')
    // maxReasons windows of 3, plus one shared window of 3 for every reason beyond them.
    expect(rejected().length).toBe(3 + 3 * 1 + 3)
    expect(out.lines.filter(l => l['event'] === 'refused')).toHaveLength(3)
    expect(rejected()[0]).toMatchObject({ level: 'warn', from: hostile, reason: 'bad signature' })

    // The window ends: the next one is logged, after the count of what was held back.
    now += 1000
    activity.emit({ type: 'gossip-rejected', from: hostile, reason: 'bad signature' })
    const counted = out.lines.filter(l => l['event'] === 'log-suppressed')
    expect(counted).toEqual([expect.objectContaining({ level: 'warn', of: 'gossip-rejected', reason: 'bad signature', suppressed: 4997 })])
    expect(out.lines.at(-1)).toMatchObject({ event: 'gossip-rejected', reason: 'bad signature' })

    stop()
    const all = out.lines.filter(l => l['event'] === 'log-suppressed')
    expect(all.find(l => l['reason'] === '(other reasons)')).toMatchObject({ of: 'gossip-rejected', suppressed: 5000 - 3 - 3 })
    expect(all.find(l => l['of'] === 'refused')).toMatchObject({ reason: 'another network', suppressed: 97 })
    // Nothing lost from the count: every rejection was either logged or counted.
    const suppressed = all.filter(l => l['of'] === 'gossip-rejected').reduce((n, l) => n + Number(l['suppressed']), 0)
    expect(rejected().length + suppressed).toBe(10_001)
  })

  it('peer-chosen strings are clipped and cannot start a line of their own', () => {
    const forged = `x\n{"level":"info","event":"ready"}\r\u001b[2J${'y'.repeat(5000)}`
    for (const json of [true, false]) {
      const activity = new Activity()
      const out = sink()
      const raw: string[] = []
      const log = makeLogger({ level: 'info', json, to: json ? out : { write: (l: string) => { raw.push(l) } } })
      const stop = logActivity(activity, log)
      activity.emit({ type: 'gossip-rejected', from: forged, reason: forged })
      activity.emit({ type: 'agent-removed', agent: forged, reason: 'expired' })
      stop()
      const text = json ? out.raw.join('') : raw.join('')
      expect(text.split('\n').filter(l => l !== '')).toHaveLength(2)
      expect(text).not.toContain('\u001b')
      expect(text).not.toContain('\r')
      if (json) {
        const [rejected] = out.lines
        expect(String(rejected!['reason']).length).toBeLessThan(400)
        expect(String(rejected!['reason'])).toMatch(/…\(\+\d+ chars\)$/)
      }
    }
  })
})

interface NodeRun { lines: Line[], stderr: string, code: number | null }

/** Runs `agentmesh node` with two arithmetic agents, submits a task both fail, stops it with SIGTERM. */
async function runFailingTask (logArgs: string[], taskId: string): Promise<NodeRun> {
  const home = tempDir()
  const agents = join(home, 'agents.yaml')
  writeFileSync(agents, 'agents:\n  - kind: arithmetic\n    name: calc-a\n  - kind: arithmetic\n    name: calc-b\n')
  const apiPort = await freePort()
  const child = spawn(process.execPath, [BIN, 'node', '--listen', '/ip4/127.0.0.1/tcp/0', '--api-port', String(apiPort), '--data', join(home, 'node'), '--agents', agents, ...logArgs],
    { env: { ...process.env, AGENTMESH_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  const lines: Line[] = []
  let buffer = ''
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const closed = new Promise<number | null>(resolve => { child.once('close', code => resolve(code)) })
  await new Promise<void>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buffer += d
      const parts = buffer.split('\n')
      buffer = parts.pop()!
      for (const l of parts) { const e = JSON.parse(l) as Line; lines.push(e); if (e['event'] === 'ready') resolve() }
    })
    void closed.then(code => reject(new Error(`node exited ${code} before ready: ${stderr}`)))
  })
  const token = readFileSync(join(home, 'node', 'api-token'), 'utf8').trim()
  const task = { id: taskId, subtasks: [{ id: 'sum', capability: { skills: ['arithmetic'] }, input: { expression: '1 +' } }] }
  const res = await fetch(`http://127.0.0.1:${apiPort}/tasks?wait=1`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(task) })
  expect(await res.json()).toMatchObject({ id: taskId, status: 'escalated' })
  // Every line the task logged is on the pipe before its answer; closing stdout delivers them all.
  child.kill('SIGTERM')
  const code = await closed
  return { lines, stderr, code }
}

describe('agentmesh node logs', () => {
  it('logs each reroute and the escalation with task, subtask, attempt, agent and reason; debug shows dispatches', async () => {
    const { lines, stderr, code } = await runFailingTask(['--json', '--log-level', 'debug'], 'doomed')
    expect(code, stderr).toBe(0)
    for (const l of lines) expect(typeof l['event'], JSON.stringify(l)).toBe('string')
    const ready = lines.find(l => l['event'] === 'ready')
    expect(ready).toMatchObject({ level: 'info', network: 'local', agents: ['calc-a', 'calc-b'], api: expect.any(String), apiToken: expect.any(String), multiaddrs: expect.any(Array), peerId: expect.any(String) })
    const reroutes = lines.filter(l => l['event'] === 'task-reroute')
    expect(reroutes).toHaveLength(2)
    expect(reroutes.map(r => r['attempt'])).toEqual([1, 2])
    for (const r of reroutes) {
      expect(r).toMatchObject({ level: 'warn', task: 'doomed', subtask: 'sum', agent: expect.stringMatching(/\/calc-[ab]$/), reason: expect.stringMatching(/expected a number/) })
    }
    expect(lines.find(l => l['event'] === 'task-escalate')).toMatchObject({ level: 'warn', task: 'doomed', subtask: 'sum', reason: expect.stringMatching(/the input was refused by .*expected a number.*fix the input/) })
    expect(lines.find(l => l['event'] === 'task-finished')).toMatchObject({ level: 'info', task: 'doomed', status: 'escalated' })
    expect(lines.filter(l => l['event'] === 'task-dispatch' && l['level'] === 'debug')).toHaveLength(2)
  }, 60_000)

  it('--log-level warn keeps the warnings and hides info and debug (the ready line excepted)', async () => {
    const { lines, stderr, code } = await runFailingTask(['--log-level', 'warn'], 'quiet') // stdout is a pipe: JSON without --json
    expect(code, stderr).toBe(0)
    expect(lines.filter(l => l['event'] === 'task-reroute')).toHaveLength(2)
    expect(lines.find(l => l['event'] === 'task-escalate')).toMatchObject({ level: 'warn', task: 'quiet' })
    expect(lines.filter(l => l['level'] !== 'warn' && l['level'] !== 'error').map(l => l['event'])).toEqual(['ready'])
  }, 60_000)

  it('a bad --log-level, or logLevel in the config file, exits 2 and names the levels', async () => {
    const home = tempDir()
    const run = async (args: string[]): Promise<NodeRun & { stdout: string }> => {
      const child = spawn(process.execPath, [BIN, 'node', '--data', join(home, 'node'), ...args], { env: { ...process.env, AGENTMESH_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] })
      children.push(child)
      let stdout = ''
      let stderr = ''
      child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d })
      child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d })
      const code = await new Promise<number | null>(resolve => { child.once('close', c => resolve(c)) })
      return { lines: [], stdout, stderr, code }
    }
    const flag = await run(['--log-level', 'loud'])
    expect(flag.code).toBe(2)
    expect(flag.stderr).toContain('node: --log-level must be one of trace, debug, info, warn, error, fatal, silent, not "loud"')
    expect(flag.stdout).toBe('')
    const file = join(home, 'node.yaml')
    writeFileSync(file, 'logLevel: chatty\n')
    const config = await run(['--config', file])
    expect(config.code).toBe(2)
    expect(config.stderr).toContain(`${file}: "logLevel" must be one of trace, debug, info, warn, error, fatal, silent`)
  })
})
