import { randomUUID } from 'node:crypto'
import { newCallbackState } from '../callbacks/callback-sender.js'
import type { DownloadJob } from './download-job.js'
import type { DownloadPlan, DownloadRequest } from './download-plan.js'

/**
 * A job as it is first shown: what was asked, and what the plan found already in the cache. A job
 * resumed after a restart (`saved`) keeps its id and creation time.
 */
export function newJob (request: DownloadRequest, plan: DownloadPlan, now: string, saved?: DownloadJob): DownloadJob {
  return {
    job_id: saved?.job_id ?? randomUUID(),
    kind: request.kind ?? 'download',
    model_id: request.modelId,
    revision: request.revision,
    commit: plan.commit,
    status: 'queued',
    progress: plan.bytes_total === 0 ? 0 : Math.floor((plan.bytes_cached / plan.bytes_total) * 100),
    bytes_downloaded: plan.bytes_cached,
    bytes_total: plan.bytes_total,
    bytes_transferred: 0,
    files_done: plan.files.filter((file) => file.cached).length,
    files_total: plan.files.length,
    speed_bps: 0,
    eta_seconds: null,
    current_files: [],
    allow_patterns: request.allowPatterns ?? null,
    ignore_patterns: request.ignorePatterns ?? null,
    set_default: request.setDefault === true,
    max_bytes_per_s: request.maxBytesPerS ?? null,
    created_at: saved?.created_at ?? now,
    started_at: null,
    updated_at: now,
    completed_at: null,
    error: null,
    callback: request.callbackUrl === undefined ? null : newCallbackState(request.callbackUrl)
  }
}

/**
 * A verify job as it is first shown: the cached revision's commit, and its totals (every distinct
 * blob its snapshot links to); nothing is hashed yet.
 */
export function newVerifyJob (
  request: DownloadRequest, commit: string, totals: { bytes: number, files: number }, now: string, saved?: DownloadJob
): DownloadJob {
  const plan: DownloadPlan = {
    model_id: request.modelId, revision: request.revision, commit, files: [], bytes_total: totals.bytes, bytes_cached: 0, bytes_missing: 0, free_bytes: 0
  }
  return { ...newJob({ ...request, kind: 'verify' }, plan, now, saved), files_total: totals.files }
}
