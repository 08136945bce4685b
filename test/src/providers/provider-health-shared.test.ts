import t from 'tap'
import { ProviderHealth } from '../../../src/providers/provider-health.js'

// The part of the health replicas share: what one replica decides, another takes as it is, and an
// older version never overwrites a newer one.

function replica (clock: { ms: number }) {
  return new ProviderHealth('openrouter', { configured: true, now: () => clock.ms })
}

const rateLimited = (retryAfterMs: number) => ({ status: 429, code: 'HTTP_429', message: 'openrouter answered 429', retryAfterMs })

t.test('a cooldown decided on A is the cooldown of B once B adopts it', async (t) => {
  const clock = { ms: 1_000_000 }
  const a = replica(clock)
  const b = replica(clock)
  a.recordFailure(rateLimited(30_000), 5)
  t.ok(b.adopt(a.shared()), 'B takes it')
  t.match(b.snapshot(), { status: 'rate_limited', cooldown_until: a.snapshot().cooldown_until, consecutive_429s: 1, last_error: a.snapshot().last_error })
  t.match(b.gate(), { allowed: false, status: 'rate_limited', retryAfterMs: 30_000 })
  t.equal(b.snapshot().requests, 0, 'counts stay each replica\'s own')
  clock.ms += 30_000
  t.same(b.gate(), { allowed: true, probe: false }, 'and it ends when A\'s would')
})

t.test('changedAt moves only when the shared part changes', async (t) => {
  const clock = { ms: 5_000 }
  const health = replica(clock)
  t.equal(health.shared().changedAt, 0, 'nothing happened yet')
  health.recordSuccess(3)
  t.equal(health.shared().changedAt, 0, 'a success on a healthy provider is no news')
  health.recordFailure({ status: 503, code: 'HTTP_503', message: 'down' })
  t.equal(health.shared().changedAt, 5_000)
  health.recordSuccess(3)
  t.ok(health.shared().changedAt > 5_000, 'a recovery is news, even within the same millisecond')
})

t.test('an older shared state is not taken over a newer local change, unless forced', async (t) => {
  const clock = { ms: 10_000 }
  const a = replica(clock)
  const b = replica(clock)
  a.recordFailure(rateLimited(60_000))
  const older = a.shared()
  clock.ms += 10
  b.recordFailure({ status: 503, code: 'HTTP_503', message: 'down' })
  t.notOk(b.adopt(older), 'B\'s own change is newer')
  t.equal(b.snapshot().status, 'degraded')
  t.ok(b.adopt(older, true), 'forced, after adopting a token A rotated')
  t.equal(b.snapshot().status, 'rate_limited')
})

t.test('the half-open probe one replica took is not taken by another', async (t) => {
  const clock = { ms: 0 }
  const a = replica(clock)
  const b = replica(clock)
  for (let i = 0; i < 3; i++) a.recordFailure({ code: 'ECONNREFUSED', message: 'refused' })
  clock.ms += 60_000
  t.same(a.gate(), { allowed: true, probe: true }, 'A probes')
  b.adopt(a.shared())
  t.match(b.gate(), { allowed: false, status: 'down' }, 'B waits for A\'s probe')
})
