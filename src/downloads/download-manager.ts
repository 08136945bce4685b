import { newCallbackState, type CallbackSender, type CallbackState } from '../callbacks/callback-sender.js'
import type { DefaultModelStore } from '../cache/default-model-store.js'
import { diskSpace } from '../cache/disk-space.js'
import { resolveCachedCommit } from '../cache/cache-delete.js'
import { snapshotEntries } from '../cache/snapshot-verify.js'
import { JOB_END_CODES, MdJobEndedError, MdJobNotFoundError, MdModelNotCachedError, MdShuttingDownError, MdStateStoreUnavailableError } from '../errors.js'
import type { HubClient } from '../hub/hub-client.js'
import { isFinal, type DownloadJob, type JobError, type JobStatus } from './download-job.js'
import { insufficientStorage, jobError, SHUTDOWN_BEFORE_START, SHUTDOWN_DURING } from './job-errors.js'
import { JobLeaseLostError, JobTransitionError, RUNNING, type DueCallback, type EndStatus, type InterruptedJob, type JobStore, type RunCommand } from './job-store.js'
import { planDownload, type DownloadPlan, type DownloadRequest } from './download-plan.js'
import { JobRun, type Logger, type RunContext } from './job-run.js'
import { FinalWaiters } from './final-waiters.js'
import { newJob, newVerifyJob } from './new-job.js'
import { VerifyRun, verifyTotals } from './verify-run.js'
import { plannedProgress, planWhenHubAllows, providerWait, unknownPlan } from './provider-wait.js'
import { sameDownload } from './same-download.js'
import { LeftoverSweep } from './leftover-sweep.js'
import { ByteRate } from './byte-rate.js'
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
  /** The server's cap on bytes per second (limits-store.ts sets it); none without it. */
  serverRate?: ByteRate
  now?: () => number
}

export type StartOutcome = 'created' | 'existing' | 'cached'

/** A job waiting for the Hub's cooldown is looked for this long after it ends (a timer may fire a little early). */
const WAKE_MARGIN_MS = 50

/** The cache quota (src/cache/eviction.ts): makes room for a download by evicting models, or throws 507. */
export interface StorageQuota { makeRoom: (modelId: string, neededBytes: number) => Promise<void> }

/** How long a cancel or a pause sent to the replica that runs the job waits for it to stop. */
const REMOTE_CANCEL_WAIT_MS = 5000

/**
 * A job this process has taken from the queue and runs. `stop` ends it wherever it is (planning it
 * again, or moving bytes), and `why` says what the end is: a cancel, a pause, a shutdown, or the job
 * taken over by another replica, which this process then must not write.
 */
interface OwnRun {
  stop: AbortController
  why?: 'cancelled' | 'paused' | 'shutdown' | 'lost'
  run?: JobRun
  done?: Promise<void>
}

/**
 * The download engine's front: plans a download against what the cache holds, queues it in the job
 * store, and runs the jobs this process takes from the store's queue, at most `maxConcurrentJobs` at
 * once (across every replica, with a shared store).
 *
 * What it holds is about this process's own transfers only, none of it what another process would
 * need to show or take over a job: the runs it took (with their abort controllers and the bytes they
 * still have to write), the plans of the jobs it queued (spared a second planning when it takes them),
 * the journaled jobs this start has still to take up, and the callers waiting here for a job to end.
 * A job's status, progress, request, place in the queue and owner are the store's.
 */
export class DownloadManager {
  readonly #options: DownloadManagerOptions
  readonly #store: JobStore
  readonly #ctx: RunContext
  readonly #runs = new Map<string, OwnRun>()
  readonly #plans = new Map<string, DownloadPlan>()
  readonly #waiters = new FinalWaiters()
  readonly #endedListeners: Array<(job: DownloadJob) => void> = []
  /** Journaled jobs this start has to take up, by job id, with the taking up once under way. */
  readonly #resuming = new Map<string, Promise<DownloadJob> | undefined>()
  #closing = false
  #bytesTransferred = 0
  #pumping: Promise<void> = Promise.resolve()
  readonly #sweep: LeftoverSweep
  #quota: StorageQuota | undefined

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
      onTransferred: (bytes) => { this.#bytesTransferred += bytes },
      serverRate: options.serverRate ?? new ByteRate(null)
    }
    // A job that ends anywhere (here, or on another replica) wakes who waits for it here.
    this.#store.onChange((job) => {
      // A paused job answers who waits for its end: it will not end until someone resumes it.
      if (job.status === 'paused') this.#waiters.wake(job.job_id)
      if (!isFinal(job.status)) return
      this.#plans.delete(job.job_id)
      this.#waiters.wake(job.job_id)
      for (const listener of this.#endedListeners) listener(job)
    })
    this.#store.onCommand((command) => this.#command(command))
    this.#store.onQueueChanged(() => { void this.pump() })
    this.#store.onOrphanCallback((jobId, due) => { void this.#deliverOrphan(jobId, due) })
  }

  /**
   * Starts again the jobs that had not ended when the server last stopped (a shutdown or a crash),
   * with the same job ids and callbacks, from their `.incomplete` files; with a shared store, takes
   * what other replicas left queued.
   */
  async resume (): Promise<void> {
    const interrupted = await this.#store.interrupted()
    for (const { job } of interrupted) if (!this.#resuming.has(job.job_id)) this.#resuming.set(job.job_id, undefined)
    await this.#sweep.run()
    await Promise.all([...this.#resuming.keys()].map(async (jobId) => this.#takeUp(jobId)))
    await this.pump()
  }

  async #takeUp (jobId: string): Promise<DownloadJob> {
    let started = this.#resuming.get(jobId)
    if (started === undefined) {
      const entry = (await this.#store.interrupted()).find(({ job }) => job.job_id === jobId)
      if (entry === undefined) return this.get(jobId)
      started = this.#resumeOne(entry)
      this.#resuming.set(jobId, started)
    }
    return started
  }

  async #resumeOne ({ job: saved, request }: InterruptedJob): Promise<DownloadJob> {
    if (saved.status === 'paused') {
      // Paused it stays, across restarts, until resumed: nothing to plan or fetch now.
      this.#resuming.delete(saved.job_id)
      return this.#store.transition(saved.job_id, 'paused')
    }
    this.#options.log.info({ job_id: saved.job_id, model_id: saved.model_id }, 'download resumed after a restart')
    try {
      return (await (request.kind === 'verify' ? this.#beginVerify(request, saved) : this.#begin(request, saved))).job
    } catch (err) {
      // Stopped again before it could start: still interrupted in the store, for the start after this one.
      if (!this.#closing) await this.#finish(saved.job_id, 'error', jobError(err))
      return this.get(saved.job_id)
    } finally {
      this.#resuming.delete(saved.job_id)
    }
  }

  /** From now on every download first asks the quota for room (CACHE_MAX_BYTES, the watermarks). */
  useQuota (quota: StorageQuota): void {
    this.#quota = quota
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
    const existing = await this.#store.findUnfinished(request)
    if (existing !== undefined) return { job: existing, outcome: 'existing' }
    // The same download journaled before a restart and about to resume: that job, not a second one.
    for (const jobId of this.#resuming.keys()) {
      const asked = await this.#store.request(jobId)
      if (asked !== undefined && sameDownload(asked, request)) return { job: await this.#takeUp(jobId), outcome: 'existing' }
    }
    return this.#begin(request)
  }

  /** Plans and queues a job; `saved` is the journaled job it continues after a restart. */
  async #begin (request: DownloadRequest, saved?: DownloadJob): Promise<{ job: DownloadJob, outcome: StartOutcome }> {
    const plan = await this.plan(request).catch((err: unknown) => {
      // The Hub cooling down: the job is queued now and taken when the cooldown ends (a plan without the Hub's answer yet).
      const waiting = providerWait(request, err)
      if (waiting === undefined) throw err
      setTimeout(() => { void this.pump() }, Date.parse(waiting.until) - this.#ctx.now() + WAKE_MARGIN_MS).unref()
      return { ...unknownPlan(request), waiting }
    })
    // Another request for the same download may have started while this one asked the Hub.
    const raced = await this.#store.findUnfinished(request)
    if (raced !== undefined) return { job: raced, outcome: 'existing' }
    if (this.#closing) throw new MdShuttingDownError()

    const job = newJob(request, plan, new Date(this.#ctx.now()).toISOString(), saved)
    if ('waiting' in plan) job.waiting = plan.waiting
    else if (plan.files.every((file) => file.cached)) {
      await new JobRun(this.#ctx, job, plan).publishCached()
      const { job: ended } = await this.#store.create(job, request, 'complete')
      this.#ended(ended, request)
      return { job: ended, outcome: 'cached' }
    }
    const needed = plan.bytes_missing + await this.#reservedBytes()
    if (!('waiting' in plan)) {
      await this.#quota?.makeRoom(request.modelId, needed)
      const free = this.#quota === undefined ? plan.free_bytes : (await diskSpace(this.#options.cacheDir)).free_bytes
      if (free < needed) throw insufficientStorage(request.modelId, needed, free)
      this.#plans.set(job.job_id, plan)
    }
    const { job: queued, created } = await this.#store.create(job, request).catch((err: unknown) => {
      this.#plans.delete(job.job_id)
      throw err
    })
    if (!created) {
      // The same download was queued elsewhere (another replica) at the same moment: join it.
      this.#plans.delete(job.job_id)
      return { job: queued, outcome: 'existing' }
    }
    await this.pump()
    // As it is once a free slot has taken it: downloading then, queued otherwise.
    return { job: await this.get(job.job_id), outcome: 'created' }
  }

  /**
   * Re-hashes a cached revision offline, as a job (`kind: verify`) that takes no download slot; with
   * `repair`, it then fetches the bad files again. The same verify unfinished is answered instead.
   */
  async verify (request: DownloadRequest): Promise<{ job: DownloadJob, outcome: StartOutcome }> {
    const verify: DownloadRequest = { ...request, kind: 'verify' }
    const existing = await this.#store.findUnfinished(verify)
    if (existing !== undefined) return { job: existing, outcome: 'existing' }
    return this.#beginVerify(verify)
  }

  async #beginVerify (request: DownloadRequest, saved?: DownloadJob): Promise<{ job: DownloadJob, outcome: StartOutcome }> {
    const { cacheDir } = this.#options
    // After a restart: the commit it was verifying, even if the branch has moved since.
    const commit = saved?.commit ?? await resolveCachedCommit(cacheDir, request.modelId, request.revision)
    const entries = commit === undefined ? [] : await snapshotEntries(cacheDir, request.modelId, commit)
    if (commit === undefined || entries.length === 0) {
      throw new MdModelNotCachedError(`${request.modelId}@${request.revision} is not in the cache, so there is nothing to verify`)
    }
    if (this.#closing) throw new MdShuttingDownError()
    const job = newVerifyJob(request, commit, verifyTotals(entries), new Date(this.#ctx.now()).toISOString(), saved)
    const { job: queued, created } = await this.#store.create(job, request)
    if (!created) return { job: queued, outcome: 'existing' }
    await this.pump()
    return { job: await this.get(job.job_id), outcome: 'created' }
  }

  async get (jobId: string): Promise<DownloadJob> {
    const job = await this.#store.get(jobId)
    if (job === undefined) throw new MdJobNotFoundError(jobId)
    return job
  }

  async list (): Promise<DownloadJob[]> {
    return this.#store.all()
  }

  /** Jobs this process runs now. */
  get runningHere (): number {
    return this.#runs.size
  }

  /** Bytes all jobs of this process brought over the network since the start. */
  get bytesTransferred (): number {
    return this.#bytesTransferred
  }

  /** Called on every change of any job (progress included); answers the function that stops it. */
  onChange (listener: (job: DownloadJob) => void): () => void {
    return this.#store.onChange(listener)
  }

  /** How many change listeners there are: every closed event stream must have let go of its own. */
  get changeListeners (): number {
    // The manager's own one, which wakes the callers waiting here, is not a stream's.
    return this.#store.changeListeners - 1
  }

  /** Called when any job ends, here or on another replica (the cache changed, or may have). */
  onJobEnded (listener: (job: DownloadJob) => void): void {
    this.#endedListeners.push(listener)
  }

  /** Jobs running and queued (across the cluster, with a shared store). */
  async counts (): Promise<{ active: number, queued: number }> {
    try {
      const counts = await this.#store.counts()
      return { active: counts.running, queued: counts.queued }
    } catch (err) {
      // A shared store out of reach: what this replica knows, its own transfers.
      if (!(err instanceof MdStateStoreUnavailableError)) throw err
      return { active: this.#runs.size, queued: 0 }
    }
  }

  /** Jobs of a model that have not ended: they keep it from being deleted. */
  async unfinishedJobsOf (modelId: string): Promise<DownloadJob[]> {
    return (await this.#store.unfinished()).filter((job) => job.model_id === modelId)
  }

  /** Holds until the job ends (or is paused) or `timeoutMs` passes, then answers it as it is. */
  async waitForFinal (jobId: string, timeoutMs: number): Promise<DownloadJob> {
    const settled = (job: DownloadJob): boolean => isFinal(job.status) || job.status === 'paused'
    const job = await this.get(jobId)
    if (settled(job) || timeoutMs <= 0) return job
    const waiting = this.#waiters.wait(jobId, timeoutMs)
    // It may have ended while the store was read, before the waiter was there to be woken.
    if (settled(await this.get(jobId))) this.#waiters.wake(jobId)
    await waiting
    return this.get(jobId)
  }

  /** Stops a job, wherever it runs; its partial files stay for a later resume unless `purge`. */
  async cancel (jobId: string, purge = false): Promise<DownloadJob> {
    const job = await this.get(jobId)
    if (isFinal(job.status)) return job
    // A job this process is taking from the queue right now is its own once the taking is done.
    if (job.status !== 'queued' && !this.#runs.has(jobId)) await this.#pumping
    const own = this.#runs.get(jobId)
    if (own !== undefined) {
      own.why = 'cancelled'
      own.stop.abort()
      await own.done
      if (purge) await own.run?.purgePartials()
      return this.get(jobId)
    }
    if (job.status === 'queued' || job.status === 'paused') {
      // A paused job has no plan here: planned again only to know which partials to remove.
      const plan = this.#plans.get(jobId) ?? (purge && job.status === 'paused' ? await this.#planAgain(job).catch(() => undefined) : undefined)
      try {
        await this.#finish(jobId, 'cancelled')
        if (purge) await this.#purgeQueued(job, plan)
        return await this.get(jobId)
      } catch (err) {
        // Taken from the queue meanwhile, here or by another replica: stop it where it runs.
        if (!(err instanceof JobTransitionError)) throw err
        if (this.#runs.has(jobId)) return this.cancel(jobId, purge)
      }
    }
    // It runs on another replica: ask that one to stop it, and answer once it has.
    await this.#store.requestCancel(jobId, purge)
    return this.waitForFinal(jobId, REMOTE_CANCEL_WAIT_MS)
  }

  /**
   * Pauses a job, wherever it runs: its transfers close, its partial files stay, its slot goes to the
   * next queued job. A paused job is answered as it is; an ended one is refused.
   */
  async pause (jobId: string): Promise<DownloadJob> {
    const job = await this.get(jobId)
    if (job.status === 'paused') return job
    if (isFinal(job.status)) throw new MdJobEndedError(jobId, job.status, 'paused')
    if (job.status !== 'queued' && !this.#runs.has(jobId)) await this.#pumping
    const own = this.#runs.get(jobId)
    if (own !== undefined) {
      own.why ??= 'paused'
      own.stop.abort()
      await own.done
      return this.get(jobId)
    }
    if (job.status === 'queued') {
      try {
        const paused = await this.#store.transition(jobId, 'paused')
        this.#plans.delete(jobId)
        this.#options.log.info({ job_id: jobId, model_id: job.model_id }, 'download paused')
        return paused
      } catch (err) {
        // Taken from the queue meanwhile, here or by another replica: pause it where it runs.
        if (!(err instanceof JobTransitionError)) throw err
        if (this.#runs.has(jobId)) return this.pause(jobId)
      }
    }
    await this.#store.requestPause(jobId)
    return this.#waitForStop(jobId, REMOTE_CANCEL_WAIT_MS)
  }

  /** Puts a paused job back in the queue; it fetches only what is missing. Any other unended job is answered as it is. */
  async resumeJob (jobId: string): Promise<DownloadJob> {
    const job = await this.get(jobId)
    if (isFinal(job.status)) throw new MdJobEndedError(jobId, job.status, 'resumed')
    if (job.status !== 'paused') return job
    try {
      await this.#store.transition(jobId, 'queued')
    } catch (err) {
      // Resumed (or cancelled) elsewhere at the same moment: answered as it is now.
      if (!(err instanceof JobTransitionError)) throw err
      return this.get(jobId)
    }
    this.#options.log.info({ job_id: jobId, model_id: job.model_id }, 'download resumed')
    await this.pump()
    return this.get(jobId)
  }

  /**
   * Changes a job's own cap on bytes per second (null: none), on whichever replica runs it, for its
   * transfers under way too; kept with the job, so it holds after a restart or a takeover. An ended
   * job is refused.
   */
  async setByteRate (jobId: string, bytesPerS: number | null): Promise<DownloadJob> {
    const job = await this.get(jobId)
    if (isFinal(job.status)) throw new MdJobEndedError(jobId, job.status, 'changed')
    try {
      const changed = await this.#store.setByteRate(jobId, bytesPerS)
      // The store first, the run then: a run that starts meanwhile reads the store's cap (#run).
      this.#runs.get(jobId)?.run?.setByteRate(bytesPerS)
      if ((changed.max_bytes_per_s ?? null) === bytesPerS) return changed
    } catch (err) {
      if (err instanceof JobTransitionError && isFinal(err.from as JobStatus)) throw new MdJobEndedError(jobId, err.from, 'changed')
      throw err
    }
    // Asked of the replica that runs it: answered once that one has written it.
    const after = await this.#waitFor(jobId, (now) => (now.max_bytes_per_s ?? null) === bytesPerS || !RUNNING.has(now.status), REMOTE_CANCEL_WAIT_MS)
    // It stopped running there before it changed: queued or paused now, it is written here.
    if ((after.max_bytes_per_s ?? null) !== bytesPerS && !isFinal(after.status) && !RUNNING.has(after.status)) return this.setByteRate(jobId, bytesPerS)
    if (isFinal(after.status)) throw new MdJobEndedError(jobId, after.status, 'changed')
    return after
  }

  /** Holds until the job no longer runs (paused, ended, queued) or `timeoutMs` passes, then answers it. */
  async #waitForStop (jobId: string, timeoutMs: number): Promise<DownloadJob> {
    return this.#waitFor(jobId, (job) => !RUNNING.has(job.status), timeoutMs)
  }

  /** Holds until the job is as `done` wants it or `timeoutMs` passes, then answers it. */
  async #waitFor (jobId: string, settled: (job: DownloadJob) => boolean, timeoutMs: number): Promise<DownloadJob> {
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        stop()
        resolve()
      }
      const timer = setTimeout(done, timeoutMs)
      const stop = this.#store.onChange((job) => {
        if (job.job_id === jobId && settled(job)) done()
      })
      // It may have settled while the listener was being set up.
      void this.get(jobId).then((job) => { if (settled(job)) done() }, () => done())
    })
    return this.get(jobId)
  }

  /** Graceful shutdown: running jobs stop where they are and keep their `.incomplete` files. */
  async shutdown (): Promise<void> {
    this.#closing = true
    await this.#pumping
    // Jobs queued in a store of this process's own end with it (and resume at the next start); in a
    // shared store, they wait for another replica.
    if (!this.#store.sharedQueue) {
      for (const job of await this.#store.unfinished()) {
        if (job.status === 'queued') await this.#finish(job.job_id, 'cancelled', SHUTDOWN_BEFORE_START).catch(() => {})
      }
    }
    this.#plans.clear()
    await Promise.all([...this.#runs.values()].map(async (own) => {
      own.why ??= 'shutdown'
      own.stop.abort()
      await own.done
    }))
    // A job given back to a shared queue has not ended: who waits for it here is answered now.
    this.#waiters.wakeAll()
  }

  /** Waits for journal writes (and a sweep) under way, so a closed server leaves its journal complete. */
  async flushJournal (): Promise<void> {
    await this.#sweep.settled()
    await this.#store.flush()
  }

  /** Takes queued jobs while there is room: after a change here, or when the store says one may be waiting. */
  async pump (): Promise<void> {
    this.#pumping = this.#pumping.then(async () => this.#claimWhileRoom())
    return this.#pumping
  }

  async #claimWhileRoom (): Promise<void> {
    while (!this.#closing) {
      const job = await this.#store.claim(this.#options.settings.maxConcurrentJobs).catch((err: unknown) => {
        this.#options.log.warn({ reason: (err as Error).message }, 'the queue could not be read; queued jobs start once it can')
        return undefined
      })
      if (job === undefined) return
      const own: OwnRun = { stop: new AbortController() }
      this.#runs.set(job.job_id, own)
      own.done = this.#run(job, own).finally(() => {
        this.#runs.delete(job.job_id)
        void this.pump()
      })
    }
  }

  /** Bytes the running and queued jobs still have to write: free space they will take. */
  async #reservedBytes (): Promise<number> {
    return (await this.#store.unfinished()).reduce((total, job) => total + Math.max(0, job.bytes_total - job.bytes_downloaded), 0)
  }

  /** The plan of a job this process did not queue (another replica did, or it is taken over): at its commit. */
  async #planAgain (job: DownloadJob): Promise<DownloadPlan> {
    const request = await this.#store.request(job.job_id)
    if (request === undefined) throw new MdJobNotFoundError(job.job_id)
    // A job queued while the Hub cooled down has no commit yet: its revision is planned now.
    return this.plan({ ...request, revision: job.commit === '' ? request.revision : job.commit })
  }

  async #run (job: DownloadJob, own: OwnRun): Promise<void> {
    if (job.kind === 'verify') return this.#runVerify(job, own)
    const jobId = job.job_id
    try {
      const plan = this.#plans.get(jobId) ?? await planWhenHubAllows(async () => this.#planAgain(job), own.stop.signal)
      this.#plans.delete(jobId)
      own.stop.signal.throwIfAborted()
      const planned = job.commit === '' ? this.#store.progress(jobId, plannedProgress(plan)) : job
      const run = new JobRun(this.#ctx, planned, plan)
      own.run = run
      // Its cap may have changed since it was taken (setByteRate): the store's is the one.
      run.setByteRate((await this.#store.get(jobId))?.max_bytes_per_s ?? null)
      own.stop.signal.addEventListener('abort', () => run.controller.abort(own.stop.signal.reason), { once: true })
      // A queued job may have waited while the disk filled up.
      await this.#ensureRoom(job.model_id, run.remainingBytes)
      // Which replica runs which job, for whoever reads the logs of several.
      this.#options.log.info({ job_id: jobId, model_id: job.model_id, bytes_remaining: run.remainingBytes }, 'download running here')
      await run.run()
      await this.#finish(jobId, 'complete')
    } catch (err) {
      await this.#stopped(jobId, own, err)
    }
  }

  async #runVerify (job: DownloadJob, own: OwnRun): Promise<void> {
    const jobId = job.job_id
    try {
      const request = await this.#store.request(jobId)
      const run = new VerifyRun(this.#ctx, job, request?.repair === true, {
        makeRoom: async (modelId, bytes) => this.#ensureRoom(modelId, bytes),
        onRepair: (repair) => {
          own.run = repair
          repair.setByteRate(job.max_bytes_per_s ?? null)
        }
      })
      own.stop.signal.addEventListener('abort', () => run.controller.abort(own.stop.signal.reason), { once: true })
      if (own.stop.signal.aborted) run.controller.abort(own.stop.signal.reason)
      this.#options.log.info({ job_id: jobId, model_id: job.model_id, commit: job.commit }, 'verify running here')
      await run.run()
      await this.#finish(jobId, 'complete')
    } catch (err) {
      await this.#stopped(jobId, own, err)
    }
  }

  /** Room for `bytes` more in the cache: the quota evicts what it may, then the disk must have it free (else 507). */
  async #ensureRoom (modelId: string, bytes: number): Promise<void> {
    await this.#quota?.makeRoom(modelId, bytes)
    const free = (await diskSpace(this.#options.cacheDir)).free_bytes
    if (free < bytes) throw insufficientStorage(modelId, bytes, free)
  }

  /** What a run that did not complete ends as; an end that cannot be recorded is logged. */
  async #stopped (jobId: string, own: OwnRun, err: unknown): Promise<void> {
    await this.#recordStop(jobId, own, err).catch((failed: unknown) => {
      this.#options.log.warn({ job_id: jobId, reason: (failed as Error).message }, 'the end of the job could not be recorded')
    })
  }

  async #recordStop (jobId: string, own: OwnRun, err: unknown): Promise<void> {
    if (own.why === 'lost' || err instanceof JobLeaseLostError) {
      // Another replica runs it now: this one writes nothing more of it.
      this.#options.log.warn({ job_id: jobId }, 'download taken over by another replica; this one stops')
    } else if (own.why === 'cancelled') {
      await this.#finish(jobId, 'cancelled')
    } else if (own.why === 'paused') {
      // No callback: the job has not ended. Its partial files stay for the resume.
      const job = await this.#store.transition(jobId, 'paused')
      this.#options.log.info({ job_id: jobId, model_id: job.model_id, bytes_downloaded: job.bytes_downloaded }, 'download paused')
    } else if (own.why === 'shutdown' && this.#store.sharedQueue) {
      // Back to the shared queue: another replica goes on from the partial files.
      await this.#store.transition(jobId, 'queued')
      this.#options.log.info({ job_id: jobId }, 'download given back to the queue by a shutdown')
    } else if (own.why === 'shutdown') {
      await this.#finish(jobId, 'cancelled', SHUTDOWN_DURING)
    } else {
      await this.#finish(jobId, 'error', jobError(err))
    }
  }

  #command (command: RunCommand): void {
    const own = this.#runs.get(command.jobId)
    if (own === undefined) return
    if (command.kind === 'cancel') {
      void this.cancel(command.jobId, command.purge).catch((err: unknown) => {
        this.#options.log.warn({ job_id: command.jobId, reason: (err as Error).message }, 'a cancel sent by another replica failed')
      })
      return
    }
    if (command.kind === 'pause') {
      void this.pause(command.jobId).catch((err: unknown) => {
        this.#options.log.warn({ job_id: command.jobId, reason: (err as Error).message }, 'a pause sent by another replica failed')
      })
      return
    }
    if (command.kind === 'rate') {
      void this.setByteRate(command.jobId, command.bytesPerS ?? null).catch((err: unknown) => {
        this.#options.log.warn({ job_id: command.jobId, reason: (err as Error).message }, 'a cap sent by another replica could not be set')
      })
      return
    }
    own.why = 'lost'
    own.stop.abort(new JobLeaseLostError(command.jobId))
  }

  /** Removes the partials of a queued job that was cancelled with purge (none but an earlier attempt's). */
  async #purgeQueued (job: DownloadJob, plan: DownloadPlan | undefined): Promise<void> {
    if (plan === undefined) return
    await new JobRun(this.#ctx, job, plan).purgePartials()
  }

  async #finish (jobId: string, status: EndStatus, error?: JobError): Promise<void> {
    const request = await this.#store.request(jobId)
    // Stopped by a shutdown, the job stays unfinished in the journal: the next start resumes it,
    // and its callback fires when it really ends.
    const interrupted = error?.code === JOB_END_CODES.serverShutdown && this.#store.keepsInterrupted && request !== undefined
    const job = await this.#store.transition(jobId, status, { error, interrupted })
    this.#ended(job, interrupted ? undefined : request)
  }

  /** What follows the end of a job here: the log, the callback. (Waiters and listeners hear it from the store.) */
  #ended (job: DownloadJob, request: DownloadRequest | undefined): void {
    this.#options.log.info({ job_id: job.job_id, model_id: job.model_id, status: job.status, bytes_transferred: job.bytes_transferred, error: job.error }, 'download ended')
    if (request?.callbackUrl !== undefined) this.#sendCallback(job, request.callbackUrl)
    // A server that restarted soon after a crash sweeps its leftovers once they are old enough.
    void this.#sweep.run()
  }

  /**
   * Tells the caller's callback URL that the job ended, in the background. The body is the job as
   * GET /api/downloads/{job_id} answers it, at the moment it ended; it goes into the store's outbox
   * first, so that if this process dies before it is delivered another replica sends it.
   */
  #sendCallback (job: DownloadJob, url: string): void {
    if (job.callback === null || this.#options.callbacks === undefined) return
    const due = { url, event: job.status, body: JSON.stringify(job) }
    void this.#store.queueCallback(job.job_id, due).catch((err: unknown) => {
      this.#options.log.warn({ job_id: job.job_id, reason: (err as Error).message }, 'the callback could not be put in the shared outbox; this replica sends it')
    }).finally(() => this.#deliver(job.job_id, due, { ...job.callback! }))
  }

  /** One delivery: the sender keeps its own copy of the state and tells the store after every attempt. */
  #deliver (jobId: string, due: DueCallback, delivery: CallbackState): void {
    const warn = (what: string) => (err: unknown): void => {
      this.#options.log.warn({ job_id: jobId, reason: (err as Error).message }, what)
    }
    this.#options.callbacks?.send(due.url, due.event, due.body, delivery,
      () => { void this.#store.recordCallback(jobId, delivery).catch(warn('the callback delivery could not be recorded on the job')) },
      () => { void this.#store.callbackSettled(jobId).catch(warn('the delivered callback could not be taken out of the outbox')) })
  }

  /** A callback another replica queued and could not deliver: sent from here, with the same body. */
  async #deliverOrphan (jobId: string, due: DueCallback): Promise<void> {
    const job = await this.#store.get(jobId).catch(() => undefined)
    const state = job?.callback ?? newCallbackState(due.url)
    this.#deliver(jobId, due, { ...state })
  }
}
