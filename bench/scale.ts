import { utimes } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { ApiClient, timed, type Job } from './api-client.js'
import { inFreshDir, type BenchContext } from './bench-context.js'
import type { BenchModel } from './bench-models.js'
import { repoDirOf } from './hf-cache-check.js'
import { cacheDirOf, startModeldepot } from './modeldepot-server.js'

/** Milliseconds of each timed call of one kind. */
export interface Latency { call: string, samples: number[] }

async function sample (count: number, call: () => Promise<unknown>): Promise<number[]> {
  const samples: number[] = []
  for (let i = 0; i < count; i++) samples.push(await timed(call))
  return samples
}

/**
 * (5a) Two slow downloads hold both job slots while `queued` jobs wait behind them: how long it
 * takes to enqueue one, to list them all, and to read the progress of one.
 */
export async function measureQueue (ctx: BenchContext, blockers: BenchModel[], queued: BenchModel[]): Promise<Latency[]> {
  for (const blocker of blockers) {
    await ctx.hub.injectFault({ kind: 'slow', path: blocker.files[0]!.path, bytesPerSecond: 16 * 1024 })
  }
  return inFreshDir(ctx, 'queue', async (dir) => {
    const server = await startModeldepot({ dir, hubUrl: ctx.hub.url })
    try {
      const client = new ApiClient(server.url)
      for (const blocker of blockers) await client.startDownload(blocker.id)
      const enqueue: number[] = []
      const jobs: Job[] = []
      for (const model of queued) enqueue.push(await timed(async () => jobs.push(await client.startDownload(model.id))))
      const progress = await client.call<{ queued_downloads: number, active_downloads: number }>('GET', '/api/download-progress')
      if (progress.queued_downloads !== queued.length) throw new Error(`expected ${queued.length} queued jobs, the server has ${progress.queued_downloads}`)
      const middle = jobs[Math.floor(jobs.length / 2)]!.job_id
      const n = ctx.settings.latencySamples
      const count = `${queued.length} queued`
      const latencies = [
        { call: `POST /api/download-model (enqueue, up to ${count})`, samples: enqueue },
        { call: `GET /api/downloads (${queued.length + blockers.length} jobs)`, samples: await sample(n, async () => client.call('GET', '/api/downloads')) },
        { call: `GET /api/download-progress (latest, ${count})`, samples: await sample(n, async () => client.call('GET', '/api/download-progress')) },
        { call: `GET /api/download-progress?job_id (${count})`, samples: await sample(n, async () => client.call('GET', `/api/download-progress?job_id=${middle}`)) }
      ]
      ctx.note(`queue: ${queued.length} jobs queued behind ${progress.active_downloads} running`)
      return latencies
    } finally {
      await server.kill()
    }
  })
}

export interface ManyFiles { latencies: Latency[], downloadSeconds: number }

/** The call of (5) that issue 18's listing target judges: the listing with the many-file snapshot cached. */
export const listingCall = (fileCount: number): string => `GET /api/models (a ${fileCount} files snapshot in the cache)`

/** (5b) A repository of many small files: plan, progress and list while it downloads, and after. */
export async function measureManyFiles (ctx: BenchContext, model: BenchModel): Promise<ManyFiles> {
  return inFreshDir(ctx, 'many-files', async (dir) => {
    const server = await startModeldepot({ dir, hubUrl: ctx.hub.url })
    try {
      const client = new ApiClient(server.url)
      const files = `${model.files.length} files`
      const planCalls = ctx.settings.quick ? 3 : 10
      const plan = async (): Promise<unknown> => client.call('POST', `/api/download-model?model_id=${model.id}&auto=false`)
      const planFresh = await sample(planCalls, plan)

      const started = performance.now()
      const job = await client.startDownload(model.id)
      const progress: number[] = []
      const list: number[] = []
      for (let seen = job; seen.status === 'queued' || seen.status === 'downloading';) {
        progress.push(await timed(async () => { seen = await client.call<Job>('GET', `/api/download-progress?job_id=${job.job_id}`) }))
        list.push(await timed(async () => client.call('GET', '/api/downloads')))
        await sleep(50)
      }
      const done = await client.waitForEnd(job.job_id)
      // As huggingface_hub adding a file would: the folder's mtime moves, so a cached listing must be read again.
      const snapshots = join(repoDirOf(cacheDirOf(dir), model), 'snapshots')
      const touchedListing = async (): Promise<unknown> => {
        const now = new Date()
        await utimes(snapshots, now, now)
        return client.call('GET', '/api/models')
      }
      const downloadSeconds = (performance.now() - started) / 1000
      ctx.note(`many files: ${done.files_total} files in ${downloadSeconds.toFixed(1)} s`)
      return {
        downloadSeconds,
        latencies: [
          { call: `POST /api/download-model?auto=false (plan, ${files}, none cached)`, samples: planFresh },
          { call: `GET /api/download-progress?job_id (while ${files} download)`, samples: progress },
          { call: `GET /api/downloads (while ${files} download)`, samples: list },
          { call: `POST /api/download-model?auto=false (plan, ${files}, all cached)`, samples: await sample(planCalls, plan) },
          { call: listingCall(model.files.length), samples: await sample(planCalls, async () => client.call('GET', '/api/models')) },
          { call: 'GET /api/models (the same, each call after another program touched its snapshots/ folder)', samples: await sample(planCalls, touchedListing) }
        ]
      }
    } finally {
      await server.stop()
    }
  })
}
