import { createHash, timingSafeEqual } from 'node:crypto'
import type { Scope } from './scopes.js'

/** The SHA-256 digest of a key: what is kept and compared, never the key itself. */
export const keyDigest = (value: string): Buffer => createHash('sha256').update(value).digest()

/** One accepted key: its name (shown in logs and errors), its scope, and the SHA-256 of the key. */
export interface ApiKeyEntry {
  name: string
  scope: Scope
  digest: Buffer
}

/** Who a request's key is: never the key. */
export interface ApiKeyIdentity {
  name: string
  scope: Scope
}

/** The name the keys of API_KEY go by: they are admin keys. */
export const API_KEY_NAME = 'api_key'

export const apiKeyEntries = (keys: readonly string[]): ApiKeyEntry[] =>
  keys.map((key) => ({ name: API_KEY_NAME, scope: 'admin', digest: keyDigest(key) }))

/**
 * The accepted API keys. Keys are compared as SHA-256 digests with timingSafeEqual and every key
 * is always compared, so neither the length nor the position of a match leaks through timing.
 * `replace` swaps the whole set at once (API_KEYS_FILE reloaded on SIGHUP).
 */
export class ApiKeys {
  #entries: readonly ApiKeyEntry[]

  constructor (entries: readonly ApiKeyEntry[]) {
    this.#entries = entries
  }

  get size (): number {
    return this.#entries.length
  }

  /** The names of the keys, in order, each once. */
  get names (): string[] {
    return [...new Set(this.#entries.map((entry) => entry.name))]
  }

  replace (entries: readonly ApiKeyEntry[]): void {
    this.#entries = entries
  }

  identify (candidate: string): ApiKeyIdentity | undefined {
    const probe = keyDigest(candidate)
    let found: ApiKeyEntry | undefined
    for (const entry of this.#entries) {
      if (timingSafeEqual(entry.digest, probe) && found === undefined) found = entry
    }
    return found === undefined ? undefined : { name: found.name, scope: found.scope }
  }

  matches (candidate: string): boolean {
    return this.identify(candidate) !== undefined
  }

  /** A stable, non-secret label for a valid key (for rate-limit buckets), or undefined. */
  labelOf (candidate: string): string | undefined {
    return this.matches(candidate) ? `key:${keyDigest(candidate).toString('hex').slice(0, 16)}` : undefined
  }
}

/**
 * The token of an `Authorization: Bearer <token>` header, if the header has exactly that form: the
 * scheme as written, one space, a token of printable ASCII (what API_KEY allows). Auth and the rate
 * limiter both read the header through this, so a request counts against a key's budget only when
 * the key would let it in.
 */
export function bearerToken (authorization: string | undefined): string | undefined {
  const match = /^Bearer ([\x21-\x7e]+)$/.exec(authorization ?? '')
  return match?.[1]
}
