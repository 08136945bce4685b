import type { CallbackState } from '../callbacks/callback-sender.js'

export type JobStatus = 'queued' | 'downloading' | 'verifying' | 'complete' | 'error' | 'cancelled'

export const FINAL_STATUSES: ReadonlySet<JobStatus> = new Set(['complete', 'error', 'cancelled'])
export const isFinal = (status: JobStatus): boolean => FINAL_STATUSES.has(status)

export interface JobError { code: string, message: string, hint?: string }

/** A download as the API shows it; the manager keeps it current in the job store. */
export interface DownloadJob {
  job_id: string
  model_id: string
  revision: string
  commit: string
  status: JobStatus
  /** 0–100, by bytes. */
  progress: number
  bytes_downloaded: number
  bytes_total: number
  /** Bytes that came over the network for this job (0 when everything was already cached). */
  bytes_transferred: number
  files_done: number
  files_total: number
  /** Over the last few seconds, not the lifetime average. */
  speed_bps: number
  eta_seconds: number | null
  current_files: string[]
  allow_patterns: string[] | null
  ignore_patterns: string[] | null
  set_default: boolean
  created_at: string
  started_at: string | null
  updated_at: string
  completed_at: string | null
  error: JobError | null
  /** The delivery of its completion callback, when one was asked for. */
  callback: CallbackState | null
}

/**
 * Where jobs live. In memory for now (the design's "in-memory progress state"); small enough that a
 * persistent store can replace it.
 */
export interface JobStore {
  put: (job: DownloadJob) => void
  get: (jobId: string) => DownloadJob | undefined
  /** Newest first. */
  all: () => DownloadJob[]
}

export class InMemoryJobStore implements JobStore {
  readonly #jobs = new Map<string, DownloadJob>()
  readonly #limit: number

  // Every request adds a job (a cached model answers a complete one), so old ended jobs are let go.
  constructor (limit = 1000) {
    this.#limit = limit
  }

  put (job: DownloadJob): void {
    this.#jobs.set(job.job_id, job)
    if (this.#jobs.size <= this.#limit) return
    for (const [jobId, old] of this.#jobs) {
      if (isFinal(old.status)) {
        this.#jobs.delete(jobId)
        return
      }
    }
  }

  get (jobId: string): DownloadJob | undefined {
    return this.#jobs.get(jobId)
  }

  all (): DownloadJob[] {
    return [...this.#jobs.values()].reverse()
  }
}
