/**
 * Where the API listens and what that demands: on loopback, plain HTTP; anywhere else, TLS and the
 * token for every route (checked before the peer starts, so a mistake costs nothing).
 */
import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { PeerStartError } from '../peer.ts'

export interface ApiListen { host: string, port: number }

/** `127.0.0.1:8100`, `0.0.0.0:8443`, `[::]:8443`, `localhost:8100`; port 0 picks a free one. */
export function parseApiListen (text: string): ApiListen {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text)
  const host = m?.[1] ?? m?.[2]
  const port = Number(m?.[3])
  const hint = 'give host:port, e.g. --api-listen 127.0.0.1:8100 or --api-listen 0.0.0.0:8443 (IPv6 in brackets: [::1]:8100)'
  if (m === null || host === undefined || port > 65535) throw new PeerStartError(`--api-listen "${text}" is not an address — ${hint}`)
  if (host !== 'localhost' && isIP(host) === 0) throw new PeerStartError(`--api-listen "${text}": the host must be an IP address or localhost — ${hint}`)
  if (m[1] !== undefined && isIP(host) !== 6) throw new PeerStartError(`--api-listen "${text}": only IPv6 addresses go in brackets — ${hint}`)
  return { host, port }
}

/** 127.0.0.0/8, ::1 and localhost: only this machine can connect. */
export function isLoopback (host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || /^::ffff:127\./i.test(host)
}

export interface ApiTlsFiles { cert: string, key: string }

/** The certificate and key as PEM text; refuses a non-loopback address without them. */
export function apiTls (host: string, files: Partial<ApiTlsFiles>): { cert: string, key: string } | undefined {
  if ((files.cert === undefined) !== (files.key === undefined)) throw new PeerStartError('the API needs both --api-tls-cert FILE and --api-tls-key FILE, or neither')
  if (files.cert === undefined || files.key === undefined) {
    if (!isLoopback(host)) throw new PeerStartError(`the API would listen on ${host}, beyond this machine, in clear text — give --api-tls-cert FILE and --api-tls-key FILE (PEM), or listen on 127.0.0.1`)
    return undefined
  }
  const read = (flag: string, file: string): string => {
    try {
      return readFileSync(file, 'utf8')
    } catch (err) {
      throw new PeerStartError(`cannot read ${flag} ${file}: ${(err as Error).message}`)
    }
  }
  return { cert: read('--api-tls-cert', files.cert), key: read('--api-tls-key', files.key) }
}

/** `--api-allow-origin` values as origins (`https://app.example.org`); anything else is refused. */
export function parseOrigins (values: string[]): string[] {
  return values.map(value => {
    let url: URL | undefined
    try { url = new URL(value) } catch {}
    if (url === undefined || !['http:', 'https:'].includes(url.protocol) || url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
      throw new PeerStartError(`--api-allow-origin "${value}" is not an origin — give scheme, host and port only, e.g. https://app.example.org or http://localhost:3000`)
    }
    return url.origin
  })
}
