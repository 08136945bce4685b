import type { CallbackState } from '../callbacks/callback-sender.js'
import type { DownloadJob, JobError, JobStatus } from './download-job.js'
import type { DownloadRequest } from './download-plan.js'
import type { UnfinishedEntry } from './job-journal.js'

// The one owner of job state, as an interface: the in-memory store (with the journal) implements it
// today, a shared store can later. Nobody else changes a job: they send one of these operations and
// read frozen snapshots back.

/**
 * Where a job is, for the table below: a status the API shows, or one of two states a job is in
 * before it has one of its own here — `new` (not in the store yet) and `interrupted` (journaled
 * unfinished by a shutdown or a crash, waiting for a start to take it up again).
 */
export type JobState = JobStatus | 'new' | 'interrupted'

export type EndStatus = 'complete' | 'error' | 'cancelled'

/** Every change of status there is; anything else is refused with a JobTransitionError. */
export const TRANSITIONS: Readonly<Record<JobState, readonly JobStatus[]>> = {
  // A request is queued, or complete at once when the cache has every file.
  new: ['queued', 'complete'],
  // Taken up again at a start: queued (or complete from the cache), or in error when it cannot be planned.
  interrupted: ['queued', 'complete', 'error'],
  queued: ['downloading', 'cancelled'],
  downloading: ['verifying', 'error', 'cancelled'],
  verifying: ['complete', 'error', 'cancelled'],
  complete: [],
  error: [],
  cancelled: []
}

/** Progress is told only while bytes move or files are checked. */
export const RUNNING: ReadonlySet<JobState> = new Set(['downloading', 'verifying'])

/** What a running job tells of its progress; the store stamps `updated_at`. */
export interface JobProgress {
  bytes_downloaded: number
  progress: number
  bytes_transferred: number
  files_done: number
  speed_bps: number
  eta_seconds: number | null
  current_files: string[]
}

export interface TransitionOptions {
  /** Why it ended (error, cancelled); null otherwise. */
  error?: JobError | undefined
  /** The progress at the moment of the change, told in the same change. */
  progress?: JobProgress | undefined
  /**
   * Stopped by a shutdown: the job shows its end now, but stays unfinished in the journal so the
   * next start takes it up (state `interrupted` there).
   */
  interrupted?: boolean | undefined
}

/** A job journaled unfinished, with what it takes to start it again. */
export type InterruptedJob = UnfinishedEntry

export class JobTransitionError extends Error {
  readonly code = 'JOB_TRANSITION_REFUSED'
  readonly jobId: string
  readonly from: JobState
  readonly to: JobStatus | 'progress' | 'callback'

  constructor (jobId: string, from: JobState, to: JobStatus | 'progress' | 'callback') {
    super(`job ${jobId}: ${to} is not allowed from ${from}`)
    this.name = 'JobTransitionError'
    this.jobId = jobId
    this.from = from
    this.to = to
  }
}

export class JobUnknownError extends Error {
  readonly code = 'JOB_UNKNOWN'
  readonly jobId: string

  constructor (jobId: string) {
    super(`job ${jobId} is not in the store`)
    this.name = 'JobUnknownError'
    this.jobId = jobId
  }
}

export interface JobStore {
  /** A frozen snapshot, or undefined for a job the store does not know (or has let go). */
  get: (jobId: string) => DownloadJob | undefined
  /** Newest first. */
  all: () => DownloadJob[]
  /** The request of a job that has not ended (its callback URL in full: the job shows it masked). */
  request: (jobId: string) => DownloadRequest | undefined
  /** The job not yet ended (and not interrupted) doing this same download, if any. */
  findUnfinished: (request: DownloadRequest) => DownloadJob | undefined
  /** The jobs that have not ended, interrupted ones left out. */
  unfinished: () => DownloadJob[]
  /** Jobs journaled unfinished, to take up at a start, oldest first. */
  interrupted: () => InterruptedJob[]
  /** The queued job that has waited longest among those `eligible` accepts. */
  nextQueued: (eligible: (jobId: string) => boolean) => DownloadJob | undefined
  queuedCount: () => number
  /** Whether an interrupted job survives this process (a journal); without one it is simply over. */
  readonly keepsInterrupted: boolean

  /** `new` or `interrupted` → queued (or complete from the cache): the job as first shown. */
  create: (job: DownloadJob, request: DownloadRequest, to?: 'queued' | 'complete') => DownloadJob
  /** One step of the table above; throws JobTransitionError when it is not allowed. */
  transition: (jobId: string, to: JobStatus, options?: TransitionOptions) => DownloadJob
  /** Progress of a running job; throws JobTransitionError when the job does not run. */
  progress: (jobId: string, progress: JobProgress) => DownloadJob
  /** The delivery of an ended job's callback; no change event (streams have had its final one). */
  recordCallback: (jobId: string, callback: CallbackState) => void

  /** Called with a snapshot on every change of any job, progress included; answers the function that stops it. */
  onChange: (listener: (job: DownloadJob) => void) => () => void
  readonly changeListeners: number
  /** Resolves once what the store has written so far is durable. */
  flush: () => Promise<void>
}

const frozenCopy = <T>(items: T[] | null): T[] | null => items === null ? null : Object.freeze([...items]) as T[]

/** A copy of the job that cannot be changed: what the store hands out, so its own stays its own. */
export function snapshot (job: DownloadJob): DownloadJob {
  return Object.freeze({
    ...job,
    current_files: frozenCopy(job.current_files)!,
    allow_patterns: frozenCopy(job.allow_patterns),
    ignore_patterns: frozenCopy(job.ignore_patterns),
    error: job.error === null ? null : Object.freeze({ ...job.error }),
    callback: job.callback === null ? null : Object.freeze({ ...job.callback })
  })
}
