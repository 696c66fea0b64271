// A graceful stop's first step: the API stops taking work but answers what it already took.
import { describe, it, expect } from 'vitest'
import { request, Agent as HttpAgent } from 'node:http'
import { startApi } from '../../node/api/api.ts'
import { usePeers } from '../helpers/peers.ts'
import { gatedAgent } from '../helpers/gated-agent.ts'

const { peer } = usePeers('agentmesh-drain-')

function post (port: number, path: string, body: unknown, token: string, agent?: HttpAgent): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    const text = JSON.stringify(body)
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), authorization: `Bearer ${token}` } }, res => {
      let data = ''
      res.on('data', (c: Buffer) => { data += c.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }))
    })
    req.on('error', reject)
    req.end(text)
  })
}

describe('draining the API', () => {
  it('refuses new connections, answers the request it is running, then closes', async () => {
    const gate = gatedAgent('slow', { skills: ['slow'] })
    const p = await peer({ agents: [], customAgents: [gate] })
    const api = await startApi(p, 0)
    const keepAlive = new HttpAgent({ keepAlive: true, maxSockets: 1 })
    const running = post(api.port, '/run', { skills: ['slow'], input: {} }, api.token, keepAlive)
    await gate.whenStarted(1)
    api.drain()
    // Nobody new gets in…
    await expect(post(api.port, '/run', { skills: ['slow'], input: {} }, api.token)).rejects.toThrow(/ECONNREFUSED/)
    // …but the task already taken finishes and its caller hears the answer.
    gate.release()
    const answered = await running
    expect(answered.status).toBe(200)
    expect(JSON.parse(answered.body)).toMatchObject({ status: 'done' })
    expect(gate.started).toBe(1)
    keepAlive.destroy()
    await api.close()
  })

  it('ends the dashboard\'s live event streams when it drains, so they do not hold the stop', async () => {
    const p = await peer({ agents: [] })
    const api = await startApi(p, 0)
    const ended = new Promise<{ status: number, body: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: api.port, path: '/events', headers: { authorization: `Bearer ${api.token}` } }, res => {
        let data = ''
        res.on('data', (c: Buffer) => {
          data += c.toString()
          if (data.includes('retry:')) api.drain() // the stream is open: now stop
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }))
        res.on('error', reject)
      })
      req.on('error', reject)
      req.end()
    })
    const got = await ended
    expect(got.status).toBe(200)
    expect(got.body).toContain('retry:')
    await api.close()
  })
})
