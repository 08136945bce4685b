import { join } from 'node:path'

// The on-disk layout of Python's huggingface_hub (file_download.py), so transformers, vLLM and TGI
// find what modeldepot downloads, and modeldepot finds what they downloaded:
//   {cache}/models--{org}--{name}/blobs/{etag}               file contents, named by their hash
//   {cache}/models--{org}--{name}/snapshots/{commit}/{path}  relative symlinks into blobs/
//   {cache}/models--{org}--{name}/refs/{revision}            the commit a branch or tag points to
//   {cache}/.locks/models--{org}--{name}/{etag}.modeldepot.lock  one writer per blob among modeldepot replicas
//   {cache}/.locks/models--{org}--{name}/{etag}.lock            huggingface_hub's flock, which modeldepot takes too
// huggingface_hub also keeps two records per commit, which modeldepot reads for nothing (the listing
// and the planner go by snapshots/ and blobs/) and deletes with their commit:
//   {cache}/models--{org}--{name}/.no_exist/{commit}/{path}  empty: `path` is not in that commit (file_download.py)
//   {cache}/models--{org}--{name}/trees/{commit}.json        that commit's file listing (1.x, _tree_cache.py)
// and nothing else of modeldepot's at the top of the cache (its state is in STATE_DIR): scan_cache_dir()
// warns about any other entry there but `.locks`. What must be renamed into the cache is made inside
// the repo's folder, where huggingface_hub reads only refs/, snapshots/ and blobs/:
//   {cache}/models--{org}--{name}/.modeldepot-tmp/     links, refs and part states made aside
//   {cache}/models--{org}--{name}/.modeldepot-trash/   a deleted snapshot, on its way out
//   {cache}/.locks/.modeldepot-trash/                  a deleted model folder, on its way out
// huggingface_hub's own `{etag}.lock` is a flock file that it leaves behind; proper-lockfile's lock
// directory (with its takeover of a dead holder's lock) cannot be that file, so ours sits beside it, and
// the writer of a blob holds both (hub-flock.ts). huggingface_hub writes `blobs/{etag}.incomplete`
// (0.x and 1.x; later ones `{etag}.{8 hex}.incomplete`); modeldepot's partial has a name of its own,
// `blobs/{etag}.modeldepot.incomplete`, so neither ever appends to the other's.

/** `org/name` → `models--org--name`. */
export const repoFolderName = (repoId: string): string => `models--${repoId.split('/').join('--')}`

export const repoDir = (cacheDir: string, repoId: string): string => join(cacheDir, repoFolderName(repoId))
export const blobsDir = (cacheDir: string, repoId: string): string => join(repoDir(cacheDir, repoId), 'blobs')
export const blobPath = (cacheDir: string, repoId: string, etag: string): string => join(blobsDir(cacheDir, repoId), etag)
/** Where modeldepot writes a blob until it is verified; kept across restarts to resume. Still ends in `.incomplete`, as partials do. */
export const incompletePath = (cacheDir: string, repoId: string, etag: string): string => `${blobPath(cacheDir, repoId, etag)}.modeldepot.incomplete`
/** huggingface_hub's partial, and modeldepot's before it had a name of its own. */
export const sharedIncompletePath = (cacheDir: string, repoId: string, etag: string): string => `${blobPath(cacheDir, repoId, etag)}.incomplete`
export const snapshotDir = (cacheDir: string, repoId: string, commit: string): string => join(repoDir(cacheDir, repoId), 'snapshots', commit)
export const snapshotFilePath = (cacheDir: string, repoId: string, commit: string, filePath: string): string =>
  join(snapshotDir(cacheDir, repoId, commit), ...filePath.split('/'))
export const refPath = (cacheDir: string, repoId: string, revision: string): string => join(repoDir(cacheDir, repoId), 'refs', ...revision.split('/'))
/** huggingface_hub's records that files are not in a commit (one empty file per path, nested as the path is). */
export const noExistDir = (cacheDir: string, repoId: string, commit: string): string => join(repoDir(cacheDir, repoId), NO_EXIST_FOLDER, commit)
/** huggingface_hub's (1.x) cached file listing of a commit. */
export const treeListingPath = (cacheDir: string, repoId: string, commit: string): string => join(repoDir(cacheDir, repoId), TREES_FOLDER, `${commit}.json`)
export const NO_EXIST_FOLDER = '.no_exist'
export const TREES_FOLDER = 'trees'
export const TMP_FOLDER = '.modeldepot-tmp'
export const TRASH_FOLDER = '.modeldepot-trash'
/**
 * modeldepot's temporary files for a repo: in its folder (the same file system as what they are
 * renamed to, so renames are atomic, even when the folder is a mount of its own), outside refs/,
 * snapshots/ and blobs/.
 */
export const tmpDirOf = (cacheDir: string, repoId: string): string => join(repoDir(cacheDir, repoId), TMP_FOLDER)
/** Where a deleted snapshot is moved (one atomic rename, inside its repo's folder) before it is removed. */
export const repoTrashDirOf = (cacheDir: string, repoId: string): string => join(repoDir(cacheDir, repoId), TRASH_FOLDER)
/** Where a deleted model folder is moved (one atomic rename) before it is removed: `.locks` is the one other entry scan_cache_dir() skips. */
export const trashDirOf = (cacheDir: string): string => join(cacheDir, '.locks', TRASH_FOLDER)
export const lockPath = (cacheDir: string, repoId: string, etag: string): string => join(cacheDir, '.locks', repoFolderName(repoId), `${etag}.modeldepot.lock`)
/** huggingface_hub's flock file for a blob (file_download.py `hf_hub_download`): created if missing, never deleted by a download. */
export const hubLockPath = (cacheDir: string, repoId: string, etag: string): string => join(cacheDir, '.locks', repoFolderName(repoId), `${etag}.lock`)
