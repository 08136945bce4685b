import { isFinal, type DownloadJob } from './download-job.js'

/** `progress` while a job runs; its final status (`complete`, `error`, `cancelled`) when it ends. */
export interface JobEvent { event: string, data: DownloadJob }

export interface JobFeed {
  get: (jobId: string) => Promise<DownloadJob>
  list: () => Promise<DownloadJob[]>
  /** Calls the listener on every change of any job; answers the function that stops it. */
  onChange: (listener: (job: DownloadJob) => void) => () => void
}

export interface JobEventOptions {
  /** One job, or every job when undefined. */
  jobId?: string | undefined
  /** At most one progress event per job per this many milliseconds; final events are never held back. */
  minIntervalMs: number
  /** Ends the stream (the client went away, or the server closes). */
  signal: AbortSignal
}

/**
 * The changes of one job, or of all, as events: its state at once, then progress as it changes (the
 * latest state, at most a few per second), then its final state. A stream of one job ends with it.
 * Everything it holds is let go when the stream ends or `signal` aborts.
 */
export async function * jobEvents (feed: JobFeed, { jobId, minIntervalMs, signal }: JobEventOptions): AsyncGenerator<JobEvent> {
  const pending = new Map<string, DownloadJob>()
  const lastSent = new Map<string, number>()
  const finals: DownloadJob[] = []
  let wake: (() => void) | undefined
  let timer: NodeJS.Timeout | undefined
  const notify = (): void => {
    wake?.()
    wake = undefined
  }
  const stop = feed.onChange((job) => {
    if (jobId !== undefined && job.job_id !== jobId) return
    if (isFinal(job.status)) {
      pending.delete(job.job_id)
      finals.push(job)
    } else {
      pending.set(job.job_id, job)
    }
    notify()
  })
  signal.addEventListener('abort', notify, { once: true })
  try {
    // Read once the listener is there: a change made meanwhile comes after this state, not lost.
    const initial = jobId === undefined ? (await feed.list()).filter((job) => !isFinal(job.status)) : [await feed.get(jobId)]
    for (const job of initial) {
      if (isFinal(job.status)) {
        yield { event: job.status, data: job }
        if (jobId !== undefined) return
        continue
      }
      lastSent.set(job.job_id, Date.now())
      yield { event: 'progress', data: job }
    }
    while (!signal.aborted) {
      const now = Date.now()
      let nextDue = Infinity
      for (const [id, job] of pending) {
        const due = (lastSent.get(id) ?? 0) + minIntervalMs
        if (due > now) {
          nextDue = Math.min(nextDue, due)
          continue
        }
        pending.delete(id)
        lastSent.set(id, now)
        yield { event: 'progress', data: job }
      }
      while (finals.length > 0) {
        const job = finals.shift()!
        lastSent.delete(job.job_id)
        yield { event: job.status, data: job }
        if (jobId !== undefined) return
      }
      if (pending.size > 0 && nextDue === Infinity) continue // changed while we were yielding
      await new Promise<void>((resolve) => {
        wake = resolve
        if (nextDue !== Infinity) timer = setTimeout(notify, nextDue - now)
      })
      clearTimeout(timer)
    }
  } finally {
    stop()
    clearTimeout(timer)
    signal.removeEventListener('abort', notify)
  }
}
