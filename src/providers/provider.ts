import { failureCode } from '../error-code.js'
import { MdProviderUnavailableError } from '../errors.js'
import { describeNetworkFailure } from '../outbound/network-failure.js'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseRetryAfter } from '../downloads/retry.js'
import { HubQuota, hubBucketOf, parseRateLimit, rateLimitCooldownMs } from './hub-rate-limit.js'
import type { ProviderDefinition, ProviderKind } from './provider-definitions.js'
import { ProviderHealth, type BackoffSettings, type SharedHealth, type UpstreamFailure } from './provider-health.js'
import { ProviderLimiter, type LimiterCluster } from './provider-limiter.js'
import type { SharedProviderState } from './shared-provider-state.js'
import { maskToken } from './token-mask.js'

export interface CallOptions {
  /** Lets a preflight ask while the provider cools down. */
  bypassGate?: boolean
  /** false keeps the outcome out of the health. */
  record?: boolean
  /** The Hub's rate-limit bucket the request counts against (api, resolvers, pages): paced while its quota runs low. */
  bucket?: string
  /** Ends the wait for a paced turn (the caller gave up). */
  signal?: AbortSignal | undefined
}

/** What the health tracker needs to know of an upstream's answer. */
export interface UpstreamAnswer {
  status: number
  retryAfter: string | undefined
  /** The RateLimit and RateLimit-Policy headers (the Hub's quota), and X-Error-Code (whose error it is). */
  rateLimit?: string | undefined
  rateLimitPolicy?: string | undefined
  errorCode?: string | undefined
}

/** The Hub's X-Error-Codes for a request that is the caller's mistake, whatever its status (401 included): the Hub is up. */
const CALLER_ERRORS: ReadonlySet<string> = new Set(['RepoNotFound', 'RevisionNotFound', 'EntryNotFound', 'GatedRepo'])

/** The headers of a fetch Response that the health tracker and the quota read. */
export function answerOfHeaders (status: number, header: (name: string) => string | undefined): UpstreamAnswer {
  return {
    status,
    retryAfter: header('retry-after'),
    rateLimit: header('ratelimit'),
    rateLimitPolicy: header('ratelimit-policy'),
    errorCode: header('x-error-code')
  }
}

export interface ProviderOptions {
  backoff: Partial<BackoffSettings>
  timeoutMs: number
  now?: () => number
  /** The jitter added to a 429's cooldown. */
  random?: () => number
  fetch?: typeof fetch
  /** With Redis: the limiter is Bottleneck's clustered one… */
  limiterCluster?: LimiterCluster
  /** …and the health's cooldown part is read before each call and written after each change. */
  shared?: SharedProviderState
}

/**
 * One upstream: its token, its Bottleneck limiter and its health. Every call to it goes through
 * `fetch`, which refuses at once (503, nothing sent) while the provider cools down, queues in the
 * limiter, and tells the health tracker how the call went.
 */
export class Provider {
  readonly name: string
  readonly kind: ProviderKind
  readonly baseUrl: string
  readonly tokenEnv: string
  readonly priority: number
  readonly limiter: ProviderLimiter
  readonly health: ProviderHealth
  readonly limits: ProviderDefinition['limiter']
  /** What the upstream's RateLimit headers said of its quota, per bucket (only the Hub sends them). */
  readonly quota: HubQuota
  #token: string | undefined
  #generation = 0
  /** 429s since the start (the metrics count them). */
  rateLimited = 0
  #rateLimitEpoch = 0
  readonly #timeoutMs: number
  readonly #fetch: typeof fetch
  readonly #now: () => number
  readonly #random: () => number
  readonly #shared: SharedProviderState | undefined
  /** The health's changedAt as Redis has it; -1 when a write failed (written again at the next sync). */
  #savedAt = 0

  constructor (definition: ProviderDefinition, options: ProviderOptions) {
    this.name = definition.name
    this.kind = definition.kind
    this.baseUrl = definition.baseUrl
    this.tokenEnv = definition.tokenEnv
    this.priority = definition.priority
    this.limits = definition.limiter
    this.#token = definition.token
    this.#timeoutMs = options.timeoutMs
    this.#fetch = options.fetch ?? fetch
    this.#now = options.now ?? Date.now
    this.#random = options.random ?? Math.random
    this.quota = new HubQuota(this.#now)
    this.#shared = options.shared
    this.limiter = new ProviderLimiter({ maxConcurrent: definition.limiter.maxConcurrent, minTime: definition.limiter.minTime }, options.limiterCluster)
    this.health = new ProviderHealth(definition.name, { configured: definition.configured, settings: options.backoff, now: this.#now })
  }

  get token (): string | undefined {
    return this.#token
  }

  get maskedToken (): string | null {
    return maskToken(this.#token)
  }

  /** Changes with every token rotation, so work begun with an old token can tell it is stale. */
  get tokenGeneration (): number {
    return this.#generation
  }

  authHeaders (token: string | undefined = this.#token): Record<string, string> {
    return token === undefined ? {} : { authorization: `Bearer ${token}` }
  }

  /** Takes a new token: health starts over, and anything fetched with the old one is stale. */
  rotateToken (token: string): void {
    this.#token = token
    this.#generation++
    this.health.setConfigured(true)
    this.health.reset()
    // The quota is the token's: the new one has its own.
    this.quota.clear()
  }

  /**
   * Takes the health another replica wrote (`force` after adopting its token); when this replica's
   * own is newer (a change Redis missed while away, or lost), writes it instead.
   */
  async adoptHealth (remote: SharedHealth | undefined, force = false): Promise<void> {
    if (remote !== undefined && this.health.adopt(remote, force)) {
      this.#savedAt = remote.changedAt
      return
    }
    if (remote === undefined && this.health.shared().changedAt === 0) return
    this.#savedAt = -1
    await this.saveHealth()
  }

  /** Writes the health's shared part when it changed since the last write; Redis away leaves it for later. */
  async saveHealth (): Promise<void> {
    const state = this.health.shared()
    if (this.#shared === undefined || state.changedAt === this.#savedAt) return
    this.#savedAt = state.changedAt
    await this.#shared.writeHealth(this.name, state).catch(() => { this.#savedAt = -1 })
  }

  async #loadHealth (shared: SharedProviderState): Promise<void> {
    let remote: SharedHealth | undefined
    try {
      remote = await shared.readHealth(this.name)
    } catch {
      return // Redis away: this replica goes on with what it knows
    }
    await this.adoptHealth(remote)
  }

  /**
   * A fetch through the gate, the limiter and the health tracker (the Hub client uses it too).
   * `bypassGate` lets a preflight ask while the provider cools down; `record: false` keeps its
   * outcome out of the health (a check, or a candidate token, says nothing about calls in use).
   */
  readonly fetch = async (input: string | URL | Request, init?: RequestInit, options: CallOptions = {}): Promise<Response> =>
    this.call(
      async () => bufferedAnswer(await this.#fetch(input, { ...init, signal: init?.signal ?? AbortSignal.timeout(this.#timeoutMs) })),
      (response) => answerOfHeaders(response.status, (name) => response.headers.get(name) ?? undefined),
      { ...(this.kind === 'huggingface' ? { bucket: hubBucketOf(requestUrl(input)) } : {}), signal: init?.signal ?? undefined, ...options }
    )

  /**
   * Any request to this upstream, whatever sends it (fetch, or undici for the download engine's
   * file requests): refused at once while the provider cools down, queued in the limiter, and its
   * answer (read by `answerOf`) or its network failure told to the health tracker.
   */
  async call<T> (send: () => Promise<T>, answerOf: (answer: T) => UpstreamAnswer, options: CallOptions = {}): Promise<T> {
    const gated = options.bypassGate !== true
    // The token the caller put in its headers is the one in use now, whenever the limiter sends it.
    const generation = this.#generation
    // Another replica may have been told to back off. (Without Redis, no await: timing as before.)
    const shared = this.#shared
    if (shared !== undefined) await this.#loadHealth(shared)
    // Fail fast, before queueing, while a cooldown runs (this peek never takes the half-open probe)…
    if (gated && this.#coolingDown()) this.#admit()
    if (gated && options.bucket !== undefined) await this.#pace(options.bucket, options.signal)
    return this.limiter.schedule(async () => {
      // …and admit for real when the call's turn comes: it may have queued into a cooldown (here or
      // on another replica), or be the probe, which the other replicas then must not take as well.
      if (gated && shared !== undefined) await this.#loadHealth(shared)
      if (gated) this.#admit()
      if (gated && shared !== undefined) await this.saveHealth()
      // A call answered after a token rotation, or after another call of its burst was rate-limited,
      // says nothing new about the provider as it is now.
      const epoch = this.#rateLimitEpoch
      const counts = (): boolean => options.record !== false && generation === this.#generation
      const started = this.#now()
      let answer: T
      try {
        answer = await send()
      } catch (err) {
        if (counts()) this.health.recordFailure(networkFailure(this.name, err), this.#now() - started)
        if (shared !== undefined) await this.saveHealth()
        throw err
      }
      const upstream = answerOf(answer)
      const { status } = upstream
      if (status === 429) this.rateLimited++
      const rateLimit = parseRateLimit(upstream.rateLimit, upstream.rateLimitPolicy)
      if (rateLimit !== undefined && generation === this.#generation) this.quota.record(rateLimit)
      if (counts()) this.#record(upstream, this.#now() - started, epoch)
      // In Redis before the caller hears of it: the other replicas hold back from the next call on.
      if (shared !== undefined) await this.saveHealth()
      return answer
    })
  }

  #coolingDown (): boolean {
    const { status, cooldown_until: until } = this.health.snapshot()
    return status === 'unconfigured' || (until !== null && Date.parse(until) > this.#now())
  }

  /**
   * While the bucket's quota runs low, waits for this request's turn, so what is left lasts until the
   * window resets instead of running into a 429. A turn further off than a call may take
   * (PROVIDER_TIMEOUT_MS) is refused now, as a cooldown is, with the time it comes.
   */
  async #pace (bucket: string, signal: AbortSignal | undefined): Promise<void> {
    const { waitMs, taken } = this.quota.reserve(bucket, this.#timeoutMs)
    if (!taken) {
      const cooldownUntil = new Date(this.#now() + waitMs).toISOString()
      throw new MdProviderUnavailableError(this.name, { status: 'rate_limited', retryAfterS: Math.ceil(waitMs / 1000), cooldownUntil })
    }
    if (waitMs > 0) await sleep(waitMs, undefined, signal === undefined ? {} : { signal })
  }

  #admit (): void {
    const gate = this.health.gate()
    if (gate.allowed) return
    const retryAfterS = Math.ceil(gate.retryAfterMs / 1000)
    throw new MdProviderUnavailableError(this.name, { status: gate.status, retryAfterS, cooldownUntil: gate.cooldownUntil })
  }

  // A 404 or 403 is the provider answering correctly about a model, and so is the Hub's 401 with an
  // X-Error-Code that makes it the caller's error (its answer for a private or missing repo): kept
  // among the recent errors, but the provider is up. Any other 401 means the key is refused, which
  // counts towards `down` like an outage: no call can succeed until the token is replaced.
  #record (answer: UpstreamAnswer, latencyMs: number, epoch: number): void {
    const { status, retryAfter } = answer
    const keyRefused = status === 401 && !CALLER_ERRORS.has(answer.errorCode ?? '')
    if (status === 429) {
      // Several calls in flight when the limit hit are one 429, not three in a row.
      if (epoch !== this.#rateLimitEpoch) return
      this.#rateLimitEpoch++
    }
    const failure = { status, code: `HTTP_${status}`, message: `${this.name} answered ${status}` }
    if (status === 429 || status >= 500 || keyRefused) {
      // huggingface_hub's rule: a 429 whose RateLimit says nothing is left waits exactly its `t`.
      const rateLimit = status === 429 ? parseRateLimit(answer.rateLimit, answer.rateLimitPolicy) : undefined
      const retryAfterMs = rateLimit?.remaining === 0 ? rateLimitCooldownMs(rateLimit, this.#random) : parseRetryAfter(retryAfter, this.#now())
      const known = { ...(retryAfterMs === undefined ? {} : { retryAfterMs }), ...(keyRefused ? { tokenRejected: true } : {}) }
      this.health.recordFailure({ ...failure, ...known }, latencyMs)
    } else if (status >= 400) {
      this.health.recordRejection(failure, latencyMs)
    } else {
      this.health.recordSuccess(latencyMs)
    }
  }
}

/**
 * The answer read whole within the call's deadline: a body that breaks off or stalls halfway is a
 * network failure of the call (counted in the health, reported as unreachable), not a broken stream
 * that the caller trips over later. Upstream answers here are JSON documents, never file bytes.
 */
async function bufferedAnswer (response: Response): Promise<Response> {
  if (response.body === null) return response
  const body = await response.arrayBuffer()
  // A Response cannot be built with a body for these statuses.
  const bodiless = [204, 205, 304].includes(response.status)
  return new Response(bodiless ? null : body, { status: response.status, statusText: response.statusText, headers: response.headers })
}

function requestUrl (input: string | URL | Request): string {
  return input instanceof Request ? input.url : String(input)
}

function networkFailure (provider: string, err: unknown): UpstreamFailure {
  const code = failureCode(err) ?? 'ENETWORK'
  return { code, message: `${provider} could not be reached (${describeNetworkFailure(err) ?? code})` }
}
