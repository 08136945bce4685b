import { randomUUID } from 'node:crypto'
import { copyFile, lstat, mkdir, rename, rm, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { ifMissing } from './cache-scan.js'
import { sweepAbandonedStateTemporaries } from './cache-temporaries.js'

export interface StateDirLog {
  info: (fields: object, message: string) => void
  warn: (fields: object, message: string) => void
}

/** The folder an older modeldepot kept in the hub cache root (scan_cache_dir() warned about it). */
export const LEGACY_STATE_FOLDER = '.modeldepot'
/** The state files it held; the rest of it (tmp/, trash/, probes, temporaries) was scratch. */
const STATE_FILES = ['jobs.json', 'state.json', 'blocks.json']

/**
 * Makes STATE_DIR ready before any store reads it: an old-layout `{cache}/.modeldepot/` is moved
 * there, once, and the temporaries of state files that a killed process left are removed. A failure
 * is logged, never a refusal to start (the stores then start from what they find, as with a missing file).
 */
export async function prepareStateDir (cacheDir: string, stateDir: string, log: StateDirLog): Promise<void> {
  await moveLegacyState(cacheDir, stateDir, log).catch((err: unknown) => {
    log.warn({ reason: (err as Error).message }, `the old ${LEGACY_STATE_FOLDER} folder in the model cache could not be moved to STATE_DIR`)
  })
  const removed = await sweepAbandonedStateTemporaries(stateDir).catch((err: unknown) => {
    log.warn({ reason: (err as Error).message }, 'leftover temporary state files could not be removed')
    return 0
  })
  if (removed > 0) log.info({ removed }, 'removed temporary state files left by a process that stopped mid-write')
}

/**
 * Moves the state files of `{cache}/.modeldepot/` into STATE_DIR, then removes the folder. Each file
 * is in place before the folder goes, so a crash midway loses nothing: the next start moves what is
 * left. A file STATE_DIR already has (written by a modeldepot that used it) is kept; the old one is
 * kept beside it as `legacy-{name}`, never overwritten and never lost.
 */
export async function moveLegacyState (cacheDir: string, stateDir: string, log: StateDirLog): Promise<void> {
  const legacy = join(cacheDir, LEGACY_STATE_FOLDER)
  const stats = await lstat(legacy).catch(ifMissing(undefined))
  if (stats === undefined || !stats.isDirectory()) return
  await mkdir(stateDir, { recursive: true })
  const moved: string[] = []
  for (const name of STATE_FILES) {
    const from = join(legacy, name)
    if (await lstat(from).catch(ifMissing(undefined)) === undefined) continue
    const taken = await lstat(join(stateDir, name)).catch(ifMissing(undefined)) !== undefined
    const to = join(stateDir, taken ? `legacy-${name}` : name)
    if (taken) log.warn({ file: name }, `STATE_DIR already has ${name}: kept, and the one from the model cache kept beside it as legacy-${name}`)
    await moveFile(from, to)
    moved.push(name)
  }
  await rm(legacy, { recursive: true, force: true })
  log.info({ moved }, `moved modeldepot's state out of the model cache (${LEGACY_STATE_FOLDER}/) into STATE_DIR`)
}

// A rename when both are on one file system; else a copy under a temporary name (swept if killed),
// renamed into place, and only then the original removed.
async function moveFile (from: string, to: string): Promise<void> {
  try {
    await rename(from, to)
    return
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err
  }
  const temporary = `${to}.${randomUUID()}.tmp`
  await copyFile(from, temporary)
  await rename(temporary, to)
  await unlink(from)
}
