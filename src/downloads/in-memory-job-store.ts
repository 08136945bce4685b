import { EventEmitter } from 'node:events'
import type { CallbackState } from '../callbacks/callback-sender.js'
import { isFinal, type DownloadJob, type JobStatus } from './download-job.js'
import type { DownloadRequest } from './download-plan.js'
import type { JobJournal, UnfinishedEntry } from './job-journal.js'
import type { Logger } from './job-run.js'
import { sameDownload } from './same-download.js'
import {
  RUNNING, snapshot, TRANSITIONS, JobTransitionError, JobUnknownError,
  type InterruptedJob, type JobProgress, type JobState, type JobStore, type TransitionOptions
} from './job-store.js'

export interface InMemoryJobStoreOptions {
  /** Jobs kept in memory; ended ones beyond it are let go, oldest first. */
  limit?: number
  /** Keeps unfinished jobs (resumed at the next start) and recent history across restarts. */
  journal?: JobJournal | undefined
  log?: Logger | undefined
  now?: () => number
}

/** One job as the store keeps it; only this module ever changes one. */
interface JobRecord {
  job: DownloadJob
  /** Until the job ends (or, interrupted, is taken up again). */
  request?: DownloadRequest | undefined
  /** Interrupted: the job as the next start takes it up, whatever `job` shows now. */
  resumeAs?: DownloadJob | undefined
  /** Order in the queue while queued. */
  queuedSeq?: number | undefined
  snapshot?: DownloadJob | undefined
}

/**
 * Every job of this process, in memory, written to the journal on each change of status. The
 * history is bounded: every request adds a job (a cached model answers a complete one). Its state is
 * in `#` fields rather than shared symbols: no other module is meant to reach it, not even by name.
 */
export class InMemoryJobStore implements JobStore {
  readonly #records = new Map<string, JobRecord>()
  readonly #limit: number
  readonly #journal: JobJournal | undefined
  readonly #log: Logger | undefined
  readonly #now: () => number
  // One listener per open event stream: there may be many, so no leak warning at 10.
  readonly #changes = new EventEmitter().setMaxListeners(0)
  #seq = 0

  constructor (options: InMemoryJobStoreOptions = {}) {
    this.#limit = options.limit ?? 1000
    this.#journal = options.journal
    this.#log = options.log
    this.#now = options.now ?? Date.now
    const saved = this.#journal?.load() ?? { unfinished: [], finished: [] }
    for (const job of [...saved.finished].reverse()) this.#insert({ job: structuredClone(job) })
    for (const { job, request } of saved.unfinished) this.#insert({ job: structuredClone(job), request, resumeAs: job })
  }

  get keepsInterrupted (): boolean {
    return this.#journal !== undefined
  }

  get (jobId: string): DownloadJob | undefined {
    const record = this.#records.get(jobId)
    return record === undefined ? undefined : this.#snapshot(record)
  }

  all (): DownloadJob[] {
    return [...this.#records.values()].reverse().map((record) => this.#snapshot(record))
  }

  request (jobId: string): DownloadRequest | undefined {
    return this.#records.get(jobId)?.request
  }

  findUnfinished (request: DownloadRequest): DownloadJob | undefined {
    const found = this.#unfinishedRecords().find((record) => record.request !== undefined && sameDownload(record.request, request))
    return found === undefined ? undefined : this.#snapshot(found)
  }

  unfinished (): DownloadJob[] {
    return this.#unfinishedRecords().map((record) => this.#snapshot(record))
  }

  interrupted (): InterruptedJob[] {
    return [...this.#records.values()].filter((record) => record.resumeAs !== undefined && record.request !== undefined)
      .map((record) => ({ job: structuredClone(record.resumeAs!), request: record.request! }))
  }

  nextQueued (eligible: (jobId: string) => boolean): DownloadJob | undefined {
    let next: JobRecord | undefined
    for (const record of this.#queuedRecords()) {
      if (eligible(record.job.job_id) && (next === undefined || record.queuedSeq! < next.queuedSeq!)) next = record
    }
    return next === undefined ? undefined : this.#snapshot(next)
  }

  queuedCount (): number {
    return this.#queuedRecords().length
  }

  create (job: DownloadJob, request: DownloadRequest, to: 'queued' | 'complete' = 'queued'): DownloadJob {
    const existing = this.#records.get(job.job_id)
    this.#check(job.job_id, existing === undefined ? 'new' : this.#state(existing), to)
    const record: JobRecord = { job: { ...structuredClone(job), status: 'queued' }, request: structuredClone(request) }
    // A job taken up again keeps its place in the list: the same job, not a new one.
    if (existing === undefined) this.#insert(record)
    else this.#records.set(job.job_id, record)
    if (to === 'complete') this.#end(record, 'complete', {})
    else record.queuedSeq = ++this.#seq
    return this.#changed(record, true)
  }

  transition (jobId: string, to: JobStatus, options: TransitionOptions = {}): DownloadJob {
    const record = this.#record(jobId)
    this.#check(jobId, this.#state(record), to)
    const job = record.job
    const now = new Date(this.#now()).toISOString()
    if (to === 'complete' || to === 'error' || to === 'cancelled') {
      this.#end(record, to, options)
    } else {
      record.resumeAs = undefined
      job.status = to
      if (to === 'downloading') job.started_at = now
      if (options.progress !== undefined) Object.assign(job, copyProgress(options.progress))
      job.updated_at = now
    }
    record.queuedSeq = to === 'queued' ? ++this.#seq : undefined
    return this.#changed(record, true)
  }

  progress (jobId: string, progress: JobProgress): DownloadJob {
    const record = this.#record(jobId)
    const state = this.#state(record)
    if (!RUNNING.has(state)) throw new JobTransitionError(jobId, state, 'progress')
    Object.assign(record.job, copyProgress(progress), { updated_at: new Date(this.#now()).toISOString() })
    return this.#changed(record, false)
  }

  recordCallback (jobId: string, callback: CallbackState): void {
    // Let go by the history bound while its callback was being delivered: nothing left to show it on.
    const record = this.#records.get(jobId)
    if (record === undefined) return
    if (!isFinal(record.job.status)) throw new JobTransitionError(jobId, this.#state(record), 'callback')
    record.job.callback = { ...callback }
    record.job.updated_at = new Date(this.#now()).toISOString()
    record.snapshot = undefined
    this.#saveJournal()
  }

  onChange (listener: (job: DownloadJob) => void): () => void {
    this.#changes.on('change', listener)
    return () => { this.#changes.off('change', listener) }
  }

  get changeListeners (): number {
    return this.#changes.listenerCount('change')
  }

  async flush (): Promise<void> {
    await this.#journal?.flush()
  }

  #state (record: JobRecord): JobState {
    return record.resumeAs === undefined ? record.job.status : 'interrupted'
  }

  #check (jobId: string, from: JobState, to: JobStatus): void {
    if (!TRANSITIONS[from].includes(to)) throw new JobTransitionError(jobId, from, to)
  }

  #record (jobId: string): JobRecord {
    const record = this.#records.get(jobId)
    if (record === undefined) throw new JobUnknownError(jobId)
    return record
  }

  #unfinishedRecords (): JobRecord[] {
    return [...this.#records.values()].filter((record) => record.resumeAs === undefined && !isFinal(record.job.status))
  }

  #queuedRecords (): JobRecord[] {
    return [...this.#records.values()].filter((record) => record.resumeAs === undefined && record.job.status === 'queued')
  }

  #end (record: JobRecord, status: 'complete' | 'error' | 'cancelled', { error, interrupted }: TransitionOptions): void {
    const job = record.job
    const now = new Date(this.#now()).toISOString()
    // Stopped by a shutdown, the job stays unfinished in the journal: the next start takes it up,
    // and its callback fires when it really ends.
    const keep = interrupted === true && this.keepsInterrupted && record.request !== undefined
    record.resumeAs = keep ? { ...job, status: 'queued', current_files: [], speed_bps: 0, eta_seconds: null } : undefined
    if (!keep) record.request = undefined
    job.status = status
    job.current_files = []
    job.speed_bps = 0
    job.eta_seconds = status === 'complete' ? 0 : null
    if (status === 'complete') {
      job.progress = 100
      job.bytes_downloaded = job.bytes_total
      job.files_done = job.files_total
    }
    job.error = error ?? null
    job.updated_at = now
    job.completed_at = now
  }

  #insert (record: JobRecord): void {
    this.#records.set(record.job.job_id, record)
    if (this.#records.size <= this.#limit) return
    for (const [jobId, old] of this.#records) {
      if (isFinal(old.job.status) && old.resumeAs === undefined) {
        this.#records.delete(jobId)
        return
      }
    }
  }

  #snapshot (record: JobRecord): DownloadJob {
    record.snapshot ??= snapshot(record.job)
    return record.snapshot
  }

  #changed (record: JobRecord, journal: boolean): DownloadJob {
    record.snapshot = undefined
    const job = this.#snapshot(record)
    this.#changes.emit('change', job)
    if (journal) this.#saveJournal()
    return job
  }

  /** Journals the unfinished jobs (with their requests) and the history; progress is left out. */
  #saveJournal (): void {
    const journal = this.#journal
    if (journal === undefined) return
    const unfinished: UnfinishedEntry[] = []
    const finished: DownloadJob[] = []
    for (const record of this.#records.values()) {
      const { job, request, resumeAs } = record
      if (resumeAs !== undefined && request !== undefined) unfinished.push({ job: resumeAs, request })
      else if (!isFinal(job.status) && request !== undefined) unfinished.push({ job: { ...job, current_files: [] }, request })
      else if (isFinal(job.status)) finished.push(job)
    }
    finished.reverse()
    // The journal serializes at once, so it may be handed the store's own objects.
    journal.save({ unfinished, finished }).catch((err: unknown) => {
      this.#log?.warn({ file: journal.file, reason: (err as Error).message }, 'the job journal could not be written; unfinished jobs may not resume after a restart')
    })
  }
}

function copyProgress (progress: JobProgress): JobProgress {
  return { ...progress, current_files: [...progress.current_files] }
}
