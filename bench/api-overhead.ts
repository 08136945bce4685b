import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ApiClient } from './api-client.js'
import { inFreshDir, type BenchContext } from './bench-context.js'
import { totalBytes, type BenchModel } from './bench-models.js'
import { loadTest, type LoadRun, type LoadTarget } from './load-test.js'
import type { EventLoopLag } from './event-loop-reader.js'
import { API_KEY, startModeldepot, startProbedModeldepot } from './modeldepot-server.js'
import { startNodeServer } from './node-process.js'
import { roundOrder } from './stats.js'

const HELLO = fileURLToPath(new URL('./hello-server.js', import.meta.url))
export const LOAD_TARGETS = ['hello-world', 'GET /health', 'GET /api/download-progress'] as const
export type LoadTargetName = (typeof LOAD_TARGETS)[number]

const authorized = { authorization: `Bearer ${API_KEY}` }

/**
 * (4) Requests per second and latency of /health and of an authenticated /api/download-progress,
 * against a bare Fastify hello-world running beside it, in alternating order over the rounds.
 */
export async function measureOverhead (ctx: BenchContext, tiny: BenchModel): Promise<Array<Record<LoadTargetName, LoadRun>>> {
  return inFreshDir(ctx, 'overhead', async (dir) => {
    const hello = await startNodeServer(HELLO, {}, dir, join(dir, 'hello.log'))
    const server = await startModeldepot({ dir: join(dir, 'modeldepot'), hubUrl: ctx.hub.url })
    try {
      // A finished job, so download-progress answers one rather than a 404.
      const client = new ApiClient(server.url)
      await client.waitForEnd((await client.startDownload(tiny.id)).job_id)
      const targets: Record<LoadTargetName, LoadTarget> = {
        'hello-world': { url: `${hello.url}/`, pid: hello.pid },
        'GET /health': { url: `${server.url}/health`, pid: server.pid },
        'GET /api/download-progress': { url: `${server.url}/api/download-progress`, headers: authorized, pid: server.pid }
      }
      const { connections, loadSeconds, loadRounds } = ctx.settings
      // Warm-up, not counted: the JIT, connection pools and first-request work.
      for (const name of LOAD_TARGETS) await loadTest(targets[name], connections, Math.max(0.5, loadSeconds / 4))
      const rounds: Array<Record<LoadTargetName, LoadRun>> = []
      for (let round = 0; round < loadRounds; round++) {
        const runs: Partial<Record<LoadTargetName, LoadRun>> = {}
        for (const name of roundOrder(LOAD_TARGETS, round)) {
          runs[name] = await loadTest(targets[name], connections, loadSeconds)
          ctx.note(`load round ${round + 1}/${loadRounds}: ${name} ${runs[name].requestsPerSecond.toFixed(0)} req/s, p99 ${runs[name].p99Ms} ms`)
        }
        rounds.push(runs as Record<LoadTargetName, LoadRun>)
      }
      return rounds
    } finally {
      await Promise.all([hello.stop(), server.stop()])
    }
  })
}

export interface UnderDownload {
  load: LoadRun
  downloadSeconds: number
  downloadBytes: number
  eventLoop: EventLoopLag
}

/** (4, continued) The same load on download-progress while the throughput repository downloads. */
export async function measureOverheadDuringDownload (ctx: BenchContext, model: BenchModel): Promise<UnderDownload> {
  return inFreshDir(ctx, 'overhead-download', async (dir) => {
    const { server, lagBetween } = await startProbedModeldepot({ dir, hubUrl: ctx.hub.url })
    try {
      const client = new ApiClient(server.url)
      const from = Date.now()
      const started = performance.now()
      const job = await client.startDownload(model.id)
      const ended = client.waitForEnd(job.job_id)
      const target = { url: `${server.url}/api/download-progress?job_id=${job.job_id}`, headers: authorized, pid: server.pid }
      const load = await loadTest(target, ctx.settings.connections, 3600, ended)
      await ended
      const downloadSeconds = (performance.now() - started) / 1000
      const lag = await lagBetween(from, Date.now())
      ctx.note(`under download: ${load.requestsPerSecond.toFixed(0)} req/s, p99 ${load.p99Ms} ms, event-loop lag p99 ${lag.p99Ms} ms`)
      return { load, downloadSeconds, downloadBytes: totalBytes(model), eventLoop: lag }
    } finally {
      await server.stop()
    }
  })
}
