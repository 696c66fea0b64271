// The llm agent against a real OpenAI-compatible HTTP server on 127.0.0.1.
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { AgentInputError } from '../../node/agents/agent.ts'
import { parseAgentsYaml } from '../../node/agents/config.ts'
import { createLlmAgent } from '../../node/agents/llm.ts'

interface Seen { path: string, auth: string | undefined, body: { model: string, messages: Array<{ role: string, content: string }>, logprobs: boolean, temperature?: number } }
let server: Server
let url: string
const seen: Seen[] = []
let answer: (req: IncomingMessage) => { status: number, body: string } = () => ({ status: 200, body: '{}' })

beforeAll(async () => {
  server = createServer((req, res) => {
    let text = ''
    req.on('data', (c: Buffer) => { text += c.toString() })
    req.on('end', () => {
      seen.push({ path: req.url ?? '', auth: req.headers.authorization, body: JSON.parse(text) as Seen['body'] })
      const { status, body } = answer(req)
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(body)
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`
})
afterAll(async () => { await new Promise(resolve => server.close(resolve)) })

const completion = (content: string, logprobs?: number[]): string => JSON.stringify({
  choices: [{ message: { role: 'assistant', content }, ...(logprobs !== undefined ? { logprobs: { content: logprobs.map(l => ({ token: 'x', logprob: l })) } } : {}) }]
})

describe('llm agent', () => {
  it('sends the system prompt, the prompt with its context and the key from the environment', async () => {
    answer = () => ({ status: 200, body: completion('Short and sweet.', [Math.log(0.9), Math.log(0.5)]) })
    const agent = createLlmAgent({ kind: 'llm', name: 'writer', skills: ['writing'], llm: { url, model: 'tiny', systemPrompt: 'Be brief.', apiKeyEnv: 'TEST_LLM_KEY', temperature: 0.2 } }, { TEST_LLM_KEY: 'sk-test' })
    const result = await agent.handle({ prompt: 'Shorten this', context: { text: 'A very long sentence.' } })
    expect(result.output).toEqual({ text: 'Short and sweet.' })
    expect(result.confidence).toBeCloseTo(Math.sqrt(0.9 * 0.5), 10) // geometric mean of token probabilities
    const request = seen.at(-1)!
    expect(request.path).toBe('/v1/chat/completions')
    expect(request.auth).toBe('Bearer sk-test')
    expect(request.body).toMatchObject({ model: 'tiny', temperature: 0.2, logprobs: true })
    expect(request.body.messages).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Shorten this\n\nContext (JSON):\n{"text":"A very long sentence."}' }
    ])
    expect(agent.describe()).toMatchObject({ name: 'writer', skills: ['writing'], policy: ['network'] })
  })

  it('reports no confidence when the server gives no log-probabilities', async () => {
    answer = () => ({ status: 200, body: completion('ok') })
    const result = await createLlmAgent({ kind: 'llm', llm: { url, model: 'tiny' } }, {}).handle({ prompt: 'hi' })
    expect(result).toEqual({ output: { text: 'ok' } })
    expect(seen.at(-1)!.auth).toBeUndefined()
  })

  it('fails with the reason: HTTP errors, non-JSON, a missing key, bad input, the deadline', async () => {
    const agent = createLlmAgent({ kind: 'llm', llm: { url, model: 'tiny', timeoutMs: 200 } }, {})
    answer = () => ({ status: 503, body: '{"error":"overloaded"}' })
    await expect(agent.handle({ prompt: 'hi' })).rejects.toThrow(/answered HTTP 503: \{"error":"overloaded"\}/)
    answer = () => ({ status: 200, body: 'not json' })
    await expect(agent.handle({ prompt: 'hi' })).rejects.toThrow(/did not answer JSON/)
    answer = () => ({ status: 200, body: '{"choices": []}' })
    await expect(agent.handle({ prompt: 'hi' })).rejects.toThrow(/without choices\[0\]\.message\.content/)
    await expect(createLlmAgent({ kind: 'llm', llm: { url, model: 'm', apiKeyEnv: 'NOPE_KEY' } }, {}).handle({ prompt: 'hi' })).rejects.toThrow(/NOPE_KEY .* is not set/)
    await expect(agent.handle({ prompt: '' })).rejects.toThrow(AgentInputError)
    await expect(agent.handle({ question: 'hi' })).rejects.toThrow(AgentInputError)
    const slow = createLlmAgent({ kind: 'llm', llm: { url: 'http://127.0.0.1:9', model: 'm', timeoutMs: 100 } }, {})
    await expect(slow.handle({ prompt: 'hi' })).rejects.toThrow()
  })

  it('is configured in YAML with its endpoint, and mistakes are named', () => {
    const specs = parseAgentsYaml(`agents:\n  - kind: llm\n    name: writer\n    llm: { url: ${url}, model: tiny, apiKeyEnv: OPENAI_API_KEY }\n`, 'a.yaml')
    expect(specs[0]).toEqual({ kind: 'llm', name: 'writer', llm: { url, model: 'tiny', apiKeyEnv: 'OPENAI_API_KEY' } })
    expect(() => parseAgentsYaml('agents:\n  - kind: llm\n', 'a.yaml')).toThrow(/needs an "llm" section/)
    expect(() => parseAgentsYaml('agents:\n  - kind: sort\n    llm: { url: http://x, model: m }\n', 'a.yaml')).toThrow(/belong only to kind llm/)
    expect(() => parseAgentsYaml('agents:\n  - kind: llm\n    llm: { url: ftp://x, model: m }\n', 'a.yaml')).toThrow(/http\(s\) URL/)
    expect(() => parseAgentsYaml('agents:\n  - kind: llm\n    llm: { url: http://x, model: m, apiKey: sk-123 }\n', 'a.yaml')).toThrow(/unknown field "apiKey" \(did you mean "apiKeyEnv"\?\)/)
    expect(() => parseAgentsYaml('agents:\n  - kind: llm\n    llm: { url: http://x, model: m, apiKeyEnv: sk-123 }\n', 'a.yaml')).toThrow(/names an environment variable/)
  })
})
