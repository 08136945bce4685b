import { createRequire } from 'node:module'
import type { FastifyRateLimitStore } from '@fastify/rate-limit'
import type { FastifyBaseLogger } from 'fastify'
import type { Redis } from 'ioredis'

interface Counter { current: number, ttl: number }
type Callback = (error: Error | null, result?: Counter) => void
interface CounterStore {
  incr: (key: string, callback: Callback, timeWindow: number, max: number) => void
  child: (options: unknown) => CounterStore
}
interface StoreSettings { continueExceeding?: boolean, exponentialBackoff?: boolean }

// The plugin's Redis store: one Lua script (INCR, then PEXPIRE or PTTL) per request, so each request
// gets its own count and a burst cannot all read the same one, as LocalStore's callers could.
const RedisStore = createRequire(import.meta.url)('@fastify/rate-limit/store/RedisStore.js') as
  new (continueExceeding: boolean, exponentialBackoff: boolean, redis: Redis, key: string) => CounterStore

/**
 * Whether the shared counters answer, logged when that changes: with `skipOnError` the limiter lets
 * every request through while Redis is away and says nothing, so this is where an operator reads why.
 */
class StoreHealth {
  #failing = false
  constructor (readonly log: FastifyBaseLogger) {}

  failed (err: Error): void {
    if (this.#failing) return
    this.#failing = true
    this.log.warn({ err }, 'rate limit store unavailable: requests are let through without a limit until Redis answers again')
  }

  answered (): void {
    if (!this.#failing) return
    this.#failing = false
    this.log.info('rate limit store answers again: the shared limit applies')
  }
}

class SharedStore implements FastifyRateLimitStore {
  constructor (readonly store: CounterStore, readonly health: StoreHealth) {}

  incr (key: string, callback: Callback, timeWindow: number, max: number): void {
    this.store.incr(key, (error, result) => {
      if (error === null) this.health.answered()
      else this.health.failed(error)
      callback(error, result)
    }, timeWindow, max)
  }

  child (options: unknown): FastifyRateLimitStore {
    return new SharedStore(this.store.child(options), this.health)
  }
}

/** A store class for @fastify/rate-limit's `store` option: counters in Redis under `nameSpace`, shared by every replica. */
export function sharedRateLimitStore (redis: Redis, nameSpace: string, log: FastifyBaseLogger): new (options: unknown) => FastifyRateLimitStore {
  const health = new StoreHealth(log)
  return class extends SharedStore {
    constructor (options: unknown) {
      const { continueExceeding, exponentialBackoff } = options as StoreSettings
      super(new RedisStore(continueExceeding === true, exponentialBackoff === true, redis, nameSpace), health)
    }
  }
}
