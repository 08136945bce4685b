import { unlink } from 'node:fs/promises'
import { blobPath, lockPath } from '../cache/cache-layout.js'
import { checkSnapshot, snapshotEntries, type SnapshotEntry } from '../cache/snapshot-verify.js'
import { MdModelNotCachedError } from '../errors.js'
import { acquireBlobLock } from './blob-lock.js'
import { HASH_IN_WORKER_BYTES, hashPool } from './hash-pool.js'
import type { DownloadJob, VerifyResult } from './download-job.js'
import { planDownload, sum, type DownloadPlan } from './download-plan.js'
import { JobRun, type RunContext } from './job-run.js'
import { SpeedMeter } from './speed-meter.js'

/** What a verify job needs of the manager that runs it. */
export interface VerifyHooks {
  /** Room for the bytes a repair fetches (the cache quota, the free space); throws 507. */
  makeRoom: (modelId: string, bytes: number) => Promise<void>
  /** The repair's download, so that a pause, a cancel or a new cap reaches its transfers. */
  onRepair: (run: JobRun) => void
}

/** A verify job's totals: every distinct blob the snapshot links to, each counted once. */
export function verifyTotals (entries: readonly SnapshotEntry[]): { bytes: number, files: number } {
  const sizes = new Map<string, number>()
  for (const entry of entries) if (entry.blob !== undefined && entry.size !== undefined) sizes.set(entry.blob, entry.size)
  return { bytes: sum([...sizes.values()]), files: entries.length }
}

/**
 * One verify job: re-hashes every file of a cached revision offline (snapshot-verify.ts), with
 * progress, and tells what it found; with `repair`, removes the mismatched blobs, fetches exactly the
 * mismatched and missing files again (as a download of those files only, at the same commit, with
 * their hashes checked as every download's are) and tells which it repaired.
 */
export class VerifyRun {
  readonly controller = new AbortController()
  readonly #ctx: RunContext
  readonly #job: DownloadJob
  readonly #repair: boolean
  readonly #hooks: VerifyHooks
  readonly #meter: SpeedMeter

  constructor (ctx: RunContext, job: DownloadJob, repair: boolean, hooks: VerifyHooks) {
    this.#ctx = ctx
    this.#job = job
    this.#repair = repair
    this.#hooks = hooks
    this.#meter = new SpeedMeter(5000, ctx.now)
  }

  /** Runs to the end; throws what stopped it (the manager decides what the job's status becomes). */
  async run (): Promise<void> {
    const { signal } = this.controller
    const { cacheDir, store } = this.#ctx
    const job = this.#job
    const entries = await snapshotEntries(cacheDir, job.model_id, job.commit)
    if (entries.length === 0) throw new MdModelNotCachedError(`${job.model_id}@${job.commit} is no longer in the cache`)
    const totals = verifyTotals(entries)
    let hashed = 0
    const tell = (extra: { verify?: VerifyResult, current?: string[] } = {}): void => {
      this.#meter.record(hashed)
      const speed = this.#meter.bytesPerSecond()
      store.progress(job.job_id, {
        bytes_downloaded: hashed,
        progress: totals.bytes === 0 ? 100 : Math.floor((hashed / totals.bytes) * 100),
        bytes_transferred: 0,
        files_done: extra.verify === undefined ? 0 : totals.files,
        speed_bps: speed,
        eta_seconds: speed > 0 ? Math.ceil((totals.bytes - hashed) / speed) : null,
        current_files: extra.current ?? [],
        bytes_total: totals.bytes,
        files_total: totals.files,
        ...(extra.verify === undefined ? {} : { verify: extra.verify })
      })
    }
    const found = await checkSnapshot(cacheDir, job.model_id, entries, (bytes) => {
      hashed += bytes
      tell()
    }, signal, { minBytes: HASH_IN_WORKER_BYTES, hash: hashPool.hashWholeFile.bind(hashPool) })
    const result: VerifyResult = { mismatched: found.mismatched, missing: found.missing, unchecked: found.unchecked }
    tell({ verify: result })
    const bad = new Set([...found.mismatched, ...found.missing])
    this.#ctx.log.info({ job_id: job.job_id, model_id: job.model_id, commit: job.commit, mismatched: found.mismatched.length, missing: found.missing.length }, 'cached revision verified')
    if (!this.#repair || bad.size === 0) return
    await this.#repairFiles(entries.filter((entry) => bad.has(entry.path)), result)
  }

  /** Fetches the bad files again: a download of exactly those files at the verified commit. */
  async #repairFiles (bad: SnapshotEntry[], result: VerifyResult): Promise<void> {
    const { signal } = this.controller
    const { cacheDir, hub, store } = this.#ctx
    const job = this.#job
    // A mismatched blob goes first, under its lock (no writer of it meanwhile): its name is the hash it must have.
    for (const entry of bad) {
      if (entry.blob === undefined || entry.size === undefined || !result.mismatched.includes(entry.path)) continue
      const release = await acquireBlobLock(lockPath(cacheDir, job.model_id, entry.blob), signal, () => {})
      try {
        await unlink(blobPath(cacheDir, job.model_id, entry.blob)).catch(() => {})
      } finally {
        await release().catch(() => {})
      }
    }
    const paths = new Set(bad.map((entry) => entry.path))
    const full = await planDownload(hub, cacheDir, { modelId: job.model_id, revision: job.commit })
    const files = full.files.filter((file) => paths.has(file.path))
    const plan: DownloadPlan = {
      ...full,
      files,
      bytes_total: sum(files.map((file) => file.size)),
      bytes_cached: sum(files.map((file) => file.cached ? file.size : file.partial_bytes)),
      bytes_missing: sum(files.map((file) => file.cached ? 0 : file.size - file.partial_bytes))
    }
    signal.throwIfAborted()
    // While it repairs, the job's counts are those of the files it fetches again.
    const repairing = await store.transition(job.job_id, 'downloading', {
      progress: {
        bytes_downloaded: plan.bytes_cached,
        progress: plan.bytes_total === 0 ? 100 : Math.floor((plan.bytes_cached / plan.bytes_total) * 100),
        bytes_transferred: 0,
        files_done: files.filter((file) => file.cached).length,
        speed_bps: 0,
        eta_seconds: null,
        current_files: [],
        bytes_total: plan.bytes_total,
        files_total: files.length
      }
    })
    await this.#hooks.makeRoom(job.model_id, plan.bytes_missing)
    // At its commit, never its branch: the ref stays what it is (another download may have moved it meanwhile).
    const run = new JobRun(this.#ctx, { ...repairing, revision: job.commit, set_default: false }, plan)
    signal.addEventListener('abort', () => run.controller.abort(signal.reason), { once: true })
    if (signal.aborted) run.controller.abort(signal.reason)
    this.#hooks.onRepair(run)
    await run.run()
    const repaired = files.map((file) => file.path)
    this.#ctx.log.info({ job_id: job.job_id, model_id: job.model_id, repaired }, 'cached revision repaired')
    const after = await store.get(job.job_id)
    store.progress(job.job_id, { ...progressOf(after ?? repairing), verify: { ...result, repaired } })
  }
}

const progressOf = (job: DownloadJob): Parameters<RunContext['store']['progress']>[1] => ({
  bytes_downloaded: job.bytes_downloaded,
  progress: job.progress,
  bytes_transferred: job.bytes_transferred,
  files_done: job.files_done,
  speed_bps: job.speed_bps,
  eta_seconds: job.eta_seconds,
  current_files: [...job.current_files]
})
