import { setTimeout as sleep } from 'node:timers/promises'

export interface RetryPolicy {
  /** Retries after the first try. */
  retries: number
  baseMs: number
  maxMs: number
}

/** A failure worth another try (a reset, a stall, a 5xx or 429, a corrupted transfer). */
export class RetryableError extends Error {
  override name = 'RetryableError'
  constructor (message: string, readonly retryAfterMs?: number) {
    super(message)
  }
}

// Retry-After is honoured, but a server asking for an hour does not park a job for an hour.
const MAX_RETRY_AFTER_MS = 5 * 60_000

/** undici's rule: min(base * 2^(n-1), max), with jitter so parallel files do not retry in step. */
export function backoffDelay (attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.baseMs * 2 ** (attempt - 1), policy.maxMs)
  return Math.round(ceiling * (0.5 + random() / 2))
}

/** `Retry-After` in seconds or as an HTTP date, in milliseconds from now. */
export function parseRetryAfter (value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined || value === '') return undefined
  const ms = /^\d+$/.test(value.trim()) ? Number(value) * 1000 : Date.parse(value) - now
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS) : undefined
}

/** Waits `ms`, or rejects with the signal's reason once it aborts. */
export type Sleep = (ms: number, signal: AbortSignal) => Promise<void>

const realSleep: Sleep = async (ms, signal) => sleep(ms, undefined, { signal })

export interface RetryHooks {
  signal: AbortSignal
  onRetry?: (err: RetryableError, attempt: number, delayMs: number) => void
  /** Real time unless a test passes its own clock's. */
  sleep?: Sleep
  random?: () => number
}

export async function withRetries<T> (
  task: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
  { signal, onRetry, sleep: wait = realSleep, random = Math.random }: RetryHooks
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await task(attempt)
    } catch (err) {
      if (!(err instanceof RetryableError) || attempt > policy.retries || signal.aborted) throw err
      const delay = err.retryAfterMs ?? backoffDelay(attempt, policy, random)
      onRetry?.(err, attempt, delay)
      await wait(delay, signal)
    }
  }
}
