import { inFreshDir, type BenchContext } from './bench-context.js'
import { totalBytes, type BenchModel } from './bench-models.js'
import { downloadViaApi, type ApiRun } from './download-via-api.js'
import { downloadViaCurl } from './download-via-curl.js'
import { downloadViaSnapshot } from './download-via-snapshot.js'
import { downloadViaPython } from './python-hub.js'
import { cpuSeconds } from './process-cpu.js'
import { MB, roundOrder } from './stats.js'

/** Python huggingface_hub runs only where the bench found one (python-hub.ts): its figures may be absent. */
export const CONTENDERS = ['modeldepot', 'curl', 'snapshotDownload', 'huggingface_hub', 'modeldepot (baseline)'] as const
export type Contender = (typeof CONTENDERS)[number]
/** The contenders, plus curl's time with the fsync of its files added, and with their sha256 added. */
export const TIMED = ['modeldepot', 'curl', 'curl + fsync', 'curl + sha256sum', 'snapshotDownload', 'huggingface_hub', 'modeldepot (baseline)'] as const
export type Timed = (typeof TIMED)[number]

export interface ThroughputRound {
  seconds: Record<Exclude<Timed, 'huggingface_hub' | 'modeldepot (baseline)'>, number> & { huggingface_hub?: number, 'modeldepot (baseline)'?: number }
  /** CPU the fake Hub process spent serving each contender, to show it was not the limit. */
  hubCpuSeconds: Partial<Record<Contender, number | undefined>>
  api: ApiRun
  snapshotPeakRssBytes: number
  pythonPeakRssBytes?: number | undefined
  /** The same through the baseline build, where one is given. */
  baseline?: ApiRun | undefined
}

export interface ThroughputResult { bytes: number, rounds: ThroughputRound[] }

/** (1) The same repository through the API, with curl, and with snapshotDownload, in alternating order. */
export async function measureThroughput (ctx: BenchContext, model: BenchModel, rounds = ctx.settings.throughputRounds, label = 'throughput'): Promise<ThroughputResult> {
  // The contenders of each round run in a fixed rotation; the fsync and sha256sum rows are curl's, timed apart.
  const bytes = totalBytes(model)
  const results: ThroughputRound[] = []
  for (let round = 0; round < rounds; round++) {
    const seconds: Partial<Record<Timed, number>> = {}
    const hubCpuSeconds: Partial<Record<Contender, number | undefined>> = {}
    let api: ApiRun | undefined
    let snapshotPeakRssBytes = 0
    let pythonPeakRssBytes: number | undefined
    const python = ctx.python
    let baseline: ApiRun | undefined
    const contenders = CONTENDERS.filter((name) => (name !== 'huggingface_hub' || python.hub !== undefined) && (name !== 'modeldepot (baseline)' || ctx.baselineServer !== undefined))
    for (const contender of roundOrder(contenders, round)) {
      const hubCpuBefore = ctx.hub.pid === undefined ? undefined : cpuSeconds(ctx.hub.pid)
      await inFreshDir(ctx, contender, async (dir) => {
        if (contender === 'modeldepot') {
          api = await downloadViaApi(dir, ctx.hub.url, model, ctx.serverNodeArgs)
          seconds.modeldepot = api.seconds
        } else if (contender === 'curl') {
          const run = await downloadViaCurl(dir, ctx.hub.url, model)
          seconds.curl = run.seconds
          seconds['curl + fsync'] = run.seconds + run.fsyncSeconds
          seconds['curl + sha256sum'] = run.seconds + run.hashSeconds
        } else if (contender === 'modeldepot (baseline)') {
          baseline = await downloadViaApi(dir, ctx.hub.url, model, ctx.serverNodeArgs, ctx.baselineServer)
          seconds['modeldepot (baseline)'] = baseline.seconds
        } else if (contender === 'snapshotDownload') {
          const run = await downloadViaSnapshot(dir, ctx.hub.url, model)
          seconds.snapshotDownload = run.seconds
          snapshotPeakRssBytes = run.peakRssBytes
        } else if (python.hub !== undefined) {
          // A peer, not what is measured: one that fails is said and left out, the run goes on.
          const run = await downloadViaPython(python.hub, dir, ctx.hub.url, model).catch((err: unknown) => {
            const reason = (err as Error).message.split('\n').map((line) => line.trim()).filter((line) => line !== '').at(-1) ?? ''
            python.notes.push(`snapshot_download failed in ${label} round ${round + 1} (${reason.slice(0, 300)}), left out from then on`)
            python.hub = undefined
            return undefined
          })
          seconds.huggingface_hub = run?.seconds
          pythonPeakRssBytes = run?.peakRssBytes
        }
      })
      const hubCpuAfter = ctx.hub.pid === undefined ? undefined : cpuSeconds(ctx.hub.pid)
      hubCpuSeconds[contender] = hubCpuBefore === undefined || hubCpuAfter === undefined ? undefined : hubCpuAfter - hubCpuBefore
      const took = seconds[contender]
      ctx.note(`${label} round ${round + 1}/${rounds}: ${contender} ${took === undefined ? 'failed' : `${(bytes / MB / took).toFixed(0)} MB/s`}`)
    }
    results.push({
      seconds: seconds as ThroughputRound['seconds'],
      hubCpuSeconds,
      api: api!,
      snapshotPeakRssBytes,
      pythonPeakRssBytes,
      baseline
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
