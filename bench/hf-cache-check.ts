import { statSync } from 'node:fs'
import { join } from 'node:path'
import type { BenchModel } from './bench-models.js'

// Where a file of a model lands in the Hugging Face cache layout, and a check that all of it did.

export const repoDirOf = (cacheDir: string, model: BenchModel): string => join(cacheDir, `models--${model.id.replace('/', '--')}`)

export const snapshotFileOf = (cacheDir: string, model: BenchModel, path: string): string =>
  join(repoDirOf(cacheDir, model), 'snapshots', model.commit, ...path.split('/'))

/** Every file is there with its size (what came down was verified by whoever wrote it, or not at all). */
export function checkFiles (model: BenchModel, pathOf: (path: string) => string): void {
  for (const file of model.files) {
    const size = statSync(pathOf(file.path), { throwIfNoEntry: false })?.size
    if (size !== file.bytes) throw new Error(`${model.id}/${file.path}: expected ${file.bytes} bytes, found ${size ?? 'no file'}`)
  }
}
