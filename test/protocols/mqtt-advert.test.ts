import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { AdvertError, MAX_ADVERT_BYTES, parseAdvert } from '../../protocols/mqtt/index.ts'
import { ValidationError } from '../../protocols/capability/index.ts'
import { makeSigners, table } from '../helpers/hosts.ts'

const json = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v))
const good = { description: 'reads the temperature of room 4', skills: ['temperature', 'sensor'], inputSchema: { type: 'object' }, outputSchema: { type: 'object' }, costPerCall: 0.1, latencyMs: 50, capacity: 2, policy: ['deterministic'] }

describe('MQTT adverts', () => {
  it('a valid advert becomes a local agent named for its client, which the capability table can sign', async () => {
    const advert = parseAdvert(json(good), 'edge-7', 'thermo')
    expect(advert).toEqual({ kind: 'agent', agent: { name: 'mqtt.edge-7.thermo', ...good } })
    const [bridge] = await makeSigners(1)
    const t = table(bridge!)
    if (advert.kind !== 'agent') throw new Error('unreachable')
    expect(() => { t.check(advert.agent) }).not.toThrow()
    const effects = t.advertise(advert.agent, 1_700_000_000_000)
    expect(effects.some(e => e.type === 'broadcast')).toBe(true)
    expect(t.get(`${bridge!.peerId}/mqtt.edge-7.thermo`)?.body.description).toBe(good.description)
    // Defaults for what a small device may leave out.
    expect(parseAdvert(json({ description: 'blinks a led' }), 'edge-7', 'led')).toMatchObject({ kind: 'agent', agent: { skills: [], policy: [], costPerCall: 1, latencyMs: 1000, capacity: 1, inputSchema: {}, outputSchema: {} } })
  })

  it('an empty payload (a cleared retained message) is a withdrawal', () => {
    expect(parseAdvert(new Uint8Array(0), 'edge-7', 'thermo')).toEqual({ kind: 'withdrawn' })
  })

  it('refuses with a reason: not JSON, not an object, unknown fields, wrong types, too big, names too long', () => {
    const refused = (payload: Uint8Array, reason: RegExp, client = 'edge-7', agent = 'thermo'): void => {
      expect(() => parseAdvert(payload, client, agent)).toThrow(AdvertError)
      expect(() => parseAdvert(payload, client, agent)).toThrow(reason)
    }
    refused(new TextEncoder().encode('{"description": '), /UTF-8 JSON/)
    refused(Uint8Array.of(0xff, 0xfe), /UTF-8 JSON/)
    refused(json([1]), /JSON object/)
    refused(json({ ...good, host: 'someone-else' }), /unknown field "host"/)
    refused(json({ ...good, description: '' }), /"description" must be a non-empty string/)
    refused(json({ ...good, skills: 'temperature' }), /"skills" must be a list/)
    refused(json({ ...good, capacity: 1.5 }), /"capacity" must be a whole number/)
    refused(json({ ...good, costPerCall: -1 }), /"costPerCall" must be a number from 0/)
    refused(json({ ...good, inputSchema: [] }), /"inputSchema" must be a JSON Schema object/)
    refused(json({ ...good, description: 'x'.repeat(MAX_ADVERT_BYTES) }), /at most 48 KiB/)
    refused(json(good), /too long for a mesh name/, 'c'.repeat(30), 'a'.repeat(30))
  })

  it('what the advert parser lets through, the VCV rules still judge (one rule set for signed records)', async () => {
    const [bridge] = await makeSigners(1)
    const advert = parseAdvert(json({ ...good, skills: ['has spaces'] }), 'edge-7', 'thermo')
    if (advert.kind !== 'agent') throw new Error('unreachable')
    expect(() => { table(bridge!).check(advert.agent) }).toThrow(ValidationError)
  })

  it('never throws anything but AdvertError, whatever the bytes', () => {
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.json().map(s => new TextEncoder().encode(s)), fc.anything().map(v => json({ ...good, [String(v)]: v }))), payload => {
      try {
        parseAdvert(payload, 'edge-7', 'thermo')
      } catch (err) {
        expect(err).toBeInstanceOf(AdvertError)
      }
    }), { seed: 9, numRuns: 500 })
  })
})

describe('MQTT advert public key', () => {
  it('takes a 32-byte key in base64 (standard or url-safe) and refuses anything else as an AdvertError, never a crash', async () => {
    const { parseAdvert, AdvertError } = await import('../../protocols/mqtt/index.ts')
    const advert = (publicKey: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify({ description: 'stats', publicKey }))
    const key = Uint8Array.from({ length: 32 }, (_, i) => i * 7 + 250)
    for (const text of [Buffer.from(key).toString('base64'), Buffer.from(key).toString('base64url')]) {
      const a = parseAdvert(advert(text), 'edge', 'stats')
      expect(a.kind === 'agent' && a.publicKey).toEqual(key)
    }
    // Found by the fuzzer: a last character with stray low bits made the base64 decoder throw its own error.
    for (const bad of ['A'.repeat(42) + 'a=', 'A'.repeat(42), 'A'.repeat(44), 12, null, Buffer.from(key.subarray(1)).toString('base64')]) {
      expect(() => parseAdvert(advert(bad), 'edge', 'stats'), String(bad)).toThrow(AdvertError)
    }
  })
})

describe('MQTT advert schema depth', () => {
  it('refuses a schema nested past 32 levels with the reason (found by the fuzzer: deep values overflowed the stack downstream)', async () => {
    const { parseAdvert, AdvertError } = await import('../../protocols/mqtt/index.ts')
    const deep = (n: number): string => `{"description":"d","inputSchema":{"type":${'['.repeat(n)}${']'.repeat(n)}}}`
    expect(parseAdvert(new TextEncoder().encode(deep(30)), 'edge', 'stats').kind).toBe('agent')
    expect(() => parseAdvert(new TextEncoder().encode(deep(4000)), 'edge', 'stats')).toThrow(AdvertError)
    expect(() => parseAdvert(new TextEncoder().encode(deep(4000)), 'edge', 'stats')).toThrow(/nested more than 32 levels/)
  })
})
