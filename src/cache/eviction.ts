import { deleteCachedModel } from './cache-delete.js'
import { evictionOrder, protectionOf, treeBytes, type ModelUsage, type Protection } from './cache-usage.js'
import { diskSpace, type DiskSpace } from './disk-space.js'
import { MdInsufficientStorageError } from '../errors.js'

export interface CacheQuotaSettings {
  /** CACHE_MAX_BYTES: every file under the hub cache counts. */
  maxBytes: number | undefined
  /** CACHE_HIGH_WATERMARK / CACHE_LOW_WATERMARK: percent used of the disk that holds the cache. */
  highWatermarkPercent: number | undefined
  lowWatermarkPercent: number | undefined
}

/** One model the quota evicted, as the logs, the metrics and the system status tell it. */
export interface Eviction {
  at: string
  model_id: string
  freed_bytes: number
  last_used_at: string | null
  /** The download that needed the room. */
  for_model: string
}

export interface CacheQuotaOptions {
  cacheDir: string
  settings: CacheQuotaSettings
  /** Read afresh before each eviction: another replica may have pinned a model or started a job meanwhile. */
  protection: () => Promise<Protection>
  lastUse: () => Promise<Readonly<Record<string, { at: string }>>>
  log: { info: (fields: object, message: string) => void }
  onEvicted: (eviction: Eviction) => void
  now?: () => number
  /** The disk's figures; statfs(2) of the cache unless a test passes a disk of its own. */
  disk?: (path: string) => Promise<DiskSpace>
}

/** How many bytes must go for a download of `neededBytes` to fit, and how many had better go (down to the low watermark). */
export interface RoomNeeded { required: number, wanted: number }

/**
 * The quota on the hub cache: before a download starts, whole models are evicted, least recently
 * used first, until it fits under CACHE_MAX_BYTES, under the high watermark (then down to the low
 * one) and on the disk. The default model, pinned models and models with a job that has not ended
 * are never evicted, nor the model being downloaded. When what may be evicted is not enough, nothing
 * is evicted and the download fails at once with 507 MD_INSUFFICIENT_STORAGE.
 */
export class CacheQuota {
  readonly #options: CacheQuotaOptions
  // One decision at a time in this process: two downloads starting at once must not count the same room twice.
  #deciding: Promise<void> = Promise.resolve()

  constructor (options: CacheQuotaOptions) {
    this.#options = options
  }

  /** Off unless CACHE_MAX_BYTES or the watermarks are set: then modeldepot never evicts. */
  get enabled (): boolean {
    const { maxBytes, highWatermarkPercent } = this.#options.settings
    return maxBytes !== undefined || highWatermarkPercent !== undefined
  }

  async roomNeeded (neededBytes: number): Promise<RoomNeeded> {
    const { cacheDir, settings } = this.#options
    const [disk, cacheBytes] = await Promise.all([(this.#options.disk ?? diskSpace)(cacheDir), treeBytes(cacheDir)])
    let required = Math.max(0, neededBytes - disk.free_bytes)
    let wanted = 0
    if (settings.maxBytes !== undefined) required = Math.max(required, cacheBytes + neededBytes - settings.maxBytes)
    if (settings.highWatermarkPercent !== undefined && settings.lowWatermarkPercent !== undefined && disk.total_bytes > 0) {
      const usedAfter = disk.total_bytes - disk.free_bytes + neededBytes
      const high = Math.floor(disk.total_bytes * settings.highWatermarkPercent / 100)
      if (usedAfter > high) {
        required = Math.max(required, usedAfter - high)
        wanted = usedAfter - Math.floor(disk.total_bytes * settings.lowWatermarkPercent / 100)
      }
    }
    return { required, wanted: Math.max(required, wanted) }
  }

  /** Evicts what a download of `neededBytes` into `modelId` needs, or throws 507 having evicted nothing. */
  async makeRoom (modelId: string, neededBytes: number): Promise<void> {
    if (!this.enabled) return
    const decided = this.#deciding.then(async () => this.#makeRoom(modelId, neededBytes))
    this.#deciding = decided.catch(() => {})
    return decided
  }

  async #makeRoom (modelId: string, neededBytes: number): Promise<void> {
    const { cacheDir, log } = this.#options
    const room = await this.roomNeeded(neededBytes)
    if (room.wanted <= 0) return
    const order = await evictionOrder(cacheDir, await this.#options.lastUse(), await this.#options.protection())
    const candidates = order.filter((model) => model.protected === null && model.model_id !== modelId)
    const freeable = candidates.reduce((total, model) => total + model.size_bytes, 0)
    if (freeable < room.required) throw shortfall(modelId, neededBytes, room.required, freeable, order)
    let freed = 0
    for (const model of candidates) {
      if (freed >= room.wanted) break
      // Pinned, made the default or downloaded on another replica since the order was read: kept.
      if (protectionOf(model.model_id, await this.#options.protection()) !== null) continue
      const gone = await deleteCachedModel(cacheDir, model.model_id)
      if (gone === undefined) continue
      freed += model.size_bytes
      const eviction: Eviction = {
        at: new Date((this.#options.now ?? Date.now)()).toISOString(),
        model_id: model.model_id,
        freed_bytes: model.size_bytes,
        last_used_at: model.last_used_at,
        for_model: modelId
      }
      log.info(eviction, 'model evicted from the cache to make room for a download')
      this.#options.onEvicted(eviction)
    }
    if (freed < room.required) throw shortfall(modelId, neededBytes, room.required, freed, order)
  }
}

function shortfall (modelId: string, downloadBytes: number, required: number, freeable: number, order: ModelUsage[]): MdInsufficientStorageError {
  const kept = order.flatMap((model) => model.protected === null ? [] : [{ model_id: model.model_id, reason: model.protected }])
  const message = `Not enough room for ${modelId} (${downloadBytes} bytes): ${required} bytes must be freed under the cache quota and only ${freeable} can be evicted`
  return new MdInsufficientStorageError(message, { neededBytes: required, freeableBytes: freeable, protected: kept })
}
