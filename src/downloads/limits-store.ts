import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Redis } from 'ioredis'
import writeFileAtomic from 'write-file-atomic'
import { MdStateStoreUnavailableError } from '../errors.js'
import { ifMissing } from '../cache/cache-scan.js'
import { MAX_BYTES_PER_S_MIN, type ByteRate } from './byte-rate.js'

export interface Limits {
  /** The server's cap on download bytes per second (the cluster's, with Redis); null for none. */
  max_bytes_per_s: number | null
  /** Where it comes from: a change made over the API (kept across restarts), or DOWNLOAD_MAX_BYTES_PER_S. */
  source: 'state' | 'env'
  updated_at: string | null
}

interface Saved { max_bytes_per_s: number | null, updated_at: string }

/** How often a replica reads the cap that another replica may have changed. */
const REFRESH_MS = 500

/**
 * The one owner of the operator's limits: DOWNLOAD_MAX_BYTES_PER_S at first; a change over the API is
 * kept in `{STATE_DIR}/limits.json` (and, with Redis, in `<prefix>limits`, which every replica reads
 * twice a second) and applied to the server's byte rate at once.
 *
 * With several replicas the cap is the cluster's: each replica keeps its share of it, in proportion
 * to the jobs it runs among all those running (`share`, read twice a second with the cap).
 */
export class LimitsStore {
  readonly #file: string
  readonly #initial: number | null
  readonly #rate: ByteRate
  readonly #redis: Redis | undefined
  readonly #key: string
  readonly #shareOf: (() => Promise<number>) | undefined
  #share = 1
  #saved: Saved | undefined
  #timer: NodeJS.Timeout | undefined

  constructor (options: {
    stateDir: string
    initial: number | null
    rate: ByteRate
    redis?: Redis | undefined
    keyPrefix?: string
    /** With replicas: this replica's part of the cluster's transfers, 0 to 1. */
    share?: () => Promise<number>
  }) {
    this.#shareOf = options.share
    this.#file = join(options.stateDir, 'limits.json')
    this.#initial = options.initial
    this.#rate = options.rate
    this.#redis = options.redis
    this.#key = `${options.keyPrefix ?? 'modeldepot:'}limits`
  }

  /** Reads what was saved and applies it; with Redis, follows the other replicas' changes from then on. */
  async start (): Promise<void> {
    this.#saved = await this.#readFile()
    await this.#refresh()
    this.#apply()
    if (this.#redis === undefined) return
    this.#timer = setInterval(() => { void this.#refresh().then(() => this.#apply()) }, REFRESH_MS)
    this.#timer.unref()
  }

  get (): Limits {
    const saved = this.#saved
    if (saved !== undefined) return { max_bytes_per_s: saved.max_bytes_per_s, source: 'state', updated_at: saved.updated_at }
    return { max_bytes_per_s: this.#initial, source: 'env', updated_at: null }
  }

  /** With Redis: refused (MD_STATE_STORE_UNAVAILABLE) while it is away, and then nothing changed. */
  async set (maxBytesPerS: number | null, now: Date = new Date()): Promise<Limits> {
    const saved: Saved = { max_bytes_per_s: maxBytesPerS, updated_at: now.toISOString() }
    if (this.#redis !== undefined) {
      try {
        await this.#redis.set(this.#key, JSON.stringify(saved))
      } catch (err) {
        throw new MdStateStoreUnavailableError((err as Error).message)
      }
    }
    await mkdir(join(this.#file, '..'), { recursive: true })
    await writeFileAtomic(this.#file, `${JSON.stringify(saved, null, 2)}\n`)
    this.#saved = saved
    this.#apply()
    return this.get()
  }

  stop (): void {
    clearInterval(this.#timer)
  }

  #apply (): void {
    const cap = this.get().max_bytes_per_s
    this.#rate.set(cap === null ? null : Math.max(MAX_BYTES_PER_S_MIN, Math.floor(cap * this.#share)))
  }

  // Redis away, or without the key: what this replica last knew.
  async #refresh (): Promise<void> {
    const text = await this.#redis?.get(this.#key).catch(() => null)
    const shared = text === null || text === undefined ? undefined : parseSaved(text)
    if (shared !== undefined) this.#saved = shared
    if (this.#shareOf !== undefined) this.#share = await this.#shareOf().catch(() => this.#share)
  }

  async #readFile (): Promise<Saved | undefined> {
    const text = await readFile(this.#file, 'utf8').catch(ifMissing(undefined))
    return text === undefined ? undefined : parseSaved(text)
  }
}

function parseSaved (text: string): Saved | undefined {
  try {
    const value = JSON.parse(text) as Partial<Saved>
    const rate = value.max_bytes_per_s
    if (rate !== null && (typeof rate !== 'number' || !Number.isInteger(rate) || rate <= 0)) return undefined
    return { max_bytes_per_s: rate ?? null, updated_at: typeof value.updated_at === 'string' ? value.updated_at : new Date(0).toISOString() }
  } catch {
    return undefined
  }
}
