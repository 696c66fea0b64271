/**
 * Run by `npm install` (postinstall): builds a second copy of hnswlib-node's addon from the same
 * source with `-O3 -march=native`, so HNSW distances use this CPU's widest SIMD (AVX2/AVX-512)
 * instead of the SSE baseline of the portable build. Upstream hnswlib's own Python package builds
 * this way. At 100k × 384 it takes a search from ~0.94 to ~0.64 ms (measured with hnswlib-node
 * 3.0.0 on a 2-core AVX-512 machine).
 *
 * The portable build stays where npm put it: `capability-index/hnswlib.ts` loads this one only
 * when its manifest matches the installed hnswlib-node version and this CPU has every feature
 * flag the build machine had (so a copied node_modules never runs an instruction the CPU lacks).
 * Nothing here can fail the install: any problem prints one line and the portable build is used.
 * AGENTMESH_HNSWLIB=portable skips the build (and the loading).
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { cpuFlags, NATIVE_CXXFLAGS, nativeBuildDir, type NativeManifest } from '../capability-index/hnswlib.ts'

const require = createRequire(import.meta.url)

function main (): void {
  if (process.env.AGENTMESH_HNSWLIB === 'portable') return say('AGENTMESH_HNSWLIB=portable: using the portable hnswlib-node build')
  const flags = cpuFlags()
  if (flags === undefined) return say('no /proc/cpuinfo here: using the portable hnswlib-node build')
  const pkgDir = dirname(require.resolve('hnswlib-node/package.json'))
  const version = (JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string }).version
  const sourceHash = createHash('sha256').update(readFileSync(join(pkgDir, 'binding.gyp'))).update(readFileSync(join(pkgDir, 'src', 'addon.cc'))).digest('hex')
  const dir = nativeBuildDir()
  const manifestPath = join(dir, 'manifest.json')
  if (existsSync(manifestPath)) {
    const old = JSON.parse(readFileSync(manifestPath, 'utf8')) as NativeManifest
    if (old.version === version && old.sourceHash === sourceHash && old.cxxflags === NATIVE_CXXFLAGS && sameSet(old.cpuFlags, flags)) return
  }
  const gyp = nodeGyp()
  if (gyp === undefined) return say('node-gyp not found (run through npm): using the portable hnswlib-node build')
  const work = `${dir}.building-${process.pid}`
  rmSync(work, { recursive: true, force: true })
  mkdirSync(work, { recursive: true })
  cpSync(join(pkgDir, 'binding.gyp'), join(work, 'binding.gyp'))
  cpSync(join(pkgDir, 'src'), join(work, 'src'), { recursive: true })
  const started = performance.now()
  try {
    execFileSync(process.execPath, [gyp, 'rebuild'], {
      cwd: work,
      env: { ...process.env, CXXFLAGS: `${process.env.CXXFLAGS ?? ''} ${NATIVE_CXXFLAGS}`.trim() },
      stdio: ['ignore', 'ignore', 'pipe']
    })
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? '').trim().split('\n').slice(-3).join(' | ')
    rmSync(work, { recursive: true, force: true })
    return say(`the CPU-tuned hnswlib build failed (${stderr || (err as Error).message}); using the portable build`)
  }
  const manifest: NativeManifest = { version, sourceHash, cxxflags: NATIVE_CXXFLAGS, cpuFlags: [...flags].sort() }
  writeFileSync(join(work, 'manifest.json'), JSON.stringify(manifest, null, 1))
  rmSync(dir, { recursive: true, force: true })
  renameSync(work, dir)
  say(`built hnswlib-node ${version} with ${NATIVE_CXXFLAGS} in ${((performance.now() - started) / 1000).toFixed(1)} s`)
}

/** npm gives its bundled node-gyp to lifecycle scripts; otherwise look beside npm itself. */
function nodeGyp (): string | undefined {
  const fromNpm = process.env.npm_config_node_gyp
  if (fromNpm !== undefined && existsSync(fromNpm)) return fromNpm
  const npm = process.env.npm_execpath
  if (npm === undefined) return undefined
  const candidate = join(dirname(npm), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')
  return existsSync(candidate) ? candidate : undefined
}

function sameSet (a: readonly string[], b: ReadonlySet<string>): boolean {
  return a.length === b.size && a.every(x => b.has(x))
}

function say (line: string): void {
  console.error(`agentmesh postinstall: ${line}`)
}

main()
