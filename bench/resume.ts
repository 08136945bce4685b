import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { gitBlobSha1 } from '../test/fakes/fake-hub.js'
import { GeneratedContent } from '../test/fakes/generated-content.js'
import { ApiClient, type Job } from './api-client.js'
import { inFreshDir, type BenchContext } from './bench-context.js'
import { contentOf, totalBytes, type BenchModel } from './bench-models.js'
import { bytesInPlace } from './bytes-on-disk.js'
import { repoDirOf } from './hf-cache-check.js'
import { cacheDirOf, startModeldepot } from './modeldepot-server.js'

export interface ResumeRound {
  totalBytes: number
  /** What the job reported just before the kill. */
  reportedAtKill: number
  /** Bytes on disk and correct after the kill, and so the bytes a perfect resume fetches. */
  missingBytes: number
  /** What the restarted server's plan (auto=false) says is missing. */
  plannedMissingBytes: number
  /** File bytes the Hub sent after the restart. */
  fetchedBytes: number
  /** From the second request to the end; includes waiting for the killed server's blob locks to go stale. */
  secondsAfterRestart: number
}

/** (3) kill -9 at half way, restart, send the same request: bytes fetched against bytes missing. */
export async function measureResume (ctx: BenchContext, model: BenchModel): Promise<ResumeRound[]> {
  const rounds: ResumeRound[] = []
  for (let round = 0; round < ctx.settings.resumeRounds; round++) {
    rounds.push(await inFreshDir(ctx, 'resume', async (dir) => resumeOnce(ctx, dir, model)))
    const last = rounds.at(-1)!
    ctx.note(`resume round ${round + 1}/${ctx.settings.resumeRounds}: missing ${last.missingBytes}, fetched ${last.fetchedBytes}`)
  }
  return rounds
}

async function resumeOnce (ctx: BenchContext, dir: string, model: BenchModel): Promise<ResumeRound> {
  const total = totalBytes(model)
  const first = await startModeldepot({ dir, hubUrl: ctx.hub.url })
  let seen: Job
  try {
    const client = new ApiClient(first.url)
    const { job_id: jobId } = await client.startDownload(model.id)
    do {
      await sleep(5)
      seen = await client.job(jobId)
    } while (seen.bytes_downloaded < total / 2 && seen.status !== 'complete')
  } finally {
    await first.kill()
  }
  if (seen.status === 'complete') throw new Error('the download completed before the kill: nothing to resume')
  const missingBytes = total - await bytesOnDisk(cacheDirOf(dir), model)

  const second = await startModeldepot({ dir, hubUrl: ctx.hub.url })
  try {
    const client = new ApiClient(second.url)
    const plan = await client.call<{ bytes_missing: number }>('POST', `/api/download-model?model_id=${model.id}&auto=false`)
    const before = await ctx.hub.bytesServed()
    const started = performance.now()
    await client.waitForEnd((await client.startDownload(model.id)).job_id)
    const secondsAfterRestart = (performance.now() - started) / 1000
    const fetchedBytes = await ctx.hub.bytesServed() - before
    return {
      totalBytes: total,
      reportedAtKill: seen.bytes_downloaded,
      missingBytes,
      plannedMissingBytes: plan.bytes_missing,
      fetchedBytes,
      secondsAfterRestart
    }
  } finally {
    await second.stop()
  }
}

/**
 * Correct bytes of every file, finished (blobs/{etag}) or not: modeldepot's own partial
 * (blobs/{etag}.modeldepot.incomplete), or one under the name it shares with huggingface_hub (an
 * earlier modeldepot's, blobs/{etag}.incomplete).
 */
async function bytesOnDisk (cacheDir: string, model: BenchModel): Promise<number> {
  let present = 0
  for (const file of model.files) {
    const content = contentOf(file)
    const etag = content instanceof GeneratedContent ? content.sha256 : gitBlobSha1(content)
    const blob = join(repoDirOf(cacheDir, model), 'blobs', etag)
    present += Math.max(await bytesInPlace(blob, content), await bytesInPlace(`${blob}.modeldepot.incomplete`, content), await bytesInPlace(`${blob}.incomplete`, content))
  }
  return present
}
