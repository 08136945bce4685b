import { createHash, timingSafeEqual } from 'node:crypto'

const digest = (value: string): Buffer => createHash('sha256').update(value).digest()

/**
 * The accepted API keys. Keys are compared as SHA-256 digests with timingSafeEqual and every key
 * is always compared, so neither the length nor the position of a match leaks through timing.
 */
export class ApiKeys {
  readonly #digests: Buffer[]

  constructor (keys: readonly string[]) {
    this.#digests = keys.map(digest)
  }

  get size (): number {
    return this.#digests.length
  }

  matches (candidate: string): boolean {
    const probe = digest(candidate)
    let found = false
    for (const known of this.#digests) {
      if (timingSafeEqual(known, probe)) found = true
    }
    return found
  }

  /** A stable, non-secret label for a valid key (for rate-limit buckets), or undefined. */
  labelOf (candidate: string): string | undefined {
    return this.matches(candidate) ? `key:${digest(candidate).toString('hex').slice(0, 16)}` : undefined
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
