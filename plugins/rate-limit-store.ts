import { createRequire } from 'node:module'
import type { FastifyRateLimitStore } from '@fastify/rate-limit'

interface Counter { current: number, ttl: number }
type Callback = (error: Error | null, result?: Counter) => void
interface CounterStore { incr: (key: string, callback: Callback, timeWindow: number, max: number) => void }
// What the plugin passes a store at run time (its typings say less).
interface StoreSettings { continueExceeding?: boolean, exponentialBackoff?: boolean }

// The plugin's own in-memory store (an LRU of 5000 keys), which its typings do not export.
const LocalStore = createRequire(import.meta.url)('@fastify/rate-limit/store/LocalStore.js') as
  new (continueExceeding: boolean, exponentialBackoff: boolean) => CounterStore

/**
 * @fastify/rate-limit's LocalStore, except that each request gets a copy of its count. LocalStore
 * hands out its live counter and the limiter reads it only after an await, so requests that arrive in
 * one burst all read the burst's final count: past the budget, every one of them was refused, those
 * within it too (found by test/abuse/rate-limit-flood.test.ts).
 */
export class BurstSafeStore implements FastifyRateLimitStore {
  readonly #store: CounterStore

  constructor (options: unknown) {
    const { continueExceeding, exponentialBackoff } = options as StoreSettings
    this.#store = new LocalStore(continueExceeding === true, exponentialBackoff === true)
  }

  incr (key: string, callback: Callback, timeWindow: number, max: number): void {
    this.#store.incr(key, (error, result) => {
      callback(error, result === undefined ? undefined : { current: result.current, ttl: result.ttl })
    }, timeWindow, max)
  }

  child (options: unknown): FastifyRateLimitStore {
    return new BurstSafeStore(options)
  }
}
