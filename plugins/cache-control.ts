import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Counter } from 'prom-client'
import { CacheControl } from '../src/cache/cache-control.js'
import type { Config } from '../src/config.js'

declare module 'fastify' {
  interface FastifyInstance {
    cacheControl: CacheControl
  }
}

export interface CacheControlPluginOptions {
  config: Pick<Config, 'hubCacheDir' | 'stateDir' | 'cacheQuota' | 'redis'>
}

/**
 * Pins, last-use records, the quota and prune. The quota is handed to the download engine, which
 * asks it for room before each download; a job that completes notes the model's last use.
 */
async function cacheControlPlugin (app: FastifyInstance, { config }: CacheControlPluginOptions): Promise<void> {
  const log = app.log.child({ component: 'cache' })
  const cacheControl = new CacheControl({
    cacheDir: config.hubCacheDir,
    stateDir: config.stateDir,
    settings: config.cacheQuota,
    defaultModel: app.defaultModel,
    activeModels: async () => [...new Set((await app.jobStore.unfinished()).map((job) => job.model_id))],
    log
  })
  if (app.redis !== undefined) cacheControl.share(app.redis, config.redis.keyPrefix)
  app.decorate('cacheControl', cacheControl)
  // Off (no CACHE_MAX_BYTES, no watermarks): downloads check free space exactly as without this plugin.
  if (cacheControl.quota.enabled) app.downloads.useQuota(cacheControl.quota)
  app.downloads.onJobEnded((job) => {
    if (job.status === 'complete') void cacheControl.recordUse(job.model_id)
  })
  // Before STATE_DIR can go (a test removes it once the app is closed).
  app.addHook('onClose', async () => cacheControl.close())

  let counted = 0
  app.metrics.registerMetric(new Counter({
    name: 'modeldepot_cache_evictions_total',
    help: 'Models the cache quota evicted to make room for downloads',
    registers: [],
    collect () {
      this.inc(cacheControl.evictionCount - counted)
      counted = cacheControl.evictionCount
    }
  }))
}

export default fp(cacheControlPlugin, { name: 'cache-control', dependencies: ['downloads', 'metrics', 'redis'] })
