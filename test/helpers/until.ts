/** Resolves when `check` holds, polled every 20 ms (for state that changes on gossip, with no event to await); rejects after `timeoutMs`. */
export async function until (check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const started = Date.now()
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}
