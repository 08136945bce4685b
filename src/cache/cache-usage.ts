import type { Stats } from 'node:fs'
import { lstat, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { blobsDir, repoDir } from './cache-layout.js'
import { ifMissing, listCachedModelIds } from './cache-scan.js'

/** Why a model is never evicted. */
export type ProtectionReason = 'default_model' | 'pinned' | 'active_job'

/** What keeps models from eviction, read afresh at each use (another replica may have changed it). */
export interface Protection {
  defaultModel: string | null
  pinned: ReadonlySet<string>
  /** Models with a job that has not ended (queued, downloading, verifying, paused): their files are in use. */
  activeJobs: ReadonlySet<string>
}

export interface ModelUsage {
  model_id: string
  /** Every file of the model's folder: blobs, partials, links, refs. What evicting it frees. */
  size_bytes: number
  /** The later of its blobs' newest atime and modeldepot's own record; null when neither is known. */
  last_used_at: string | null
  protected: ProtectionReason | null
}

export function protectionOf (modelId: string, protection: Protection): ProtectionReason | null {
  if (protection.defaultModel === modelId) return 'default_model'
  if (protection.pinned.has(modelId)) return 'pinned'
  if (protection.activeJobs.has(modelId)) return 'active_job'
  return null
}

/** Bytes of every regular file under a folder (links count as nothing: their targets are counted where they are). */
export async function treeBytes (dir: string): Promise<number> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(ifMissing([]))
  let total = 0
  for (const entry of entries) if (entry.isDirectory()) total += await treeBytes(join(dir, entry.name))
  const files = entries.filter((entry) => entry.isFile()).map((entry) => join(dir, entry.name))
  for (const stats of await lstatAll(files)) total += stats?.size ?? 0
  return total
}

const STATS_AT_ONCE = 64

/** lstat of many paths, several at once (a 10 000-blob model waits on the thread pool otherwise); undefined for one gone meanwhile. */
async function lstatAll (paths: string[]): Promise<Array<Stats | undefined>> {
  const all: Array<Stats | undefined> = []
  for (let i = 0; i < paths.length; i += STATS_AT_ONCE) {
    all.push(...await Promise.all(paths.slice(i, i + STATS_AT_ONCE).map(async (path) => lstat(path).catch(ifMissing(undefined)))))
  }
  return all
}

/** The newest atime of a model's blobs (huggingface_hub's `last_accessed`), in ms; lstat reads it without moving it. */
async function newestBlobAtime (cacheDir: string, modelId: string): Promise<number | undefined> {
  const blobs = blobsDir(cacheDir, modelId)
  const names = (await readdir(blobs).catch(ifMissing<string[]>([]))).filter((name) => !name.includes('.incomplete'))
  let newest: number | undefined
  for (const stats of await lstatAll(names.map((name) => join(blobs, name)))) {
    if (stats !== undefined && (newest === undefined || stats.atimeMs > newest)) newest = stats.atimeMs
  }
  return newest
}

/**
 * Every model folder in the cache in the order the quota evicts them: the evictable ones least
 * recently used first, then the protected ones (in the same order), each with its size, last use
 * and why it is protected.
 */
export async function evictionOrder (cacheDir: string, recordedUse: Readonly<Record<string, { at: string }>>, protection: Protection): Promise<ModelUsage[]> {
  const models: Array<ModelUsage & { lastUsedMs: number }> = []
  for (const modelId of await listCachedModelIds(cacheDir)) {
    const atime = await newestBlobAtime(cacheDir, modelId)
    const recorded = recordedUse[modelId] === undefined ? undefined : Date.parse(recordedUse[modelId].at)
    const lastUsedMs = Math.max(atime ?? -Infinity, recorded ?? -Infinity)
    models.push({
      model_id: modelId,
      size_bytes: await treeBytes(repoDir(cacheDir, modelId)),
      last_used_at: Number.isFinite(lastUsedMs) ? new Date(lastUsedMs).toISOString() : null,
      protected: protectionOf(modelId, protection),
      lastUsedMs
    })
  }
  // Never used is oldest; a tie goes by id, so the order is the same at every call.
  models.sort((a, b) => Number(a.protected !== null) - Number(b.protected !== null) || a.lastUsedMs - b.lastUsedMs || a.model_id.localeCompare(b.model_id))
  return models.map(({ lastUsedMs: _, ...model }) => model)
}
