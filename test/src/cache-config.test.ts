import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config.js'

// The quota settings of issue 19: validated at start-up, one line naming the variable.

const load = (env: Record<string, string>) => loadConfig({ API_KEY: 'test-key-alpha-0123456789', HOME: '/tmp', ...env })

t.test('CACHE_MAX_BYTES and the watermarks are off unless set', async (t) => {
  t.same(load({}).cacheQuota, { maxBytes: undefined, highWatermarkPercent: undefined, lowWatermarkPercent: undefined })
  t.same(load({ CACHE_MAX_BYTES: '1000000', CACHE_HIGH_WATERMARK: '80', CACHE_LOW_WATERMARK: '70' }).cacheQuota,
    { maxBytes: 1_000_000, highWatermarkPercent: 80, lowWatermarkPercent: 70 })
})

t.test('bad quota settings stop the start with one line that names them', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ CACHE_MAX_BYTES: 'lots' }, /^CACHE_MAX_BYTES is invalid: expected a number of bytes, at least 1 \(got "lots"\)$/],
    [{ CACHE_MAX_BYTES: '0' }, /^CACHE_MAX_BYTES is invalid/],
    [{ CACHE_HIGH_WATERMARK: '100', CACHE_LOW_WATERMARK: '70' }, /^CACHE_HIGH_WATERMARK is invalid: expected a percentage of the disk, 1-99/],
    [{ CACHE_HIGH_WATERMARK: '80', CACHE_LOW_WATERMARK: '0' }, /^CACHE_LOW_WATERMARK is invalid/],
    [{ CACHE_HIGH_WATERMARK: '70', CACHE_LOW_WATERMARK: '70' }, /^CACHE_LOW_WATERMARK is invalid: expected below CACHE_HIGH_WATERMARK \(70\) \(got "70"\)$/],
    [{ CACHE_HIGH_WATERMARK: '80' }, /^CACHE_LOW_WATERMARK is missing: set CACHE_HIGH_WATERMARK and CACHE_LOW_WATERMARK together/],
    [{ CACHE_LOW_WATERMARK: '70' }, /^CACHE_HIGH_WATERMARK is missing/]
  ]
  for (const [env, message] of cases) t.throws(() => load(env), { name: 'ConfigError', message }, JSON.stringify(env))
  t.ok(new ConfigError('x') instanceof Error)
})
