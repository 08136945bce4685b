import { join } from 'node:path'

// The on-disk layout of Python's huggingface_hub (file_download.py), so transformers, vLLM and TGI
// find what modeldepot downloads, and modeldepot finds what they downloaded:
//   {cache}/models--{org}--{name}/blobs/{etag}               file contents, named by their hash
//   {cache}/models--{org}--{name}/snapshots/{commit}/{path}  relative symlinks into blobs/
//   {cache}/models--{org}--{name}/refs/{revision}            the commit a branch or tag points to
//   {cache}/.locks/models--{org}--{name}/{etag}.modeldepot.lock  one writer per blob
// huggingface_hub's own `{etag}.lock` is a flock file that it leaves behind; Node cannot flock without
// a native addon, and a lock directory at that path would break Python's next open() of it. So ours
// sits beside it. Python (>= 1.18) writes process-unique `.incomplete` files, so the two never share one.

/** `org/name` → `models--org--name`. */
export const repoFolderName = (repoId: string): string => `models--${repoId.split('/').join('--')}`

export const repoDir = (cacheDir: string, repoId: string): string => join(cacheDir, repoFolderName(repoId))
export const blobsDir = (cacheDir: string, repoId: string): string => join(repoDir(cacheDir, repoId), 'blobs')
export const blobPath = (cacheDir: string, repoId: string, etag: string): string => join(blobsDir(cacheDir, repoId), etag)
/** Where a blob is written until it is verified; kept across restarts to resume. */
export const incompletePath = (cacheDir: string, repoId: string, etag: string): string => `${blobPath(cacheDir, repoId, etag)}.incomplete`
export const snapshotDir = (cacheDir: string, repoId: string, commit: string): string => join(repoDir(cacheDir, repoId), 'snapshots', commit)
export const snapshotFilePath = (cacheDir: string, repoId: string, commit: string, filePath: string): string =>
  join(snapshotDir(cacheDir, repoId, commit), ...filePath.split('/'))
export const refPath = (cacheDir: string, repoId: string, revision: string): string => join(repoDir(cacheDir, repoId), 'refs', ...revision.split('/'))
/** modeldepot's temporary files: inside the cache (same file system, so renames are atomic), outside any repo. */
export const tmpDirOf = (cacheDir: string): string => join(cacheDir, '.modeldepot', 'tmp')
/** Where a deleted model folder is moved before it is removed (see cache-delete.ts). */
export const trashDirOf = (cacheDir: string): string => join(cacheDir, '.modeldepot', 'trash')
export const lockPath = (cacheDir: string, repoId: string, etag: string): string => join(cacheDir, '.locks', repoFolderName(repoId), `${etag}.modeldepot.lock`)
