import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../src/config.js'
import { agreeOnClusterSetting } from '../src/downloads/cluster-settings.js'
import { InMemoryJobStore } from '../src/downloads/in-memory-job-store.js'
import { JobJournal } from '../src/downloads/job-journal.js'
import type { JobStore } from '../src/downloads/job-store.js'
import { RedisJobStore } from '../src/downloads/redis-job-store.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Download jobs and their progress: the one owner of job state; everyone else reads snapshots. */
    jobStore: JobStore
  }
}

export interface ProgressStoreOptions {
  config: Pick<Config, 'stateDir' | 'jobHistory' | 'redis' | 'downloads'>
}

async function progressStorePlugin (app: FastifyInstance, { config }: ProgressStoreOptions): Promise<void> {
  const log = app.log.child({ component: 'downloads' })
  if (app.redis === undefined) {
    // In memory, with the journal that keeps unfinished jobs and the history across restarts.
    app.decorate('jobStore', new InMemoryJobStore({ journal: new JobJournal(config.stateDir, config.jobHistory), log }))
    return
  }
  // Shared by every replica on this Redis: MAX_CONCURRENT_DOWNLOADS counts for all of them, so they
  // must agree on it (a replica with another value does not start).
  const stopAgreeing = await agreeOnClusterSetting(app.redis, config.redis, 'MAX_CONCURRENT_DOWNLOADS', config.downloads.maxConcurrentJobs, log)
  const store = new RedisJobStore({
    redis: app.redis,
    keyPrefix: config.redis.keyPrefix,
    leaseMs: config.redis.jobLeaseMs,
    limit: config.jobHistory.historyMax,
    historyMaxAgeMs: config.jobHistory.historyMaxAgeMs,
    log
  })
  app.decorate('jobStore', store)
  app.addHook('onClose', async () => {
    stopAgreeing()
    await store.close()
  })
}

export default fp(progressStorePlugin, { name: 'progress-store', dependencies: ['redis'] })
