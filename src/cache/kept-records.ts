import { readFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { Redis } from 'ioredis'
import writeFileAtomic from 'write-file-atomic'
import { MdStateStoreUnavailableError } from '../errors.js'

/** One record per model id, e.g. a pin `{pinned_at}` or a last use `{at}`. */
export type ModelRecords<T> = Record<string, T>

/**
 * Records kept per model, in `{STATE_DIR}/<name>.json` so they survive a restart (written atomically:
 * temporary file, fsync, rename). With Redis shared (`share`), a change goes there first and every
 * read asks it, so all replicas answer the same the moment a change is answered; the file stays this
 * replica's record. Redis keeps a hash `<prefix><name>` (model → JSON) and `<prefix><name>:kept`,
 * set with the first change, so an empty hash and records lost with a FLUSHALL tell apart (then the
 * file is read, and written to Redis with the next change).
 */
export class KeptRecords<T> {
  readonly #file: string
  readonly #name: string
  readonly #parse: (value: unknown) => T | undefined
  #saved: ModelRecords<T>
  #shared: { redis: Redis, hash: string, kept: string } | undefined
  // One write of the file at a time, each of the whole map as it is then: two changes at once both land.
  #saving: Promise<void> = Promise.resolve()

  constructor (stateDir: string, name: string, parse: (value: unknown) => T | undefined) {
    this.#file = join(stateDir, `${name}.json`)
    this.#name = name
    this.#parse = parse
    this.#saved = this.#load()
  }

  share (redis: Redis, prefix: string): void {
    this.#shared = { redis, hash: `${prefix}${this.#name}`, kept: `${prefix}${this.#name}:kept` }
  }

  /** Every record; with Redis, Redis's (what this replica last knew while Redis does not answer). */
  async all (): Promise<ModelRecords<T>> {
    const shared = await this.#readShared().catch(() => undefined)
    if (shared !== undefined) this.#saved = shared
    return { ...this.#saved }
  }

  /** With Redis: refused (MD_STATE_STORE_UNAVAILABLE) while it is away, and then nothing changed. */
  async set (modelId: string, record: T | undefined): Promise<void> {
    if (this.#shared !== undefined) {
      const { redis, hash, kept } = this.#shared
      const seed = await this.#run(async () => redis.exists(kept)) === 0 ? this.#saved : {}
      await this.#run(async () => {
        const multi = redis.multi()
        for (const [id, value] of Object.entries(seed)) multi.hset(hash, id, JSON.stringify(value))
        if (record === undefined) multi.hdel(hash, modelId)
        else multi.hset(hash, modelId, JSON.stringify(record))
        return multi.set(kept, '1').exec()
      })
    }
    const saved = this.#saving.then(async () => {
      const next = { ...this.#saved }
      if (record === undefined) delete next[modelId]
      else next[modelId] = record
      await mkdir(dirname(this.#file), { recursive: true })
      await writeFileAtomic(this.#file, `${JSON.stringify(next, null, 2)}\n`)
      this.#saved = next
    })
    this.#saving = saved.catch(() => {})
    return saved
  }

  async #readShared (): Promise<ModelRecords<T> | undefined> {
    if (this.#shared === undefined) return undefined
    const { redis, hash, kept } = this.#shared
    const replies = await this.#run(async () => redis.multi().exists(kept).hgetall(hash).exec())
    const reply = (index: number): unknown => {
      const [err, value] = replies?.[index] ?? [new Error('no reply')]
      if (err !== null) throw new MdStateStoreUnavailableError(err.message)
      return value
    }
    if (reply(0) === 0) return undefined
    const values = reply(1) as Record<string, string>
    const records: ModelRecords<T> = {}
    for (const [modelId, text] of Object.entries(values)) {
      const record = this.#parse(parseJson(text))
      if (record !== undefined) records[modelId] = record
    }
    return records
  }

  async #run<R> (command: () => Promise<R>): Promise<R> {
    const redis = this.#shared?.redis
    if (redis !== undefined && redis.status !== 'ready') throw new MdStateStoreUnavailableError(`Redis is ${redis.status}`)
    try {
      return await command()
    } catch (err) {
      throw new MdStateStoreUnavailableError((err as Error).message)
    }
  }

  #load (): ModelRecords<T> {
    let parsed: unknown
    try {
      parsed = JSON.parse(readFileSync(this.#file, 'utf8'))
    } catch {
      return {} // none yet, or unreadable: start with none rather than refuse to start
    }
    const records: ModelRecords<T> = {}
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return records
    for (const [modelId, value] of Object.entries(parsed)) {
      const record = this.#parse(value)
      if (record !== undefined) records[modelId] = record
    }
    return records
  }
}

function parseJson (text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined // written by something else: left out
  }
}

/** A parser of records that are objects with one ISO date string field. */
export const dateRecord = <K extends string>(field: K) => (value: unknown): Record<K, string> | undefined => {
  const at = (value as Record<string, unknown> | null)?.[field]
  return typeof at === 'string' && !Number.isNaN(Date.parse(at)) ? { [field]: at } as Record<K, string> : undefined
}
