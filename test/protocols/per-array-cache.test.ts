// oncePerArray's caches (protocols/cbor.ts): on in the simulator, where one broadcast array reaches
// every node; off in a node, where each received array is new and a cached result would keep the
// array and the buffer it is a view of alive (RSS under replayed gossip doubled with them).
import { afterEach, describe, expect, it } from 'vitest'
import { cachePerArray, encodeCanonical, oncePerArray } from '../../protocols/cbor.ts'

describe('per-array caches', () => {
  afterEach(() => { cachePerArray(false) })

  it('compute once per array object when on, every time when off (the default)', () => {
    let calls = 0
    const size = oncePerArray(bytes => { calls++; return { n: bytes.byteLength } })
    const a = encodeCanonical({ x: 1 })
    size(a)
    size(a)
    expect(calls).toBe(2)
    cachePerArray(true)
    const first = size(a)
    expect(size(a)).toBe(first) // the same object, shared
    expect(calls).toBe(3)
    size(a.slice()) // equal bytes, another array: computed again
    expect(calls).toBe(4)
    cachePerArray(false)
    size(a)
    expect(calls).toBe(5)
  })

  it('a failure is never remembered', () => {
    cachePerArray(true)
    let calls = 0
    const boom = oncePerArray(() => { calls++; throw new Error('bad bytes') })
    const a = new Uint8Array([1])
    expect(() => boom(a)).toThrow(/bad bytes/)
    expect(() => boom(a)).toThrow(/bad bytes/)
    expect(calls).toBe(2)
  })
})
