import { currentRss } from './node-process.js'

// The server's resident memory, read from /proc once a second while a load runs, and the mean of a
// window of readings: one reading lands anywhere in a GC cycle, a mean over seconds does not.

export interface RssSample { at: number, rssBytes: number }

export interface RssSampler {
  /** Stops sampling; answers every reading, oldest first. */
  stop: () => RssSample[]
}

export function sampleRss (pid: number, intervalMs = 1000): RssSampler {
  const samples: RssSample[] = []
  const take = (): void => {
    const rssBytes = currentRss(pid)
    if (rssBytes !== undefined) samples.push({ at: Date.now(), rssBytes })
  }
  take()
  const timer = setInterval(take, intervalMs)
  return {
    stop: () => {
      clearInterval(timer)
      take()
      return samples
    }
  }
}

/** The mean of `pick` over the samples taken in [from, to) (Date.now() times), or undefined if none were. */
export function windowMean<T extends { at: number }> (samples: readonly T[], pick: (sample: T) => number, from: number, to: number): number | undefined {
  const inside = samples.filter((sample) => sample.at >= from && sample.at < to)
  return inside.length === 0 ? undefined : inside.reduce((sum, sample) => sum + pick(sample), 0) / inside.length
}
