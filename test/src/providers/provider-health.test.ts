import t from 'tap'
import { DEFAULT_BACKOFF, percentile, ProviderHealth, type BackoffSettings, type UpstreamFailure } from '../../../src/providers/provider-health.js'

const MIN = 60_000

// A fake clock: tests move `clock.ms` forward instead of waiting.
function tracker (settings: Partial<BackoffSettings> = {}, configured = true) {
  const clock = { ms: 0 }
  const health = new ProviderHealth('openrouter', { configured, settings, now: () => clock.ms })
  return { health, clock }
}

const http = (status: number, retryAfterMs?: number): UpstreamFailure =>
  ({ status, code: `HTTP_${status}`, message: `upstream answered ${status}`, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) })
const network = (code = 'ECONNREFUSED'): UpstreamFailure => ({ code, message: `connect failed: ${code}` })
const iso = (ms: number): string => new Date(ms).toISOString()

t.test('the defaults are the ones the issue asks for', async (t) => {
  t.same(DEFAULT_BACKOFF, {
    rateLimitBackoffMs: [120_000, 240_000],
    blacklistAfter429s: 3,
    blacklistMs: 600_000,
    failuresToDown: 3,
    downCooldownMs: 60_000,
    latencyWindow: 100,
    errorWindowMs: 300_000,
    degradedBelowSuccessRate: 0.9
  })
})

t.test('an unconfigured provider refuses every call until it is configured', async (t) => {
  const { health } = tracker({}, false)
  t.same(health.gate(), { allowed: false, status: 'unconfigured', retryAfterMs: 0, cooldownUntil: null })
  t.same(health.snapshot(), {
    status: 'unconfigured',
    latency_avg_ms: null,
    latency_p95_ms: null,
    success_rate: null,
    requests: 0,
    failures: 0,
    consecutive_failures: 0,
    consecutive_429s: 0,
    cooldown_until: null,
    last_error: null,
    last_checked_at: null
  })
  health.setConfigured(true)
  t.same(health.gate(), { allowed: true, probe: false })
  t.equal(health.snapshot().status, 'online')
  health.setConfigured(false)
  t.equal(health.gate().allowed, false)
  t.equal(health.snapshot().status, 'unconfigured')
})

t.test('a provider answering well is online', async (t) => {
  const { health, clock } = tracker()
  clock.ms = 5000
  health.recordSuccess(120)
  const snapshot = health.snapshot()
  t.equal(snapshot.status, 'online')
  t.equal(snapshot.success_rate, 1)
  t.equal(snapshot.requests, 1)
  t.equal(snapshot.failures, 0)
  t.equal(snapshot.latency_avg_ms, 120)
  t.equal(snapshot.last_checked_at, iso(5000))
  t.same(health.gate(), { allowed: true, probe: false })
})

t.test('one 5xx makes the provider degraded, not down, and a low success rate keeps it degraded', async (t) => {
  const { health } = tracker()
  t.equal(health.recordFailure(http(503)), 'recorded')
  t.equal(health.snapshot().status, 'degraded')
  t.equal(health.snapshot().consecutive_failures, 1)
  t.same(health.gate(), { allowed: true, probe: false })

  health.recordSuccess(50)
  t.equal(health.snapshot().consecutive_failures, 0)
  t.equal(health.snapshot().success_rate, 0.5)
  t.equal(health.snapshot().status, 'degraded', '1 in 2 is below 90%')

  for (let i = 0; i < 8; i++) health.recordSuccess(50)
  t.equal(health.snapshot().success_rate, 0.9)
  t.equal(health.snapshot().status, 'online', 'exactly 90% is not below the threshold')
})

t.test('401/403/404 lower the success rate but never mark the provider down', async (t) => {
  const { health } = tracker({ latencyWindow: 10 })
  for (const status of [401, 403, 404, 404, 404]) t.equal(health.recordFailure(http(status)), 'recorded')
  const snapshot = health.snapshot()
  t.equal(snapshot.status, 'degraded')
  t.equal(snapshot.consecutive_failures, 0)
  t.equal(snapshot.failures, 5)
  t.equal(snapshot.success_rate, 0)
  t.same(health.gate(), { allowed: true, probe: false })

  // The failures slide out of a 10-call window.
  for (let i = 0; i < 10; i++) health.recordSuccess(10)
  t.equal(health.snapshot().success_rate, 1)
  t.equal(health.snapshot().status, 'online')
  t.equal(health.snapshot().failures, 5, 'lifetime counts are not windowed')
  t.equal(health.snapshot().requests, 15)
})

t.test('429s back off 2 minutes, then 4, and the gate refuses until the time has passed', async (t) => {
  const { health, clock } = tracker()
  t.equal(health.recordFailure(http(429)), 'backed_off')
  t.equal(health.snapshot().status, 'rate_limited')
  t.equal(health.snapshot().cooldown_until, iso(2 * MIN))
  t.same(health.gate(), { allowed: false, status: 'rate_limited', retryAfterMs: 2 * MIN, cooldownUntil: iso(2 * MIN) })
  clock.ms = 2 * MIN - 1
  t.same(health.gate(), { allowed: false, status: 'rate_limited', retryAfterMs: 1, cooldownUntil: iso(2 * MIN) })
  clock.ms = 2 * MIN
  t.same(health.gate(), { allowed: true, probe: false })
  t.equal(health.snapshot().status, 'degraded', 'after the cooldown the status comes from the counters')
  t.equal(health.snapshot().cooldown_until, null)

  t.equal(health.recordFailure(http(429)), 'backed_off')
  t.equal(health.snapshot().consecutive_429s, 2)
  t.same(health.gate(), { allowed: false, status: 'rate_limited', retryAfterMs: 4 * MIN, cooldownUntil: iso(6 * MIN) })
  clock.ms = 6 * MIN - 1
  t.equal(health.gate().allowed, false)
  clock.ms = 6 * MIN
  t.same(health.gate(), { allowed: true, probe: false })
  t.equal(health.snapshot().requests, 2, 'refused calls never count as requests')
})

t.test('429s past the end of the schedule reuse its last entry until blacklisting', async (t) => {
  const { health, clock } = tracker({ blacklistAfter429s: 5 })
  const cooldowns: number[] = []
  for (let i = 0; i < 4; i++) {
    t.equal(health.recordFailure(http(429)), 'backed_off')
    const gate = health.gate()
    cooldowns.push(gate.allowed ? 0 : gate.retryAfterMs)
    clock.ms += 10 * MIN
  }
  t.same(cooldowns, [2 * MIN, 4 * MIN, 4 * MIN, 4 * MIN])
  t.equal(health.recordFailure(http(429)), 'blacklisted')
})

t.test('Retry-After overrides the schedule, shorter or longer', async (t) => {
  const { health, clock } = tracker()
  t.equal(health.recordFailure(http(429, 30_000)), 'backed_off')
  t.same(health.gate(), { allowed: false, status: 'rate_limited', retryAfterMs: 30_000, cooldownUntil: iso(30_000) })
  clock.ms = 30_000
  t.same(health.gate(), { allowed: true, probe: false })

  health.recordFailure(http(429, 7 * MIN))
  t.same(health.gate(), { allowed: false, status: 'rate_limited', retryAfterMs: 7 * MIN, cooldownUntil: iso(30_000 + 7 * MIN) })
})

t.test('the third consecutive 429 blacklists for 10 minutes, then calls flow again', async (t) => {
  const { health, clock } = tracker()
  t.equal(health.recordFailure(http(429)), 'backed_off')
  clock.ms = 2 * MIN
  t.equal(health.recordFailure(http(429)), 'backed_off')
  clock.ms = 6 * MIN
  t.equal(health.recordFailure(http(429)), 'blacklisted')
  t.equal(health.snapshot().status, 'blacklisted')
  t.equal(health.snapshot().consecutive_429s, 3)
  t.same(health.gate(), { allowed: false, status: 'blacklisted', retryAfterMs: 10 * MIN, cooldownUntil: iso(16 * MIN) })
  clock.ms = 16 * MIN - 1
  t.same(health.gate(), { allowed: false, status: 'blacklisted', retryAfterMs: 1, cooldownUntil: iso(16 * MIN) })
  clock.ms = 16 * MIN
  t.same(health.gate(), { allowed: true, probe: false })
  t.equal(health.snapshot().status, 'degraded')

  health.recordSuccess(80)
  t.equal(health.snapshot().consecutive_429s, 0)
  t.equal(health.snapshot().status, 'degraded', 'one success in four calls is still a low rate')
  for (let i = 0; i < 30; i++) health.recordSuccess(80)
  t.equal(health.snapshot().status, 'online')
})

t.test('a 429 right after a blacklist, with no success between, blacklists again', async (t) => {
  const { health, clock } = tracker({ rateLimitBackoffMs: [1000], blacklistMs: 5000 })
  health.recordFailure(http(429))
  clock.ms = 1000
  health.recordFailure(http(429))
  clock.ms = 2000
  t.equal(health.recordFailure(http(429)), 'blacklisted')
  clock.ms = 7000
  t.equal(health.gate().allowed, true)
  t.equal(health.recordFailure(http(429)), 'blacklisted')
  t.same(health.gate(), { allowed: false, status: 'blacklisted', retryAfterMs: 5000, cooldownUntil: iso(12_000) })
})

t.test('a blacklist lasts at least as long as the Retry-After the upstream sent', async (t) => {
  const { health } = tracker({ blacklistAfter429s: 1 })
  t.equal(health.recordFailure(http(429, 30 * MIN)), 'blacklisted')
  t.same(health.gate(), { allowed: false, status: 'blacklisted', retryAfterMs: 30 * MIN, cooldownUntil: iso(30 * MIN) })
})

t.test('a success resets consecutive 429s, so the next 429 starts the schedule over', async (t) => {
  const { health, clock } = tracker()
  health.recordFailure(http(429))
  clock.ms = 2 * MIN
  health.recordFailure(http(429))
  clock.ms = 6 * MIN
  health.recordSuccess(90)
  t.equal(health.snapshot().consecutive_429s, 0)
  t.equal(health.recordFailure(http(429)), 'backed_off', 'not blacklisted')
  t.equal(health.snapshot().consecutive_429s, 1)
  t.same(health.gate(), { allowed: false, status: 'rate_limited', retryAfterMs: 2 * MIN, cooldownUntil: iso(8 * MIN) })
})

t.test('a success that lands during a rate-limit cooldown clears it', async (t) => {
  const { health } = tracker()
  health.recordFailure(http(429))
  health.recordSuccess(40)
  t.same(health.gate(), { allowed: true, probe: false })
  t.equal(health.snapshot().cooldown_until, null)
})

t.test('down after 3 failures, one half-open probe, down again on failure, online on success', async (t) => {
  const { health, clock } = tracker()
  t.equal(health.recordFailure(http(502)), 'recorded')
  t.equal(health.recordFailure(network('ETIMEDOUT')), 'recorded')
  t.equal(health.snapshot().status, 'degraded')
  t.equal(health.recordFailure(network('ECONNREFUSED')), 'marked_down')
  t.equal(health.snapshot().status, 'down')
  t.equal(health.snapshot().consecutive_failures, 3)
  t.same(health.gate(), { allowed: false, status: 'down', retryAfterMs: MIN, cooldownUntil: iso(MIN) })

  clock.ms = MIN - 1
  t.equal(health.gate().allowed, false)
  clock.ms = MIN
  t.same(health.gate(), { allowed: true, probe: true }, 'the cooldown has passed: one probe')
  t.same(health.gate(), { allowed: false, status: 'down', retryAfterMs: MIN, cooldownUntil: iso(2 * MIN) }, 'a second call waits for the probe')
  t.equal(health.snapshot().status, 'down', 'still down while the probe is out')

  clock.ms = MIN + 500
  t.equal(health.recordFailure(http(500)), 'marked_down', 'the probe failed')
  t.equal(health.snapshot().status, 'down')
  t.same(health.gate(), { allowed: false, status: 'down', retryAfterMs: MIN, cooldownUntil: iso(2 * MIN + 500) }, 'a fresh cooldown')

  clock.ms = 2 * MIN + 500
  t.same(health.gate(), { allowed: true, probe: true })
  t.equal(health.gate().allowed, false)
  health.recordSuccess(200)
  const snapshot = health.snapshot()
  t.equal(snapshot.status, 'online')
  t.equal(snapshot.consecutive_failures, 0)
  t.equal(snapshot.cooldown_until, null)
  t.equal(snapshot.success_rate, 1, 'the outage no longer weighs on the rate')
  t.equal(snapshot.failures, 4, 'lifetime counts keep the outage')
  t.same(health.gate(), { allowed: true, probe: false })
  t.same(health.gate(), { allowed: true, probe: false }, 'no longer half-open')
})

t.test('the number of failures to go down is a setting', async (t) => {
  const { health } = tracker({ failuresToDown: 5 })
  for (let i = 0; i < 4; i++) t.equal(health.recordFailure(http(503)), 'recorded')
  t.equal(health.snapshot().status, 'degraded')
  t.equal(health.recordFailure(http(503)), 'marked_down')
})

t.test('a rejection (403/404) is kept among recent errors but counts as the provider answering', async (t) => {
  const { health, clock } = tracker({ failuresToDown: 1 })
  health.recordFailure(network())
  clock.ms = MIN
  t.same(health.gate(), { allowed: true, probe: true })
  health.recordRejection(http(404), 12)
  const snapshot = health.snapshot()
  t.equal(snapshot.status, 'online', 'a probe answered with a 404 proves the upstream is up')
  t.equal(snapshot.consecutive_failures, 0)
  t.equal(snapshot.failures, 1, 'only the network failure is a failure')
  t.equal(snapshot.latency_avg_ms, 12)
  t.match(snapshot.last_error, { status: 404, code: 'HTTP_404', at: iso(MIN) })
  t.match(health.recentErrors(), [{ status: 404, action: 'recorded' }, { code: 'ECONNREFUSED', action: 'marked_down' }])
})

t.test('a probe that fails with a 404 puts the provider down again', async (t) => {
  const { health, clock } = tracker({ failuresToDown: 1 })
  health.recordFailure(network())
  clock.ms = MIN
  t.same(health.gate(), { allowed: true, probe: true })
  t.equal(health.recordFailure(http(404)), 'marked_down')
  t.same(health.gate(), { allowed: false, status: 'down', retryAfterMs: MIN, cooldownUntil: iso(2 * MIN) })
})

t.test('a probe whose outcome is never recorded does not wedge the provider', async (t) => {
  const { health, clock } = tracker({ failuresToDown: 1 })
  health.recordFailure(network())
  clock.ms = MIN
  t.same(health.gate(), { allowed: true, probe: true })
  clock.ms = 2 * MIN - 1
  t.same(health.gate(), { allowed: false, status: 'down', retryAfterMs: 1, cooldownUntil: iso(2 * MIN) })
  clock.ms = 2 * MIN
  t.same(health.gate(), { allowed: true, probe: true }, 'the lease lapsed: a new probe')
})

t.test('latency avg and p95 cover the last `latencyWindow` samples only', async (t) => {
  const { health } = tracker({ latencyWindow: 5 })
  t.equal(health.snapshot().latency_avg_ms, null)
  t.equal(health.snapshot().latency_p95_ms, null)
  for (let ms = 10; ms <= 100; ms += 10) health.recordSuccess(ms)
  t.equal(health.snapshot().latency_avg_ms, 80, 'avg of 60..100')
  t.equal(health.snapshot().latency_p95_ms, 100)

  const wide = tracker().health
  for (let ms = 1; ms <= 20; ms++) wide.recordSuccess(ms)
  t.equal(wide.snapshot().latency_p95_ms, 19, 'nearest rank: ceil(0.95 * 20) = 19th')
  t.equal(wide.snapshot().latency_avg_ms, 11, '10.5 rounds to 11')

  const withFailures = tracker().health
  withFailures.recordSuccess(100)
  withFailures.recordFailure(network('ETIMEDOUT'), 300)
  withFailures.recordFailure(network('ECONNREFUSED'))
  t.equal(withFailures.snapshot().latency_avg_ms, 200, 'a timed failure counts, an untimed one does not')
})

t.test('percentile is nearest-rank and leaves its input alone', async (t) => {
  const values = [20, 1, 5, 3, 4, 2]
  t.equal(percentile(values, 50), 3)
  t.equal(percentile(values, 100), 20)
  t.equal(percentile(values, 0), 1)
  t.equal(percentile([7], 95), 7)
  t.same(values, [20, 1, 5, 3, 4, 2])
  t.throws(() => percentile([], 95), RangeError)
})

t.test('success rate and counts', async (t) => {
  const { health } = tracker()
  health.recordSuccess(10)
  health.recordSuccess(10)
  health.recordSuccess(10)
  health.recordFailure(http(500))
  const snapshot = health.snapshot()
  t.equal(snapshot.success_rate, 0.75)
  t.equal(snapshot.requests, 4)
  t.equal(snapshot.failures, 1)
})

t.test('recent errors cover 5 minutes, newest first, with the action taken', async (t) => {
  const { health, clock } = tracker()
  health.recordFailure(http(503))
  clock.ms = MIN
  health.recordFailure(http(429))
  clock.ms = 4 * MIN
  health.recordFailure(network('ETIMEDOUT'))
  t.same(health.recentErrors(), [
    { at: iso(4 * MIN), provider: 'openrouter', status: null, code: 'ETIMEDOUT', message: 'connect failed: ETIMEDOUT', action: 'recorded' },
    { at: iso(MIN), provider: 'openrouter', status: 429, code: 'HTTP_429', message: 'upstream answered 429', action: 'backed_off' },
    { at: iso(0), provider: 'openrouter', status: 503, code: 'HTTP_503', message: 'upstream answered 503', action: 'recorded' }
  ])
  t.same(health.snapshot().last_error, { at: iso(4 * MIN), status: null, code: 'ETIMEDOUT', message: 'connect failed: ETIMEDOUT' })

  clock.ms = 5 * MIN
  t.equal(health.recentErrors().length, 3, 'exactly 5 minutes old is still kept')
  clock.ms = 5 * MIN + 1
  t.same(health.recentErrors().map((e) => e.code), ['ETIMEDOUT', 'HTTP_429'])
  clock.ms = 9 * MIN + 1
  t.same(health.recentErrors(), [])
  t.equal(health.snapshot().last_error?.code, 'ETIMEDOUT', 'the last error outlives the window')

  const returned = tracker().health
  returned.recordFailure(network())
  returned.recentErrors()[0]!.action = 'blacklisted'
  t.equal(returned.recentErrors()[0]!.action, 'recorded', 'callers get copies')
})

t.test('reset() after a token rotation clears counters, windows, cooldowns and errors', async (t) => {
  const { health, clock } = tracker()
  health.recordSuccess(100)
  health.recordFailure(http(429))
  clock.ms = 2 * MIN
  health.recordFailure(http(429))
  clock.ms = 6 * MIN
  health.recordFailure(http(429))
  health.recordFailure(http(503))
  t.equal(health.snapshot().status, 'blacklisted')

  health.reset()
  t.same(health.snapshot(), {
    status: 'online',
    latency_avg_ms: null,
    latency_p95_ms: null,
    success_rate: null,
    requests: 0,
    failures: 0,
    consecutive_failures: 0,
    consecutive_429s: 0,
    cooldown_until: null,
    last_error: null,
    last_checked_at: null
  })
  t.same(health.recentErrors(), [])
  t.same(health.gate(), { allowed: true, probe: false })
  health.recordFailure(http(429))
  t.same(health.gate(), { allowed: false, status: 'rate_limited', retryAfterMs: 2 * MIN, cooldownUntil: iso(8 * MIN) }, 'the schedule starts over')
})

t.test('settings are validated, and an undefined override keeps the default', async (t) => {
  t.throws(() => tracker({ rateLimitBackoffMs: [] }), RangeError)
  t.throws(() => tracker({ failuresToDown: 0 }), RangeError)
  t.throws(() => tracker({ blacklistMs: -1 }), RangeError)
  t.throws(() => tracker({ degradedBelowSuccessRate: 1.5 }), RangeError)
  const { health } = tracker({ blacklistMs: undefined, blacklistAfter429s: 1 })
  health.recordFailure(http(429))
  t.same(health.gate(), { allowed: false, status: 'blacklisted', retryAfterMs: 10 * MIN, cooldownUntil: iso(10 * MIN) })
})
