// `agentmesh sim` end to end: a real process, a scenario file, the report files on disk.
import { describe, it, expect, afterAll } from 'vitest'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const BIN = fileURLToPath(new URL('../../bin/agentmesh.js', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'agentmesh-sim-cli-'))
afterAll(() => { rmSync(dir, { recursive: true, force: true }) })

function sim (...args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return new Promise(resolve => {
    const child = spawn(process.execPath, [BIN, 'sim', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.on('exit', code => resolve({ code, stdout, stderr }))
  })
}

describe('agentmesh sim', () => {
  it('runs a scenario file: --json prints the summary; the report files are written; the same seed writes the same bytes', async () => {
    const scenario = join(dir, 'tiny.yaml')
    writeFileSync(scenario, 'name: tiny\nnodes: 30\ndurationS: 60\ntasks: { count: 30, requesters: 2 }\npolicies: [linucb, random]\n')
    const [a, b] = [join(dir, 'a'), join(dir, 'b')]
    const first = await sim(scenario, '--json', '--out', a)
    expect(first.code, first.stderr).toBe(0)
    const summary = JSON.parse(first.stdout) as Record<string, unknown>
    expect(summary).toMatchObject({ scenario: 'tiny', nodes: 30, tasks: 30, runs: 2, safetyViolations: 0 })
    expect(typeof summary['linucb.successRate']).toBe('number')
    for (const f of ['summary.json', 'report.html', 'regret.svg', 'latency-cdf.svg', 'recovery.svg', 'policies.csv', 'aggregation.csv']) expect(existsSync(join(a, f)), f).toBe(true)
    expect(first.stderr).toMatch(/sim tiny: done, 60\/60/) // progress on stderr, never on stdout
    const second = await sim(scenario, '--json', '--out', b)
    expect(second.code).toBe(0)
    for (const f of ['summary.json', 'report.html', 'regret.svg', 'policies.csv']) expect(readFileSync(join(b, f), 'utf8'), f).toBe(readFileSync(join(a, f), 'utf8'))
  }, 120_000)

  it('a broken invariant stops the run: exit 3 with the error, its seed and virtual time, and a command that reproduces it', async () => {
    const scenario = join(dir, 'trusted.yaml')
    writeFileSync(scenario, 'name: trusted\nnodes: 30\nseed: 7\ndurationS: 60\ntasks: { count: 30, requesters: 2, trusted: 0.5 }\npolicies: [linucb]\n')
    const failed = await sim(scenario, '--inject-bug', 'lock-off-by-one', '--out', join(dir, 'bug'))
    expect(failed.code, failed.stderr).toBe(3)
    const report = failed.stderr.slice(failed.stderr.indexOf('simulation stopped: '))
    expect(report).toMatch(/^simulation stopped: invariant broken: consensus [0-9a-f]{64}: lock recorded for round \d+ while in round \d+ \(InvariantError\)\n {2}scenario trusted, seed 7, 30 nodes, policy linucb, at virtual time \d+\.\d{3} s, injected bug lock-off-by-one\n {2}reproduce: npx agentmesh sim \S+ --seed 7 --nodes 30 --inject-bug lock-off-by-one\n$/)
    // The printed command, run as printed, stops at the same place.
    const command = /reproduce: npx agentmesh sim (.*)\n/.exec(report)![1]!.split(' ')
    const again = await sim(...command, '--out', join(dir, 'bug-again'))
    expect(again.code).toBe(3)
    expect(again.stderr.slice(again.stderr.indexOf('simulation stopped: '))).toBe(report)
    // Without the bug the same seed runs through.
    const clean = await sim(scenario, '--json', '--out', join(dir, 'clean'))
    expect(clean.code, clean.stderr).toBe(0)
    expect((JSON.parse(clean.stdout) as { safetyViolations: number }).safetyViolations).toBe(0)
    expect(await sim(scenario, '--inject-bug', 'nope')).toMatchObject({ code: 2, stderr: expect.stringMatching(/--inject-bug must be one of lock-off-by-one/) })
  }, 120_000)

  it('--seeds runs seed after seed of the random scenario and stops at the first failure with its command', async () => {
    const passing = await sim('random', '--seeds', '4', '--seed', '11', '--json')
    expect(passing.code, passing.stderr).toBe(0)
    expect(JSON.parse(passing.stdout)).toEqual({ scenario: 'random', seeds: 4, passed: 4, failed: null })
    expect(passing.stderr).toMatch(/seed 14 passed \(4\/4/)
    // With the injected bug the first seed that runs consensus fails; its command reproduces it.
    const failing = await sim('random', '--seeds', '20', '--inject-bug', 'lock-off-by-one', '--json')
    expect(failing.code, failing.stderr).toBe(3)
    const { failed, passed } = JSON.parse(failing.stdout) as { failed: number, passed: number }
    expect(failed).toBe(1 + passed)
    const report = failing.stderr.slice(failing.stderr.indexOf('simulation stopped: '))
    expect(report).toMatch(new RegExp(`reproduce: npx agentmesh sim random --seed ${failed} --nodes \\d+ --inject-bug lock-off-by-one\n$`))
    const command = /reproduce: npx agentmesh sim (.*)\n/.exec(report)![1]!.split(' ')
    const again = await sim(...command, '--out', join(dir, 'random-again'))
    expect(again.code).toBe(3)
    expect(again.stderr.slice(again.stderr.indexOf('simulation stopped: '))).toBe(report)
  }, 120_000)

  it('bad input: exit 2 with what is wrong and what to do', async () => {
    const bad = join(dir, 'bad.yaml')
    writeFileSync(bad, 'name: bad\ntasks: { cuont: 3 }\n')
    expect(await sim(bad)).toMatchObject({ code: 2, stderr: expect.stringMatching(/unknown field tasks\.cuont/) })
    expect(await sim('nope')).toMatchObject({ code: 2, stderr: expect.stringMatching(/no built-in scenario of that name \(built-in: quickstart, scale-10k/) })
    expect(await sim('quickstart', '--nodes', 'abc')).toMatchObject({ code: 2, stderr: expect.stringMatching(/--nodes must be a whole number/) })
    expect(await sim('scale-10k', '--cross-check')).toMatchObject({ code: 2, stderr: expect.stringMatching(/at most 50 nodes \(try --nodes 20\)/) })
  }, 60_000)
})
