import type { Redis } from 'ioredis'
import { MdModelNotCachedError } from '../errors.js'
import { listCachedModelIds } from './cache-scan.js'
import { evictionOrder, treeBytes, type ModelUsage, type Protection } from './cache-usage.js'
import type { DefaultModelStore } from './default-model-store.js'
import { diskSpace } from './disk-space.js'
import { CacheQuota, type CacheQuotaSettings, type Eviction } from './eviction.js'
import { LastUseStore, PinStore } from './pin-store.js'
import { findPrunable, prune, type PruneItem } from './prune.js'

export interface CacheControlOptions {
  cacheDir: string
  stateDir: string
  settings: CacheQuotaSettings
  defaultModel: DefaultModelStore
  /** The ids of the models with a job that has not ended, from the job store (across replicas with Redis). */
  activeModels: () => Promise<string[]>
  log: { info: (fields: object, message: string) => void, warn: (fields: object, message: string) => void }
  now?: () => number
}

/** What GET /api/cache answers. */
export interface CacheState {
  cache_dir: string
  size_bytes: number
  max_bytes: number | null
  high_watermark_percent: number | null
  low_watermark_percent: number | null
  disk_total_bytes: number
  disk_free_bytes: number
  disk_used_percent: number
  eviction_order: ModelUsage[]
}

export interface PinState { model_id: string, pinned: boolean, pinned_at: string | null }

export interface PruneResult { dry_run: boolean, items: PruneItem[], total_bytes: number, freed_bytes: number }

const RECENT_EVICTIONS = 20

/**
 * The disk side of the cache: pins, modeldepot's record of when it last used each model, the quota
 * that evicts least recently used models, and prune. The one owner of pins and last-use records.
 */
export class CacheControl {
  readonly #options: CacheControlOptions
  readonly #pins: PinStore
  readonly #lastUse: LastUseStore
  readonly quota: CacheQuota
  readonly #evictions: Eviction[] = []
  #evictionCount = 0
  /** Last uses being written in the background; a closed app waits for them, and writes no more. */
  readonly #recording = new Set<Promise<void>>()
  #closed = false

  constructor (options: CacheControlOptions) {
    this.#options = options
    this.#pins = new PinStore(options.stateDir)
    this.#lastUse = new LastUseStore(options.stateDir)
    this.quota = new CacheQuota({
      cacheDir: options.cacheDir,
      settings: options.settings,
      protection: async () => this.protection(),
      lastUse: async () => this.#lastUse.all(),
      log: options.log,
      ...(options.now === undefined ? {} : { now: options.now }),
      onEvicted: (eviction) => {
        this.#evictionCount++
        this.#evictions.unshift(eviction)
        this.#evictions.length = Math.min(this.#evictions.length, RECENT_EVICTIONS)
      }
    })
  }

  /** With REDIS_URL: pins and last-use records are the cluster's. */
  share (redis: Redis, prefix: string): void {
    this.#pins.share(redis, prefix)
    this.#lastUse.share(redis, prefix)
  }

  /** Evictions this process made since it started. */
  get evictionCount (): number {
    return this.#evictionCount
  }

  /** The newest evictions this process made, newest first. */
  get recentEvictions (): readonly Eviction[] {
    return this.#evictions
  }

  async protection (): Promise<Protection> {
    const [defaultModel, pins, active] = await Promise.all([this.#options.defaultModel.get(), this.#pins.all(), this.#options.activeModels()])
    return { defaultModel: defaultModel.model_id, pinned: new Set(Object.keys(pins)), activeJobs: new Set(active) }
  }

  async pinned (): Promise<ReadonlySet<string>> {
    return new Set(Object.keys(await this.#pins.all()))
  }

  /** A model in the cache, or one still downloading, may be pinned; anything else is a 404. */
  async pin (modelId: string): Promise<PinState> {
    const cached = (await listCachedModelIds(this.#options.cacheDir)).includes(modelId)
    if (!cached && !(await this.#options.activeModels()).includes(modelId)) {
      throw new MdModelNotCachedError(`${modelId} is not in the cache and not downloading, so there is nothing to pin`)
    }
    const existing = (await this.#pins.all())[modelId]
    const pinnedAt = existing?.pinned_at ?? this.#nowIso()
    if (existing === undefined) await this.#pins.set(modelId, { pinned_at: pinnedAt })
    return { model_id: modelId, pinned: true, pinned_at: pinnedAt }
  }

  /** Unpinning a model that is not pinned is no error: the answer is the same. */
  async unpin (modelId: string): Promise<PinState> {
    if ((await this.#pins.all())[modelId] !== undefined) await this.#pins.set(modelId, undefined)
    return { model_id: modelId, pinned: false, pinned_at: null }
  }

  /** Notes that modeldepot used a model now (downloaded, verified, made the default); a failure to note it is only logged. */
  async recordUse (modelId: string): Promise<void> {
    if (this.#closed) return
    const recording = this.#lastUse.set(modelId, { at: this.#nowIso() }).catch((err: unknown) => {
      this.#options.log.warn({ model_id: modelId, reason: (err as Error).message }, 'the last use of the model could not be recorded')
    })
    this.#recording.add(recording)
    await recording.finally(() => this.#recording.delete(recording))
  }

  /** Waits for the last uses being written; none is written after. */
  async close (): Promise<void> {
    this.#closed = true
    await Promise.all(this.#recording)
  }

  async state (): Promise<CacheState> {
    const { cacheDir, settings } = this.#options
    const [disk, sizeBytes, order] = await Promise.all([
      diskSpace(cacheDir),
      treeBytes(cacheDir),
      (async () => evictionOrder(cacheDir, await this.#lastUse.all(), await this.protection()))()
    ])
    const used = disk.total_bytes - disk.free_bytes
    return {
      cache_dir: cacheDir,
      size_bytes: sizeBytes,
      max_bytes: settings.maxBytes ?? null,
      high_watermark_percent: settings.highWatermarkPercent ?? null,
      low_watermark_percent: settings.lowWatermarkPercent ?? null,
      disk_total_bytes: disk.total_bytes,
      disk_free_bytes: disk.free_bytes,
      disk_used_percent: disk.total_bytes === 0 ? 0 : Math.round((used / disk.total_bytes) * 1000) / 10,
      eviction_order: order
    }
  }

  /** A dry run (the default) lists what would go and changes nothing on disk. */
  async prune (request: { dryRun: boolean, detached: boolean }): Promise<PruneResult> {
    const options = { detached: request.detached, activeModels: new Set(await this.#options.activeModels()), now: Date.now() }
    const items = request.dryRun ? await findPrunable(this.#options.cacheDir, options) : await prune(this.#options.cacheDir, options)
    const total = items.reduce((sum, item) => sum + item.bytes, 0)
    if (!request.dryRun && items.length > 0) this.#options.log.info({ items: items.length, freed_bytes: total }, 'cache pruned')
    return { dry_run: request.dryRun, items, total_bytes: total, freed_bytes: request.dryRun ? 0 : total }
  }

  #nowIso (): string {
    return new Date((this.#options.now ?? Date.now)()).toISOString()
  }
}
