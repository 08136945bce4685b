import { Type } from '../type-builder.js'
import type { Static } from 'typebox'
import { Nullable } from '../json-schema.js'

/**
 * The Hub's rate-limit headers (IETF draft-ietf-httpapi-ratelimit-headers-09, as the Hub sends them):
 *   RateLimit: "resolvers";r=<requests left>;t=<seconds until the window resets>
 *   RateLimit-Policy: "fixed window";"resolvers";q=<requests per window>;w=<window seconds>
 * Read the way huggingface_hub's `parse_ratelimit_headers` reads them (utils/_http.py): the first
 * quoted name followed by r and t in RateLimit, the q and w of the policy.
 */
export interface RateLimitInfo {
  bucket: string
  remaining: number
  resetInS: number
  limit: number | null
  windowS: number | null
}

const RATELIMIT = /"(?<bucket>[\w-]+)"\s*;\s*r\s*=\s*(?<r>\d+)\s*;\s*t\s*=\s*(?<t>\d+)/
const POLICY = /q\s*=\s*(?<q>\d+).*?w\s*=\s*(?<w>\d+)/

export function parseRateLimit (rateLimit: string | undefined, policy: string | undefined): RateLimitInfo | undefined {
  const match = rateLimit === undefined ? null : RATELIMIT.exec(rateLimit)
  if (match?.groups === undefined) return undefined
  const quota = policy === undefined ? null : POLICY.exec(policy)
  return {
    bucket: match.groups.bucket!,
    remaining: Number(match.groups.r),
    resetInS: Number(match.groups.t),
    limit: quota?.groups === undefined ? null : Number(quota.groups.q),
    windowS: quota?.groups === undefined ? null : Number(quota.groups.w)
  }
}

/**
 * Which of the Hub's buckets a request counts against (https://huggingface.co/docs/hub/rate-limits):
 * every URL with a /resolve/ segment is a resolver, /api/… the Hub API, anything else a page.
 */
export function hubBucketOf (url: string | URL): 'api' | 'resolvers' | 'pages' {
  const path = new URL(url, 'http://hub.invalid').pathname
  if (path.split('/').includes('resolve')) return 'resolvers'
  return path.startsWith('/api/') ? 'api' : 'pages'
}

/** The Hub's windows are 5 minutes: a `t` longer than the window is not believed. */
export const HUB_WINDOW_S = 300
/** Under this share of the quota left, a bucket's requests are spaced out over what is left of the window. */
export const LOW_QUOTA_SHARE = 0.1

/**
 * How long a 429 holds calls back: the `t` of its RateLimit header, capped at the window, plus at most
 * 10 % of jitter so replicas and jobs do not all come back in the same millisecond.
 */
export function rateLimitCooldownMs (info: RateLimitInfo, random: () => number = Math.random): number {
  const seconds = Math.min(info.resetInS, info.windowS ?? HUB_WINDOW_S, HUB_WINDOW_S)
  return Math.round(seconds * 1000 * (1 + Math.min(Math.max(random(), 0), 1) * 0.1))
}

export const RateLimitBucketSchema = Type.Object({
  remaining: Type.Integer({ description: 'Requests left in the current window, as the Hub last said' }),
  limit: Nullable(Type.Integer(), 'Requests per window (RateLimit-Policy q); null when the Hub sent no policy'),
  resets_at: Type.String({ format: 'date-time', description: 'When the current window ends' })
}, { additionalProperties: false })
export const RateLimitsSchema = Type.Record(Type.String(), RateLimitBucketSchema, {
  description: 'The Hub\'s quota per bucket (api, resolvers, pages) from its RateLimit and RateLimit-Policy headers, as this replica last read them'
})
export type RateLimits = Static<typeof RateLimitsSchema>

interface Bucket { remaining: number, limit: number | null, resetsAt: number, nextAt: number, reserved: number }

/**
 * What the Hub last said of each bucket's quota, and the pacing of the requests while little of it
 * is left. Each replica reads the headers of its own answers: the Hub counts per token, so every
 * answer carries what all replicas together have left. Time comes from the injected clock.
 */
export class HubQuota {
  readonly #buckets = new Map<string, Bucket>()
  readonly #now: () => number

  constructor (now: () => number = Date.now) {
    this.#now = now
  }

  record (info: RateLimitInfo): void {
    const now = this.#now()
    const known = this.#buckets.get(info.bucket)
    this.#buckets.set(info.bucket, {
      remaining: info.remaining,
      limit: info.limit ?? known?.limit ?? null,
      resetsAt: now + Math.min(info.resetInS, HUB_WINDOW_S) * 1000,
      nextAt: known?.nextAt ?? now,
      reserved: 0
    })
  }

  /**
   * How long the next request to `bucket` waits before it goes, and that turn taken, unless the wait
   * is longer than `maxWaitMs` (then nothing is taken: the caller is refused instead). Nothing to
   * wait while 10 % or more of the quota is left; under it, the requests left are spread evenly over
   * what is left of the window, and once none is left the next one goes when the window resets.
   */
  reserve (bucket: string, maxWaitMs = Infinity): { waitMs: number, taken: boolean } {
    const now = this.#now()
    const state = this.#buckets.get(bucket)
    if (state === undefined || state.limit === null || now >= state.resetsAt) return { waitMs: 0, taken: true }
    const left = state.remaining - state.reserved
    if (left >= state.limit * LOW_QUOTA_SHARE) return { waitMs: 0, taken: true }
    const at = left <= 0 ? Math.max(now, state.nextAt, state.resetsAt) : Math.max(now, state.nextAt)
    if (at - now > maxWaitMs) return { waitMs: at - now, taken: false }
    // With one left it goes now and the one after it at the reset; with n left, every (time left)/n.
    state.nextAt = at + (left <= 1 ? Math.max(state.resetsAt - at, 0) : (state.resetsAt - at) / left)
    state.reserved++
    return { waitMs: at - now, taken: true }
  }

  /** The quota per bucket, for the provider's status; buckets whose window has passed are left out. */
  snapshot (): RateLimits {
    const now = this.#now()
    const out: RateLimits = {}
    for (const [name, state] of this.#buckets) {
      if (now < state.resetsAt) out[name] = { remaining: state.remaining, limit: state.limit, resets_at: new Date(state.resetsAt).toISOString() }
    }
    return out
  }

  clear (): void {
    this.#buckets.clear()
  }
}
