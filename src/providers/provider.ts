import { failureCode } from '../error-code.js'
import { MdProviderUnavailableError } from '../errors.js'
import { describeNetworkFailure } from '../outbound/network-failure.js'
import { parseRetryAfter } from '../downloads/retry.js'
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
}

/** What the health tracker needs to know of an upstream's answer. */
export interface UpstreamAnswer {
  status: number
  retryAfter: string | undefined
}

export interface ProviderOptions {
  backoff: Partial<BackoffSettings>
  timeoutMs: number
  now?: () => number
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
  #token: string | undefined
  #generation = 0
  /** 429s since the start (the metrics count them). */
  rateLimited = 0
  #rateLimitEpoch = 0
  readonly #timeoutMs: number
  readonly #fetch: typeof fetch
  readonly #now: () => number
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
      (response) => ({ status: response.status, retryAfter: response.headers.get('retry-after') ?? undefined }),
      options
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
      const { status, retryAfter } = answerOf(answer)
      if (status === 429) this.rateLimited++
      if (counts()) this.#record(status, retryAfter, this.#now() - started, epoch)
      // In Redis before the caller hears of it: the other replicas hold back from the next call on.
      if (shared !== undefined) await this.saveHealth()
      return answer
    })
  }

  #coolingDown (): boolean {
    const { status, cooldown_until: until } = this.health.snapshot()
    return status === 'unconfigured' || (until !== null && Date.parse(until) > this.#now())
  }

  #admit (): void {
    const gate = this.health.gate()
    if (gate.allowed) return
    const retryAfterS = Math.ceil(gate.retryAfterMs / 1000)
    throw new MdProviderUnavailableError(this.name, { status: gate.status, retryAfterS, cooldownUntil: gate.cooldownUntil })
  }

  // A 404 or 403 is the provider answering correctly about a model, and so is the Hub's 401 (its
  // answer for a private or missing repo): kept among the recent errors, but the provider is up.
  // A 401 elsewhere means the key is refused.
  #record (status: number, retryAfter: string | undefined, latencyMs: number, epoch: number): void {
    const keyRefused = status === 401 && this.kind !== 'huggingface'
    if (status === 429) {
      // Several calls in flight when the limit hit are one 429, not three in a row.
      if (epoch !== this.#rateLimitEpoch) return
      this.#rateLimitEpoch++
    }
    const failure = { status, code: `HTTP_${status}`, message: `${this.name} answered ${status}` }
    if (status === 429 || status >= 500 || keyRefused) {
      const retryAfterMs = parseRetryAfter(retryAfter, this.#now())
      this.health.recordFailure({ ...failure, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) }, latencyMs)
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

function networkFailure (provider: string, err: unknown): UpstreamFailure {
  const code = failureCode(err) ?? 'ENETWORK'
  return { code, message: `${provider} could not be reached (${describeNetworkFailure(err) ?? code})` }
}
