import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs'
import { basename, join, relative, sep } from 'node:path'
import { gitSha1, sha256 } from './hf-cache.js'

// What a user checks after a race, a crash or a shutdown: nothing half-done is left lying around,
// and every file in blobs/ is the file its name promises.

/** Every path under `root`, depth first, without following symlinks. */
function walk (root: string): string[] {
  if (!existsSync(root)) return []
  const paths: string[] = []
  for (const name of readdirSync(root)) {
    const path = join(root, name)
    paths.push(path)
    if (lstatSync(path).isDirectory()) paths.push(...walk(path))
  }
  return paths
}

const isPartial = (name: string): boolean => name.endsWith('.incomplete') || name.endsWith('.incomplete.parts.json')

/**
 * What must not be left in the cache once every download has ended, one `kind path` line each:
 * partial files and their part states, symlinks to nothing (anywhere in the cache), blob locks, and
 * scratch files (`.modeldepot/tmp`, `.modeldepot/trash`). Empty when the cache is clean.
 */
export function cacheLeftovers (cacheDir: string): string[] {
  const found: string[] = []
  for (const path of walk(cacheDir)) {
    const at = relative(cacheDir, path)
    const [top, second] = at.split(sep)
    if (lstatSync(path).isSymbolicLink() && !existsSync(path)) found.push(`dangling ${at}`)
    if (isPartial(basename(path))) found.push(`partial ${at}`)
    if (top === '.locks' && path.endsWith('.lock')) found.push(`lock ${at}`)
    if (top === '.modeldepot' && (second === 'tmp' || second === 'trash') && at.split(sep).length > 2) found.push(`scratch ${at}`)
  }
  return found
}

/** Files in any model's blobs/ whose bytes do not hash to their name (sha256 for LFS, git sha1 for the rest). */
export function wrongBlobs (cacheDir: string): string[] {
  const wrong: string[] = []
  for (const repo of existsSync(cacheDir) ? readdirSync(cacheDir).filter((name) => name.startsWith('models--')) : []) {
    const blobs = join(cacheDir, repo, 'blobs')
    for (const name of existsSync(blobs) ? readdirSync(blobs) : []) {
      if (isPartial(name) || !lstatSync(join(blobs, name)).isFile()) continue
      const content = readFileSync(join(blobs, name))
      if (sha256(content) !== name && gitSha1(content) !== name) wrong.push(`${repo}/blobs/${name}`)
    }
  }
  return wrong
}
