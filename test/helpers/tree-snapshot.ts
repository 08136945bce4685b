import { createHash } from 'node:crypto'
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { join, relative } from 'node:path'

/** Every entry under a folder as `relative path → what it is` (kind, size, mode, mtime, content hash, link target). */
export type TreeSnapshot = Map<string, string>

/**
 * Walks `root` without following symlinks (a link is recorded as its target text) and leaves out
 * the folders in `exclude`, so a test can tell whether anything outside them was created, changed or
 * deleted.
 */
export function snapshotTree (root: string, exclude: readonly string[] = []): TreeSnapshot {
  const snapshot: TreeSnapshot = new Map()
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name)
      if (exclude.includes(path)) continue
      const stats = lstatSync(path)
      const key = relative(root, path)
      // A folder's mtime moves when an entry is added or removed, even one removed again at once.
      const meta = `mode ${stats.mode.toString(8)} mtime ${stats.mtimeMs}`
      if (stats.isSymbolicLink()) {
        snapshot.set(key, `link → ${readlinkSync(path)} ${meta}`)
      } else if (stats.isDirectory()) {
        snapshot.set(key, `dir ${meta}`)
        walk(path)
      } else {
        const hash = createHash('sha256').update(readFileSync(path)).digest('hex')
        snapshot.set(key, `file ${stats.size} bytes ${meta} sha256 ${hash}`)
      }
    }
  }
  walk(root)
  return snapshot
}

/** What differs between two snapshots, one line per entry; empty when nothing did. */
export function treeChanges (before: TreeSnapshot, after: TreeSnapshot): string[] {
  const changes: string[] = []
  for (const [path, was] of before) {
    const now = after.get(path)
    if (now === undefined) changes.push(`deleted ${path} (${was})`)
    else if (now !== was) changes.push(`changed ${path}: ${was} → ${now}`)
  }
  for (const [path, now] of after) if (!before.has(path)) changes.push(`created ${path} (${now})`)
  return changes
}
