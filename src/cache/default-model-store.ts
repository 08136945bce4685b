import { randomUUID } from 'node:crypto'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Redis } from 'ioredis'
import { MdStateStoreUnavailableError } from '../errors.js'
import { ifMissing } from './cache-scan.js'

interface State { default_model: string | null, updated_at: string }

/**
 * The model the local stack should use. Starts from DEFAULT_MODEL; a change is kept in
 * `{STATE_DIR}/state.json` so it survives restarts, written to a temporary file and renamed
 * so a crash never leaves half a file. With Redis shared (`share`), a change goes there first and
 * every read asks it, so all replicas answer the same the moment a change is answered.
 */
export class DefaultModelStore {
  readonly #file: string
  readonly #initial: string | undefined
  #current: State | undefined
  #shared: SharedDefaultModel | undefined

  constructor (stateDir: string, initial: string | undefined) {
    this.#file = join(stateDir, 'state.json')
    this.#initial = initial
  }

  /** From now on the choice is the one in Redis (REDIS_URL); the file stays the record across restarts. */
  share (shared: SharedDefaultModel): void {
    this.#shared = shared
  }

  async get (): Promise<{ model_id: string | null, source: 'state' | 'env' | 'none', updated_at: string | null }> {
    // Redis away, or without the key (never set, or lost): what this replica last knew, else the file.
    const shared = await this.#shared?.read().catch(() => undefined)
    if (shared !== undefined) this.#current = shared
    this.#current ??= await this.#read()
    if (this.#current !== undefined) return { model_id: this.#current.default_model, source: 'state', updated_at: this.#current.updated_at }
    return { model_id: this.#initial ?? null, source: this.#initial === undefined ? 'none' : 'env', updated_at: null }
  }

  /** With Redis: refused (MD_STATE_STORE_UNAVAILABLE) while it is away, and then nothing changed. */
  async set (modelId: string | null, now: Date = new Date()): Promise<void> {
    const state: State = { default_model: modelId, updated_at: now.toISOString() }
    await this.#shared?.write(state)
    await mkdir(join(this.#file, '..'), { recursive: true })
    const temporary = `${this.#file}.${randomUUID()}.tmp`
    await writeFile(temporary, `${JSON.stringify(state, null, 2)}\n`)
    await rename(temporary, this.#file)
    this.#current = state
  }

  async #read (): Promise<State | undefined> {
    const text = await readFile(this.#file, 'utf8').catch(ifMissing(undefined))
    return text === undefined ? undefined : parseState(text)
  }
}

/** The default model in Redis, `<prefix>default-model` (the state file's JSON). */
export class SharedDefaultModel {
  readonly #redis: Redis
  readonly #key: string

  constructor (redis: Redis, prefix: string) {
    this.#redis = redis
    this.#key = `${prefix}default-model`
  }

  async read (): Promise<State | undefined> {
    const text = await this.#run(async () => this.#redis.get(this.#key))
    return text === null ? undefined : parseState(text)
  }

  async write (state: State): Promise<void> {
    await this.#run(async () => this.#redis.set(this.#key, JSON.stringify(state)))
  }

  async #run<T> (command: () => Promise<T>): Promise<T> {
    if (this.#redis.status !== 'ready') throw new MdStateStoreUnavailableError(`Redis is ${this.#redis.status}`)
    try {
      return await command()
    } catch (err) {
      throw new MdStateStoreUnavailableError((err as Error).message)
    }
  }
}

function parseState (text: string): State | undefined {
  try {
    const state = JSON.parse(text) as Partial<State>
    if (state.default_model === null || typeof state.default_model === 'string') {
      return { default_model: state.default_model, updated_at: String(state.updated_at) }
    }
  } catch { /* unreadable: fall back to DEFAULT_MODEL rather than refuse to start */ }
  return undefined
}
