import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { DefaultModelStore } from '../src/cache/default-model-store.js'
import { CallbackSender } from '../src/callbacks/callback-sender.js'
import type { Config } from '../src/config.js'
import { ByteRate } from '../src/downloads/byte-rate.js'
import { DownloadManager } from '../src/downloads/download-manager.js'
import { LimitsStore } from '../src/downloads/limits-store.js'
import { HubClient } from '../src/hub/hub-client.js'

declare module 'fastify' {
  interface FastifyInstance {
    downloads: DownloadManager
    defaultModel: DefaultModelStore
    /** The operator's limits (the server's cap on download bytes per second). */
    limits: LimitsStore
  }
}

export interface DownloadsOptions {
  config: Pick<Config, 'hubCacheDir' | 'stateDir' | 'defaultModel' | 'downloads' | 'callbacks' | 'redis'>
}

async function downloadsPlugin (app: FastifyInstance, { config }: DownloadsOptions): Promise<void> {
  const defaultModel = new DefaultModelStore(config.stateDir, config.defaultModel)
  const callbacks = new CallbackSender(config.callbacks, Date.now, app.log.child({ component: 'callbacks' }), app.outbound.request)
  const serverRate = new ByteRate(null)
  // With Redis the cap is the cluster's: this replica keeps the part of it that its running jobs are of all running.
  const share = async (): Promise<number> => {
    const { running } = await app.jobStore.counts()
    return running === 0 || downloads.runningHere === 0 ? 1 : Math.min(1, downloads.runningHere / running)
  }
  const limits = new LimitsStore({
    stateDir: config.stateDir,
    initial: config.downloads.maxBytesPerS,
    rate: serverRate,
    redis: app.redis,
    keyPrefix: config.redis.keyPrefix,
    ...(app.redis === undefined ? {} : { share })
  })
  app.decorate('limits', limits)
  const downloads = new DownloadManager({
    cacheDir: config.hubCacheDir,
    // The Hub calls of downloads go through the huggingface provider: its limiter, backoff and token.
    hub: new HubClient({ provider: app.providers.get('huggingface').provider, request: app.outbound.request }),
    store: app.jobStore,
    defaultModel,
    settings: config.downloads,
    log: app.log.child({ component: 'downloads' }),
    callbacks,
    serverRate
  })
  app.decorate('downloads', downloads)
  await limits.start()
  // Jobs a shutdown or a crash interrupted start again by themselves, once the app is ready (after
  // a sweep of what a crashed process left); their planning asks the Hub, so it runs in the
  // background rather than hold up the start.
  app.addHook('onReady', async () => {
    void downloads.resume()
  })
  app.decorate('defaultModel', defaultModel)
  // Graceful shutdown: running jobs stop, keep their .incomplete files and stay in the journal for the next start.
  // preClose, before the server waits for in-flight requests: a long poll (?wait=) wakes up as its job stops.
  app.addHook('preClose', async () => downloads.shutdown())
  // Callbacks still being retried are given up: the server is going away.
  app.addHook('onClose', async () => {
    await callbacks.close()
    await downloads.flushJournal()
    limits.stop()
  })
}

export default fp(downloadsPlugin, { name: 'downloads', dependencies: ['progress-store', 'provider-backoff'] })
