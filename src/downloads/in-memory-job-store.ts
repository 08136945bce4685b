import { EventEmitter } from 'node:events'
import type { CallbackState } from '../callbacks/callback-sender.js'
import { isFinal, type DownloadJob, type JobKind, type JobStatus } from './download-job.js'
import type { DownloadRequest } from './download-plan.js'
import type { JobJournal, UnfinishedEntry } from './job-journal.js'
import type { Logger } from './job-run.js'
import { sameDownload } from './same-download.js'
import {
  applyProgress, applyTransition, checkTransition, RUNNING, snapshot, takenStatus, takesSlot, JobTransitionError, JobUnknownError,
  type DueCallback, type InterruptedJob, type JobProgress, type JobState, type JobStore, type RunCommand, type TransitionOptions
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
  /** Order in the queue while queued: its place when first queued, kept when it is given back. */
  queuedSeq?: number | undefined
  order?: number | undefined
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

  readonly sharedQueue = false

  get keepsInterrupted (): boolean {
    return this.#journal !== undefined
  }

  async get (jobId: string): Promise<DownloadJob | undefined> {
    const record = this.#records.get(jobId)
    return record === undefined ? undefined : this.#snapshot(record)
  }

  async all (): Promise<DownloadJob[]> {
    return [...this.#records.values()].reverse().map((record) => this.#snapshot(record))
  }

  async request (jobId: string): Promise<DownloadRequest | undefined> {
    return this.#records.get(jobId)?.request
  }

  async findUnfinished (request: DownloadRequest): Promise<DownloadJob | undefined> {
    return this.#findUnfinished(request)
  }

  async unfinished (): Promise<DownloadJob[]> {
    return this.#unfinishedRecords().map((record) => this.#snapshot(record))
  }

  async interrupted (): Promise<InterruptedJob[]> {
    return [...this.#records.values()].filter((record) => record.resumeAs !== undefined && record.request !== undefined)
      .map((record) => ({ job: structuredClone(record.resumeAs!), request: record.request! }))
  }

  async counts (): Promise<{ running: number, queued: number }> {
    const unfinished = this.#unfinishedRecords()
    return { running: unfinished.filter((record) => RUNNING.has(record.job.status)).length, queued: this.#queuedRecords().length }
  }

  async create (job: DownloadJob, request: DownloadRequest, to: 'queued' | 'complete' = 'queued'): Promise<{ job: DownloadJob, created: boolean }> {
    const existing = this.#records.get(job.job_id)
    this.#check(job.job_id, existing === undefined ? 'new' : this.#state(existing), to, job.kind)
    const same = to === 'queued' ? this.#findUnfinished(request) : undefined
    if (same !== undefined) return { job: same, created: false }
    const record: JobRecord = { job: { ...structuredClone(job), status: 'queued' }, request: structuredClone(request) }
    // A job taken up again keeps its place in the list: the same job, not a new one.
    if (existing === undefined) this.#insert(record)
    else this.#records.set(job.job_id, record)
    if (to === 'complete') this.#end(record, 'complete', {})
    else record.queuedSeq = record.order = ++this.#seq
    const made = this.#changed(record, true)
    // Journaled before any of its work starts: a crash never leaves locks or partials that no
    // journaled job explains (a shared store has written it by now too).
    await this.flush()
    return { job: made, created: true }
  }

  async claim (maxRunning: number): Promise<DownloadJob | undefined> {
    // A verify job takes no download slot: it is taken whenever it is queued.
    const slotFree = this.#unfinishedRecords().filter((record) => RUNNING.has(record.job.status) && takesSlot(record.job)).length < maxRunning
    let next: JobRecord | undefined
    for (const record of this.#queuedRecords()) {
      // A job waiting for the Hub's cooldown is not taken before it ends.
      if (record.job.waiting !== undefined && Date.parse(record.job.waiting.until) > this.#now()) continue
      if (!slotFree && takesSlot(record.job)) continue
      if (next === undefined || record.queuedSeq! < next.queuedSeq!) next = record
    }
    return next === undefined ? undefined : this.#transition(next.job.job_id, takenStatus(next.job), {})
  }

  async transition (jobId: string, to: JobStatus, options: TransitionOptions = {}): Promise<DownloadJob> {
    return this.#transition(jobId, to, options)
  }

  #transition (jobId: string, to: JobStatus, options: TransitionOptions): DownloadJob {
    const record = this.#record(jobId)
    this.#check(jobId, this.#state(record), to, record.job.kind)
    if (isFinal(to)) {
      this.#end(record, to as 'complete' | 'error' | 'cancelled', options)
    } else {
      record.resumeAs = undefined
      record.job = applyTransition(record.job, to, options, new Date(this.#now()).toISOString())
    }
    record.queuedSeq = to === 'queued' ? (record.order ??= ++this.#seq) : undefined
    return this.#changed(record, true)
  }

  progress (jobId: string, progress: JobProgress): DownloadJob {
    const record = this.#record(jobId)
    const state = this.#state(record)
    if (!RUNNING.has(state)) throw new JobTransitionError(jobId, state, 'progress')
    record.job = applyProgress(record.job, progress, new Date(this.#now()).toISOString())
    return this.#changed(record, false)
  }

  async setByteRate (jobId: string, bytesPerS: number | null): Promise<DownloadJob> {
    const record = this.#record(jobId)
    if (record.resumeAs === undefined && isFinal(record.job.status)) throw new JobTransitionError(jobId, record.job.status, 'byte_rate')
    record.job = { ...record.job, max_bytes_per_s: bytesPerS, updated_at: new Date(this.#now()).toISOString() }
    if (record.resumeAs !== undefined) record.resumeAs = { ...record.resumeAs, max_bytes_per_s: bytesPerS }
    if (record.request !== undefined) record.request = { ...record.request, maxBytesPerS: bytesPerS }
    return this.#changed(record, true)
  }

  // One process runs every job here: nobody else can take one over, nor has to be asked to stop one.
  async fence (jobId: string): Promise<void> {
    this.#record(jobId)
  }

  async requestCancel (): Promise<void> {}
  async requestPause (): Promise<void> {}

  onCommand (_listener: (command: RunCommand) => void): void {}

  // The manager of this process queues every job here, and takes them as it goes.
  onQueueChanged (_listener: () => void): void {}

  // No other process could take a callback up: this one sends it, or nobody does.
  async queueCallback (): Promise<void> {}
  async callbackSettled (): Promise<void> {}
  onOrphanCallback (_listener: (jobId: string, callback: DueCallback) => void): void {}

  async close (): Promise<void> {}

  async recordCallback (jobId: string, callback: CallbackState): Promise<void> {
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

  #check (jobId: string, from: JobState, to: JobStatus, kind: JobKind | undefined): void {
    checkTransition(jobId, from, to, kind)
  }

  #findUnfinished (request: DownloadRequest): DownloadJob | undefined {
    const found = this.#unfinishedRecords().find((record) => record.request !== undefined && sameDownload(record.request, request))
    return found === undefined ? undefined : this.#snapshot(found)
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

  #end (record: JobRecord, status: 'complete' | 'error' | 'cancelled', options: TransitionOptions): void {
    const job = record.job
    // Stopped by a shutdown, the job stays unfinished in the journal: the next start takes it up,
    // and its callback fires when it really ends.
    const keep = options.interrupted === true && this.keepsInterrupted && record.request !== undefined
    record.resumeAs = keep ? { ...job, status: 'queued', current_files: [], speed_bps: 0, eta_seconds: null } : undefined
    if (!keep) record.request = undefined
    record.job = applyTransition(job, status, { error: options.error }, new Date(this.#now()).toISOString())
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
