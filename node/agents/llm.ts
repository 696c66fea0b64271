/**
 * `llm`: an agent backed by any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM,
 * llama.cpp server, Ollama's /v1, …).
 *
 * ```yaml
 * - kind: llm
 *   name: writer
 *   description: writes short, concrete product copy
 *   skills: [writing, copy]
 *   llm:
 *     url: http://127.0.0.1:8080/v1      # base URL; /chat/completions is appended
 *     model: qwen2.5-7b-instruct
 *     systemPrompt: You are a concise copywriter.
 *     apiKeyEnv: OPENAI_API_KEY           # the key is read from this environment variable, never from the file
 * ```
 *
 * Input `{ prompt, context? }`, output `{ text }`. Confidence is the geometric-mean token
 * probability when the server returns log-probabilities, and absent otherwise: self-reported
 * confidence is only ever a capped, calibrated input to consensus.
 */
import { AgentInputError, type Agent, type AgentDescription, type AgentSpec, type LlmSettings } from './agent.ts'
import { applySpec, JSON_SCHEMA_DRAFT, inputObject } from './base.ts'

const MAX_PROMPT = 32_000

const defaults: AgentDescription = {
  name: 'llm',
  description: 'A language model that answers a free-form prompt in text: writing, rewriting, explaining, answering questions.',
  skills: ['llm', 'text-generation', 'writing', 'question-answering'],
  inputSchema: {
    $schema: JSON_SCHEMA_DRAFT,
    type: 'object',
    properties: {
      prompt: { type: 'string', minLength: 1, maxLength: MAX_PROMPT },
      context: { description: 'Any JSON the prompt refers to (for example an upstream output).' }
    },
    required: ['prompt'],
    additionalProperties: false
  },
  outputSchema: {
    $schema: JSON_SCHEMA_DRAFT,
    type: 'object',
    properties: { text: { type: 'string' } },
    required: ['text'],
    additionalProperties: false
  },
  costPerCall: 1,
  latencyMs: 2000,
  capacity: 4,
  policy: ['network']
}

interface ChatResponse {
  choices?: Array<{ message?: { content?: unknown }, logprobs?: { content?: Array<{ logprob?: unknown }> | null } | null }>
}

export function createLlmAgent (spec: AgentSpec, env: NodeJS.ProcessEnv = process.env, fetchImpl: typeof fetch = fetch): Agent {
  const settings: LlmSettings | undefined = spec.llm
  if (settings === undefined) throw new Error('an llm agent needs an "llm" section with at least url and model')
  const description = applySpec(defaults, spec)
  const endpoint = `${settings.url.replace(/\/+$/, '')}/chat/completions`
  return {
    describe: () => structuredClone(description),
    async handle (input: unknown, signal?: AbortSignal) {
      signal?.throwIfAborted()
      const fields = inputObject(input, ['prompt', 'context'], description.name)
      const prompt = fields.prompt
      if (typeof prompt !== 'string' || prompt.trim() === '' || prompt.length > MAX_PROMPT) {
        throw new AgentInputError(`field "prompt" must be a non-empty string of at most ${MAX_PROMPT} characters; send e.g. { "prompt": "Summarise this in one line", "context": {...} }`)
      }
      const user = fields.context === undefined ? prompt : `${prompt}\n\nContext (JSON):\n${JSON.stringify(fields.context)}`
      const key = settings.apiKeyEnv !== undefined ? env[settings.apiKeyEnv] : undefined
      if (settings.apiKeyEnv !== undefined && (key === undefined || key === '')) {
        throw new Error(`the environment variable ${settings.apiKeyEnv} (named by apiKeyEnv) is not set`)
      }
      const timeout = AbortSignal.timeout(settings.timeoutMs ?? 60_000)
      const res = await fetchImpl(endpoint, {
        method: 'POST',
        signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
        headers: { 'content-type': 'application/json', ...(key !== undefined ? { authorization: `Bearer ${key}` } : {}) },
        body: JSON.stringify({
          model: settings.model,
          messages: [...(settings.systemPrompt !== undefined ? [{ role: 'system', content: settings.systemPrompt }] : []), { role: 'user', content: user }],
          ...(settings.temperature !== undefined ? { temperature: settings.temperature } : {}),
          ...(settings.maxTokens !== undefined ? { max_tokens: settings.maxTokens } : {}),
          logprobs: true
        })
      })
      const body = await res.text()
      if (!res.ok) throw new Error(`${endpoint} answered HTTP ${res.status}: ${body.slice(0, 300)}`)
      let parsed: ChatResponse
      try {
        parsed = JSON.parse(body) as ChatResponse
      } catch {
        throw new Error(`${endpoint} did not answer JSON: ${body.slice(0, 120)}`)
      }
      const choice = parsed.choices?.[0]
      const text = choice?.message?.content
      if (typeof text !== 'string') throw new Error(`${endpoint} answered without choices[0].message.content`)
      const logprobs = (choice?.logprobs?.content ?? []).map(t => t.logprob).filter((l): l is number => typeof l === 'number' && Number.isFinite(l))
      const confidence = logprobs.length > 0 ? Math.exp(logprobs.reduce((a, b) => a + b, 0) / logprobs.length) : undefined
      return { output: { text }, ...(confidence !== undefined ? { confidence } : {}) }
    }
  }
}
