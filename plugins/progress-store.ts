import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../src/config.js'
import { InMemoryJobStore } from '../src/downloads/in-memory-job-store.js'
import { JobJournal } from '../src/downloads/job-journal.js'
import type { JobStore } from '../src/downloads/job-store.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Download jobs and their progress: the one owner of job state; everyone else reads snapshots. */
    jobStore: JobStore
  }
}

export interface ProgressStoreOptions {
  config: Pick<Config, 'hubCacheDir' | 'jobHistory'>
}

async function progressStorePlugin (app: FastifyInstance, { config }: ProgressStoreOptions): Promise<void> {
  // In memory, with the journal that keeps unfinished jobs and the history across restarts.
  app.decorate('jobStore', new InMemoryJobStore({
    journal: new JobJournal(config.hubCacheDir, config.jobHistory),
    log: app.log.child({ component: 'downloads' })
  }))
}

export default fp(progressStorePlugin, { name: 'progress-store' })
