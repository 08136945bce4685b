import type { CallbackState } from '../callbacks/callback-sender.js'
import { isFinal, type DownloadJob, type JobError, type JobKind, type JobStatus, type VerifyResult } from './download-job.js'
import type { DownloadRequest } from './download-plan.js'
import type { UnfinishedEntry } from './job-journal.js'

// The one owner of job state, as an interface: the in-memory store (with the journal) implements it,
// and the Redis store that replicas share. Nobody else changes a job: they send one of these
// operations and read frozen snapshots back.

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
  // Taken up again at a start: queued (or complete from the cache), or in error when it cannot be
  // planned; paused again when it was paused.
  interrupted: ['queued', 'complete', 'error', 'paused'],
  queued: ['downloading', 'cancelled', 'paused'],
  // Back to queued: the process that ran it stopped (a shared store) or died, and another takes it over.
  downloading: ['verifying', 'error', 'cancelled', 'queued', 'paused'],
  verifying: ['complete', 'error', 'cancelled', 'queued', 'paused'],
  // Paused by the user: its transfers closed, its partial files kept, no slot taken. Resumed, it
  // queues again (and fetches only what is missing).
  paused: ['queued', 'cancelled'],
  complete: [],
  error: [],
  cancelled: []
}

/**
 * A verify job's table (POST /api/models/verify): the same but that it is taken from the queue
 * straight to verifying (it checks before it downloads anything, and takes no download slot), and
 * with repair=true goes on from verifying to downloading the bad files again, then verifying them.
 */
export const VERIFY_TRANSITIONS: Readonly<Record<JobState, readonly JobStatus[]>> = {
  ...TRANSITIONS,
  queued: ['verifying', 'cancelled', 'paused'],
  verifying: [...TRANSITIONS.verifying, 'downloading']
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
  /** Told once by a job that was queued before its plan was known (it waited for the Hub): what the plan found. */
  commit?: string
  bytes_total?: number
  files_total?: number
  /** Told by a verify job once its files are checked (and again once repaired). */
  verify?: VerifyResult
}

/** The status a job is taken from the queue to: a verify job checks, a download downloads. */
export const takenStatus = (job: { kind?: JobKind | undefined }): 'verifying' | 'downloading' => job.kind === 'verify' ? 'verifying' : 'downloading'

/** A job that holds one of the download slots (MAX_CONCURRENT_DOWNLOADS) while it runs: a verify job does not. */
export const takesSlot = (job: { kind?: JobKind | undefined }): boolean => job.kind !== 'verify'

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
  readonly to: JobStatus | 'progress' | 'callback' | 'byte_rate'

  constructor (jobId: string, from: JobState, to: JobStatus | 'progress' | 'callback' | 'byte_rate') {
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

export class JobLeaseLostError extends Error {
  readonly code = 'JOB_LEASE_LOST'
  readonly jobId: string

  constructor (jobId: string) {
    super(`job ${jobId}: this process no longer holds its lease; another replica has taken it over`)
    this.name = 'JobLeaseLostError'
    this.jobId = jobId
  }
}

/** A completion callback to deliver: where, which event, and the body exactly as first sent (so its signature too). */
export interface DueCallback { url: string, event: string, body: string }

/** What the store asks of the process that runs a job: stop it (a cancel sent to another replica, a lease lost), or change its cap. */
export interface RunCommand {
  jobId: string
  /**
   * `cancel`: end it as cancelled (and remove its partials when `purge`); `pause`: stop it as paused,
   * partials kept; `lost`: stop writing, another replica owns it now; `rate`: its cap is `bytesPerS` now.
   */
  kind: 'cancel' | 'pause' | 'lost' | 'rate'
  purge: boolean
  /** `rate`: the job's new cap on bytes per second, null for none. */
  bytesPerS?: number | null | undefined
}

/**
 * Reads answer promises: a shared store asks Redis. The operations of the process that runs a job
 * (progress, the steps of its run) are checked against the job's lease in a shared store, so a
 * process that lost a job can no longer change it.
 */
export interface JobStore {
  /** A frozen snapshot, or undefined for a job the store does not know (or has let go). */
  get: (jobId: string) => Promise<DownloadJob | undefined>
  /** Newest first. */
  all: () => Promise<DownloadJob[]>
  /** The request of a job that has not ended (its callback URL in full: the job shows it masked). */
  request: (jobId: string) => Promise<DownloadRequest | undefined>
  /** The job not yet ended (and not interrupted) doing this same download, if any. */
  findUnfinished: (request: DownloadRequest) => Promise<DownloadJob | undefined>
  /** The jobs that have not ended (paused ones included), interrupted ones left out. */
  unfinished: () => Promise<DownloadJob[]>
  /** Jobs journaled unfinished, to take up at a start, oldest first (a shared store keeps them queued instead). */
  interrupted: () => Promise<InterruptedJob[]>
  /** Jobs running (downloading or verifying) and queued, across every process that shares the store. */
  counts: () => Promise<{ running: number, queued: number }>
  /** Whether an interrupted job survives this process (a journal); without one it is simply over. */
  readonly keepsInterrupted: boolean
  /** Whether queued jobs outlive this process in the store (shared): a shutdown leaves them for another replica. */
  readonly sharedQueue: boolean

  /**
   * `new` or `interrupted` → queued (or complete from the cache): the job as first shown. A queued job
   * whose download is already unfinished in the store (the same request, sent to two replicas at
   * once) is not created: the one there is answered, with `created: false`.
   */
  create: (job: DownloadJob, request: DownloadRequest, to?: 'queued' | 'complete') => Promise<{ job: DownloadJob, created: boolean }>
  /**
   * Takes the queued job that has waited longest → downloading, for this process to run, if fewer
   * than `maxRunning` jobs run (in every process that shares the store); undefined otherwise.
   */
  claim: (maxRunning: number) => Promise<DownloadJob | undefined>
  /** One step of the table above; throws JobTransitionError when it is not allowed. */
  transition: (jobId: string, to: JobStatus, options?: TransitionOptions) => Promise<DownloadJob>
  /**
   * Progress of a job this process runs, told at once to this process's listeners (a shared store
   * passes it on to the others within a moment); throws JobTransitionError when the job does not run.
   */
  progress: (jobId: string, progress: JobProgress) => DownloadJob
  /** Resolves while this process still holds the job; throws JobLeaseLostError once another has taken it over. */
  fence: (jobId: string) => Promise<void>
  /** Asks the process that runs a job to cancel it (a shared store: another replica). */
  requestCancel: (jobId: string, purge: boolean) => Promise<void>
  /** Asks the process that runs a job to pause it (a shared store: another replica). */
  requestPause: (jobId: string) => Promise<void>
  /**
   * A job's own cap on bytes per second (null: none), in the job and in its request, so it holds after
   * a restart or a takeover; throws JobTransitionError for an ended job. A job another process runs
   * (a shared store) is that process's to change: it is asked to (onCommand, `rate`), and the job is
   * answered as it is now; the change shows once that process has made it.
   */
  setByteRate: (jobId: string, bytesPerS: number | null) => Promise<DownloadJob>
  /** The delivery of an ended job's callback; no change event (streams have had its final one). */
  recordCallback: (jobId: string, callback: CallbackState) => Promise<void>
  /**
   * Keeps a callback due in the outbox (a shared store), held by this process while it delivers it;
   * if this process dies first, another one takes it up (onOrphanCallback) and sends it, same body.
   */
  queueCallback: (jobId: string, callback: DueCallback) => Promise<void>
  /** The callback was delivered, or given up: out of the outbox. */
  callbackSettled: (jobId: string) => Promise<void>
  /** Called with a callback whose process died before it was delivered, now this process's to deliver. */
  onOrphanCallback: (listener: (jobId: string, callback: DueCallback) => void) => void

  /** Called with a snapshot on every change of any job, progress included; answers the function that stops it. */
  onChange: (listener: (job: DownloadJob) => void) => () => void
  readonly changeListeners: number
  /** Called when a job this process runs must stop: cancelled from elsewhere, or taken over. */
  onCommand: (listener: (command: RunCommand) => void) => void
  /** Called when a queued job may be there to take that this process did not queue (a shared store). */
  onQueueChanged: (listener: () => void) => void
  /** Resolves once what the store has written so far is durable. */
  flush: () => Promise<void>
  /** Stops the store's timers and subscriptions; the jobs stay where they are kept. */
  close: () => Promise<void>
}

/** The job after a change of status: what every store writes, computed in one place. */
export function applyTransition (current: DownloadJob, to: JobStatus, options: TransitionOptions, now: string): DownloadJob {
  const job: DownloadJob = structuredClone(current)
  if (options.progress !== undefined) Object.assign(job, copyProgress(options.progress))
  job.status = to
  job.updated_at = now
  // A job waits for the Hub only while queued; once taken (or ended) it waits no more.
  if (to !== 'queued') delete job.waiting
  if (to === 'downloading') job.started_at = now
  if (to === 'queued' || to === 'paused' || isFinal(to)) {
    job.current_files = []
    job.speed_bps = 0
    job.eta_seconds = null
  }
  if (isFinal(to)) {
    if (to === 'complete') {
      job.progress = 100
      job.bytes_downloaded = job.bytes_total
      job.files_done = job.files_total
      job.eta_seconds = 0
    }
    job.error = options.error ?? null
    job.completed_at = now
  }
  return job
}

/** The job with a running job's progress, stamped. */
export function applyProgress (current: DownloadJob, progress: JobProgress, now: string): DownloadJob {
  return { ...current, ...copyProgress(progress), updated_at: now }
}

export function checkTransition (jobId: string, from: JobState, to: JobStatus, kind?: JobKind): void {
  const table = kind === 'verify' ? VERIFY_TRANSITIONS : TRANSITIONS
  if (!table[from].includes(to)) throw new JobTransitionError(jobId, from, to)
}

export function copyProgress (progress: JobProgress): JobProgress {
  const copy = { ...progress, current_files: [...progress.current_files] }
  if (progress.verify !== undefined) copy.verify = structuredClone(progress.verify)
  return copy
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
