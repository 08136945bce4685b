import { EventEmitter } from 'node:events'
import type { CallbackSender } from '../callbacks/callback-sender.js'
import type { DefaultModelStore } from '../cache/default-model-store.js'
import { sweepAbandoned } from '../cache/cache-temporaries.js'
import { diskSpace } from '../cache/disk-space.js'
import { JOB_END_CODES, MdJobNotFoundError, MdShuttingDownError } from '../errors.js'
import type { HubClient } from '../hub/hub-client.js'
import { isFinal, type DownloadJob, type JobError, type JobStore } from './download-job.js'
import { insufficientStorage, jobError, SHUTDOWN_BEFORE_START, SHUTDOWN_DURING } from './job-errors.js'
import type { JobJournal, UnfinishedEntry } from './job-journal.js'
import { planDownload, type DownloadPlan, type DownloadRequest } from './download-plan.js'
import { JobRun, type Logger, type RunContext } from './job-run.js'
import { FinalWaiters } from './final-waiters.js'
import { newJob } from './new-job.js'
import { sameDownload } from './same-download.js'
import type { RetryPolicy } from './retry.js'

export type { DownloadPlan, DownloadRequest, PlannedFile } from './download-plan.js'

export interface DownloadSettings {
  maxConcurrentJobs: number
  fileConcurrency: number
  /** Files larger than this are fetched as range parts over several connections. */
  partSizeBytes: number
  maxPartsPerFile: number
  /** Open connections per job, whole files and parts together. */
  maxConnectionsPerJob: number
  readTimeoutMs: number
  retry: RetryPolicy
}

export interface DownloadManagerOptions {
  cacheDir: string
  hub: HubClient
  store: JobStore
  defaultModel: DefaultModelStore
  settings: DownloadSettings
  log: Logger
  /** Sends completion callbacks; without it a request's callback URL is ignored. */
  callbacks?: CallbackSender
  /** Keeps unfinished jobs (resumed at the next start) and recent history across restarts. */
  journal?: JobJournal
  now?: () => number
}

export type StartOutcome = 'created' | 'existing' | 'cached'

/** A job that has not ended: the manager's own copy, whatever the store keeps. */
interface Live { job: DownloadJob, run: JobRun, done?: Promise<void> }

/**
 * The download engine's front: plans a download against what the cache holds, deduplicates, queues
 * jobs (at most `maxConcurrentJobs` at once, in order), and keeps each job's state in the store.
 */
export class DownloadManager {
  readonly #options: DownloadManagerOptions
  readonly #ctx: RunContext
  readonly #live = new Map<string, Live>()
  readonly #queue: string[] = []
  readonly #waiters = new FinalWaiters()
  readonly #endedListeners: Array<(job: DownloadJob) => void> = []
  // One listener per open event stream: there may be many, so no leak warning at 10.
  readonly #changes = new EventEmitter().setMaxListeners(0)
  /** What each unfinished job was asked to do (callback URL in full: the job shows it masked). */
  readonly #requests = new Map<string, DownloadRequest>()
  /** Jobs a shutdown stopped: still unfinished in the journal, so the next start resumes them. */
  readonly #interrupted = new Map<string, UnfinishedEntry>()
  /** Journaled jobs not yet resumed, by job id, until `resume()` has planned them. */
  readonly #resuming = new Map<string, { entry: UnfinishedEntry, started?: Promise<DownloadJob> }>()
  #active = 0
  #closing = false
  #bytesTransferred = 0
  #sweeping: Promise<void> | undefined

  constructor (options: DownloadManagerOptions) {
    this.#options = options
    this.#ctx = {
      cacheDir: options.cacheDir,
      hub: options.hub,
      defaultModel: options.defaultModel,
      settings: options.settings,
      log: options.log,
      now: options.now ?? Date.now,
      blobsInFlight: new Map(),
      onTransferred: (bytes) => { this.#bytesTransferred += bytes }
    }
    const saved = options.journal?.load() ?? { unfinished: [], finished: [] }
    for (const job of [...saved.finished].reverse()) options.store.put(job)
    for (const entry of saved.unfinished) {
      options.store.put(entry.job)
      this.#resuming.set(entry.job.job_id, { entry })
    }
  }

  /**
   * Starts again the jobs that had not ended when the server last stopped (a shutdown or a crash),
   * with the same job ids and callbacks, from their `.incomplete` files.
   */
  async resume (): Promise<void> {
    await this.#sweep()
    await Promise.all([...this.#resuming.values()].map(async (resuming) => {
      resuming.started ??= this.#resumeOne(resuming.entry)
      await resuming.started
    }))
  }

  async #resumeOne ({ job: saved, request }: UnfinishedEntry): Promise<DownloadJob> {
    this.#options.log.info({ job_id: saved.job_id, model_id: saved.model_id }, 'download resumed after a restart')
    try {
      const { job } = await this.#begin(request, saved)
      this.#resuming.delete(saved.job_id)
      return job
    } catch (err) {
      this.#resuming.delete(saved.job_id)
      // Stopped again before it could start: still unfinished, for the start after this one.
      if (this.#closing) {
        this.#interrupted.set(saved.job_id, { job: saved, request })
        return saved
      }
      const job: DownloadJob = { ...saved, current_files: [], speed_bps: 0, eta_seconds: null }
      this.#requests.set(job.job_id, request)
      this.#finish(job, 'error', jobError(err))
      return job
    }
  }

  get cacheDir (): string {
    return this.#options.cacheDir
  }

  /** Resolves the revision, applies the patterns and checks the cache; downloads nothing. */
  async plan (request: DownloadRequest): Promise<DownloadPlan> {
    return planDownload(this.#options.hub, this.#options.cacheDir, request)
  }

  /** Starts a download, or answers the job already doing it, or a complete job when the cache has it all. */
  async start (request: DownloadRequest): Promise<{ job: DownloadJob, outcome: StartOutcome }> {
    const existing = this.#unfinished(request)
    if (existing !== undefined) return { job: existing, outcome: 'existing' }
    // The same download journaled before a restart and about to resume: that job, not a second one.
    const resuming = [...this.#resuming.values()].find(({ entry }) => sameDownload(entry.request, request))
    if (resuming !== undefined) {
      resuming.started ??= this.#resumeOne(resuming.entry)
      return { job: await resuming.started, outcome: 'existing' }
    }
    return this.#begin(request)
  }

  /** Plans and queues a job; `saved` is the journaled job it continues after a restart. */
  async #begin (request: DownloadRequest, saved?: DownloadJob): Promise<{ job: DownloadJob, outcome: StartOutcome }> {
    const plan = await this.plan(request)
    // Another request for the same download may have started while this one asked the Hub.
    const raced = this.#unfinished(request)
    if (raced !== undefined) return { job: raced, outcome: 'existing' }
    if (this.#closing) throw new MdShuttingDownError()

    const job = newJob(request, plan, new Date(this.#ctx.now()).toISOString(), saved)
    const run = new JobRun(this.#ctx, job, plan, () => this.#changed(job))
    if (plan.files.every((file) => file.cached)) {
      await run.publishCached()
      this.#requests.set(job.job_id, request)
      this.#finish(job, 'complete')
      return { job, outcome: 'cached' }
    }
    const needed = plan.bytes_missing + this.#reservedBytes()
    if (plan.free_bytes < needed) throw insufficientStorage(request.modelId, needed, plan.free_bytes)
    this.#requests.set(job.job_id, request)
    this.#live.set(job.job_id, { job, run })
    this.#queue.push(job.job_id)
    this.#changed(job)
    this.#saveJournal()
    this.#pump()
    return { job, outcome: 'created' }
  }

  get (jobId: string): DownloadJob {
    const job = this.#live.get(jobId)?.job ?? this.#options.store.get(jobId)
    if (job === undefined) throw new MdJobNotFoundError(jobId)
    return job
  }

  list (): DownloadJob[] {
    return this.#options.store.all().map((job) => this.#live.get(job.job_id)?.job ?? job)
  }

  /** Bytes all jobs brought over the network since the start. */
  get bytesTransferred (): number {
    return this.#bytesTransferred
  }

  /** Called on every change of any job (progress included); answers the function that stops it. */
  onChange (listener: (job: DownloadJob) => void): () => void {
    this.#changes.on('change', listener)
    return () => { this.#changes.off('change', listener) }
  }

  /** How many change listeners there are: every closed event stream must have let go of its own. */
  get changeListeners (): number {
    return this.#changes.listenerCount('change')
  }

  /** Called when any job ends (the cache changed, or may have). */
  onJobEnded (listener: (job: DownloadJob) => void): void {
    this.#endedListeners.push(listener)
  }

  counts (): { active: number, queued: number } {
    return { active: this.#active, queued: this.#queue.length }
  }

  /** Jobs of a model that have not ended: they keep it from being deleted. */
  unfinishedJobsOf (modelId: string): DownloadJob[] {
    return [...this.#live.values()].map((live) => live.job).filter((job) => job.model_id === modelId)
  }

  /** Holds until the job ends or `timeoutMs` passes, then answers it as it is. */
  async waitForFinal (jobId: string, timeoutMs: number): Promise<DownloadJob> {
    const job = this.get(jobId)
    if (isFinal(job.status) || timeoutMs <= 0) return job
    await this.#waiters.wait(jobId, timeoutMs)
    return this.get(jobId)
  }

  /** Stops a job; its partial files stay for a later resume unless `purge`. */
  async cancel (jobId: string, purge = false): Promise<DownloadJob> {
    const job = this.get(jobId)
    const live = this.#live.get(jobId)
    if (live === undefined) return job
    live.run.why = 'cancelled'
    const queued = this.#queue.indexOf(jobId)
    if (queued >= 0) {
      this.#queue.splice(queued, 1)
      this.#live.delete(jobId)
      this.#finish(job, 'cancelled')
    } else {
      live.run.controller.abort()
      await live.done
    }
    if (purge) await live.run.purgePartials()
    return job
  }

  /** Graceful shutdown: running jobs stop where they are and keep their `.incomplete` files. */
  async shutdown (): Promise<void> {
    this.#closing = true
    for (const jobId of this.#queue.splice(0)) {
      const live = this.#live.get(jobId)!
      this.#live.delete(jobId)
      this.#finish(live.job, 'cancelled', SHUTDOWN_BEFORE_START)
    }
    await Promise.all([...this.#live.values()].map(async (live) => {
      live.run.why ??= 'shutdown'
      live.run.controller.abort()
      await live.done
    }))
  }

  /** Waits for journal writes (and a sweep) under way, so a closed server leaves its journal complete. */
  async flushJournal (): Promise<void> {
    await this.#sweeping
    await this.#options.journal?.flush()
  }

  #unfinished (request: DownloadRequest): DownloadJob | undefined {
    return [...this.#live.values()].map((live) => live.job).find((job) => {
      const asked = this.#requests.get(job.job_id)
      return asked !== undefined && sameDownload(asked, request)
    })
  }

  /** Bytes the running and queued jobs still have to write: free space they will take. */
  #reservedBytes (): number {
    return [...this.#live.values()].reduce((total, live) => total + live.run.remainingBytes, 0)
  }

  #pump (): void {
    while (!this.#closing && this.#active < this.#options.settings.maxConcurrentJobs && this.#queue.length > 0) {
      const live = this.#live.get(this.#queue.shift()!)!
      this.#active++
      live.done = this.#run(live).finally(() => {
        this.#active--
        this.#live.delete(live.job.job_id)
        this.#pump()
      })
    }
  }

  async #run ({ job, run }: Live): Promise<void> {
    job.status = 'downloading'
    job.started_at = new Date(this.#ctx.now()).toISOString()
    run.update()
    this.#saveJournal()
    try {
      // A queued job may have waited while the disk filled up.
      const free = (await diskSpace(this.#options.cacheDir)).free_bytes
      if (free < run.remainingBytes) throw insufficientStorage(job.model_id, run.remainingBytes, free)
      await run.run()
      this.#finish(job, 'complete')
    } catch (err) {
      if (run.why === 'cancelled') this.#finish(job, 'cancelled')
      else if (run.why === 'shutdown') this.#finish(job, 'cancelled', SHUTDOWN_DURING)
      else this.#finish(job, 'error', jobError(err))
    }
  }

  #changed (job: DownloadJob): void {
    this.#options.store.put(job)
    this.#changes.emit('change', job)
  }

  #finish (job: DownloadJob, status: 'complete' | 'error' | 'cancelled', error?: JobError): void {
    const now = new Date(this.#ctx.now()).toISOString()
    job.status = status
    job.current_files = []
    job.speed_bps = 0
    job.eta_seconds = status === 'complete' ? 0 : null
    if (status === 'complete') {
      job.progress = 100
      job.bytes_downloaded = job.bytes_total
      job.files_done = job.files_total
    }
    const request = this.#requests.get(job.job_id)
    this.#requests.delete(job.job_id)
    // Stopped by a shutdown, the job stays unfinished in the journal: the next start resumes it,
    // and its callback fires when it really ends.
    const interrupted = error?.code === JOB_END_CODES.serverShutdown && this.#options.journal !== undefined && request !== undefined
    if (interrupted) this.#interrupted.set(job.job_id, { job: { ...job, status: 'queued', current_files: [] }, request })
    job.error = error ?? null
    job.updated_at = now
    job.completed_at = now
    this.#changed(job)
    this.#options.log.info({ job_id: job.job_id, model_id: job.model_id, status, bytes_transferred: job.bytes_transferred, error: job.error }, 'download ended')
    this.#waiters.wake(job.job_id)
    for (const listener of this.#endedListeners) listener(job)
    this.#saveJournal()
    if (!interrupted && request?.callbackUrl !== undefined) this.#sendCallback(job, request.callbackUrl)
    // A server that restarted soon after a crash sweeps its leftovers once they are old enough.
    void this.#sweep()
  }

  /** Removes the temporaries and trash that killed processes left in the cache; one sweep at a time. */
  async #sweep (): Promise<void> {
    this.#sweeping ??= (async () => {
      // File times are real times, whatever clock the jobs are stamped with.
      const removed = await sweepAbandoned(this.#options.cacheDir, Date.now()).catch((err: unknown) => {
        this.#options.log.warn({ reason: (err as Error).message }, 'leftover temporary files could not be removed')
        return 0
      })
      if (removed > 0) this.#options.log.info({ removed }, 'removed temporary files left by a process that stopped mid-step')
    })().finally(() => { this.#sweeping = undefined })
    await this.#sweeping
  }

  /** Tells the caller's callback URL that the job ended, in the background. */
  #sendCallback (job: DownloadJob, url: string): void {
    if (job.callback === null || this.#options.callbacks === undefined) return
    // The body is the job as GET /api/downloads/{job_id} answers it, at the moment it ended.
    this.#options.callbacks.send(url, job.status, JSON.stringify(job), job.callback, () => {
      // Kept for GET and the history, but no new event: a stream has already had this job's final one.
      job.updated_at = new Date(this.#ctx.now()).toISOString()
      this.#options.store.put(job)
      this.#saveJournal()
    })
  }

  /** Journals the unfinished jobs (with their requests) and the history; progress is left out. */
  #saveJournal (): void {
    const journal = this.#options.journal
    if (journal === undefined) return
    const unfinished = new Map<string, UnfinishedEntry>()
    for (const { job } of this.#live.values()) {
      const request = this.#requests.get(job.job_id)
      if (!isFinal(job.status) && request !== undefined) unfinished.set(job.job_id, { job: { ...job, current_files: [] }, request })
    }
    for (const [jobId, entry] of [...this.#interrupted, ...[...this.#resuming].map(([id, { entry }]) => [id, entry] as const)]) {
      if (!unfinished.has(jobId)) unfinished.set(jobId, entry)
    }
    const finished = this.#options.store.all().filter((job) => isFinal(job.status) && !unfinished.has(job.job_id))
    journal.save({ unfinished: [...unfinished.values()], finished }).catch((err: unknown) => {
      this.#options.log.warn({ file: journal.file, reason: (err as Error).message }, 'the job journal could not be written; unfinished jobs may not resume after a restart')
    })
  }
}
