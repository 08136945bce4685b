import { createHash } from 'node:crypto'
import { open, readlink, stat } from 'node:fs/promises'
import { basename, dirname, relative, resolve, sep } from 'node:path'
import { blobsDir, snapshotDir } from './cache-layout.js'
import { ifMissing, walkFiles } from './cache-scan.js'

// An offline check of one cached revision, from what the cache itself records, as `hf cache verify`
// checks a file: a snapshot file links to `blobs/{name}`, and the name is the file's hash — the
// sha256 of its content for an LFS file (64 hex digits), the git blob sha1 of the rest (40 hex
// digits: sha1 over "blob <size>\0" + content). Nothing is asked of the Hub.

const SHA256 = /^[0-9a-f]{64}$/
const GIT_SHA1 = /^[0-9a-f]{40}$/
const READ_CHUNK = 4 * 1024 * 1024

/** A snapshot file and the blob it links to. */
export interface SnapshotEntry {
  /** The file's path in the repository, `/`-separated. */
  path: string
  /** The blob's name in `blobs/` (its expected hash), or undefined when the file is no link into `blobs/`. */
  blob: string | undefined
  /** The blob's size; undefined when the blob is missing. */
  size: number | undefined
}

export interface SnapshotCheck {
  /** Files whose blob's content does not hash to its name. */
  mismatched: string[]
  /** Files whose link points to a blob that is not there. */
  missing: string[]
  /** Files nothing records a hash for (a copied file, a link out of `blobs/`, a blob name that is no hash): not checked. */
  unchecked: string[]
}

/** Every file of a cached snapshot, with its blob; sorted by path. */
export async function snapshotEntries (cacheDir: string, modelId: string, commit: string): Promise<SnapshotEntry[]> {
  const root = snapshotDir(cacheDir, modelId, commit)
  const blobs = resolve(blobsDir(cacheDir, modelId))
  const entries: SnapshotEntry[] = []
  for (const file of await walkFiles(root)) {
    const path = relative(root, file).split(sep).join('/')
    const target = await readlink(file).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'EINVAL') return undefined // a regular file: huggingface_hub copies when it cannot link
      throw err
    })
    const entry = target === undefined ? undefined : resolve(dirname(file), target)
    if (entry === undefined || dirname(entry) !== blobs) {
      entries.push({ path, blob: undefined, size: undefined })
      continue
    }
    const stats = await stat(entry).catch(ifMissing(undefined))
    entries.push({ path, blob: basename(entry), size: stats?.isFile() === true ? stats.size : undefined })
  }
  return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
}

/** The blob's expected hash kind by its name, or undefined when the name is no hash. */
export const hashKindOf = (blob: string): 'sha256' | 'git-sha1' | undefined =>
  SHA256.test(blob) ? 'sha256' : GIT_SHA1.test(blob) ? 'git-sha1' : undefined

/**
 * Hashes a whole file somewhere other than this thread (the downloads' hash threads): its sha256, or
 * for `lfs: false` its git blob sha1; rejects with `code` ENOENT for a file that is not there.
 */
export interface FileHasher {
  /** Blobs at least this large go to it; smaller ones are hashed here (a thread costs more than their hash). */
  minBytes: number
  hash: (path: string, lfs: boolean, onHashed: (bytes: number) => void, signal: AbortSignal) => Promise<string>
}

/**
 * Hashes every blob the entries link to (each once, however many files link to it) and compares it
 * with its name. `onHashed` is told the bytes read after each chunk; `signal` stops it between chunks.
 * Blobs of `elsewhere.minBytes` and more are hashed by `elsewhere`, so the event loop only waits.
 */
export async function checkSnapshot (
  cacheDir: string, modelId: string, entries: readonly SnapshotEntry[], onHashed: (bytes: number) => void, signal: AbortSignal,
  elsewhere?: FileHasher
): Promise<SnapshotCheck> {
  const result: SnapshotCheck = { mismatched: [], missing: [], unchecked: [] }
  const verdicts = new Map<string, boolean>()
  const buffer = Buffer.allocUnsafe(READ_CHUNK)
  for (const entry of entries) {
    signal.throwIfAborted()
    const kind = entry.blob === undefined ? undefined : hashKindOf(entry.blob)
    if (entry.blob === undefined || kind === undefined) {
      result.unchecked.push(entry.path)
      continue
    }
    if (entry.size === undefined) {
      result.missing.push(entry.path)
      continue
    }
    let matches = verdicts.get(entry.blob)
    if (matches === undefined) {
      const path = resolve(blobsDir(cacheDir, modelId), entry.blob)
      const digest = elsewhere !== undefined && entry.size >= elsewhere.minBytes
        ? await elsewhere.hash(path, kind === 'sha256', onHashed, signal).catch(ifMissing(undefined))
        : await hashBlob(path, kind, buffer, onHashed, signal)
      // Removed while it was read (another program's delete): missing, not mismatched.
      if (digest === undefined) {
        result.missing.push(entry.path)
        continue
      }
      matches = digest === entry.blob
      verdicts.set(entry.blob, matches)
    }
    if (!matches) result.mismatched.push(entry.path)
  }
  return result
}

async function hashBlob (path: string, kind: 'sha256' | 'git-sha1', buffer: Buffer, onHashed: (bytes: number) => void, signal: AbortSignal): Promise<string | undefined> {
  const handle = await open(path, 'r').catch(ifMissing(undefined))
  if (handle === undefined) return undefined
  try {
    // The size the sha1 covers is the one read now: a blob that changed size since it was listed still hashes as it is.
    const actualSize = (await handle.stat()).size
    const hash = kind === 'sha256' ? createHash('sha256') : createHash('sha1').update(`blob ${actualSize}\0`)
    let position = 0
    for (;;) {
      signal.throwIfAborted()
      const { bytesRead } = await handle.read(buffer, 0, READ_CHUNK, position)
      if (bytesRead === 0) break
      hash.update(buffer.subarray(0, bytesRead))
      position += bytesRead
      onHashed(bytesRead)
    }
    return hash.digest('hex')
  } finally {
    await handle.close()
  }
}
