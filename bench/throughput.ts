import { inFreshDir, type BenchContext } from './bench-context.js'
import { totalBytes, type BenchModel } from './bench-models.js'
import { downloadViaApi, type ApiRun } from './download-via-api.js'
import { downloadViaCurl } from './download-via-curl.js'
import { downloadViaSnapshot } from './download-via-snapshot.js'
import { MB, roundOrder } from './stats.js'

export const CONTENDERS = ['modeldepot', 'curl', 'snapshotDownload'] as const
export type Contender = (typeof CONTENDERS)[number]
/** The contenders, plus curl's time with the fsync of its files added. */
export const TIMED = ['modeldepot', 'curl', 'curl + fsync', 'snapshotDownload'] as const
export type Timed = (typeof TIMED)[number]

export interface ThroughputRound {
  seconds: Record<Timed, number>
  api: ApiRun
  snapshotPeakRssBytes: number
}

export interface ThroughputResult { bytes: number, rounds: ThroughputRound[] }

/** (1) The same repository through the API, with curl, and with snapshotDownload, in alternating order. */
export async function measureThroughput (ctx: BenchContext, model: BenchModel): Promise<ThroughputResult> {
  const bytes = totalBytes(model)
  const rounds: ThroughputRound[] = []
  for (let round = 0; round < ctx.settings.throughputRounds; round++) {
    const seconds: Partial<Record<Timed, number>> = {}
    let api: ApiRun | undefined
    let snapshotPeakRssBytes = 0
    for (const contender of roundOrder(CONTENDERS, round)) {
      await inFreshDir(ctx, contender, async (dir) => {
        if (contender === 'modeldepot') {
          api = await downloadViaApi(dir, ctx.hub.url, model)
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
      ctx.note(`throughput round ${round + 1}/${ctx.settings.throughputRounds}: ${contender} ${(bytes / MB / seconds[contender]!).toFixed(0)} MB/s`)
    }
    rounds.push({ seconds: seconds as Record<Timed, number>, api: api!, snapshotPeakRssBytes })
  }
  return { bytes, rounds }
}

/** (2) Peak RSS of the server downloading a repository of smaller shards, to see whether memory grows with file size. */
export async function measureMemory (ctx: BenchContext, model: BenchModel): Promise<ApiRun[]> {
  const runs: ApiRun[] = []
  for (let round = 0; round < ctx.settings.memoryRounds; round++) {
    runs.push(await inFreshDir(ctx, 'memory', async (dir) => downloadViaApi(dir, ctx.hub.url, model)))
    ctx.note(`memory round ${round + 1}/${ctx.settings.memoryRounds}: peak RSS ${((runs.at(-1)?.peakRssBytes ?? 0) / MB).toFixed(0)} MB`)
  }
  return runs
}
