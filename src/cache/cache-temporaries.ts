import { randomUUID } from 'node:crypto'
import { lstat, mkdir, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { tmpDirOf, trashDirOf } from './cache-layout.js'
import { ifMissing } from './cache-scan.js'

// modeldepot makes links, refs and parts states aside in `.modeldepot/tmp` and renames them into
// place; a delete renames a folder into `.modeldepot/trash` and then removes it. Each step lives
// for milliseconds, so an entry much older was left by a process killed between the two.

/** Old enough that no live process (this one, or a replica on the same volume) still means to rename or remove it. */
export const ABANDONED_AFTER_MS = 60_000

/** A fresh name outside snapshots/ and refs/, where a scanner would take a leftover for real. */
export async function temporaryPath (cacheDir: string): Promise<string> {
  const dir = tmpDirOf(cacheDir)
  await mkdir(dir, { recursive: true })
  return join(dir, randomUUID())
}

/** Removes what killed processes left in the temporary and trash folders; answers how many entries. */
export async function sweepAbandoned (cacheDir: string, now: number = Date.now()): Promise<number> {
  let removed = 0
  for (const dir of [tmpDirOf(cacheDir), trashDirOf(cacheDir)]) {
    for (const name of await readdir(dir).catch(ifMissing<string[]>([]))) {
      const path = join(dir, name)
      const stats = await lstat(path).catch(ifMissing(undefined))
      if (stats === undefined || now - stats.mtimeMs < ABANDONED_AFTER_MS) continue
      await rm(path, { recursive: true, force: true })
      removed++
    }
  }
  return removed
}
