import { randomUUID } from 'node:crypto'
import { mkdir, readFile, rename, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { withBytesPastCheckpoints } from './written-past-checkpoint.js'

/** A byte range of a file, fetched over its own connection; `done` bytes of it are on disk. */
export interface Part { start: number, length: number, done: number }

/**
 * An open `.incomplete` during one attempt: the part fetchers write its parts in any order, the
 * hasher reads behind them in file order. A file of one part is one plain stream.
 */
export interface PartialFile { path: string, handle: FileHandle, size: number, parts: Part[] }

/** A file is cut into at most this many parts: beyond `partSize × MAX_PARTS` its parts grow instead. */
export const MAX_PARTS = 1024

/**
 * Splits a file into range parts: at most `maxParts`, none smaller than `partSize` unless the file is.
 * One part means one plain stream. Parts are many and fetched a few at a time, front first (see
 * fetchParts), so the file's front is complete early and the hash follows the bytes as they come.
 */
export function planParts (size: number, partSize: number, maxParts = MAX_PARTS): Part[] {
  if (size === 0) return []
  const count = Math.max(1, Math.min(maxParts, Math.ceil(size / partSize)))
  const length = Math.ceil(size / count)
  const parts: Part[] = []
  for (let start = 0; start < size; start += length) parts.push({ start, length: Math.min(length, size - start), done: 0 })
  return parts
}

/** The first byte not yet on disk in file order: everything before it can be hashed. */
export function contiguousEnd (parts: readonly Part[]): number {
  let end = 0
  for (const part of parts) {
    if (part.start !== end) break
    end = part.start + part.done
    if (part.done < part.length) break
  }
  return end
}

interface Saved { etag: string, size: number, parts: Part[] }

/**
 * Which bytes of a parted `.incomplete` are on disk, in `{etag}.modeldepot.incomplete.parts.json` beside it, so
 * each part resumes on its own after a restart. `done` is only ever saved after its bytes were
 * written, so it can lag behind the disk but never run ahead; `load` counts in what the disk holds
 * past it (withBytesPastCheckpoints), so those bytes are not fetched again.
 */
export class PartState {
  readonly #partial: string
  readonly #file: string
  readonly #tmpDir: string

  constructor (partialPath: string, tmpDir: string) {
    this.#partial = partialPath
    this.#file = `${partialPath}.parts.json`
    this.#tmpDir = tmpDir
  }

  /**
   * The saved parts, if they still describe the partial file: the same blob, parts that cover it
   * end to end, and no byte claimed past the end of what is on disk (a state left beside a partial
   * that was truncated or replaced since). Anything else is stale, and only a plain prefix is trusted.
   * Each valid part then counts the bytes it wrote after the state was saved.
   */
  async load (etag: string, size: number): Promise<Part[] | undefined> {
    let saved: Saved
    try {
      saved = JSON.parse(await readFile(this.#file, 'utf8')) as Saved
      const onDisk = (await stat(this.#partial)).size
      const onDiskOnly = (part: Part): boolean =>
        Number.isInteger(part.done) && part.done >= 0 && part.done <= part.length && (part.done === 0 || part.start + part.done <= onDisk)
      const valid = saved.etag === etag && saved.size === size && Array.isArray(saved.parts) &&
        coversExactly(saved.parts, size) && saved.parts.every(onDiskOnly)
      if (!valid) return undefined
    } catch {
      return undefined
    }
    return withBytesPastCheckpoints(this.#partial, saved.parts)
  }

  /**
   * How far a partial is known to be written front to back when its saved parts are stale:
   * undefined without a parts state (a single stream writes in order, so its size is its prefix);
   * else the contiguous run of the saved parts, 0 if they cannot be read. A parted partial has holes
   * before its furthest byte, so its size alone proves nothing.
   */
  async staleContiguousEnd (): Promise<number | undefined> {
    let text: string
    try {
      text = await readFile(this.#file, 'utf8')
    } catch {
      return undefined
    }
    try {
      const { parts } = JSON.parse(text) as Partial<Saved>
      const counts = (part: Part): boolean => [part.start, part.length, part.done].every((n) => Number.isInteger(n) && n >= 0) && part.done <= part.length
      const sane = Array.isArray(parts) && parts.every(counts)
      return sane ? contiguousEnd([...parts].sort((a, b) => a.start - b.start)) : 0
    } catch {
      return 0
    }
  }

  async save (etag: string, size: number, parts: readonly Part[]): Promise<void> {
    const temporary = join(this.#tmpDir, randomUUID())
    await mkdir(dirname(temporary), { recursive: true })
    await writeFile(temporary, JSON.stringify({ etag, size, parts: [...parts] } satisfies Saved))
    await rename(temporary, this.#file)
  }

  async remove (): Promise<void> {
    await unlink(this.#file).catch(() => {})
  }
}

/** Parts one after another from byte 0 to `size`, no gap and no overlap: else the hash would wait forever for a byte no part fetches. */
function coversExactly (parts: readonly Part[], size: number): boolean {
  let end = 0
  for (const part of parts) {
    if (!Number.isInteger(part.start) || !Number.isInteger(part.length) || part.start !== end || part.length <= 0) return false
    end += part.length
  }
  return end === size && parts.length > 0
}

/**
 * How often a running parted transfer saves its parts. What a kill -9 leaves past the last save is
 * found on disk at the restart (withBytesPastCheckpoints), so this bounds how much is read back then.
 */
export const CHECKPOINT_MS = 250

/**
 * Saves the parts of a running transfer every `intervalMs`, so a process that is killed (no
 * `finally` runs) resumes each part from its last checkpoint, and what it wrote after, instead of from its start.
 */
export class PartCheckpoints {
  readonly #timer: NodeJS.Timeout
  #saving: Promise<void> = Promise.resolve()

  constructor (state: PartState, etag: string, size: number, parts: readonly Part[], intervalMs = CHECKPOINT_MS) {
    this.#timer = setInterval(() => {
      // One save at a time; one that fails (a full disk) is simply tried again at the next tick.
      this.#saving = this.#saving.then(async () => state.save(etag, size, parts)).catch(() => {})
    }, intervalMs)
    this.#timer.unref()
  }

  /** Resolves once the last save has finished: nothing writes the state after this. */
  async stop (): Promise<void> {
    clearInterval(this.#timer)
    await this.#saving
  }
}
