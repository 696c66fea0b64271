/** JSON helpers shared by protocols and agents: RFC 6901 pointers and value descriptions for errors. */

/** Keys that would reach Object.prototype; never followed or created. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype'])

export class PointerError extends Error {
  override name = 'PointerError'
}

/** How a value looks in an error message: "an array", "a number (2)", "a string ("abc")". */
export function typeName (value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value)
  if (typeof value === 'string') return `a string (${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)})`
  if (typeof value === 'object') return 'an object'
  if (value === undefined) return 'nothing'
  return `a ${typeof value} (${String(value)})`
}

/** Resolves an RFC 6901 JSON Pointer ("" is the whole document); throws a PointerError saying where it failed. */
export function resolvePointer (data: unknown, pointer: string): unknown {
  if (pointer === '') return data
  if (!pointer.startsWith('/')) {
    throw new PointerError(`must be a JSON Pointer starting with "/" (or "" for the whole document), e.g. "/users/0/name"; got ${JSON.stringify(pointer)}`)
  }
  let current: unknown = data
  let at = ''
  for (const raw of pointer.slice(1).split('/')) {
    if (/~(?![01])/.test(raw)) throw new PointerError(`segment ${JSON.stringify(raw)} has a bare "~"; write ~0 for "~" and ~1 for "/"`)
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    if (FORBIDDEN_KEYS.has(key)) throw new PointerError(`may not use the key "${key}"`)
    if (Array.isArray(current)) {
      if (!/^(0|[1-9]\d*)$/.test(key) || Number(key) >= current.length) {
        throw new PointerError(`${pointer}: ${at || '/'} is an array of ${current.length} items, and "${key}" is not one of its indexes`)
      }
      current = current[Number(key)]
    } else if (typeof current === 'object' && current !== null) {
      if (!Object.hasOwn(current, key)) throw new PointerError(`${pointer}: the object at ${at || '/'} has no key "${key}"`)
      current = (current as Record<string, unknown>)[key]
    } else {
      throw new PointerError(`${pointer}: ${at || '/'} is ${typeName(current)}, which has no key "${key}"`)
    }
    at += `/${raw}`
  }
  return current
}
