import { createHash } from 'node:crypto'
import type { FakeRepoSpec } from '../test/fakes/fake-hub.js'
import { GeneratedContent } from '../test/fakes/generated-content.js'

// The repositories the benchmarks download, as plain data: the Hub process builds them from it, the
// harness checks the cache against it. Every byte is generated from a seed, nothing is in git.

export interface BenchFile {
  path: string
  bytes: number
  /** LFS files are generated and served range by range; the rest are small and held in memory. */
  lfs: boolean
  seed: number
}

export interface BenchModel { id: string, commit: string, files: BenchFile[] }

export const commitOf = (id: string): string => createHash('sha1').update(id).digest('hex')

// What sits beside the weights of a typical transformers model, at typical sizes.
const SMALL_FILES: Array<[string, number]> = [
  ['config.json', 700],
  ['generation_config.json', 200],
  ['tokenizer_config.json', 3_000],
  ['special_tokens_map.json', 500],
  ['tokenizer.json', 2_000_000],
  ['model.safetensors.index.json', 25_000],
  ['README.md', 5_000]
]

/** Two LFS weight shards of `shardBytes` each, plus the usual small files. */
export function weightsModel (id: string, shardBytes: number, seed: number, shardPrefix = 'model'): BenchModel {
  const shards = [1, 2].map((n) => ({ path: `${shardPrefix}-0000${n}-of-00002.safetensors`, bytes: shardBytes, lfs: true, seed: seed + n }))
  return { id, commit: commitOf(id), files: [...shards, ...smallFiles(seed)] }
}

/** `count` small files in folders of 100, like a dataset-style repository. */
export function manyFilesModel (id: string, count: number): BenchModel {
  const files = Array.from({ length: count }, (_, i) => ({
    path: `shards/${String(Math.floor(i / 100)).padStart(3, '0')}/part-${String(i).padStart(5, '0')}.json`,
    bytes: 200 + (i % 50),
    lfs: false,
    seed: i
  }))
  return { id, commit: commitOf(id), files }
}

/** One file, for jobs that only need to exist (queued) or to hold a download slot (served slowly). */
export function oneFileModel (id: string, file: Omit<BenchFile, 'seed'>, seed: number): BenchModel {
  return { id, commit: commitOf(id), files: [{ ...file, seed }] }
}

export function smallFiles (seed: number): BenchFile[] {
  return SMALL_FILES.map(([path, bytes], i) => ({ path, bytes, lfs: false, seed: seed * 100 + i }))
}

export const totalBytes = (model: BenchModel): number => model.files.reduce((sum, file) => sum + file.bytes, 0)

/** The bytes of a file: generated for LFS, a Buffer for the rest (a small file goes through git, whole). */
export function contentOf (file: BenchFile): GeneratedContent | Buffer {
  return file.lfs ? new GeneratedContent(file.seed, file.bytes) : smallContent(file.seed, file.bytes)
}

/** Text bytes from a seed, cheap enough for ten thousand files. */
function smallContent (seed: number, bytes: number): Buffer {
  const unit = createHash('sha256').update(`bench-${seed}`).digest('hex')
  return Buffer.from(unit.repeat(Math.ceil(bytes / unit.length)).slice(0, bytes))
}

export function repoSpec (model: BenchModel): FakeRepoSpec {
  const files = model.files.map((file) => {
    const content = contentOf(file)
    return content instanceof GeneratedContent ? { path: file.path, content, lfs: true as const } : { path: file.path, content }
  })
  return { id: model.id, revisions: { main: { commit: model.commit, files } } }
}
