import t from 'tap'
import { HubQuota, hubBucketOf, parseRateLimit, rateLimitCooldownMs } from '../../../src/providers/hub-rate-limit.js'

// The header examples are huggingface_hub's (utils/_http.py, parse_ratelimit_headers) and the Hub's
// documentation (https://huggingface.co/docs/hub/rate-limits).

t.test('reads RateLimit and RateLimit-Policy as huggingface_hub does', async (t) => {
  t.same(parseRateLimit('"api";r=0;t=55', '"fixed window";"api";q=500;w=300'), { bucket: 'api', remaining: 0, resetInS: 55, limit: 500, windowS: 300 })
  t.same(parseRateLimit('"resolvers";r=4990;t=120', undefined), { bucket: 'resolvers', remaining: 4990, resetInS: 120, limit: null, windowS: null })
  t.same(parseRateLimit('"pages" ; r = 3 ; t = 7', '"fixed window";"pages";q=200;w=300'), { bucket: 'pages', remaining: 3, resetInS: 7, limit: 200, windowS: 300 })
  t.equal(parseRateLimit(undefined, '"fixed window";"api";q=500;w=300'), undefined, 'no RateLimit, nothing')
  t.equal(parseRateLimit('api;r=0;t=5', undefined), undefined, 'an unquoted name is not the Hub\'s format')
  t.equal(parseRateLimit('"api";r=-1;t=5', undefined), undefined)
  t.same(parseRateLimit('"api";r=1;t=5', 'garbage'), { bucket: 'api', remaining: 1, resetInS: 5, limit: null, windowS: null }, 'an unreadable policy is left out')
})

t.test('the bucket of a request is the Hub\'s: /resolve/ URLs are resolvers, /api/ the API, the rest pages', async (t) => {
  t.equal(hubBucketOf('https://huggingface.co/org/tiny/resolve/main/config.json'), 'resolvers')
  t.equal(hubBucketOf('https://huggingface.co/api/models/org/tiny/revision/main'), 'api')
  t.equal(hubBucketOf('https://huggingface.co/api/whoami-v2'), 'api')
  t.equal(hubBucketOf('https://huggingface.co/datasets/org/set/resolve/main/a.csv'), 'resolvers')
  t.equal(hubBucketOf('https://huggingface.co/org/tiny'), 'pages')
})

t.test('a 429 waits its t, capped at the 5-minute window, with at most 10 % added', async (t) => {
  const info = { bucket: 'api', remaining: 0, resetInS: 7, limit: 500, windowS: 300 }
  t.equal(rateLimitCooldownMs(info, () => 0), 7000, 'no jitter: exactly t')
  t.equal(rateLimitCooldownMs(info, () => 1), 7700, 'the most jitter adds 10 %')
  t.equal(rateLimitCooldownMs({ ...info, resetInS: 3600 }, () => 0), 300_000, 'never past the window')
  t.equal(rateLimitCooldownMs({ ...info, resetInS: 3600, windowS: 60 }, () => 0), 60_000, 'the policy\'s window when shorter')
})

t.test('with 10 % or more of the quota left nothing waits; under it the rest is spread until the reset', async (t) => {
  const clock = { ms: 1_000_000 }
  const quota = new HubQuota(() => clock.ms)
  t.same(quota.reserve('api'), { waitMs: 0, taken: true }, 'nothing known: no wait')
  quota.record({ bucket: 'api', remaining: 10, resetInS: 100, limit: 100, windowS: 300 })
  t.same(quota.reserve('api'), { waitMs: 0, taken: true }, 'exactly 10 % left: no wait')
  t.same(quota.snapshot(), { api: { remaining: 10, limit: 100, resets_at: new Date(1_100_000).toISOString() } })

  quota.record({ bucket: 'api', remaining: 4, resetInS: 100, limit: null, windowS: null })
  const waits = [1, 2, 3, 4, 5].map(() => quota.reserve('api').waitMs)
  // 4 left over 100 s: one now, then every 25 s (of the time left), and the fifth once the window resets.
  t.same(waits, [0, 25_000, 50_000, 75_000, 100_000])
  t.same(quota.reserve('api', 1000), { waitMs: 100_000, taken: false }, 'a turn further off than the caller may wait is not taken')

  clock.ms += 100_000
  t.same(quota.reserve('api'), { waitMs: 0, taken: true }, 'once the window has reset, the old count says nothing')
  t.same(quota.snapshot(), {}, 'a window that has passed is not shown')
  t.same(quota.reserve('resolvers'), { waitMs: 0, taken: true }, 'buckets are apart')
})
