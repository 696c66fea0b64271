// protocols/ holds pure state machines: time and randomness are inputs, effects are outputs.
import { describe, it, expect } from 'vitest'
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'

const ROOT = join(import.meta.dirname, '../../protocols')
/** What a machine must not reach for: I/O, clocks, ambient randomness, timers, libp2p, ml-matrix. */
const IMPURE = /from '(node:(?!crypto')|ml-matrix|libp2p|@libp2p)|Date\.now|Math\.random|setTimeout|setInterval|setImmediate|performance\.now|process\./
/** node:crypto is allowed for hashing alone (a pure function of its input). */
const CRYPTO_USERS = new Set(['hash.ts'])

function * sources (dir: string): Iterable<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) yield * sources(path)
    else if (entry.name.endsWith('.ts')) yield path
  }
}

describe('purity', () => {
  it('no file of protocols/ uses I/O, clocks, ambient randomness, timers, the process, libp2p or ml-matrix', () => {
    const files = [...sources(ROOT)]
    expect(files.length).toBeGreaterThan(50)
    for (const path of files) {
      const file = relative(ROOT, path)
      const src = readFileSync(path, 'utf8')
      expect(src, file).not.toMatch(IMPURE)
      if (!CRYPTO_USERS.has(file)) expect(src, file).not.toMatch(/from 'node:crypto'/)
    }
  })

  it('the check catches what it is for', () => {
    for (const bad of ["import { readFileSync } from 'node:fs'", 'const t = Date.now()', 'Math.random()', "import { noise } from '@libp2p/noise'", 'setTimeout(f, 1)', 'process.env.X']) expect(bad).toMatch(IMPURE)
    expect("import { hash } from 'node:crypto'").not.toMatch(IMPURE)
  })
})
