/**
 * The one place hnswlib-node is loaded. `npm install` also builds a CPU-tuned copy of its addon
 * (scripts/native-build.ts); this module uses that copy when it is safe to, else the portable
 * build npm installed. Both are the same source and version, so the API is the same.
 */
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import portable from 'hnswlib-node'

type HnswlibModule = typeof portable

/** What the native build was made from and on; it loads only if all of it still holds. */
export interface NativeManifest {
  version: string
  sourceHash: string
  cxxflags: string
  /** The build machine's CPU feature flags (/proc/cpuinfo): this CPU must have every one. */
  cpuFlags: string[]
}

export const NATIVE_CXXFLAGS = '-O3 -march=native'

const require = createRequire(import.meta.url)

/** `node_modules/.cache/agentmesh/hnswlib-native`, beside the hnswlib-node npm installed. */
export function nativeBuildDir (): string {
  const nodeModules = dirname(dirname(require.resolve('hnswlib-node/package.json')))
  return join(nodeModules, '.cache', 'agentmesh', 'hnswlib-native')
}

/** This CPU's feature flags (the first processor's), or undefined where /proc/cpuinfo is missing. */
export function cpuFlags (): ReadonlySet<string> | undefined {
  if (!existsSync('/proc/cpuinfo')) return undefined
  const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find(l => /^(flags|Features)\s*:/.test(l))
  return line === undefined ? undefined : new Set(line.slice(line.indexOf(':') + 1).trim().split(/\s+/))
}

/** Whether a CPU-tuned build may load here: the same hnswlib-node version, and no CPU flag missing. */
export function nativeVerdict (manifest: NativeManifest, installedVersion: string, here: ReadonlySet<string> | undefined): { ok: boolean, why: string } {
  if (manifest.version !== installedVersion) return { ok: false, why: `the CPU-tuned build is of hnswlib-node ${manifest.version}, ${installedVersion} is installed` }
  if (here === undefined) return { ok: false, why: 'this machine has no /proc/cpuinfo to check the CPU-tuned build against' }
  const missing = manifest.cpuFlags.filter(f => !here.has(f))
  if (missing.length > 0) return { ok: false, why: `this CPU lacks ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', …' : ''}, which the CPU-tuned build may use` }
  return { ok: true, why: `built with ${manifest.cxxflags}` }
}

function loadNative (): { lib: HnswlibModule | undefined, why: string } {
  if (process.env.AGENTMESH_HNSWLIB === 'portable') return { lib: undefined, why: 'AGENTMESH_HNSWLIB=portable' }
  const dir = nativeBuildDir()
  const addon = join(dir, 'build', 'Release', 'addon.node')
  if (!existsSync(addon) || !existsSync(join(dir, 'manifest.json'))) return { lib: undefined, why: 'no CPU-tuned build (npm install makes one on Linux)' }
  try {
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as NativeManifest
    const version = (require('hnswlib-node/package.json') as { version: string }).version
    const verdict = nativeVerdict(manifest, version, cpuFlags())
    return { lib: verdict.ok ? require(addon) as HnswlibModule : undefined, why: verdict.why }
  } catch (err) {
    return { lib: undefined, why: `the CPU-tuned build did not load: ${(err as Error).message}` }
  }
}

const native = loadNative()

/** hnswlib-node's API, from the CPU-tuned build when it is safe, else the portable one. */
export const hnswlib: HnswlibModule = native.lib ?? portable

/** Which build is in use and why, for `status` and the benchmarks. */
export const hnswlibBuild: { native: boolean, why: string } = { native: native.lib !== undefined, why: native.why }
