import { createHash } from 'node:crypto'
import { existsSync, lstatSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'

// What a reader of the cache (transformers, vLLM) relies on, checked over a whole cache folder.

/** Every file in a `blobs/` folder whose bytes do not hash to its name (sha256 for LFS, the git blob id otherwise). */
export function corruptBlobs (cacheDir: string): string[] {
  const bad: string[] = []
  for (const repo of existsSync(cacheDir) ? readdirSync(cacheDir) : []) {
    const blobs = join(cacheDir, repo, 'blobs')
    if (!repo.startsWith('models--') || !existsSync(blobs)) continue
    for (const name of readdirSync(blobs)) {
      if (name.includes('.')) continue // .incomplete and its parts state: not a blob a reader would open
      const bytes = readFileSync(join(blobs, name))
      const digest = name.length === 64
        ? createHash('sha256').update(bytes).digest('hex')
        : createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex')
      if (digest !== name) bad.push(join(repo, 'blobs', name))
    }
  }
  return bad
}

/** Everything under the cache a finished download should not leave: partials, their parts state, dangling links, temporaries. */
export function leftovers (cacheDir: string): string[] {
  const found: string[] = []
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name)
      const stats = lstatSync(path)
      if (stats.isDirectory()) walk(path)
      else if (stats.isSymbolicLink() && !existsSync(path)) found.push(`dangling link ${path}`)
      else if (/\.incomplete(\.parts\.json)?$/.test(name)) found.push(`partial ${path}`)
    }
  }
  if (existsSync(cacheDir)) walk(cacheDir)
  const tmp = join(cacheDir, '.modeldepot', 'tmp')
  for (const name of existsSync(tmp) ? readdirSync(tmp) : []) if (!found.some((entry) => entry.endsWith(name))) found.push(`temporary ${join(tmp, name)}`)
  const locks = join(cacheDir, '.locks')
  for (const repo of existsSync(locks) ? readdirSync(locks) : []) {
    for (const name of readdirSync(join(locks, repo))) if (statSync(join(locks, repo, name)).isDirectory()) found.push(`lock ${join(locks, repo, name)}`)
  }
  return found
}
