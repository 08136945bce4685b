import { MdCallbackNotAllowedError, MdCallbacksDisabledError } from '../errors.js'

/** One entry of CALLBACK_ALLOWED_HOSTS: a host name, or a host and port. */
export interface AllowedHost { host: string, port?: string }

const DEFAULT_PORTS: Record<string, string> = { 'http:': '80', 'https:': '443' }

/**
 * Reads CALLBACK_ALLOWED_HOSTS ("n8n, hooks.example.com:8443, [::1]:5678"); undefined when unset,
 * which turns callbacks off. A malformed entry throws with a message naming it.
 */
export function parseAllowedHosts (value: string | undefined): AllowedHost[] | undefined {
  if (value === undefined) return undefined
  return value.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '').map((entry) => {
    let url: URL
    try {
      url = new URL(`http://${entry}`)
    } catch {
      throw new RangeError(`"${entry}" is not a host name or host:port`)
    }
    if (url.username !== '' || url.password !== '' || url.pathname !== '/' || url.search !== '' || url.hash !== '') {
      throw new RangeError(`"${entry}" is not a host name or host:port`)
    }
    const port = /:(\d+)$/.exec(entry)?.[1]
    return { host: url.hostname, ...(port === undefined ? {} : { port }) }
  })
}

/**
 * A callback is a request this server makes on a client's say-so (OWASP API7, SSRF): only to an
 * allowed host, over http(s), without credentials in the URL. Answers the URL to call.
 */
export function checkCallbackUrl (value: unknown, allowed: AllowedHost[] | undefined): string {
  if (allowed === undefined) throw new MdCallbacksDisabledError()
  if (typeof value !== 'string' || value.length > 2048) throw new MdCallbackNotAllowedError('callback_url must be an absolute http(s) URL of at most 2048 characters')
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new MdCallbackNotAllowedError('callback_url is not an absolute URL')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new MdCallbackNotAllowedError(`callback_url must use http or https, not ${url.protocol.slice(0, -1)}`)
  if (url.username !== '' || url.password !== '') throw new MdCallbackNotAllowedError('callback_url must not carry credentials (user:password@)')
  const port = url.port === '' ? DEFAULT_PORTS[url.protocol] : url.port
  if (!allowed.some((entry) => entry.host === url.hostname && (entry.port === undefined || entry.port === port))) {
    throw new MdCallbackNotAllowedError(`callback_url host ${url.host} is not in CALLBACK_ALLOWED_HOSTS`)
  }
  return url.href
}

/** The URL as a job shows it: resume URLs carry tokens in their query, so every query value is masked. */
export function maskCallbackUrl (href: string): string {
  const url = new URL(href)
  if (url.search === '') return url.href
  const masked = [...url.searchParams.keys()].map((key) => `${encodeURIComponent(key)}=****`).join('&')
  return `${url.origin}${url.pathname}?${masked}`
}
