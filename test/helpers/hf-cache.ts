import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'

// Writes models into a cache directory the way Python's huggingface_hub does, independently of
// modeldepot's own code, so tests see what "another tool downloaded it" looks like.

export const gitSha1 = (content: string | Buffer): string => {
  const bytes = Buffer.from(content)
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex')
}
export const sha256 = (content: string | Buffer): string => createHash('sha256').update(content).digest('hex')

export interface CachedFileSpec { path: string, content: string | Buffer, lfs?: boolean }

export function writeCachedSnapshot (cacheDir: string, modelId: string, commit: string, files: CachedFileSpec[], refs: string[] = []): void {
  const repo = join(cacheDir, `models--${modelId.replace('/', '--')}`)
  for (const file of files) {
    const etag = file.lfs === true ? sha256(file.content) : gitSha1(file.content)
    const blob = join(repo, 'blobs', etag)
    mkdirSync(dirname(blob), { recursive: true })
    writeFileSync(blob, file.content)
    const link = join(repo, 'snapshots', commit, ...file.path.split('/'))
    mkdirSync(dirname(link), { recursive: true })
    symlinkSync(relative(dirname(link), blob), link)
  }
  mkdirSync(join(repo, 'snapshots', commit), { recursive: true })
  for (const ref of refs) {
    mkdirSync(dirname(join(repo, 'refs', ref)), { recursive: true })
    writeFileSync(join(repo, 'refs', ref), commit)
  }
}

/** What huggingface_hub writes when the Hub answers 404 for `paths` at `commit` (touch, parents made as needed). */
export function writeNoExist (cacheDir: string, modelId: string, commit: string, paths: string[]): void {
  for (const path of paths) {
    const file = join(cacheDir, `models--${modelId.replace('/', '--')}`, '.no_exist', commit, ...path.split('/'))
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(file, '')
  }
}

/**
 * What huggingface_hub 1.x writes after listing a commit in snapshot_download (_tree_cache.py, json.dump
 * with indent=1). An LFS file's real blob_id is its pointer's git sha1; nothing in modeldepot reads it.
 */
export function writeTreeListing (cacheDir: string, modelId: string, commit: string, files: CachedFileSpec[]): void {
  const listing: Record<string, Record<string, unknown>> = {}
  for (const file of [...files].sort((a, b) => a.path.localeCompare(b.path))) {
    const size = Buffer.byteLength(file.content)
    listing[file.path] = file.lfs === true
      ? { size, blob_id: gitSha1(file.content), lfs_sha256: sha256(file.content), lfs_size: size }
      : { size, blob_id: gitSha1(file.content) }
  }
  const path = join(cacheDir, `models--${modelId.replace('/', '--')}`, 'trees', `${commit}.json`)
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, JSON.stringify({ format_version: 1, files: listing }, null, 1))
}

/** What a reader with HF_HUB_OFFLINE=1 does: refs/{revision} → snapshots/{commit}/{path} → the blob's bytes. */
export function readAsOfflineReader (cacheDir: string, modelId: string, revision: string, path: string): Buffer {
  const repo = join(cacheDir, `models--${modelId.replace('/', '--')}`)
  const commit = /^[0-9a-f]{40}$/.test(revision) ? revision : readFileSync(join(repo, 'refs', revision), 'utf8')
  return readFileSync(join(repo, 'snapshots', commit, ...path.split('/')))
}

/** The link target as written on disk (relative, as huggingface_hub writes it). */
export const linkTarget = (cacheDir: string, modelId: string, commit: string, path: string): string =>
  readlinkSync(join(cacheDir, `models--${modelId.replace('/', '--')}`, 'snapshots', commit, ...path.split('/')))
