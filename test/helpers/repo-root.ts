import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

// Tests run compiled from dist/test/ (npm test) and may be read as TypeScript from test/: either way
// the files they check (the README, the OpenAPI document, the Dockerfile) are at the repository root,
// the nearest folder up with a package-lock.json.
function findRoot (from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package-lock.json'))) return dir
    if (dirname(dir) === dir) throw new Error(`no repository root above ${from}`)
  }
}

export const REPO_ROOT = findRoot(dirname(fileURLToPath(import.meta.url)))

/** A file of the repository, by its path from the root. */
export const repoFile = (path: string): string => join(REPO_ROOT, path)
