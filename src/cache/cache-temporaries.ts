import { randomUUID } from 'node:crypto'
import { lstat, mkdir, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { repoDir, TMP_FOLDER, TRASH_FOLDER, trashDirOf } from './cache-layout.js'
import { ifMissing } from './cache-scan.js'

// modeldepot makes links, refs and parts states aside in the repo's `.modeldepot-tmp/` and renames
// them into place; a delete renames a folder into a trash (the repo's `.modeldepot-trash/` for a
// snapshot, `.locks/.modeldepot-trash/` for a whole model) and then removes it. A temporary lives
// for milliseconds, so one much older was left by a process killed between the two steps.

/**
 * Old enough that no live process (this one, or a replica on the same volume) still means to rename
 * it, with room for the clock of a file server that differs from ours; keeping a leftover an hour costs nothing.
 */
export const ABANDONED_AFTER_MS = 60 * 60_000

const OWN_LOCK_SUFFIX = '.modeldepot.lock'

// The state files' own temporaries (write-file-atomic's `jobs.json.<n>`, `state.json.<uuid>.tmp`).
const STATE_TEMPORARY = /^[\w-]+\.json\.[\w-]+(\.tmp)?$/

/** A fresh name in the repo's folder, outside snapshots/ and refs/, where a scanner would take a leftover for real. */
export async function temporaryPath (cacheDir: string, repoId: string): Promise<string> {
  const dir = join(repoDir(cacheDir, repoId), TMP_FOLDER)
  await mkdir(dir, { recursive: true })
  return join(dir, randomUUID())
}

/**
 * Removes what killed processes left: entries of the temporary folder old enough to be abandoned,
 * modeldepot's own blob locks as old (a held one has its time renewed every few seconds; a process
 * killed while it wrote a small file beside the one it died on leaves one), and every folder in the
 * trash (never needed again; a replica removing the same one at once is harmless with `force`).
 * huggingface_hub's own `.lock` files are never touched. Answers how many entries went.
 */
export async function sweepAbandoned (cacheDir: string, now: number = Date.now()): Promise<number> {
  let removed = 0
  const repos = (await readdir(cacheDir).catch(ifMissing<string[]>([]))).filter((name) => name.startsWith('models--'))
  const trashes = [trashDirOf(cacheDir)]
  for (const repo of repos) {
    const tmp = join(cacheDir, repo, TMP_FOLDER)
    removed += await removeAbandoned((await readdir(tmp).catch(ifMissing<string[]>([]))).map((name) => join(tmp, name)), now)
    trashes.push(join(cacheDir, repo, TRASH_FOLDER))
  }
  const lockDirs = (await readdir(join(cacheDir, '.locks')).catch(ifMissing<string[]>([]))).filter((name) => name.startsWith('models--'))
  for (const repo of lockDirs) {
    const locks = join(cacheDir, '.locks', repo)
    const own = (await readdir(locks).catch(ifMissing<string[]>([]))).filter((name) => name.endsWith(OWN_LOCK_SUFFIX))
    removed += await removeAbandoned(own.map((name) => join(locks, name)), now)
  }
  for (const trash of trashes) {
    for (const name of await readdir(trash).catch(ifMissing<string[]>([]))) {
      await rm(join(trash, name), { recursive: true, force: true })
      removed++
    }
  }
  return removed
}

/** Removes the temporaries of state files (in STATE_DIR) that a killed process left; answers how many went. */
export async function sweepAbandonedStateTemporaries (stateDir: string, now: number = Date.now()): Promise<number> {
  const names = (await readdir(stateDir).catch(ifMissing<string[]>([]))).filter((name) => STATE_TEMPORARY.test(name))
  return removeAbandoned(names.map((name) => join(stateDir, name)), now)
}

async function removeAbandoned (paths: string[], now: number): Promise<number> {
  let removed = 0
  for (const path of paths) {
    const stats = await lstat(path).catch(ifMissing(undefined))
    if (stats === undefined || now - stats.mtimeMs < ABANDONED_AFTER_MS) continue
    await rm(path, { recursive: true, force: true })
    removed++
  }
  return removed
}
