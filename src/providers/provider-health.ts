/**
 * How one AI provider is doing, and whether a call may go upstream now. Pure domain code: time comes
 * only from the injected `now`, so tests drive every cooldown without waiting.
 */

import { Type } from '../type-builder.js'
import type { Static } from 'typebox'
import { LiteralUnion, Nullable } from '../json-schema.js'

// What the API answers about a provider's health is declared here once, as JSON Schema (TypeBox);
// the types below derive from it, and the routes and the metrics use the same list of statuses.

export const PROVIDER_STATUSES = ['online', 'degraded', 'rate_limited', 'blacklisted', 'down', 'unconfigured'] as const
export const ProviderStatusSchema = LiteralUnion(PROVIDER_STATUSES, {
  description: [
    'online; degraded (recent failures); rate_limited (backing off after a 429); blacklisted (after repeated 429s);',
    'down (after repeated failures, one probe after the cooldown); unconfigured (no token)'
  ].join(' ')
})
export type ProviderStatus = Static<typeof ProviderStatusSchema>

export interface BackoffSettings {
  /** 1st consecutive 429 → [0], 2nd → [1], later ones reuse the last entry until blacklisting. */
  rateLimitBackoffMs: number[]
  /** The Nth consecutive 429 blacklists. */
  blacklistAfter429s: number
  blacklistMs: number
  /** Consecutive failures (5xx, timeout, network) that mark the provider down. */
  failuresToDown: number
  /** How long `down` refuses calls before one probe is let through (half-open). */
  downCooldownMs: number
  /** Calls kept for latency avg/p95 and the success rate. */
  latencyWindow: number
  /** How long upstream errors are kept for the system-status report. */
  errorWindowMs: number
  /** An online provider whose success rate over the window is below this is `degraded`. */
  degradedBelowSuccessRate: number
}

export const DEFAULT_BACKOFF: BackoffSettings = {
  rateLimitBackoffMs: [120_000, 240_000],
  blacklistAfter429s: 3,
  blacklistMs: 600_000,
  failuresToDown: 3,
  downCooldownMs: 60_000,
  latencyWindow: 100,
  errorWindowMs: 300_000,
  degradedBelowSuccessRate: 0.9
}

export interface UpstreamFailure {
  /** HTTP status; absent for network errors and timeouts. */
  status?: number
  /** e.g. 'HTTP_503', 'HTTP_429', 'ETIMEDOUT', 'ECONNREFUSED' */
  code: string
  message: string
  /** Parsed Retry-After (or the Hub's RateLimit `t`), in milliseconds. */
  retryAfterMs?: number
  /** The key was refused: no call can succeed until it is replaced, so it counts like an outage. */
  tokenRejected?: boolean
}

export const ERROR_ACTIONS = ['recorded', 'backed_off', 'blacklisted', 'marked_down'] as const
export type ErrorAction = typeof ERROR_ACTIONS[number]

export const RecordedErrorSchema = Type.Object({
  at: Type.String({ format: 'date-time' }),
  provider: Type.String(),
  status: Nullable(Type.Integer()),
  code: Type.String(),
  message: Type.String(),
  action: LiteralUnion(ERROR_ACTIONS, { description: 'What the failure made modeldepot do' })
}, { additionalProperties: false })
export type RecordedError = Static<typeof RecordedErrorSchema>

export type Gate =
  | { allowed: true, probe: boolean }
  | { allowed: false, status: ProviderStatus, retryAfterMs: number, cooldownUntil: string | null }

const LastError = Type.Object({ at: Type.String({ format: 'date-time' }), status: Nullable(Type.Integer()), code: Type.String(), message: Type.String() }, { additionalProperties: false })

export const HealthSnapshotSchema = Type.Object({
  status: ProviderStatusSchema,
  latency_avg_ms: Nullable(Type.Number()),
  latency_p95_ms: Nullable(Type.Number()),
  success_rate: Nullable(Type.Number({ minimum: 0, maximum: 1 }), 'Over the recent calls; null before any'),
  requests: Type.Integer(),
  failures: Type.Integer(),
  consecutive_failures: Type.Integer(),
  consecutive_429s: Type.Integer(),
  cooldown_until: Nullable(Type.String({ format: 'date-time' })),
  last_error: Nullable(LastError),
  last_checked_at: Nullable(Type.String({ format: 'date-time' }))
}, { additionalProperties: false })
export type HealthSnapshot = Static<typeof HealthSnapshotSchema>

type CooldownKind = 'rate_limited' | 'blacklisted' | 'down'

/**
 * The part of the health that decides whether a call may go: what replicas share through Redis, so
 * a 429 one of them got holds back all of them. Latencies, counts and the recent errors stay each
 * replica's own (they describe its own calls). `changedAt` orders two versions of it.
 */
export interface SharedHealth {
  cooldown: { kind: CooldownKind, until: number } | null
  consecutiveFailures: number
  consecutive429s: number
  probeSince: number | null
  lastError: HealthSnapshot['last_error']
  changedAt: number
}

// A flood of 404s never triggers a cooldown, so the error list needs a bound besides its time window.
const MAX_RECENT_ERRORS = 1000

/** Nearest-rank percentile (p in 0..100): always one of the samples, never an interpolation. */
export function percentile (values: number[], p: number): number {
  if (values.length === 0) throw new RangeError('percentile of an empty list')
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)))
  return sorted[rank - 1]!
}

function settingsFrom (overrides: Partial<BackoffSettings>): BackoffSettings {
  // `{ blacklistMs: undefined }` from an unset env variable must not erase the default.
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, value]) => value !== undefined))
  const schedule = [...(overrides.rateLimitBackoffMs ?? DEFAULT_BACKOFF.rateLimitBackoffMs)]
  const settings: BackoffSettings = { ...DEFAULT_BACKOFF, ...defined, rateLimitBackoffMs: schedule }
  const { rateLimitBackoffMs, blacklistAfter429s, failuresToDown, latencyWindow, degradedBelowSuccessRate, ...durations } = settings
  if (rateLimitBackoffMs.length === 0 || ![...rateLimitBackoffMs, ...Object.values(durations)].every((ms) => Number.isFinite(ms) && ms >= 0)) {
    throw new RangeError('backoff durations must be a non-empty schedule of finite milliseconds ≥ 0')
  }
  if (![blacklistAfter429s, failuresToDown, latencyWindow].every((n) => Number.isInteger(n) && n >= 1)) {
    throw new RangeError('blacklistAfter429s, failuresToDown and latencyWindow must be integers ≥ 1')
  }
  if (!(degradedBelowSuccessRate >= 0 && degradedBelowSuccessRate <= 1)) throw new RangeError('degradedBelowSuccessRate must be within 0..1')
  return settings
}

const iso = (ms: number): string => new Date(ms).toISOString()

export class ProviderHealth {
  readonly name: string
  readonly #settings: BackoffSettings
  readonly #now: () => number
  #configured: boolean
  #requests = 0
  #failures = 0
  #consecutiveFailures = 0
  #consecutive429s = 0
  #latencies: number[] = []
  #outcomes: boolean[] = []
  #cooldown: { kind: CooldownKind, until: number } | null = null
  #probeSince: number | null = null
  #lastError: HealthSnapshot['last_error'] = null
  #lastCheckedAt: number | null = null
  #errors: Array<{ atMs: number, error: RecordedError }> = [] // oldest first
  #changedAt = 0
  #sharedFingerprint = this.#fingerprint()

  constructor (name: string, options: { configured: boolean, settings?: Partial<BackoffSettings>, now?: () => number }) {
    this.name = name
    this.#configured = options.configured
    this.#settings = settingsFrom(options.settings ?? {})
    this.#now = options.now ?? Date.now
  }

  gate (): Gate {
    if (!this.#configured) return { allowed: false, status: 'unconfigured', retryAfterMs: 0, cooldownUntil: null }
    const now = this.#now()
    const cooldown = this.#cooldown
    if (cooldown !== null && now < cooldown.until) return refuse(cooldown.kind, cooldown.until, now)
    if (cooldown?.kind !== 'down') return { allowed: true, probe: false }
    // Half-open: a single probe decides. Its lease lapses after a cooldown, so a probe whose outcome
    // is never recorded (the caller crashed) cannot wedge the provider in `down` forever.
    const leaseEnd = this.#probeSince === null ? now : this.#probeSince + this.#settings.downCooldownMs
    if (now < leaseEnd) return refuse('down', leaseEnd, now)
    this.#probeSince = now
    this.#touch()
    return { allowed: true, probe: true }
  }

  recordSuccess (latencyMs: number): void {
    // The outage is over: failures from before it would otherwise keep a recovered provider `degraded`.
    if (this.#cooldown?.kind === 'down') this.#outcomes = []
    this.#count(true, latencyMs)
    this.#consecutiveFailures = 0
    this.#consecutive429s = 0
    this.#cooldown = null
    this.#probeSince = null
    this.#touch()
  }

  /**
   * An answer that refuses this one call (401/403/404): the upstream is up, so it counts like a
   * success for the health, but the error is kept for the report of recent errors.
   */
  recordRejection (failure: UpstreamFailure, latencyMs: number): void {
    this.recordSuccess(latencyMs)
    this.#keepError(failure, 'recorded', this.#now())
    this.#touch()
  }

  recordFailure (failure: UpstreamFailure, latencyMs?: number): ErrorAction {
    const now = this.#now()
    const halfOpen = this.#cooldown?.kind === 'down' && now >= this.#cooldown.until
    this.#count(false, latencyMs)
    this.#probeSince = null
    let action: ErrorAction = 'recorded'
    if (failure.status === 429) {
      // A 429 proves the upstream is reachable and tells us when to come back, even on a probe.
      action = this.#rateLimited(failure.retryAfterMs, now)
    } else {
      // A 401 alone lowers the success rate only; one known to be a refused key counts like an outage.
      const outage = failure.status === undefined || failure.status >= 500 || failure.tokenRejected === true
      if (outage) this.#consecutiveFailures++
      if (halfOpen || (outage && this.#consecutiveFailures >= this.#settings.failuresToDown)) {
        this.#cooldown = { kind: 'down', until: now + this.#settings.downCooldownMs }
        action = 'marked_down'
      }
    }
    this.#keepError(failure, action, now)
    this.#touch()
    return action
  }

  reset (): void {
    this.#requests = this.#failures = this.#consecutiveFailures = this.#consecutive429s = 0
    this.#latencies = []
    this.#outcomes = []
    this.#cooldown = null
    this.#probeSince = null
    this.#lastError = null
    this.#lastCheckedAt = null
    this.#errors = []
    this.#touch()
  }

  /** The state to share with the other replicas. */
  shared (): SharedHealth {
    return {
      cooldown: this.#cooldown === null ? null : { ...this.#cooldown },
      consecutiveFailures: this.#consecutiveFailures,
      consecutive429s: this.#consecutive429s,
      probeSince: this.#probeSince,
      lastError: this.#lastError === null ? null : { ...this.#lastError },
      changedAt: this.#changedAt
    }
  }

  /**
   * Takes what another replica decided, unless this one changed since (its own change, not yet in
   * Redis, is the newer one). `force` takes it anyway (after adopting a token another replica rotated).
   * Answers whether it was taken.
   */
  adopt (state: SharedHealth, force = false): boolean {
    if (!force && state.changedAt < this.#changedAt) return false
    this.#cooldown = state.cooldown === null ? null : { ...state.cooldown }
    this.#consecutiveFailures = state.consecutiveFailures
    this.#consecutive429s = state.consecutive429s
    this.#probeSince = state.probeSince
    this.#lastError = state.lastError === null ? null : { ...state.lastError }
    this.#changedAt = state.changedAt
    this.#sharedFingerprint = this.#fingerprint()
    return true
  }

  // changedAt moves only when the shared part does: a success on a healthy provider is no news.
  #touch (): void {
    const fingerprint = this.#fingerprint()
    if (fingerprint === this.#sharedFingerprint) return
    this.#sharedFingerprint = fingerprint
    this.#changedAt = Math.max(this.#now(), this.#changedAt + 1)
  }

  #fingerprint (): string {
    return JSON.stringify([this.#cooldown, this.#consecutiveFailures, this.#consecutive429s, this.#probeSince, this.#lastError])
  }

  setConfigured (configured: boolean): void {
    this.#configured = configured
  }

  snapshot (): HealthSnapshot {
    const now = this.#now()
    const cooldown = this.#cooldown !== null && now < this.#cooldown.until ? this.#cooldown : null
    const latencies = this.#latencies
    return {
      status: this.#status(now),
      latency_avg_ms: latencies.length === 0 ? null : Math.round(latencies.reduce((sum, ms) => sum + ms, 0) / latencies.length),
      latency_p95_ms: latencies.length === 0 ? null : percentile(latencies, 95),
      success_rate: this.#successRate(),
      requests: this.#requests,
      failures: this.#failures,
      consecutive_failures: this.#consecutiveFailures,
      consecutive_429s: this.#consecutive429s,
      cooldown_until: cooldown === null ? null : iso(cooldown.until),
      last_error: this.#lastError === null ? null : { ...this.#lastError },
      last_checked_at: this.#lastCheckedAt === null ? null : iso(this.#lastCheckedAt)
    }
  }

  recentErrors (): RecordedError[] {
    const since = this.#now() - this.#settings.errorWindowMs
    return this.#errors.filter(({ atMs }) => atMs >= since).map(({ error }) => ({ ...error })).reverse()
  }

  #rateLimited (retryAfterMs: number | undefined, now: number): ErrorAction {
    this.#consecutive429s++
    const { rateLimitBackoffMs: schedule, blacklistAfter429s, blacklistMs } = this.#settings
    const retryAfter = retryAfterMs !== undefined && Number.isFinite(retryAfterMs) ? Math.max(retryAfterMs, 0) : undefined
    if (this.#consecutive429s >= blacklistAfter429s) {
      // Blacklisting is our own call, but it never lets a call go before the upstream said it may.
      this.#cooldown = { kind: 'blacklisted', until: now + Math.max(blacklistMs, retryAfter ?? 0) }
      return 'blacklisted'
    }
    const scheduled = schedule[Math.min(this.#consecutive429s, schedule.length) - 1]!
    this.#cooldown = { kind: 'rate_limited', until: now + (retryAfter ?? scheduled) }
    return 'backed_off'
  }

  #count (ok: boolean, latencyMs: number | undefined): void {
    const window = this.#settings.latencyWindow
    this.#requests++
    if (!ok) this.#failures++
    this.#outcomes.push(ok)
    if (this.#outcomes.length > window) this.#outcomes.shift()
    if (latencyMs !== undefined && Number.isFinite(latencyMs) && latencyMs >= 0) {
      this.#latencies.push(latencyMs)
      if (this.#latencies.length > window) this.#latencies.shift()
    }
    this.#lastCheckedAt = this.#now()
  }

  #successRate (): number | null {
    if (this.#outcomes.length === 0) return null
    return this.#outcomes.filter(Boolean).length / this.#outcomes.length
  }

  #status (now: number): ProviderStatus {
    if (!this.#configured) return 'unconfigured'
    const cooldown = this.#cooldown
    // `down` outlives its cooldown: an elapsed cooldown only means a probe may go, not that it passed.
    if (cooldown !== null && (now < cooldown.until || cooldown.kind === 'down')) return cooldown.kind
    const rate = this.#successRate()
    if (this.#consecutiveFailures > 0 || (rate !== null && rate < this.#settings.degradedBelowSuccessRate)) return 'degraded'
    return 'online'
  }

  #keepError (failure: UpstreamFailure, action: ErrorAction, now: number): void {
    this.#lastError = { at: iso(now), status: failure.status ?? null, code: failure.code, message: failure.message }
    this.#errors.push({ atMs: now, error: { ...this.#lastError, provider: this.name, action } })
    this.#pruneErrors(now)
  }

  #pruneErrors (now: number): void {
    const since = now - this.#settings.errorWindowMs
    while (this.#errors.length > 0 && (this.#errors[0]!.atMs < since || this.#errors.length > MAX_RECENT_ERRORS)) this.#errors.shift()
  }
}

function refuse (status: ProviderStatus, until: number, now: number): Gate {
  return { allowed: false, status, retryAfterMs: until - now, cooldownUntil: iso(until) }
}
