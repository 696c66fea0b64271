// A broken invariant inside a protocol machine ends a peer's process even where a library would
// swallow the exception (node/services/fail-stop.ts); any other error is left to its caller.
import { describe, it, expect } from 'vitest'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

function run (thrown: string): { status: number | null, stdout: string, stderr: string } {
  // The caller catches, as a gossip validator or a stream handler does.
  const script = `
    import { failStopOnBug } from './node/services/fail-stop.ts'
    import { InvariantError } from './protocols/assert.ts'
    try { failStopOnBug(() => { throw ${thrown} }) } catch (err) { console.log('caught by the library: ' + err.message) }
    setTimeout(() => { console.log('still running') }, 200)`
  return spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' })
}

describe('fail-stop on a broken invariant', () => {
  it('a broken invariant ends the process with its message, though the caller caught it', () => {
    const r = run("new InvariantError('consensus x: deciding twice')")
    expect(r.status).not.toBe(0)
    expect(r.stderr).toMatch(/InvariantError: invariant broken: consensus x: deciding twice/)
    expect(r.stdout).not.toMatch(/still running/)
  })

  it('any other error is the caller\'s to handle, and the process goes on', () => {
    const r = run("new Error('bad bytes from a peer')")
    expect(r.status).toBe(0)
    expect(r.stdout).toMatch(/caught by the library: bad bytes from a peer\nstill running/)
  })
})
