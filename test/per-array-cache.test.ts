// oncePerArray's caches (protocols/cbor.ts): long-lived in the simulator, where one broadcast
// array reaches every node; in a node only the last few arrays, since each received array is new
// and a weak entry would keep its decoded object alive through young-generation collections.
import { afterEach, describe, expect, it } from 'vitest'
import { cachePerArray, encodeCanonical, oncePerArray } from '../protocols/cbor.ts'

describe('per-array caches', () => {
  afterEach(() => { cachePerArray(false) })

  it('a node (the default) remembers the last 16 arrays; the simulator every live one', () => {
    let calls = 0
    const size = oncePerArray(bytes => { calls++; return { n: bytes.byteLength } })
    const arrays = Array.from({ length: 17 }, (_, i) => encodeCanonical({ i }))
    const first = size(arrays[0]!)
    expect(size(arrays[0]!)).toBe(first) // the same object, shared
    expect(size(arrays[0]!.slice())).not.toBe(first) // equal bytes, another array: computed again
    expect(calls).toBe(2)
    for (const a of arrays.slice(1)) size(a) // 16 more: arrays[0] is forgotten
    calls = 0
    size(arrays[0]!)
    size(arrays[16]!)
    expect(calls).toBe(1)
    cachePerArray(true)
    calls = 0
    for (const a of arrays) size(a)
    for (const a of arrays) size(a)
    expect(calls).toBe(arrays.length)
  })

  it('a failure is never remembered', () => {
    for (const on of [false, true]) {
      cachePerArray(on)
      let calls = 0
      const boom = oncePerArray(() => { calls++; throw new Error('bad bytes') })
      const a = new Uint8Array([1])
      expect(() => boom(a)).toThrow(/bad bytes/)
      expect(() => boom(a)).toThrow(/bad bytes/)
      expect(calls).toBe(2)
    }
  })
})
