import { num } from './format.js'
import { eventLoopDuringDownload, peakRssLarge, peakRssSmall, speedRatios, type BenchResults } from './results-model.js'

// The targets, each judged on this run's numbers.

export interface TargetCheck { target: string, result: string, met: boolean | undefined }

const RSS_LIMIT_BYTES = 150e6
/** "Flat": the peak with 4× larger files is at most this much higher. */
const FLAT_TOLERANCE = 1.1
const EVENT_LOOP_LIMIT_MS = 50

export function checkTargets (results: BenchResults): TargetCheck[] {
  const curl = speedRatios(results, 'curl')
  const snapshot = speedRatios(results, 'snapshotDownload')
  const large = peakRssLarge(results)
  const small = peakRssSmall(results)
  const plain = eventLoopDuringDownload(results)
  const loaded = results.underDownload.eventLoop.p99Ms
  const resumeExcess = results.resume.map((round) => round.fetchedBytes - round.missingBytes)
  return [
    { target: 'Throughput at least 0.9× curl', result: `${num(curl.median, 2)}× (median; ${num(curl.min, 2)}–${num(curl.max, 2)})`, met: curl.median >= 0.9 },
    { target: 'Faster than snapshotDownload', result: `${num(snapshot.median, 2)}× (median; ${num(snapshot.min, 2)}–${num(snapshot.max, 2)})`, met: snapshot.median > 1 },
    {
      target: 'Peak RSS under 150 MB',
      result: large === undefined ? 'no /proc here' : `${num(large.median / 1e6, 0)} MB median, ${num(large.max / 1e6, 0)} MB at most`,
      met: large === undefined ? undefined : large.max < RSS_LIMIT_BYTES
    },
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
      target: 'Event-loop p99 under 50 ms while downloading',
      result: `download alone: ${num(plain.median, 1)} ms median, ${num(plain.max, 1)} ms in the worst round; with load on progress: ${num(loaded, 1)} ms`,
      met: plain.max < EVENT_LOOP_LIMIT_MS && loaded < EVENT_LOOP_LIMIT_MS
    }
  ]
}
