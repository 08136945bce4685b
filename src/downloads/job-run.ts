import { readdir, stat, unlink } from 'node:fs/promises'
import pLimit from 'p-limit'
import { basename } from 'node:path'
import { blobPath, blobsDir, hubLockPath, incompletePath, lockPath, sharedIncompletePath, tmpDirOf } from '../cache/cache-layout.js'
import { ABANDONED_AFTER_MS } from '../cache/cache-temporaries.js'
import type { DefaultModelStore } from '../cache/default-model-store.js'
import { createSnapshotLink, hasBlob, writeRef } from '../cache/snapshot-links.js'
import { MdStateStoreUnavailableError } from '../errors.js'
import type { HubClient } from '../hub/hub-client.js'
import { downloadToTmpAndMove } from './blob-fetcher.js'
import { acquireBlobLock, tryBlobLock, type ReleaseLock } from './blob-lock.js'
import type { DownloadJob } from './download-job.js'
import type { JobProgress, JobStore } from './job-store.js'
import type { DownloadSettings } from './download-settings.js'
import { sum, type DownloadPlan, type PlannedFile } from './download-plan.js'
import { acquireHubFlock, FlockUnavailableError, tryHubFlock } from './hub-flock.js'
import { PartState } from './part-state.js'
import { RetryableError, withRetries } from './retry.js'
import { SpeedMeter } from './speed-meter.js'
import { ByteRate } from './byte-rate.js'
import { adoptSharedPartial, blobMatches } from './shared-blob.js'

export interface Logger {
  info: (obj: object, msg: string) => void
  warn: (obj: object, msg: string) => void
}

/** What every run of one manager shares. */
export interface RunContext {
  cacheDir: string
  hub: HubClient
  defaultModel: DefaultModelStore
  settings: DownloadSettings
  log: Logger
  now: () => number
  /** Where the run tells its progress: the job itself is the store's. */
  store: JobStore
  // One transfer per blob in this process: a job that needs a blob another job is fetching waits for it.
  blobsInFlight: Map<string, Promise<void>>
  /** Every byte any job brings over the network (the metrics count them). */
  onTransferred: (bytes: number) => void
  /** The server's cap on bytes per second (the cluster's, with Redis), which every job keeps. */
  serverRate: ByteRate
}

let flockWarned = false

const abortable = async (promise: Promise<unknown>, signal: AbortSignal): Promise<void> => {
  signal.throwIfAborted()
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    void promise.catch(() => {}).finally(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    })
  })
}

/**
 * One job's download: links what the cache has, fetches the rest (files in parallel, each under its
 * blob lock), and publishes the ref once every file is verified and linked.
 */
export class JobRun {
  readonly controller = new AbortController()
  why: 'cancelled' | 'shutdown' | undefined
  readonly #ctx: RunContext
  // What the job was when the run was made: the fields that never change while it runs.
  readonly #job: DownloadJob
  readonly #plan: DownloadPlan
  // The run's own counts, told to the store as progress; the store's job is never changed here.
  #bytesDownloaded: number
  #bytesTransferred: number
  #filesDone: number
  #currentFiles: string[] = []
  readonly #positions = new Map<string, number>()
  // Kept as running totals: update() runs for every chunk of every file, and a sum over all the
  // files there made a 10 000-file download quadratic.
  readonly #cachedBytes: number
  #positionsTotal = 0
  readonly #meter: SpeedMeter
  readonly #connection: <T>(task: () => Promise<T>) => Promise<T>
  /** The job's own cap, if it has one, under the server's. */
  readonly #rate: ByteRate

  constructor (ctx: RunContext, job: DownloadJob, plan: DownloadPlan) {
    this.#ctx = ctx
    this.#job = job
    this.#plan = plan
    this.#bytesDownloaded = job.bytes_downloaded
    this.#filesDone = job.files_done
    this.#bytesTransferred = job.bytes_transferred
    this.#meter = new SpeedMeter(5000, ctx.now)
    this.#cachedBytes = sum(plan.files.filter((file) => file.cached).map((file) => file.size))
    const connections = pLimit(ctx.settings.maxConnectionsPerJob)
    this.#connection = async (task) => connections(task)
    this.#rate = new ByteRate(job.max_bytes_per_s ?? null, ctx.serverRate)
  }

  /** A new cap of the job's own (null: none), for the transfers under way too. */
  setByteRate (bytesPerS: number | null): void {
    this.#rate.set(bytesPerS)
  }

  get plan (): DownloadPlan {
    return this.#plan
  }

  /** Bytes this job still has to bring in. */
  get remainingBytes (): number {
    return Math.max(0, this.#job.bytes_total - this.#bytesDownloaded)
  }

  /** Runs to the end; throws what stopped it (the manager decides what the job's status becomes). */
  async run (): Promise<void> {
    const { signal } = this.controller
    for (const file of this.#plan.files.filter((candidate) => candidate.cached)) {
      await createSnapshotLink(this.#ctx.cacheDir, this.#job.model_id, this.#plan.commit, file.path, file.etag)
    }
    const limit = pLimit(this.#ctx.settings.fileConcurrency)
    const tasks = this.#plan.files.filter((file) => !file.cached).map(async (file) => limit(async () => {
      signal.throwIfAborted()
      await this.#fetchFile(file)
    }).catch((err: unknown) => {
      // One file that cannot be fetched ends the job: stop the others rather than fill the disk.
      this.controller.abort(err)
      throw err
    }))
    // Every task has stopped (none still writing or holding a lock) before the job is said to end.
    const settled = await Promise.allSettled(tasks)
    limit.clearQueue()
    if (signal.aborted) throw signal.reason
    const failed = settled.find((result) => result.status === 'rejected')
    if (failed !== undefined) throw failed.reason
    await this.#ctx.store.transition(this.#job.job_id, 'verifying', { progress: this.progress() })
    await this.#publish(true)
  }

  /** Links every planned file, then writes the ref: the revision appears only once all of it is there. */
  async publishCached (): Promise<void> {
    await this.#publish(false)
  }

  /** `fenced`: the job is in the store, and only the process that holds it may publish it. */
  async #publish (fenced: boolean): Promise<void> {
    const { cacheDir } = this.#ctx
    for (const file of this.#plan.files) {
      this.controller.signal.throwIfAborted()
      await createSnapshotLink(cacheDir, this.#job.model_id, this.#plan.commit, file.path, file.etag)
    }
    this.controller.signal.throwIfAborted()
    // A process that was paused and lost the job to another replica must not publish over its work.
    if (fenced) await this.#ctx.store.fence(this.#job.job_id)
    await writeRef(cacheDir, this.#job.model_id, this.#job.revision, this.#plan.commit)
    if (this.#job.set_default) {
      // The download is complete either way; a default model Redis cannot take now is said, not a failure.
      await this.#ctx.defaultModel.set(this.#job.model_id).catch((err: unknown) => {
        if (!(err instanceof MdStateStoreUnavailableError)) throw err
        this.#ctx.log.warn({ job_id: this.#job.job_id, model_id: this.#job.model_id }, 'the model could not be made the default: Redis is unreachable; set it again with PUT /api/default-model')
      })
    }
    // Tidying up: the snapshot is complete whether or not it succeeds.
    await this.#removeLeftovers().catch((err: unknown) => {
      this.#ctx.log.warn({ job_id: this.#job.job_id, reason: (err as Error).message }, 'leftover partial files could not be removed')
    })
  }

  /**
   * Every file of the job is in blobs/ now, so a partial of one of them (a dead process's, beside a
   * blob that was complete all along) is a leftover that would never go. One written to lately may
   * be another tool's (huggingface_hub takes its own lock, not ours): it stays.
   */
  async #removeLeftovers (): Promise<void> {
    const { cacheDir } = this.#ctx
    const modelId = this.#job.model_id
    const names = new Set(await readdir(blobsDir(cacheDir, modelId)).catch(() => []))
    const abandoned: PlannedFile[] = []
    const idle = async (path: string): Promise<boolean> => {
      const partial = await stat(path).catch(() => undefined)
      return partial === undefined || Date.now() - partial.mtimeMs >= ABANDONED_AFTER_MS
    }
    for (const file of this.#plan.files) {
      const paths = [incompletePath(cacheDir, modelId, file.etag), sharedIncompletePath(cacheDir, modelId, file.etag)]
      if (!paths.some((path) => names.has(basename(path)) || names.has(`${basename(path)}.parts.json`))) continue
      if (await idle(paths[0]!) && await idle(paths[1]!) && await hasBlob(cacheDir, modelId, file.etag, file.size)) abandoned.push(file)
    }
    await this.purgePartials(abandoned)
  }

  /**
   * Deletes this job's partial files, except those another job or process is writing right now: its
   * own, and one under the shared name (an earlier modeldepot's, or a dead huggingface_hub's) if
   * huggingface_hub's lock is free too.
   */
  async purgePartials (files: readonly PlannedFile[] = this.#plan.files): Promise<void> {
    const { cacheDir, blobsInFlight } = this.#ctx
    const modelId = this.#job.model_id
    const remove = async (partial: string): Promise<void> => {
      await unlink(partial).catch(() => {})
      await new PartState(partial, tmpDirOf(cacheDir, modelId)).remove()
    }
    for (const file of files) {
      if (blobsInFlight.has(blobPath(cacheDir, modelId, file.etag))) continue
      const release = await tryBlobLock(lockPath(cacheDir, modelId, file.etag))
      if (release === undefined) continue
      try {
        await remove(incompletePath(cacheDir, modelId, file.etag))
        const shared = sharedIncompletePath(cacheDir, modelId, file.etag)
        if (await stat(shared).catch(() => undefined) === undefined) continue
        const releaseHub = await tryHubFlock(hubLockPath(cacheDir, modelId, file.etag))
        if (releaseHub === undefined) continue
        await remove(shared).finally(releaseHub)
      } finally {
        await release().catch(() => {})
      }
    }
  }

  /** The progress as of now (it feeds the speed meter, so it is taken once per change). */
  progress (): JobProgress {
    const total = this.#job.bytes_total
    // Progress never goes backwards, even when a bad transfer starts a file again.
    this.#bytesDownloaded = Math.max(this.#bytesDownloaded, this.#cachedBytes + this.#positionsTotal)
    this.#meter.record(this.#bytesTransferred)
    const speed = this.#meter.bytesPerSecond()
    return {
      bytes_downloaded: this.#bytesDownloaded,
      progress: total === 0 ? 0 : Math.floor((this.#bytesDownloaded / total) * 100),
      bytes_transferred: this.#bytesTransferred,
      files_done: this.#filesDone,
      speed_bps: speed,
      eta_seconds: speed > 0 ? Math.ceil((total - this.#bytesDownloaded) / speed) : null,
      current_files: this.#currentFiles
    }
  }

  update (): void {
    this.#ctx.store.progress(this.#job.job_id, this.progress())
  }

  #setPosition (path: string, bytes: number): void {
    this.#positionsTotal += bytes - (this.#positions.get(path) ?? 0)
    this.#positions.set(path, bytes)
  }

  async #fetchFile (file: PlannedFile): Promise<void> {
    const job = this.#job
    const { signal } = this.controller
    this.#currentFiles = [...this.#currentFiles, file.path]
    try {
      await withRetries(async () => this.#ensureBlob(file), this.#ctx.settings.retry, {
        signal,
        onRetry: (err, attempt, delayMs) => this.#ctx.log.warn({ job_id: job.job_id, file: file.path, attempt, delay_ms: delayMs, reason: err.message }, 'download retry')
      }).catch((err: unknown) => {
        throw err instanceof RetryableError ? new RetryableError(`${file.path}: ${err.message}`) : err
      })
      signal.throwIfAborted()
      await createSnapshotLink(this.#ctx.cacheDir, job.model_id, job.commit, file.path, file.etag)
      this.#setPosition(file.path, file.size)
      this.#filesDone++
    } finally {
      this.#currentFiles = this.#currentFiles.filter((path) => path !== file.path)
      this.update()
    }
  }

  async #ensureBlob (file: PlannedFile): Promise<void> {
    const { cacheDir, blobsInFlight } = this.#ctx
    const target = blobPath(cacheDir, this.#job.model_id, file.etag)
    for (;;) {
      if (await hasBlob(cacheDir, this.#job.model_id, file.etag, file.size)) return
      const other = blobsInFlight.get(target)
      if (other === undefined) break
      await abortable(other, this.controller.signal)
    }
    const transfer = this.#transferLocked(file, target)
    blobsInFlight.set(target, transfer)
    try {
      await transfer
    } finally {
      blobsInFlight.delete(target)
    }
  }

  /** Under the blob's cross-process lock: another process may have finished it while we waited. */
  async #transferLocked (file: PlannedFile, target: string): Promise<void> {
    const { cacheDir } = this.#ctx
    // A lock lost to another writer stops this transfer; the retry takes the lock again.
    const attempt = new AbortController()
    const stop = (): void => attempt.abort(this.controller.signal.reason)
    this.controller.signal.addEventListener('abort', stop, { once: true })
    try {
      const release = await acquireBlobLock(lockPath(cacheDir, this.#job.model_id, file.etag), attempt.signal, (err) => {
        this.#ctx.log.warn({ job_id: this.#job.job_id, file: file.path, reason: err.message }, 'blob lock lost; the transfer stops and retries')
        attempt.abort(new RetryableError('the blob lock was lost to another writer'))
      })
      try {
        // huggingface_hub's lock too, for as long as the blob is written, verified and renamed.
        const releaseHub = await this.#acquireHubLock(file, attempt.signal)
        try {
          if (await this.#completedMeanwhile(file, target, attempt.signal)) return
          const modelId = this.#job.model_id
          if (await adoptSharedPartial(sharedIncompletePath(cacheDir, modelId, file.etag), incompletePath(cacheDir, modelId, file.etag))) {
            this.#ctx.log.info({ job_id: this.#job.job_id, file: file.path }, 'a partial under the shared name `{etag}.incomplete` is resumed under modeldepot\'s own')
          }
          await this.#transfer(file, target, attempt.signal)
        } finally {
          await releaseHub().catch(() => {})
        }
      } catch (err) {
        throw this.controller.signal.aborted ? err : (attempt.signal.reason ?? err)
      } finally {
        await release().catch(() => {})
      }
    } finally {
      this.controller.signal.removeEventListener('abort', stop)
    }
  }

  /** huggingface_hub's flock on the blob; without flock(1) on this host, only modeldepot's own lock guards it (said once). */
  async #acquireHubLock (file: PlannedFile, signal: AbortSignal): Promise<ReleaseLock> {
    try {
      return await acquireHubFlock(hubLockPath(this.#ctx.cacheDir, this.#job.model_id, file.etag), signal)
    } catch (err) {
      if (!(err instanceof FlockUnavailableError)) throw err
      if (!flockWarned) this.#ctx.log.warn({ reason: err.message }, 'huggingface_hub\'s blob locks cannot be taken: a download of the same file by huggingface_hub at the same time is not kept out')
      flockWarned = true
      return async () => {}
    }
  }

  /**
   * The blob is there now: another program (a replica, huggingface_hub) finished it while we waited.
   * It is used if it hashes to its etag; else it is fetched again and replaced (said in the log).
   */
  async #completedMeanwhile (file: PlannedFile, target: string, signal: AbortSignal): Promise<boolean> {
    if (await stat(target).catch(() => undefined) === undefined) return false
    if (await blobMatches({ path: target, size: file.size, etag: file.etag, lfs: file.lfs }, signal)) return true
    this.#ctx.log.warn({ job_id: this.#job.job_id, file: file.path }, 'the blob another program put in the cache does not match its etag: fetched again, and replaced')
    return false
  }

  async #transfer (file: PlannedFile, target: string, signal: AbortSignal): Promise<void> {
    const { cacheDir, hub, settings } = this.#ctx
    const job = this.#job
    await downloadToTmpAndMove({
      url: hub.fileUrl(job.model_id, job.commit, file.path),
      partialPath: incompletePath(cacheDir, job.model_id, file.etag),
      blobPath: target,
      tmpDir: tmpDirOf(cacheDir, job.model_id),
      size: file.size,
      etag: file.etag,
      lfs: file.lfs
    }, {
      endpoint: hub.endpoint,
      hubHeaders: () => hub.authHeaders,
      throughHub: async (request, signal) => hub.send(request, signal),
      request: hub.request,
      connection: this.#connection,
      readTimeoutMs: settings.readTimeoutMs,
      partSize: settings.partSizeBytes,
      connectionsPerFile: settings.connectionsPerFile,
      rate: this.#rate
    }, {
      signal,
      onPosition: (bytes) => {
        if (bytes > (this.#positions.get(file.path) ?? 0)) {
          this.#setPosition(file.path, bytes)
          this.update()
        }
      },
      onTransferred: (bytes) => {
        this.#bytesTransferred += bytes
        this.#ctx.onTransferred(bytes)
      }
    })
  }
}
