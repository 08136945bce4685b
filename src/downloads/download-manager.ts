import type { CallbackSender } from '../callbacks/callback-sender.js'
import type { DefaultModelStore } from '../cache/default-model-store.js'
import { diskSpace } from '../cache/disk-space.js'
import { JOB_END_CODES, MdJobNotFoundError, MdShuttingDownError } from '../errors.js'
import type { HubClient } from '../hub/hub-client.js'
import { isFinal, type DownloadJob, type JobError } from './download-job.js'
import { insufficientStorage, jobError, SHUTDOWN_BEFORE_START, SHUTDOWN_DURING } from './job-errors.js'
import type { EndStatus, InterruptedJob, JobStore } from './job-store.js'
import { planDownload, type DownloadPlan, type DownloadRequest } from './download-plan.js'
import { JobRun, type Logger, type RunContext } from './job-run.js'
import { FinalWaiters } from './final-waiters.js'
import { newJob } from './new-job.js'
import { sameDownload } from './same-download.js'
import { LeftoverSweep } from './leftover-sweep.js'
import type { DownloadSettings } from './download-settings.js'

export type { DownloadPlan, DownloadRequest, PlannedFile } from './download-plan.js'
export type { DownloadSettings } from './download-settings.js'

export interface DownloadManagerOptions {
  cacheDir: string
  hub: HubClient
  /** The one owner of job state (and of the journal that keeps it across restarts). */
  store: JobStore
  defaultModel: DefaultModelStore
  settings: DownloadSettings
  log: Logger
  /** Sends completion callbacks; without it a request's callback URL is ignored. */
  callbacks?: CallbackSender
  now?: () => number
}

export type StartOutcome = 'created' | 'existing' | 'cached'

/** A transfer of this process: made when its job is queued here, running once `done` is set. */
interface OwnRun { run: JobRun, done?: Promise<void> }

/**
 * The download engine's front: plans a download against what the cache holds, deduplicates, and runs
 * at most `maxConcurrentJobs` jobs at once, in the store's queue order.
 *
 * What it holds is about this process's own transfers only, none of it what another process would
 * need to show or take over a job: the JobRun of each job queued or running here (with its abort
 * controller and the bytes it still has to write, for the free-space reservation), the concurrency
 * slots, the journaled jobs this start has still to take up, and the callers waiting here for a job to
 * end. A job's status, progress, request, place in the queue and interruption are the store's.
 */
export class DownloadManager {
  readonly #options: DownloadManagerOptions
  readonly #store: JobStore
  readonly #ctx: RunContext
  readonly #runs = new Map<string, OwnRun>()
  readonly #waiters = new FinalWaiters()
  readonly #endedListeners: Array<(job: DownloadJob) => void> = []
  /** Journaled jobs this start has to take up, by job id, with the taking up once under way. */
  readonly #resuming = new Map<string, Promise<DownloadJob> | undefined>()
  #active = 0
  #closing = false
  #bytesTransferred = 0
  readonly #sweep: LeftoverSweep

  constructor (options: DownloadManagerOptions) {
    this.#options = options
    this.#store = options.store
    this.#sweep = new LeftoverSweep(options.cacheDir, options.log)
    this.#ctx = {
      cacheDir: options.cacheDir,
      hub: options.hub,
      defaultModel: options.defaultModel,
      settings: options.settings,
      log: options.log,
      now: options.now ?? Date.now,
      store: options.store,
      blobsInFlight: new Map(),
      onTransferred: (bytes) => { this.#bytesTransferred += bytes }
    }
    for (const { job } of this.#store.interrupted()) this.#resuming.set(job.job_id, undefined)
  }

  /**
   * Starts again the jobs that had not ended when the server last stopped (a shutdown or a crash),
   * with the same job ids and callbacks, from their `.incomplete` files.
   */
  async resume (): Promise<void> {
    await this.#sweep.run()
    await Promise.all([...this.#resuming.keys()].map(async (jobId) => this.#takeUp(jobId)))
  }

  async #takeUp (jobId: string): Promise<DownloadJob> {
    let started = this.#resuming.get(jobId)
    if (started === undefined) {
      const entry = this.#store.interrupted().find(({ job }) => job.job_id === jobId)
      if (entry === undefined) return this.get(jobId)
      started = this.#resumeOne(entry)
      this.#resuming.set(jobId, started)
    }
    return started
  }

  async #resumeOne ({ job: saved, request }: InterruptedJob): Promise<DownloadJob> {
    this.#options.log.info({ job_id: saved.job_id, model_id: saved.model_id }, 'download resumed after a restart')
    try {
      return (await this.#begin(request, saved)).job
    } catch (err) {
      // Stopped again before it could start: still interrupted in the store, for the start after this one.
      if (!this.#closing) this.#finish(saved.job_id, 'error', jobError(err))
      return this.get(saved.job_id)
    } finally {
      this.#resuming.delete(saved.job_id)
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
    const existing = this.#store.findUnfinished(request)
    if (existing !== undefined) return { job: existing, outcome: 'existing' }
    // The same download journaled before a restart and about to resume: that job, not a second one.
    for (const jobId of this.#resuming.keys()) {
      const asked = this.#store.request(jobId)
      if (asked !== undefined && sameDownload(asked, request)) return { job: await this.#takeUp(jobId), outcome: 'existing' }
    }
    return this.#begin(request)
  }

  /** Plans and queues a job; `saved` is the journaled job it continues after a restart. */
  async #begin (request: DownloadRequest, saved?: DownloadJob): Promise<{ job: DownloadJob, outcome: StartOutcome }> {
    const plan = await this.plan(request)
    // Another request for the same download may have started while this one asked the Hub.
    const raced = this.#store.findUnfinished(request)
    if (raced !== undefined) return { job: raced, outcome: 'existing' }
    if (this.#closing) throw new MdShuttingDownError()

    const job = newJob(request, plan, new Date(this.#ctx.now()).toISOString(), saved)
    if (plan.files.every((file) => file.cached)) {
      await new JobRun(this.#ctx, job, plan).publishCached()
      const ended = this.#store.create(job, request, 'complete')
      this.#ended(ended, request)
      return { job: ended, outcome: 'cached' }
    }
    const needed = plan.bytes_missing + this.#reservedBytes()
    if (plan.free_bytes < needed) throw insufficientStorage(request.modelId, needed, plan.free_bytes)
    const queued = this.#store.create(job, request)
    this.#runs.set(job.job_id, { run: new JobRun(this.#ctx, queued, plan) })
    this.#pump()
    // As it is once a free slot has taken it: downloading then, queued otherwise.
    return { job: this.get(job.job_id), outcome: 'created' }
  }

  get (jobId: string): DownloadJob {
    const job = this.#store.get(jobId)
    if (job === undefined) throw new MdJobNotFoundError(jobId)
    return job
  }

  list (): DownloadJob[] {
    return this.#store.all()
  }

  /** Bytes all jobs brought over the network since the start. */
  get bytesTransferred (): number {
    return this.#bytesTransferred
  }

  /** Called on every change of any job (progress included); answers the function that stops it. */
  onChange (listener: (job: DownloadJob) => void): () => void {
    return this.#store.onChange(listener)
  }

  /** How many change listeners there are: every closed event stream must have let go of its own. */
  get changeListeners (): number {
    return this.#store.changeListeners
  }

  /** Called when any job ends (the cache changed, or may have). */
  onJobEnded (listener: (job: DownloadJob) => void): void {
    this.#endedListeners.push(listener)
  }

  counts (): { active: number, queued: number } {
    return { active: this.#active, queued: this.#store.queuedCount() }
  }

  /** Jobs of a model that have not ended: they keep it from being deleted. */
  unfinishedJobsOf (modelId: string): DownloadJob[] {
    return this.#store.unfinished().filter((job) => job.model_id === modelId)
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
    const own = this.#runs.get(jobId)
    if (own === undefined) return job
    own.run.why = 'cancelled'
    if (own.done === undefined) {
      this.#runs.delete(jobId)
      this.#finish(jobId, 'cancelled')
    } else {
      own.run.controller.abort()
      await own.done
    }
    if (purge) await own.run.purgePartials()
    return this.get(jobId)
  }

  /** Graceful shutdown: running jobs stop where they are and keep their `.incomplete` files. */
  async shutdown (): Promise<void> {
    this.#closing = true
    for (const [jobId, own] of this.#runs) {
      if (own.done !== undefined) continue
      this.#runs.delete(jobId)
      this.#finish(jobId, 'cancelled', SHUTDOWN_BEFORE_START)
    }
    await Promise.all([...this.#runs.values()].map(async (own) => {
      own.run.why ??= 'shutdown'
      own.run.controller.abort()
      await own.done
    }))
  }

  /** Waits for journal writes (and a sweep) under way, so a closed server leaves its journal complete. */
  async flushJournal (): Promise<void> {
    await this.#sweep.settled()
    await this.#store.flush()
  }

  /** Bytes the running and queued jobs still have to write: free space they will take. */
  #reservedBytes (): number {
    return [...this.#runs.values()].reduce((total, own) => total + own.run.remainingBytes, 0)
  }

  #pump (): void {
    while (!this.#closing && this.#active < this.#options.settings.maxConcurrentJobs) {
      const next = this.#store.nextQueued((jobId) => this.#runs.has(jobId) && this.#runs.get(jobId)!.done === undefined)
      if (next === undefined) return
      const jobId = next.job_id
      const own = this.#runs.get(jobId)!
      this.#active++
      own.done = this.#run(jobId, own.run).finally(() => {
        this.#active--
        this.#runs.delete(jobId)
        this.#pump()
      })
    }
  }

  async #run (jobId: string, run: JobRun): Promise<void> {
    const job = this.#store.transition(jobId, 'downloading', { progress: run.progress() })
    try {
      // A queued job may have waited while the disk filled up.
      const free = (await diskSpace(this.#options.cacheDir)).free_bytes
      if (free < run.remainingBytes) throw insufficientStorage(job.model_id, run.remainingBytes, free)
      await run.run()
      this.#finish(jobId, 'complete')
    } catch (err) {
      if (run.why === 'cancelled') this.#finish(jobId, 'cancelled')
      else if (run.why === 'shutdown') this.#finish(jobId, 'cancelled', SHUTDOWN_DURING)
      else this.#finish(jobId, 'error', jobError(err))
    }
  }

  #finish (jobId: string, status: EndStatus, error?: JobError): void {
    const request = this.#store.request(jobId)
    // Stopped by a shutdown, the job stays unfinished in the journal: the next start resumes it,
    // and its callback fires when it really ends.
    const interrupted = error?.code === JOB_END_CODES.serverShutdown && this.#store.keepsInterrupted && request !== undefined
    const job = this.#store.transition(jobId, status, { error, interrupted })
    this.#ended(job, interrupted ? undefined : request)
  }

  /** What follows the end of a job here: the log, the callers waiting, the listeners, the callback. */
  #ended (job: DownloadJob, request: DownloadRequest | undefined): void {
    this.#options.log.info({ job_id: job.job_id, model_id: job.model_id, status: job.status, bytes_transferred: job.bytes_transferred, error: job.error }, 'download ended')
    this.#waiters.wake(job.job_id)
    for (const listener of this.#endedListeners) listener(job)
    if (request?.callbackUrl !== undefined) this.#sendCallback(job, request.callbackUrl)
    // A server that restarted soon after a crash sweeps its leftovers once they are old enough.
    void this.#sweep.run()
  }

  /** Tells the caller's callback URL that the job ended, in the background. */
  #sendCallback (job: DownloadJob, url: string): void {
    if (job.callback === null || this.#options.callbacks === undefined) return
    // The sender keeps its own copy of the delivery and tells the store after every attempt. The
    // body is the job as GET /api/downloads/{job_id} answers it, at the moment it ended.
    const delivery = { ...job.callback }
    this.#options.callbacks.send(url, job.status, JSON.stringify(job), delivery, () => this.#store.recordCallback(job.job_id, delivery))
  }
}
