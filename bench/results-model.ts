import type { LoadTargetName, UnderDownload } from './api-overhead.js'
import type { ApiRun } from './download-via-api.js'
import type { IdleRound } from './idle-memory.js'
import type { LoadRun } from './load-test.js'
import type { Machine } from './machine.js'
import type { ResumeRound } from './resume.js'
import type { Latency, ManyFiles } from './scale.js'
import type { BenchSettings } from './settings.js'
import { spread, type Spread } from './stats.js'
import type { ThroughputResult, Timed } from './throughput.js'

/** Everything one run measured, and the summaries the report and the targets read. */
export interface BenchResults {
  machine: Machine
  settings: BenchSettings
  throughput: ThroughputResult
  /** The same downloads with each weights connection capped (settings.capBytesPerSecond). */
  capped: ThroughputResult
  memory: ApiRun[]
  idle: IdleRound[]
  /** Why Python huggingface_hub did or did not run, and which one. */
  pythonNotes: string[]
  resume: ResumeRound[]
  overhead: Array<Record<LoadTargetName, LoadRun>>
  underDownload: UnderDownload
  queue: Latency[]
  manyFiles: ManyFiles
}

export const mbPerSecond = (bytes: number, seconds: number): number => bytes / 1e6 / seconds

/** The throughput runs of a report: (1) on loopback, (1b) capped. */
export type ThroughputResults = Pick<BenchResults, 'settings' | 'throughput' | 'capped'>

/** MB/s of each contender over the rounds (of the loopback run unless another is given); undefined for a peer that did not run. */
export function speeds (results: ThroughputResults, contender: Timed, run: ThroughputResult = results.throughput): Spread | undefined {
  return definedSpread(run.rounds.map((round) => {
    const seconds = round.seconds[contender]
    return seconds === undefined ? undefined : mbPerSecond(run.bytes, seconds)
  }))
}

/** Time of `baseline` over time of modeldepot, per round: above 1 means modeldepot was faster. */
export function speedRatios (results: ThroughputResults, baseline: Exclude<Timed, 'modeldepot'>, run: ThroughputResult = results.throughput): Spread | undefined {
  return definedSpread(run.rounds.map((round) => {
    const seconds = round.seconds[baseline]
    return seconds === undefined ? undefined : seconds / round.seconds.modeldepot
  }))
}

export const definedSpread = (values: Array<number | undefined>): Spread | undefined => {
  const known = values.filter((value): value is number => value !== undefined)
  return known.length === 0 ? undefined : spread(known)
}

/** Server peak RSS downloading the throughput repository (large shards), and the memory one (small shards). */
export const peakRssLarge = (results: Pick<BenchResults, 'throughput'>): Spread | undefined => definedSpread(results.throughput.rounds.map((round) => round.api.peakRssBytes))
export const peakRssSmall = (results: BenchResults): Spread | undefined => definedSpread(results.memory.map((run) => run.peakRssBytes))
/** Event-loop lag p99 of the plain downloads of (1), by the probe; and as the server reports it. */
export const eventLoopDuringDownload = (results: Pick<BenchResults, 'throughput'>): Spread => spread(results.throughput.rounds.map((round) => round.api.eventLoop.p99Ms))
export const reportedEventLoop = (results: BenchResults): Spread => spread(results.throughput.rounds.map((round) => round.api.reportedEventLoopP99Ms))
