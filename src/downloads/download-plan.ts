import { mkdir, readdir, stat } from 'node:fs/promises'
import { basename } from 'node:path'
import pLimit from 'p-limit'
import { blobsDir, incompletePath, sharedIncompletePath, tmpDirOf } from '../cache/cache-layout.js'
import { diskSpace } from '../cache/disk-space.js'
import { hasBlob } from '../cache/snapshot-links.js'
import { MdNoFilesMatchedError } from '../errors.js'
import { filterRepoFiles } from '../hub/file-patterns.js'
import type { HubClient, HubFile } from '../hub/hub-client.js'
import { PartState } from './part-state.js'

export interface DownloadRequest {
  modelId: string
  revision: string
  allowPatterns?: string[] | undefined
  ignorePatterns?: string[] | undefined
  setDefault?: boolean | undefined
  /** Where to POST the job when it ends (already checked against CALLBACK_ALLOWED_HOSTS). */
  callbackUrl?: string | undefined
  /** This job's cap on bytes per second (the server's applies too); undefined or null for none. */
  maxBytesPerS?: number | null | undefined
  /** false: a Hub cooling down fails the request (503) instead of queueing the job until it ends. */
  waitForProvider?: boolean | undefined
  /** `verify`: re-hash the cached revision (POST /api/models/verify) instead of downloading it. */
  kind?: 'verify' | undefined
  /** A verify job: fetch the mismatched and missing files again once they are found. */
  repair?: boolean | undefined
}

export interface PlannedFile extends HubFile {
  cached: boolean
  /** Bytes of an unfinished earlier download, to resume. */
  partial_bytes: number
}

export interface DownloadPlan {
  model_id: string
  revision: string
  commit: string
  files: PlannedFile[]
  bytes_total: number
  /** Verified files already in the cache plus resumable partial bytes. */
  bytes_cached: number
  bytes_missing: number
  free_bytes: number
}

const CHECKS_AT_ONCE = 16

export const sum = (values: number[]): number => values.reduce((total, value) => total + value, 0)

/** Resolves the revision, applies the patterns and checks what the cache already holds; downloads nothing. */
export async function planDownload (hub: HubClient, cacheDir: string, request: DownloadRequest): Promise<DownloadPlan> {
  const snapshot = await hub.resolveSnapshot(request.modelId, request.revision)
  const wanted = new Set(filterRepoFiles(snapshot.files.map((file) => file.path), request.allowPatterns, request.ignorePatterns))
  if (wanted.size === 0) {
    throw new MdNoFilesMatchedError(`No file of ${request.modelId}@${request.revision} matches the given allow_patterns / ignore_patterns (${snapshot.files.length} files in the repository)`)
  }
  // One listing of blobs/ spares a 10 000-file repository some 30 000 file system calls for files
  // that are not there; those that are get checked a few at a time.
  const present = new Set(await readdir(blobsDir(cacheDir, request.modelId)).catch(() => []))
  const limit = pLimit(CHECKS_AT_ONCE)
  const files: PlannedFile[] = await Promise.all(snapshot.files.filter((candidate) => wanted.has(candidate.path)).map(async (file) => limit(async () => {
    const cached = present.has(file.etag) && await hasBlob(cacheDir, request.modelId, file.etag, file.size)
    const own = present.has(basename(incompletePath(cacheDir, request.modelId, file.etag)))
    const partial = !cached && (own || present.has(`${file.etag}.incomplete`)) ? await partialBytes(cacheDir, request.modelId, file, own) : 0
    return { ...file, cached, partial_bytes: partial }
  })))
  const missing = files.filter((file) => !file.cached)
  if (snapshot.gated && missing[0] !== undefined) await hub.checkFileAccess(request.modelId, snapshot.commit, missing[0].path)
  await mkdir(cacheDir, { recursive: true })
  const bytesTotal = sum(files.map((file) => file.size))
  const bytesCached = sum(files.map((file) => file.cached ? file.size : file.partial_bytes))
  return {
    model_id: request.modelId,
    revision: request.revision,
    commit: snapshot.commit,
    files,
    bytes_total: bytesTotal,
    bytes_cached: bytesCached,
    bytes_missing: bytesTotal - bytesCached,
    free_bytes: (await diskSpace(cacheDir)).free_bytes
  }
}

/**
 * Bytes of a file already on disk from an earlier attempt: its saved parts, or a plain prefix. Without
 * a partial of modeldepot's own, the shared `{etag}.incomplete` counts: the download takes it over.
 */
async function partialBytes (cacheDir: string, modelId: string, file: HubFile, own: boolean): Promise<number> {
  const partial = (own ? incompletePath : sharedIncompletePath)(cacheDir, modelId, file.etag)
  const parts = await new PartState(partial, tmpDirOf(cacheDir, modelId)).load(file.etag, file.size)
  if (parts !== undefined) return sum(parts.map((part) => part.done))
  return Math.min(file.size, (await stat(partial).catch(() => undefined))?.size ?? 0)
}
