import { stat } from 'node:fs/promises'

/**
 * The modification times of the paths a cache scan read (its directories, refs and partials), to
 * tell cheaply whether the disk has changed since: a few hundred stat calls instead of reading every
 * link of every snapshot. Every change huggingface_hub or modeldepot makes to the cache moves one of
 * them: a new file or link changes its directory's mtime, a rewritten ref or a growing partial its own.
 */
export interface CacheFingerprint {
  /** mtime in ms of each path, or -1 when it is missing (or not readable). */
  mtimes: Map<string, number>
  /** A path changed so close to the scan that a change in the same clock tick could hide in it. */
  racy: boolean
}

/**
 * A change this close before the scan began might not show in an mtime: file systems whose clock is
 * coarse (FAT's is 2 s, some network file systems' 1 s) give a later change the same time. Such a
 * scan is not reused (git's "racily clean" entries are the same idea).
 */
export const RACY_MS = 2000

export async function takeFingerprint (paths: Iterable<string>, scanStartedAt: number): Promise<CacheFingerprint> {
  const mtimes = await readMtimes(paths)
  const racy = [...mtimes.values()].some((mtime) => mtime > scanStartedAt - RACY_MS)
  return { mtimes, racy }
}

/** Whether every path still has the time it had: the scan taken with the fingerprint still holds. */
export async function unchangedSince (fingerprint: CacheFingerprint): Promise<boolean> {
  if (fingerprint.racy) return false
  const now = await readMtimes(fingerprint.mtimes.keys())
  for (const [path, mtime] of fingerprint.mtimes) if (now.get(path) !== mtime) return false
  return true
}

async function readMtimes (paths: Iterable<string>): Promise<Map<string, number>> {
  const list = [...new Set(paths)]
  const times = await Promise.all(list.map(async (path) => (await stat(path).catch(() => undefined))?.mtimeMs ?? -1))
  return new Map(list.map((path, i) => [path, times[i]!]))
}
