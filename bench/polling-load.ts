import { setTimeout as sleep } from 'node:timers/promises'
import { ApiClient } from './api-client.js'
import { inFreshDir, type BenchContext } from './bench-context.js'
import { totalBytes, type BenchModel } from './bench-models.js'
import type { EventLoopLag, ProbeMemory } from './event-loop-reader.js'
import { checkHashes } from './hf-cache-check.js'
import type { LoadSettings } from './load-settings.js'
import { sampleRss, type RssSample } from './memory-sampler.js'
import { cacheDirOf, startProbedModeldepot } from './modeldepot-server.js'
import { poll, type PollResults } from './pollers.js'
import { cpuSeconds } from './process-cpu.js'

// Issue 7's load: `clients` pollers on the progress of `downloads` jobs for `seconds`, the server's
// memory sampled all along, then the downloads followed to their end and every file hashed.

export type LoadContext = Pick<BenchContext, 'hub' | 'workDir' | 'note'> & { settings: LoadSettings }

/**
 * What an operator sets for this load; the rest is modeldepot's defaults. All clients share one API
 * key, as n8n workflows share one credential, and the default of 60 requests a minute per key would
 * refuse all but the first 60 polls: 1 000 000 a minute (16 667/s) is above what one server answers
 * here, so the limiter still counts every request but refuses none. The default of 2 downloads at
 * once would queue half of them.
 */
export const serverEnvFor = (settings: LoadSettings): Record<string, string> => ({
  RATE_LIMIT_PER_MINUTE: '1000000',
  MAX_CONCURRENT_DOWNLOADS: String(settings.downloads)
})

export interface DownloadOutcome {
  modelId: string
  bytes: number
  /** Status when the pollers stopped: every job must still have been running. */
  statusAtEndOfLoad: string
  /** From the POST to the end; undefined if it did not complete. */
  seconds: number | undefined
  /** Why it did not complete, or why its files are wrong; undefined when all is well. */
  failure: string | undefined
  /** Bytes read back from the cache and hashed. */
  hashedBytes: number
}

export interface LoadResults {
  settings: LoadSettings
  serverEnv: Record<string, string>
  /** Date.now() of the start and the end of the measured run (after the warm-up). */
  measureFrom: number
  until: number
  polls: PollResults
  /** VmRSS from /proc, once a second, and the probe's in-process readings (V8 heap), about four a second. */
  rss: RssSample[]
  probe: ProbeMemory[]
  /** What a full GC left at the start and at the end of the measured run: the live memory. */
  live: { first: ProbeMemory, last: ProbeMemory }
  serverCpuPercent: number | undefined
  eventLoop: EventLoopLag
  /** File bytes the Hub sent per second during the measured run, all downloads together. */
  downloadBytesPerSecond: number
  downloads: DownloadOutcome[]
}

export async function measurePollingLoad (ctx: LoadContext, models: BenchModel[]): Promise<LoadResults> {
  const { settings } = ctx
  for (const path of new Set(models.flatMap((model) => model.files.filter((file) => file.lfs).map((file) => file.path)))) {
    await ctx.hub.injectFault({ kind: 'slow', path, bytesPerSecond: settings.capBytesPerSecond, times: Number.MAX_SAFE_INTEGER })
  }
  const serverEnv = serverEnvFor(settings)
  return inFreshDir(ctx, 'load', async (dir) => {
    const { server, lagBetween, memoryBetween, memoryAfterFullGc } = await startProbedModeldepot({ dir, hubUrl: ctx.hub.url, env: serverEnv, nodeArgs: ['--expose-gc'] })
    try {
      const client = new ApiClient(server.url)
      const started = performance.now()
      const jobs = await Promise.all(models.map(async (model) => ({ model, job: await client.startDownload(model.id) })))
      await allDownloading(client, jobs.map(({ job }) => job.job_id))
      ctx.note(`${jobs.length} downloads running; ${settings.clients} clients poll for ${settings.warmUpSeconds} s of warm-up, then ${settings.seconds} s`)

      const measureFrom = Date.now() + settings.warmUpSeconds * 1000
      const until = measureFrom + settings.seconds * 1000
      const rss = sampleRss(server.pid)
      // Server CPU and the Hub's bytes at both ends of the measured run (read while the clients poll).
      const reading = async (at: number): Promise<{ cpu: number | undefined, hubBytes: number }> => {
        await sleep(at - Date.now())
        const cpu = cpuSeconds(server.pid)
        return { cpu, hubBytes: await ctx.hub.bytesServed() }
      }
      // The memory left after a full GC at the start and at the end of the measured run, both under
      // the full load: only a leak makes it grow. The first also sets V8's heap sizing to the same
      // point for every run (see RSS_GROWTH_TOLERANCE).
      const liveAt = async (at: number): Promise<ProbeMemory> => {
        await sleep(at - Date.now())
        return memoryAfterFullGc()
      }
      const expected = jobs.map(({ model, job }) => ({ jobId: job.job_id, modelId: model.id, bytesTotal: totalBytes(model) }))
      const [first, last, liveFirst, liveLast, polls] = await Promise.all([
        reading(measureFrom),
        reading(until),
        liveAt(measureFrom),
        liveAt(until),
        poll({ baseUrl: server.url, jobs: expected, clients: settings.clients, measureFrom, until })
      ])
      const rssSamples = rss.stop()
      const statuses = await Promise.all(jobs.map(async ({ job }) => (await client.job(job.job_id)).status))
      const serverCpuPercent = first.cpu === undefined || last.cpu === undefined ? undefined : ((last.cpu - first.cpu) / settings.seconds) * 100
      const downloadBytesPerSecond = (last.hubBytes - first.hubBytes) / settings.seconds
      const errors = polls.errors.socket + polls.errors.status + polls.errors.invalid
      ctx.note(`polling done: ${polls.perSecond.reduce((sum, n) => sum + n, 0)} answers in the measured ${settings.seconds} s, ${errors} errors; waiting for the downloads`)

      const downloads = await Promise.all(jobs.map(async ({ model, job }, i) => followToEnd(client, cacheDirOf(dir), model, job.job_id, statuses[i]!, started)))
      ctx.note(`downloads: ${downloads.map((d) => d.failure ?? `complete in ${d.seconds?.toFixed(0)} s, hashes match`).join('; ')}`)
      return {
        settings,
        serverEnv,
        measureFrom,
        until,
        polls,
        rss: rssSamples,
        probe: await memoryBetween(measureFrom, until),
        live: { first: liveFirst, last: liveLast },
        serverCpuPercent,
        eventLoop: await lagBetween(measureFrom, until),
        downloadBytesPerSecond,
        downloads
      }
    } finally {
      await server.stop()
    }
  })
}

/** Long-polls a job to its end, then hashes the model in the cache; what went wrong is kept, not thrown. */
async function followToEnd (
  client: ApiClient,
  cacheDir: string,
  model: BenchModel,
  jobId: string,
  statusAtEndOfLoad: string,
  started: number
): Promise<DownloadOutcome> {
  const outcome: DownloadOutcome = { modelId: model.id, bytes: totalBytes(model), statusAtEndOfLoad, seconds: undefined, failure: undefined, hashedBytes: 0 }
  try {
    await client.waitForEnd(jobId)
    outcome.seconds = (performance.now() - started) / 1000
    outcome.hashedBytes = await checkHashes(cacheDir, model)
  } catch (err) {
    outcome.failure = (err as Error).message
  }
  return outcome
}

/** Waits until every job transfers: the load is meant to run beside all of them, not beside a queue. */
async function allDownloading (client: ApiClient, jobIds: string[]): Promise<void> {
  for (let waited = 0; ; waited += 100) {
    const jobs = await Promise.all(jobIds.map(async (jobId) => client.job(jobId)))
    if (jobs.every((job) => job.status === 'downloading' && job.bytes_downloaded > 0)) return
    if (waited > 30_000) throw new Error(`the downloads did not all start: ${jobs.map((job) => job.status).join(', ')}`)
    await sleep(100)
  }
}
