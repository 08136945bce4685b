import { inFreshDir, type BenchContext } from './bench-context.js'
import { totalBytes, type BenchModel } from './bench-models.js'
import { downloadViaApi, type ApiRun } from './download-via-api.js'
import { downloadViaCurl } from './download-via-curl.js'
import { downloadViaSnapshot } from './download-via-snapshot.js'
import { cpuSeconds } from './process-cpu.js'
import { MB, roundOrder } from './stats.js'

export const CONTENDERS = ['modeldepot', 'curl', 'snapshotDownload'] as const
export type Contender = (typeof CONTENDERS)[number]
/** The contenders, plus curl's time with the fsync of its files added. */
export const TIMED = ['modeldepot', 'curl', 'curl + fsync', 'snapshotDownload'] as const
export type Timed = (typeof TIMED)[number]

export interface ThroughputRound {
  seconds: Record<Timed, number>
  /** CPU the fake Hub process spent serving each contender, to show it was not the limit. */
  hubCpuSeconds: Record<Contender, number | undefined>
  api: ApiRun
  snapshotPeakRssBytes: number
}

export interface ThroughputResult { bytes: number, rounds: ThroughputRound[] }

/** (1) The same repository through the API, with curl, and with snapshotDownload, in alternating order. */
export async function measureThroughput (ctx: BenchContext, model: BenchModel, rounds = ctx.settings.throughputRounds, label = 'throughput'): Promise<ThroughputResult> {
  const bytes = totalBytes(model)
  const results: ThroughputRound[] = []
  for (let round = 0; round < rounds; round++) {
    const seconds: Partial<Record<Timed, number>> = {}
    const hubCpuSeconds: Partial<Record<Contender, number | undefined>> = {}
    let api: ApiRun | undefined
    let snapshotPeakRssBytes = 0
    for (const contender of roundOrder(CONTENDERS, round)) {
      const hubCpuBefore = ctx.hub.pid === undefined ? undefined : cpuSeconds(ctx.hub.pid)
      await inFreshDir(ctx, contender, async (dir) => {
        if (contender === 'modeldepot') {
          api = await downloadViaApi(dir, ctx.hub.url, model, ctx.serverNodeArgs)
          seconds.modeldepot = api.seconds
        } else if (contender === 'curl') {
          const run = await downloadViaCurl(dir, ctx.hub.url, model)
          seconds.curl = run.seconds
          seconds['curl + fsync'] = run.seconds + run.fsyncSeconds
        } else {
          const run = await downloadViaSnapshot(dir, ctx.hub.url, model)
          seconds.snapshotDownload = run.seconds
          snapshotPeakRssBytes = run.peakRssBytes
        }
      })
      const hubCpuAfter = ctx.hub.pid === undefined ? undefined : cpuSeconds(ctx.hub.pid)
      hubCpuSeconds[contender] = hubCpuBefore === undefined || hubCpuAfter === undefined ? undefined : hubCpuAfter - hubCpuBefore
      ctx.note(`${label} round ${round + 1}/${rounds}: ${contender} ${(bytes / MB / seconds[contender]!).toFixed(0)} MB/s`)
    }
    results.push({
      seconds: seconds as Record<Timed, number>,
      hubCpuSeconds: hubCpuSeconds as Record<Contender, number | undefined>,
      api: api!,
      snapshotPeakRssBytes
    })
  }
  return { bytes, rounds: results }
}

/**
 * (1b) The same with every connection that carries weights capped at `bytesPerSecond`, as a CDN
 * caps each connection: what range parts over several connections are for, and what a loopback
 * run cannot show. The model's shard names must be its own: the cap is set by file path, for good.
 */
export async function measureCappedThroughput (ctx: BenchContext, model: BenchModel, bytesPerSecond: number): Promise<ThroughputResult> {
  for (const file of model.files.filter((candidate) => candidate.lfs)) {
    await ctx.hub.injectFault({ kind: 'slow', path: file.path, bytesPerSecond, times: Number.MAX_SAFE_INTEGER })
  }
  return measureThroughput(ctx, model, ctx.settings.cappedRounds, 'capped')
}

/** (2) Peak RSS of the server downloading a repository of smaller shards, to see whether memory grows with file size. */
export async function measureMemory (ctx: BenchContext, model: BenchModel): Promise<ApiRun[]> {
  const runs: ApiRun[] = []
  for (let round = 0; round < ctx.settings.memoryRounds; round++) {
    runs.push(await inFreshDir(ctx, 'memory', async (dir) => downloadViaApi(dir, ctx.hub.url, model, ctx.serverNodeArgs)))
    ctx.note(`memory round ${round + 1}/${ctx.settings.memoryRounds}: peak RSS ${((runs.at(-1)?.peakRssBytes ?? 0) / MB).toFixed(0)} MB`)
  }
  return runs
}
