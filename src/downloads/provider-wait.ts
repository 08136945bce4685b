import { setTimeout as sleep } from 'node:timers/promises'
import { MdProviderUnavailableError } from '../errors.js'
import type { JobWaiting } from './download-job.js'
import type { DownloadPlan, DownloadRequest } from './download-plan.js'
import type { JobProgress } from './job-store.js'

// A background download that meets the Hub cooling down is queued to start when the cooldown ends,
// instead of failing: these are its few steps, apart from the manager that runs them.

/** The wait a request may take instead of its 503: a cooldown with an end, unless it asked to fail fast. */
export function providerWait (request: DownloadRequest, err: unknown): JobWaiting | undefined {
  if (request.waitForProvider === false || !(err instanceof MdProviderUnavailableError)) return undefined
  const until = err.details.cooldown_until
  return until === undefined ? undefined : { reason: 'provider_cooldown', until }
}

/** The plan of a job queued before the Hub could be asked: nothing known yet but what was asked. */
export function unknownPlan (request: DownloadRequest): DownloadPlan {
  return { model_id: request.modelId, revision: request.revision, commit: '', files: [], bytes_total: 0, bytes_cached: 0, bytes_missing: 0, free_bytes: 0 }
}

/** A job that waited for the Hub was queued without its plan (commit ''): what the plan found, told once. */
export function plannedProgress (plan: DownloadPlan): JobProgress {
  const cached = plan.files.filter((file) => file.cached)
  return {
    commit: plan.commit,
    bytes_total: plan.bytes_total,
    files_total: plan.files.length,
    bytes_downloaded: plan.bytes_cached,
    progress: plan.bytes_total === 0 ? 0 : Math.floor((plan.bytes_cached / plan.bytes_total) * 100),
    bytes_transferred: 0,
    files_done: cached.length,
    speed_bps: 0,
    eta_seconds: null,
    current_files: []
  }
}

/**
 * Plans a job taken from the queue; while the Hub cools down (the cooldown of a waiting job started
 * again, or another call holds the one probe after it), waits for it, a few times, instead of failing.
 */
export async function planWhenHubAllows (plan: () => Promise<DownloadPlan>, signal: AbortSignal, attempts = 5): Promise<DownloadPlan> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await plan()
    } catch (err) {
      if (!(err instanceof MdProviderUnavailableError) || err.details.status === 'unconfigured' || attempt >= attempts) throw err
      await sleep(Math.max(err.details.retry_after_s, 1) * 1000, undefined, { signal })
    }
  }
}
