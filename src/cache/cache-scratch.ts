import { lstat, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { tmpDirOf, trashDirOf } from './cache-layout.js'
import { ifMissing } from './cache-scan.js'

/** A scratch file lives for milliseconds, between its creation and its rename; one this old is a dead process's. */
export const SCRATCH_STALE_MS = 60_000

/**
 * Removes what a process that died mid-way (kill -9, a power cut) left in modeldepot's scratch
 * folders, which nothing else would ever remove: files made aside in `.modeldepot/tmp` and never
 * renamed into place (a snapshot link to nowhere, half a part state or ref), and model folders moved
 * to `.modeldepot/trash` and never finished. A scratch file younger than SCRATCH_STALE_MS may be
 * another replica's, about to be renamed: it stays. Answers how many entries went.
 */
export async function removeStaleScratch (cacheDir: string, now: number = Date.now()): Promise<number> {
  let removed = 0
  const tmp = tmpDirOf(cacheDir)
  for (const name of await readdir(tmp).catch(ifMissing<string[]>([]))) {
    const stats = await lstat(join(tmp, name)).catch(ifMissing(undefined))
    if (stats === undefined || now - stats.mtimeMs < SCRATCH_STALE_MS) continue
    await rm(join(tmp, name), { recursive: true, force: true })
    removed++
  }
  // A folder in the trash is never needed again; a replica deleting the same one at once is harmless (force).
  const trash = trashDirOf(cacheDir)
  for (const name of await readdir(trash).catch(ifMissing<string[]>([]))) {
    await rm(join(trash, name), { recursive: true, force: true })
    removed++
  }
  return removed
}
