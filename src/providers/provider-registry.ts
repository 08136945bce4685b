import type { ProviderSettings } from '../config.js'
import { MdProviderNotFoundError, MdTokenRejectedError } from '../errors.js'
import type { BlockStore } from './block-store.js'
import { ModelCatalogue } from './model-catalogue.js'
import { checkProvider, type ProviderCheck } from './provider-check.js'
import type { ProviderDefinition } from './provider-definitions.js'
import type { ProviderStatus } from './provider-health.js'
import type { LimiterCluster } from './provider-limiter.js'
import type { ProviderSummary } from './provider-summary.js'
import { Provider } from './provider.js'
import type { SharedProviderState } from './shared-provider-state.js'
import type { TokenStore } from './token-store.js'

export interface RegisteredProvider { provider: Provider, catalogue: ModelCatalogue }

export type { ProviderSummary }

export interface RegistryOptions {
  settings: ProviderSettings
  tokens: TokenStore
  /** Where blocks are kept across restarts. */
  blocks?: BlockStore
  /** Told every token the registry holds, so the logs can hide it. */
  onSecret: (token: string) => void
  now?: () => number
  fetch?: typeof fetch
  /** With Redis: health, tokens and blocks shared with the other replicas… */
  shared?: SharedProviderState
  /** …and each provider's limiter clustered. */
  limiterCluster?: (name: string) => LimiterCluster
}

const HEALTHY: ReadonlySet<ProviderStatus> = new Set(['online', 'degraded'])

/** Every provider modeldepot watches, by name, best first. */
export class ProviderRegistry {
  readonly #entries = new Map<string, RegisteredProvider>()
  readonly #options: RegistryOptions

  constructor (definitions: ProviderDefinition[], options: RegistryOptions) {
    this.#options = options
    const saved = options.tokens.loadSync()
    for (const definition of definitions) {
      const token = saved[definition.name] ?? definition.token
      if (token !== undefined) options.onSecret(token)
      const provider = new Provider({ ...definition, token, configured: definition.configured || token !== undefined }, {
        backoff: options.settings.backoff,
        timeoutMs: options.settings.timeoutMs,
        ...(options.now === undefined ? {} : { now: options.now }),
        ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
        ...(options.shared === undefined ? {} : { shared: options.shared }),
        ...(options.limiterCluster === undefined ? {} : { limiterCluster: options.limiterCluster(definition.name) })
      })
      const catalogue = new ModelCatalogue(provider, options.settings.catalogueTtlMs, options.now, options.blocks, options.shared)
      this.#entries.set(definition.name, { provider, catalogue })
    }
  }

  /**
   * Takes what the other replicas changed, as Redis holds it now: rotated tokens (told to the log
   * redaction too), cooldowns, blocks. Run before every API request answers, so a change another
   * replica has answered is seen here at once. Redis away: what this replica last knew stands.
   */
  async sync (): Promise<void> {
    const shared = this.#options.shared
    if (shared === undefined) return
    let state
    try {
      state = await shared.read([...this.#entries.keys()])
    } catch {
      return
    }
    for (const [name, { provider, catalogue }] of this.#entries) {
      const token = state.tokens.get(name)
      const rotated = token !== undefined && token !== provider.token
      if (rotated) {
        this.#options.onSecret(token)
        provider.rotateToken(token)
        catalogue.clear()
      }
      await provider.adoptHealth(state.health.get(name), rotated)
      catalogue.adoptBlocks(state.blocks.get(name))
    }
  }

  get (name: string): RegisteredProvider {
    const entry = this.#entries.get(name)
    if (entry === undefined) throw new MdProviderNotFoundError(name)
    return entry
  }

  /** Healthy before unhealthy, then higher priority, then lower latency. */
  list (): ProviderSummary[] {
    return [...this.#entries.values()].map((entry) => this.summary(entry.provider.name)).sort((a, b) =>
      Number(HEALTHY.has(b.health.status)) - Number(HEALTHY.has(a.health.status)) ||
      b.priority - a.priority ||
      (a.health.latency_avg_ms ?? Infinity) - (b.health.latency_avg_ms ?? Infinity) ||
      a.name.localeCompare(b.name))
  }

  summary (name: string): ProviderSummary {
    const { provider, catalogue } = this.get(name)
    const counts = provider.limiter.counts()
    return {
      name: provider.name,
      kind: provider.kind,
      base_url: provider.baseUrl,
      priority: provider.priority,
      token_env: provider.tokenEnv === '' ? null : provider.tokenEnv,
      token: provider.maskedToken,
      limiter: {
        max_concurrent: provider.limits.maxConcurrent,
        min_time_ms: provider.limits.minTime,
        queued: counts.queued,
        running: counts.running
      },
      health: provider.health.snapshot(),
      rate_limit: provider.kind === 'huggingface' ? provider.quota.snapshot() : null,
      catalogue: {
        fetched_at: catalogue.fetchedAt,
        models: catalogue.size,
        blocked: catalogue.blocks().length,
        ttl_s: this.#options.settings.catalogueTtlMs / 1000
      }
    }
  }

  async check (name: string): Promise<ProviderCheck> {
    const { provider } = this.get(name)
    return checkProvider(provider, provider.token, this.#options.now)
  }

  /**
   * Rotates a token: checked first (unless `validate` is false), refused with the check's fix steps
   * when it fails, and on a change the catalogue is dropped, health starts over, and the catalogue is
   * fetched again with the new token.
   */
  async rotateToken (name: string, token: string, validate: boolean): Promise<ProviderCheck | null> {
    const { provider, catalogue } = this.get(name)
    // A token that cannot reach the other replicas is refused before anyone checks it.
    this.#options.shared?.assertAvailable()
    this.#options.onSecret(token)
    const check = validate ? await checkProvider(provider, token, this.#options.now) : null
    const tokenCheck = check?.checks.find((result) => result.name === 'token')
    if (tokenCheck !== undefined && !tokenCheck.ok) {
      const message = `The new ${name} token failed its check (${tokenCheck.message}); the old token stays in use`
      throw new MdTokenRejectedError(message, tokenCheck.fix_steps.join(' '))
    }
    if (token === provider.token) return check
    // Saved first (in Redis, then the file): a token that cannot be kept is not switched to, so
    // memory, Redis and file agree.
    await this.#options.shared?.writeToken(name, token)
    await this.#options.tokens.save(name, token)
    provider.rotateToken(token)
    await provider.saveHealth()
    catalogue.clear()
    await catalogue.list(true).catch(() => {})
    return check
  }
}
