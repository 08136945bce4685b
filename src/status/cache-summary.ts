import { takeFingerprint, unchangedSince, type CacheFingerprint } from '../cache/cache-fingerprint.js'
import { listCachedModelIds, scanCachedModel, sortModels, type CachedModel } from '../cache/cache-scan.js'

export interface CacheSummary { models: CachedModel[], total_bytes: number, scanned_at: number }

/** One model as last scanned, and what its scan read. */
interface ModelScan { model: CachedModel | undefined, fingerprint: CacheFingerprint }
interface Scan { summary: CacheSummary, root: CacheFingerprint, byModel: Map<string, ModelScan> }

/**
 * The cache scan, kept so that GET /api/models, the status and the metrics do not walk every link of
 * every snapshot on each call (10 000 files take about a second). Why not a TTL: a listing must show
 * a download or a delete at once, and one that a short TTL keeps fresh still pays the full walk every
 * few seconds. Instead the scan is read again
 * - all of it when modeldepot says it changed the disk (`invalidate`: a download's end, a delete);
 * - one model when the mtime of a directory, ref or partial its last scan read has moved, which is
 *   also how a change by another program writing the same cache (huggingface_hub) shows;
 * - the list of models when the cache directory's own mtime has moved (a model folder came or went).
 * Checking costs one stat per directory of the cache, not one per file. A running download changes
 * its model's partials, so that model (and only it) is read again at each call while it runs.
 */
export class CachedScan {
  readonly #cacheDir: string
  readonly #now: () => number
  #current: Promise<Scan> | undefined

  constructor (cacheDir: string, now: () => number = Date.now) {
    this.#cacheDir = cacheDir
    this.#now = now
  }

  /** The next call reads everything again. */
  invalidate (): void {
    this.#current = undefined
  }

  async get (): Promise<CacheSummary> {
    const current = this.#current
    const previous = current === undefined ? undefined : await current.catch(() => undefined)
    if (previous !== undefined && await this.#unchanged(previous)) return previous.summary
    // Someone else started a newer scan (or invalidated) while this call checked: go with that.
    if (this.#current !== current) return this.get()
    const scan = this.#scan(previous)
    this.#current = scan
    return (await scan).summary
  }

  async #unchanged (scan: Scan): Promise<boolean> {
    const checks = [scan.root, ...[...scan.byModel.values()].map((model) => model.fingerprint)]
    return (await Promise.all(checks.map(unchangedSince))).every(Boolean)
  }

  /** A new scan, reusing each model of `previous` whose folders have not changed. */
  async #scan (previous: Scan | undefined): Promise<Scan> {
    const startedAt = this.#now()
    const rootPaths: string[] = []
    const modelIds = await listCachedModelIds(this.#cacheDir, (path) => rootPaths.push(path))
    const byModel = new Map<string, ModelScan>()
    for (const modelId of modelIds) {
      const before = previous?.byModel.get(modelId)
      byModel.set(modelId, before !== undefined && await unchangedSince(before.fingerprint) ? before : await this.#scanModel(modelId))
    }
    const models = sortModels([...byModel.values()].flatMap((scan) => scan.model === undefined ? [] : [scan.model]))
    return {
      summary: {
        models,
        total_bytes: models.reduce((total, model) => total + model.size_bytes + model.incomplete_bytes, 0),
        scanned_at: this.#now()
      },
      root: await takeFingerprint(rootPaths, startedAt),
      byModel
    }
  }

  async #scanModel (modelId: string): Promise<ModelScan> {
    const startedAt = this.#now()
    const paths: string[] = []
    const model = await scanCachedModel(this.#cacheDir, modelId, (path) => paths.push(path))
    return { model, fingerprint: await takeFingerprint(paths, startedAt) }
  }
}
