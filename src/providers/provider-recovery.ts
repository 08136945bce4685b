import { probeProvider } from './provider-check.js'
import type { Provider } from './provider.js'

export interface RecoveryOptions {
  /** The providers to watch, as the registry has them now. */
  providers: () => Provider[]
  /** Takes what the other replicas changed (their cooldowns) before looking; nothing without Redis. */
  sync: () => Promise<void>
  now?: () => number
  /** Told each probe and what it found. */
  onProbe?: (provider: string, status: string) => void
}

/**
 * An idle replica's providers recover without traffic: when a provider's cooldown has ended (down,
 * rate-limited or blacklisted), one cheap call is sent, so its status (and the system status)
 * follows the upstream instead of waiting for a request that happens to call it.
 *
 * With several replicas, the probe of a provider that is `down` is the half-open one, which the
 * shared health gives to a single replica; after a rate limit, each replica that knows of it
 * probes once (two replicas looking at the same moment may both send one).
 */
export class ProviderRecovery {
  readonly #options: RecoveryOptions
  readonly #now: () => number
  #timer: NodeJS.Timeout | undefined
  #ticking: Promise<void> | undefined

  constructor (options: RecoveryOptions) {
    this.#options = options
    this.#now = options.now ?? Date.now
  }

  start (intervalMs: number): void {
    this.#timer = setInterval(() => { void this.tick() }, intervalMs)
    this.#timer.unref()
  }

  /** Looks once; a look still under way is not started again. */
  async tick (): Promise<void> {
    this.#ticking ??= this.#look().finally(() => { this.#ticking = undefined })
    return this.#ticking
  }

  async stop (): Promise<void> {
    clearInterval(this.#timer)
    await this.#ticking
  }

  async #look (): Promise<void> {
    // Every look reads Redis: a cooldown another replica set (and may no longer be there to lift) counts here too.
    await this.#options.sync()
    for (const provider of this.#options.providers().filter((candidate) => this.#cooledDown(candidate))) {
      // Refused (another replica holds the probe) or failed: the health has what it needs, or the next look tries.
      await probeProvider(provider).catch(() => {})
      this.#options.onProbe?.(provider.name, provider.health.snapshot().status)
    }
  }

  /** A cooldown that has ended and that no call has lifted since. */
  #cooledDown (provider: Provider): boolean {
    const { cooldown } = provider.health.shared()
    return cooldown !== null && this.#now() >= cooldown.until && provider.health.snapshot().status !== 'unconfigured'
  }
}
