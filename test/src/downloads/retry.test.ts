import t from 'tap'
import { backoffDelay, parseRetryAfter, RetryableError, withRetries, type Sleep } from '../../../src/downloads/retry.js'

// The retry loop's timing through an injected sleep: what it waits for is checked, without waiting.
const policy = { retries: 3, baseMs: 100, maxMs: 300 }

function recordingSleep (): { sleep: Sleep, waits: number[] } {
  const waits: number[] = []
  return { waits, sleep: async (ms, signal) => { signal.throwIfAborted(); waits.push(ms) } }
}

t.test('a retryable failure is tried again after the backoff, doubling up to the cap', async (t) => {
  const { sleep, waits } = recordingSleep()
  let tries = 0
  const result = await withRetries(async (attempt) => {
    tries = attempt
    if (attempt <= 3) throw new RetryableError(`try ${attempt} failed`)
    return 'done'
  }, policy, { signal: new AbortController().signal, sleep, random: () => 1 })
  t.equal(result, 'done')
  t.equal(tries, 4, 'the first try and three retries')
  t.same(waits, [100, 200, 300], 'base, twice the base, then the cap')
})

t.test("the server's Retry-After replaces the backoff", async (t) => {
  const { sleep, waits } = recordingSleep()
  const result = await withRetries(async (attempt) => {
    if (attempt === 1) throw new RetryableError('429', parseRetryAfter('7'))
    return attempt
  }, policy, { signal: new AbortController().signal, sleep })
  t.equal(result, 2)
  t.same(waits, [7000])
})

t.test('past the retries, or for another error, the failure is thrown at once', async (t) => {
  const { sleep, waits } = recordingSleep()
  const signal = new AbortController().signal
  await t.rejects(withRetries(async () => { throw new RetryableError('always') }, policy, { signal, sleep }), /always/)
  t.equal(waits.length, 3, 'three waits, then the fourth failure is thrown')
  const other = recordingSleep()
  await t.rejects(withRetries(async () => { throw new Error('not retryable') }, policy, { signal, sleep: other.sleep }), /not retryable/)
  t.same(other.waits, [])
})

t.test('a cancel during the wait ends the loop with its reason', async (t) => {
  const controller = new AbortController()
  let tries = 0
  const cancelled = withRetries(async () => {
    tries++
    throw new RetryableError('503')
  }, policy, { signal: controller.signal, sleep: async (_ms, signal) => { controller.abort(new Error('cancelled')); signal.throwIfAborted() } })
  await t.rejects(cancelled, /cancelled/)
  t.equal(tries, 1)
})

t.test('backoff jitter stays within half to all of the ceiling; Retry-After is capped at 5 minutes', async (t) => {
  t.equal(backoffDelay(1, policy, () => 0), 50)
  t.equal(backoffDelay(2, policy, () => 1), 200)
  t.equal(backoffDelay(9, policy, () => 1), 300)
  t.equal(parseRetryAfter('3600'), 300_000)
  t.equal(parseRetryAfter(new Date(Date.now() + 10_000).toUTCString()) !== undefined, true)
  t.equal(parseRetryAfter('soon'), undefined)
})
