import type { BenchModel } from './bench-models.js'
import { ApiClient } from './api-client.js'
import type { EventLoopLag } from './event-loop-reader.js'
import { checkFiles, snapshotFileOf } from './hf-cache-check.js'
import { cacheDirOf, startProbedModeldepot } from './modeldepot-server.js'
import { cpuSeconds } from './process-cpu.js'

export interface ApiRun {
  seconds: number
  /** VmHWM right after start-up, and after the download. */
  idleRssBytes: number | undefined
  peakRssBytes: number | undefined
  /** Event-loop lag from the POST to the end, measured by the preloaded probe. */
  eventLoop: EventLoopLag
  /** What the server itself reports (GET /api/system-status): since start-up, including its 20 ms sampling interval. */
  reportedEventLoopP99Ms: number
  /** CPU the server process used from the POST to the end (all its threads). */
  cpuSeconds: number | undefined
}

/**
 * A fresh server, then what a user does: POST /api/download-model, then long-poll
 * /api/download-progress?wait=10 until the job completes. Timed from the POST to the answer.
 */
export async function downloadViaApi (dir: string, hubUrl: string, model: BenchModel, nodeArgs: string[] = [], script?: string): Promise<ApiRun> {
  const { server, lagBetween } = await startProbedModeldepot({ dir, hubUrl, nodeArgs, script })
  try {
    const idleRssBytes = server.peakRssBytes()
    const client = new ApiClient(server.url)
    const from = Date.now()
    const cpuBefore = cpuSeconds(server.pid)
    const started = performance.now()
    const job = await client.startDownload(model.id)
    await client.waitForEnd(job.job_id)
    const seconds = (performance.now() - started) / 1000
    const cpuAfter = cpuSeconds(server.pid)
    const lag = await lagBetween(from, Date.now())
    const status = await client.call<{ infrastructure: { event_loop_delay_p99_ms: number } }>('GET', '/api/system-status')
    checkFiles(model, (path) => snapshotFileOf(cacheDirOf(dir), model, path))
    return {
      seconds,
      idleRssBytes,
      peakRssBytes: server.peakRssBytes(),
      eventLoop: lag,
      reportedEventLoopP99Ms: status.infrastructure.event_loop_delay_p99_ms,
      cpuSeconds: cpuBefore === undefined || cpuAfter === undefined ? undefined : cpuAfter - cpuBefore
    }
  } finally {
    await server.stop()
  }
}
