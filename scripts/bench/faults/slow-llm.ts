/**
 * A fake OpenAI-compatible endpoint on 127.0.0.1 that answers each chat request after a delay, so
 * tasks are really in flight when a fault hits. Each peer's `llm` agent gets its own base URL
 * (/p<index>/v1), so every request says which host executes it; the prompt is the task id.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'

export interface LlmRequest { peer: number, prompt: string, at: number, answered: boolean }

export class SlowLlm {
  readonly requests: LlmRequest[] = []
  /** How long a request waits before its answer (changed between faults). */
  delayMs = 2000
  /** Requests whose answer waits until `release` (chosen per request at arrival). */
  hold: (r: LlmRequest) => boolean = () => false
  readonly #held = new Map<LlmRequest, () => void>()
  readonly #server = createServer((req, res) => { void this.#answer(req, res) })
  port = 0

  async start (): Promise<void> {
    await new Promise<void>(resolve => this.#server.listen(0, '127.0.0.1', resolve))
    this.port = (this.#server.address() as { port: number }).port
  }

  url (peer: number): string { return `http://127.0.0.1:${this.port}/p${peer}/v1` }

  /** Lets the held requests that `which` picks answer now. */
  release (which: (r: LlmRequest) => boolean = () => true): void {
    for (const [r, go] of [...this.#held]) if (which(r)) { this.#held.delete(r); go() }
  }

  held (): LlmRequest[] { return [...this.#held.keys()] }

  async close (): Promise<void> {
    this.release()
    this.#server.closeAllConnections()
    await new Promise(resolve => this.#server.close(resolve))
  }

  async #answer (req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body = ''
    for await (const chunk of req) body += String(chunk)
    const peer = Number(/^\/p(\d+)\//.exec(req.url ?? '')?.[1] ?? -1)
    let prompt = ''
    try {
      const messages = (JSON.parse(body) as { messages?: Array<{ content?: string }> }).messages ?? []
      prompt = messages.at(-1)?.content ?? ''
    } catch {}
    const r: LlmRequest = { peer, prompt, at: Date.now(), answered: false }
    this.requests.push(r)
    if (this.hold(r)) await new Promise<void>(resolve => this.#held.set(r, resolve))
    else await new Promise(resolve => setTimeout(resolve, this.delayMs))
    r.answered = true
    if (res.destroyed) return // the host died while we waited
    res.writeHead(200, { 'content-type': 'application/json' })
    // Deterministic text: every honest executor gives the same answer, so trusted subtasks agree.
    res.end(JSON.stringify({ choices: [{ message: { role: 'assistant', content: `echo: ${prompt}` } }] }))
  }
}
