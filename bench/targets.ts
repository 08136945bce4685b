import { num } from './format.js'
import { AT_REST_MS } from './idle-memory.js'
import { eventLoopDuringDownload, peakRssLarge, peakRssSmall, speedRatios, type BenchResults, type ThroughputResults } from './results-model.js'
import { listingCall } from './scale.js'
import { percentile, spread, type Spread } from './stats.js'

// The issues' targets, each judged on this run's numbers (issue 18's for the download engine).

export interface TargetCheck { target: string, result: string, met: boolean | undefined }

const CURL_RATIO = 0.85
const CAPPED_CURL_RATIO = 2.5
const RSS_LIMIT_BYTES = 120e6
/** "Flat": the peak with 4× larger files is at most this much higher. */
const FLAT_TOLERANCE = 1.1
const EVENT_LOOP_LIMIT_MS = 20
const IDLE_RSS_LIMIT_BYTES = 80e6
const HEALTH_RATIO = 0.8
const LISTING_LIMIT_MS = 100

const ratio = (s: Spread | undefined): string => s === undefined ? 'not run' : `${num(s.median, 2)}× (median; ${num(s.min, 2)}–${num(s.max, 2)})`

/** What (1) and (1b) alone can judge: what `--only=throughput` reports. */
export function throughputTargets (results: ThroughputResults): TargetCheck[] {
  const curl = speedRatios(results, 'curl')
  const curlHashed = speedRatios(results, 'curl + sha256sum')
  const snapshot = speedRatios(results, 'snapshotDownload')
  const python = speedRatios(results, 'huggingface_hub')
  const capped = speedRatios(results, 'curl', results.capped)
  const large = peakRssLarge(results)
  const plain = eventLoopDuringDownload(results)
  return [
    {
      target: `Throughput at least ${CURL_RATIO}× curl`,
      // What checking every byte costs on these cores, without modeldepot: curl, then sha256sum of its files.
      result: `${ratio(curl)}; against curl plus sha256sum afterwards, ${ratio(curlHashed)}`,
      met: curl === undefined ? undefined : curl.median >= CURL_RATIO
    },
    { target: 'Faster than snapshotDownload', result: ratio(snapshot), met: snapshot === undefined ? undefined : snapshot.median > 1 },
    { target: 'Faster than Python huggingface_hub snapshot_download', result: ratio(python), met: python === undefined ? undefined : python.median > 1 },
    { target: `Capped connections: at least ${CAPPED_CURL_RATIO}× curl`, result: ratio(capped), met: capped === undefined ? undefined : capped.median >= CAPPED_CURL_RATIO },
    {
      target: `Peak RSS under ${RSS_LIMIT_BYTES / 1e6} MB (2 × 1 GiB)`,
      result: large === undefined ? 'no /proc here' : `${num(large.median / 1e6, 0)} MB median, ${num(large.max / 1e6, 0)} MB at most`,
      met: large === undefined ? undefined : large.max < RSS_LIMIT_BYTES
    },
    {
      target: `Event-loop p99 under ${EVENT_LOOP_LIMIT_MS} ms while downloading`,
      result: `${num(plain.median, 1)} ms median, ${num(plain.max, 1)} ms in the worst round`,
      met: plain.max < EVENT_LOOP_LIMIT_MS
    }
  ]
}

export function checkTargets (results: BenchResults): TargetCheck[] {
  const large = peakRssLarge(results)
  const small = peakRssSmall(results)
  const loaded = results.underDownload.eventLoop.p99Ms
  const resumeExcess = results.resume.map((round) => round.fetchedBytes - round.missingBytes)
  return [
    ...throughputTargets(results),
    {
      target: 'Peak RSS flat as files grow 4×',
      result: large === undefined || small === undefined ? 'no /proc here' : `${num(small.median / 1e6, 0)} → ${num(large.median / 1e6, 0)} MB (medians)`,
      met: large === undefined || small === undefined ? undefined : large.median <= small.median * FLAT_TOLERANCE
    },
    {
      target: 'Resume fetches exactly the missing bytes',
      result: resumeExcess.map((excess) => `${excess >= 0 ? '+' : ''}${num(excess / 1e6, 1)} MB`).join(', ') + ' fetched beyond what was missing',
      met: resumeExcess.every((excess) => excess === 0)
    },
    {
      target: `Event-loop p99 under ${EVENT_LOOP_LIMIT_MS} ms under load on progress during a download`,
      result: `${num(loaded, 1)} ms`,
      met: loaded < EVENT_LOOP_LIMIT_MS
    },
    idleTarget(results),
    healthTarget(results),
    listingTarget(results)
  ]
}

function idleTarget (results: BenchResults): TargetCheck {
  const target = `Idle RSS under ${IDLE_RSS_LIMIT_BYTES / 1e6} MB after start (VmRSS at rest, ${AT_REST_MS / 1000} s after it answers; nothing preloaded)`
  const defined = (values: Array<number | undefined>): number[] => values.filter((bytes): bytes is number => bytes !== undefined)
  const atRest = defined(results.idle.map((round) => round.atRestRssBytes))
  const early = defined(results.idle.map((round) => round.rssBytes))
  if (atRest.length === 0) return { target, result: 'no /proc here', met: undefined }
  const s = spread(atRest)
  const started = early.length === 0 ? '' : ` (${num(spread(early).median / 1e6, 0)} MB 2 s after it answers)`
  return { target, result: `${num(s.median / 1e6, 0)} MB median, ${num(s.max / 1e6, 0)} MB at most${started}`, met: s.max < IDLE_RSS_LIMIT_BYTES }
}

function healthTarget (results: BenchResults): TargetCheck {
  const target = `GET /health at least ${HEALTH_RATIO}× a hello-world Fastify server (req/s)`
  if (results.overhead.length === 0) return { target, result: 'not run', met: undefined }
  const s = spread(results.overhead.map((round) => round['GET /health'].requestsPerSecond / round['hello-world'].requestsPerSecond))
  return { target, result: ratio(s), met: s.median >= HEALTH_RATIO }
}

function listingTarget (results: BenchResults): TargetCheck {
  const target = `GET /api/models on a ${results.settings.manyFiles}-file snapshot under ${LISTING_LIMIT_MS} ms at p50`
  const listing = results.manyFiles.latencies.find((latency) => latency.call === listingCall(results.settings.manyFiles))
  if (listing === undefined || listing.samples.length === 0) return { target, result: 'not run', met: undefined }
  const p50 = percentile(listing.samples, 50)
  return { target, result: `${num(p50, 1)} ms p50 (${listing.samples.length} calls)`, met: p50 < LISTING_LIMIT_MS }
}
