/**
 * Temporary files a crash left behind. Every file a peer writes goes to `<name>.<pid>.tmp` (or
 * `<name>.tmp-<pid>` in the index) and is then renamed; a kill -9 between the two leaves the
 * temporary file for ever. Called at start under the data directory's lock, when no other process
 * can be writing there, so every such file is stale.
 */
import { readdirSync, statSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'

const TEMP = /\.(\d+\.tmp|tmp-\d+)$/

/** Deletes the stale temporary files in `dir` and its subdirectories (two levels); returns their paths. */
export function removeStaleTemps (dir: string, depth = 2): string[] {
  const removed: string[] = []
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return removed
  }
  for (const name of names) {
    const path = join(dir, name)
    let isDir: boolean
    try {
      isDir = statSync(path).isDirectory()
    } catch {
      continue
    }
    if (isDir) {
      if (depth > 0) removed.push(...removeStaleTemps(path, depth - 1))
    } else if (TEMP.test(name)) {
      try {
        unlinkSync(path)
        removed.push(path)
      } catch {}
    }
  }
  return removed
}
