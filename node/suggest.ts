/** The candidate closest to a misspelt word (case-insensitive, at most `maxDistance` edits), for "did you mean" hints. */
export function suggest (word: string, candidates: readonly string[], maxDistance = 2): string | undefined {
  const w = word.toLowerCase()
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
