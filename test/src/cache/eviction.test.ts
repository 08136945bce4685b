import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { CacheQuota, type CacheQuotaSettings, type Eviction } from '../../../src/cache/eviction.js'
import { cachedModel } from '../../helpers/cache-models.js'

// The watermarks work on percent of a disk: a test cannot fill the real one, so it hands the quota
// a disk of 1 MB that is 75% used, and real models in a real cache folder to evict.

const MB = 1_000_000
const nobodyProtected = async () => ({ defaultModel: null, pinned: new Set<string>(), activeJobs: new Set<string>() })

function quota (cacheDir: string, settings: Partial<CacheQuotaSettings>, evicted: Eviction[]): CacheQuota {
  return new CacheQuota({
    cacheDir,
    settings: { maxBytes: undefined, highWatermarkPercent: undefined, lowWatermarkPercent: undefined, ...settings },
    protection: nobodyProtected,
    lastUse: async () => ({}),
    log: { info: () => {} },
    onEvicted: (eviction) => evicted.push(eviction),
    disk: async () => ({ total_bytes: MB, free_bytes: MB / 4 })
  })
}

t.test('past the high watermark, models are evicted until the disk would be under the low one, least recently used first', async (t) => {
  const cacheDir = mkdtempSync(join(tmpdir(), 'modeldepot-eviction-'))
  t.teardown(() => rmSync(cacheDir, { recursive: true, force: true }))
  cachedModel(cacheDir, 'org/oldest', 100_000, 30 * 3600)
  cachedModel(cacheDir, 'org/older', 100_000, 20 * 3600)
  cachedModel(cacheDir, 'org/newest', 100_000, 10 * 3600)
  const evicted: Eviction[] = []
  const watermarks = quota(cacheDir, { highWatermarkPercent: 80, lowWatermarkPercent: 70 }, evicted)

  // 750 kB used + 100 kB: 850 kB, past 800 kB; under 700 kB means 150 kB must go, so two models.
  t.same(await watermarks.roomNeeded(100_000), { required: 50_000, wanted: 150_000 })
  t.same(await watermarks.roomNeeded(40_000), { required: 0, wanted: 0 }, 'under the high watermark nothing needs to go')
  await watermarks.makeRoom('org/new-download', 100_000)
  t.same(evicted.map((eviction) => eviction.model_id), ['org/oldest', 'org/older'])
  t.notOk(existsSync(join(cacheDir, 'models--org--oldest')))
  t.ok(existsSync(join(cacheDir, 'models--org--newest')), 'the most recently used one stays')
  t.match(evicted[0], { for_model: 'org/new-download', freed_bytes: Number, last_used_at: String })
})

t.test('without CACHE_MAX_BYTES or watermarks the quota is off and never evicts, even on a full disk', async (t) => {
  const cacheDir = mkdtempSync(join(tmpdir(), 'modeldepot-eviction-'))
  t.teardown(() => rmSync(cacheDir, { recursive: true, force: true }))
  cachedModel(cacheDir, 'org/a', 100_000, 3600)
  const evicted: Eviction[] = []
  const off = quota(cacheDir, {}, evicted)
  t.equal(off.enabled, false)
  await off.makeRoom('org/big', 10 * MB)
  t.same(evicted, [])
  t.ok(existsSync(join(cacheDir, 'models--org--a')))
})
