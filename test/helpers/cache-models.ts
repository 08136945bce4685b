import { randomBytes } from 'node:crypto'
import { lstatSync, readdirSync, utimesSync } from 'node:fs'
import { join } from 'node:path'
import { sha256, writeCachedSnapshot } from './hf-cache.js'

/**
 * A model as huggingface_hub leaves it (one LFS blob of `bytes`, a config, `refs/main`), its blobs
 * last read `ageS` seconds ago: the atime the cache quota reads. Answers the weights' blob name.
 */
export function cachedModel (cacheDir: string, modelId: string, bytes: number, ageS: number, commit = 'a'.repeat(40)): string {
  const weights = randomBytes(bytes)
  writeCachedSnapshot(cacheDir, modelId, commit, [
    { path: 'config.json', content: `{"model":"${modelId}"}` },
    { path: 'model.safetensors', content: weights, lfs: true }
  ], ['main'])
  touchBlobs(cacheDir, modelId, ageS)
  return sha256(weights)
}

/** Sets the atime (and mtime) of every blob of a model to `ageS` seconds ago. */
export function touchBlobs (cacheDir: string, modelId: string, ageS: number): void {
  const blobs = join(cacheDir, `models--${modelId.replace('/', '--')}`, 'blobs')
  const when = new Date(Date.now() - ageS * 1000)
  for (const name of readdirSync(blobs)) utimesSync(join(blobs, name), when, when)
}

/** Bytes of every regular file under a folder, measured the test's own way. */
export function filesBytes (dir: string): number {
  let total = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) total += filesBytes(path)
    else if (entry.isFile()) total += lstatSync(path).size
  }
  return total
}
