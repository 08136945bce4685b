import { execFileSync } from 'node:child_process'
import { existsSync, lstatSync, readdirSync, readFileSync, type Stats } from 'node:fs'
import { basename, join, relative, sep } from 'node:path'
import { gitSha1, sha256 } from './hf-cache.js'

// What a user checks after a race, a crash or a shutdown: nothing half-done is left lying around,
// and every file in blobs/ is the file its name promises.

/**
 * Every path under `root` with what it is, depth first, without following symlinks. A running server
 * may remove an entry between the listing and the look (a journal write's temporary): it was not there.
 */
function walk (root: string): Array<{ path: string, stats: Stats }> {
  const names = (() => {
    try {
      return readdirSync(root)
    } catch {
      return []
    }
  })()
  const entries: Array<{ path: string, stats: Stats }> = []
  for (const name of names) {
    const path = join(root, name)
    const stats = lstatSync(path, { throwIfNoEntry: false })
    if (stats === undefined) continue
    entries.push({ path, stats })
    if (stats.isDirectory()) entries.push(...walk(path))
  }
  return entries
}

const isPartial = (name: string): boolean => name.endsWith('.incomplete') || name.endsWith('.incomplete.parts.json')

/** Whether nobody holds the flock on a huggingface_hub lock file (`flock -n` takes it, or says it cannot). */
function flockFree (path: string): boolean {
  try {
    execFileSync('flock', ['--nonblock', path, 'true'])
    return true
  } catch {
    return false
  }
}

/**
 * What must not be left in the cache once every download has ended, one `kind path` line each:
 * partial files and their part states, symlinks to nothing (anywhere in the cache), modeldepot's blob
 * locks and huggingface_hub's ones still held, and
 * scratch files (a repo's `.modeldepot-tmp/` and `.modeldepot-trash/`, `.locks/.modeldepot-trash/`),
 * and anything in an old-layout `.modeldepot/` folder. Empty when the cache is clean.
 */
export function cacheLeftovers (cacheDir: string): string[] {
  const found: string[] = []
  for (const { path, stats } of walk(cacheDir)) {
    const at = relative(cacheDir, path)
    const [top, second] = at.split(sep)
    if (stats.isSymbolicLink() && !existsSync(path)) found.push(`dangling ${at}`)
    if (isPartial(basename(path))) found.push(`partial ${at}`)
    if (top === '.locks' && path.endsWith('.modeldepot.lock')) found.push(`lock ${at}`)
    // huggingface_hub's flock files stay (it leaves them behind too, and expects the same file), but free.
    else if (top === '.locks' && path.endsWith('.lock') && !flockFree(path)) found.push(`held lock ${at}`)
    const scratch = (top!.startsWith('models--') || top === '.locks') && (second === '.modeldepot-tmp' || second === '.modeldepot-trash')
    if (scratch && at.split(sep).length > 2) found.push(`scratch ${at}`)
    if (top === '.modeldepot') found.push(`old state folder ${at}`)
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
