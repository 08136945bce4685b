import { createHash } from 'node:crypto'
import { createReadStream, statSync } from 'node:fs'
import { lstat, readdir, readFile, readlink, stat } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { gitBlobSha1, sha256Hex } from '../test/fakes/fake-hub.js'
import { GeneratedContent } from '../test/fakes/generated-content.js'
import { contentOf, type BenchModel } from './bench-models.js'

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

/**
 * The whole of a model in the cache, checked against what the fake Hub serves: `refs/main` names the
 * commit; each snapshot file is a link to `blobs/{etag}` (the sha256 of an LFS file, the git blob
 * sha1 of the rest, as the Hub's etags are); each blob's bytes hash to that; and `blobs/` holds those
 * blobs and nothing else (no `.incomplete` left over). Answers the bytes read back and hashed.
 */
export async function checkHashes (cacheDir: string, model: BenchModel): Promise<number> {
  const repoDir = repoDirOf(cacheDir, model)
  const ref = (await readFile(join(repoDir, 'refs', 'main'), 'utf8')).trim()
  if (ref !== model.commit) throw new Error(`${model.id}: refs/main is ${ref}, expected ${model.commit}`)
  const blobsDir = join(repoDir, 'blobs')
  const expectedBlobs = new Set<string>()
  let hashed = 0
  for (const file of model.files) {
    const content = contentOf(file)
    const sha256 = content instanceof GeneratedContent ? content.sha256 : sha256Hex(content)
    const etag = content instanceof GeneratedContent ? sha256 : gitBlobSha1(content)
    expectedBlobs.add(etag)
    const link = snapshotFileOf(cacheDir, model, file.path)
    if (!(await lstat(link)).isSymbolicLink()) throw new Error(`${model.id}/${file.path}: the snapshot file is not a link into blobs/`)
    const target = resolve(dirname(link), await readlink(link))
    if (target !== join(blobsDir, etag)) throw new Error(`${model.id}/${file.path}: links to ${target}, expected blobs/${etag}`)
    const size = (await stat(target)).size
    if (size !== file.bytes) throw new Error(`${model.id}/${file.path}: ${size} bytes, expected ${file.bytes}`)
    const hash = createHash('sha256')
    await pipeline(createReadStream(target), hash)
    const actual = hash.digest('hex')
    if (actual !== sha256) throw new Error(`${model.id}/${file.path}: sha256 ${actual}, the Hub's file has ${sha256}`)
    hashed += size
  }
  const extra = (await readdir(blobsDir)).filter((name) => !expectedBlobs.has(name))
  if (extra.length > 0) throw new Error(`${model.id}: unexpected entries in blobs/: ${extra.join(', ')}`)
  return hashed
}
