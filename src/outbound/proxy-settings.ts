/**
 * The outbound proxy, as the environment names it: HTTPS_PROXY for https:// addresses (HTTP_PROXY
 * when it is unset), HTTP_PROXY for http:// ones, and NO_PROXY for the hosts reached directly.
 * Each lower-case form wins over the upper-case one, as undici, curl and Python's requests have it.
 */
export interface ProxySettings {
  httpProxy: string | undefined
  httpsProxy: string | undefined
  /** Comma- or space-separated host names, host:port, `.domain` or `*`; loopback is not implied. */
  noProxy: string | undefined
}

export const PROXY_VARIABLES = ['HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY'] as const

/** A proxy setting that cannot be used; the message never repeats the value (it holds a password). */
export class ProxySettingError extends Error {
  override name = 'ProxySettingError'
}

export function readProxySettings (env: Readonly<Record<string, string | undefined>>): ProxySettings {
  const pick = (name: typeof PROXY_VARIABLES[number]): string | undefined => env[name.toLowerCase()] ?? env[name]
  return {
    httpProxy: checkProxyUrl('HTTP_PROXY', pick('HTTP_PROXY')),
    httpsProxy: checkProxyUrl('HTTPS_PROXY', pick('HTTPS_PROXY')),
    noProxy: pick('NO_PROXY')
  }
}

export const usesProxy = (settings: ProxySettings): boolean => settings.httpProxy !== undefined || settings.httpsProxy !== undefined

function checkProxyUrl (name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  let url: URL | undefined
  try {
    url = new URL(value)
  } catch { /* reported below */ }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
    throw new ProxySettingError(`${name} is invalid: expected the proxy's http(s) URL, e.g. http://user:password@proxy.example:3128`)
  }
  return value
}

/** The proxy's address as it may be shown: user and password, if any, replaced by ****. */
export function maskedProxyUrl (value: string): string {
  const url = new URL(value)
  if (url.username !== '') url.username = '****'
  if (url.password !== '') url.password = '****'
  return url.toString().replace(/\/$/, '')
}

/**
 * What of a proxy URL the logs must never show: its user and password, as written and decoded, and
 * the Proxy-Authorization value made of them.
 */
export function proxySecrets (settings: ProxySettings): string[] {
  const secrets = new Set<string>()
  for (const value of [settings.httpProxy, settings.httpsProxy]) {
    if (value === undefined) continue
    const { username, password } = new URL(value)
    for (const part of [username, password]) {
      if (part === '') continue
      secrets.add(part)
      secrets.add(decoded(part))
    }
    if (username !== '' || password !== '') secrets.add(Buffer.from(`${decoded(username)}:${decoded(password)}`).toString('base64'))
  }
  return [...secrets]
}

function decoded (part: string): string {
  try {
    return decodeURIComponent(part)
  } catch {
    return part // a stray % stays as written
  }
}
