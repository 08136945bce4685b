import { mb, num } from './format.js'
import { windowMean } from './memory-sampler.js'
import type { LoadResults } from './polling-load.js'

// What the load benchmark must show, each check with the figure behind it. A check with `pass`
// undefined is printed only (memory in --quick: too short a run to judge without being flaky, and
// the mean V8 heap, which the live heap after a full GC judges better).

export interface LoadCheck { check: string, result: string, pass: boolean | undefined }

/**
 * The last window's mean RSS may exceed the first's by this factor before it counts as growth: GC
 * noise. With 200 requests in flight their garbage outlives a scavenge or two and waits in the old
 * space, with the spent Buffers of the downloads, for a major GC. Left alone, V8 sized its heap up
 * from its start-up state and let that garbage reach 150 MB between major GCs 25-40 s apart: RSS
 * followed, 1.12× and 1.55× in two full runs whose heap fell back to 55–80 MB at each major GC
 * (garbage, not a leak). Hence the full GC at the start of the run (polling-load.ts), which puts V8's
 * sizing at the same point every time: after it, the last window's RSS was 1.04× and 1.09× the
 * first's in two full runs, and no two 5 s means were more than 14 % apart. 1.25× is above anything
 * the GC did there; smaller leaks are for the live heap below to catch.
 */
export const RSS_GROWTH_TOLERANCE = 1.25

/**
 * What a full GC leaves may grow by this factor from the start to the end of the run: it holds the
 * same app and about the same requests in flight both times (0.94–0.97× in three full runs). A
 * leak of 64 bytes per poll (7.7 MB over the 120 000 polls of a full run here) would exceed it.
 */
export const LIVE_HEAP_GROWTH_TOLERANCE = 1.2

export interface Window { first: number | undefined, last: number | undefined }

/** Means over the first and the last `windowSeconds` of the measured run. */
export function memoryWindows (r: LoadResults): { rss: Window, heapUsed: Window, arrayBuffers: Window } {
  const width = r.settings.windowSeconds * 1000
  const both = <T extends { at: number }>(samples: readonly T[], pick: (sample: T) => number): Window => ({
    first: windowMean(samples, pick, r.measureFrom, r.measureFrom + width),
    last: windowMean(samples, pick, r.until - width, r.until)
  })
  return {
    rss: both(r.rss, (sample) => sample.rssBytes),
    heapUsed: both(r.probe, (sample) => sample.heapUsed),
    arrayBuffers: both(r.probe, (sample) => sample.arrayBuffers)
  }
}

export const ratioOf = (window: Window): number | undefined =>
  window.first === undefined || window.last === undefined ? undefined : window.last / window.first

export function loadChecks (r: LoadResults): LoadCheck[] {
  const { polls, settings: s } = r
  const errors = polls.errors.socket + polls.errors.status + polls.errors.invalid
  const notRunning = r.downloads.filter((download) => !['queued', 'downloading', 'verifying'].includes(download.statusAtEndOfLoad))
  const failed = r.downloads.filter((download) => download.failure !== undefined)
  const memory = memoryWindows(r)
  const rssRatio = ratioOf(memory.rss)
  const heapRatio = ratioOf(memory.heapUsed)
  const liveRatio = r.live.last.heapUsed / r.live.first.heapUsed
  const windows = `first ${s.windowSeconds} s → last ${s.windowSeconds} s`
  return [
    {
      check: 'Every poll answered 200 with a valid job body',
      result: `${errors} errors in ${polls.sent} requests, warm-up included (${polls.errors.socket} connection errors, ${polls.errors.status} other statuses, ${polls.errors.invalid} invalid bodies)`,
      pass: errors === 0
    },
    {
      check: `${s.downloads} downloads running through the whole load`,
      result: notRunning.length === 0 && polls.endedDuringLoad.size === 0
        ? `all ${s.downloads} still downloading when the clients stopped`
        : `ended before the clients stopped: ${[...new Set([...notRunning.map((d) => `${d.modelId} (${d.statusAtEndOfLoad})`), ...polls.endedDuringLoad])].join(', ')}`,
      pass: notRunning.length === 0 && polls.endedDuringLoad.size === 0
    },
    {
      check: 'The downloads complete, every file with the Hub\'s hash',
      result: failed.length === 0
        ? `${r.downloads.length} complete; ${mb(r.downloads.reduce((sum, d) => sum + d.hashedBytes, 0), 0)} read back and hashed, every blob named by its etag`
        : failed.map((d) => `${d.modelId}: ${d.failure ?? ''}`).join('; '),
      pass: failed.length === 0
    },
    {
      check: `Server RSS (mean, ${windows}) within ${num(RSS_GROWTH_TOLERANCE, 2)}×`,
      result: `${mb(memory.rss.first)} → ${mb(memory.rss.last)} (${num(rssRatio, 3)}×)`,
      pass: s.quick ? undefined : rssRatio !== undefined && rssRatio <= RSS_GROWTH_TOLERANCE
    },
    {
      check: `V8 heap left by a full GC (start → end of the measured run) within ${num(LIVE_HEAP_GROWTH_TOLERANCE, 2)}×`,
      result: `${mb(r.live.first.heapUsed)} → ${mb(r.live.last.heapUsed)} (${num(liveRatio, 3)}×)`,
      pass: s.quick ? undefined : liveRatio <= LIVE_HEAP_GROWTH_TOLERANCE
    },
    {
      check: `V8 heap used (mean, ${windows})`,
      result: `${mb(memory.heapUsed.first)} → ${mb(memory.heapUsed.last)} (${num(heapRatio, 3)}×)`,
      pass: undefined
    }
  ]
}
