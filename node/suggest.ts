/**
 * The candidate closest to a misspelt word, for "did you mean" hints: case-insensitive, at most
 * `maxDistance` edits away, or one the word is a clear prefix of (`apiKey` → `apiKeyEnv`).
 */
export function suggest (word: string, candidates: readonly string[], maxDistance = 2): string | undefined {
  const w = word.toLowerCase()
  if (w.length >= 3) {
    const prefixed = candidates.filter(c => c.toLowerCase().startsWith(w))
    if (prefixed.length === 1) return prefixed[0]
  }
  let best: string | undefined
  let bestDistance = maxDistance + 1
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase())
    if (d < bestDistance) { best = c; bestDistance = d }
  }
  return best
}

function editDistance (a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const next = [i]
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    row = next
  }
  return row[b.length]!
}
