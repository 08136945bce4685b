import type { Redis } from 'ioredis'
import { MdStateStoreUnavailableError } from '../errors.js'
import type { ModelBlock, ProviderBlocks } from './block-store.js'
import type { SharedHealth } from './provider-health.js'

/** What Redis holds for the providers, as one replica read it. */
export interface SharedProviders {
  health: Map<string, SharedHealth>
  /** Tokens rotated through the API; a provider absent here keeps its own (env or tokens file). */
  tokens: Map<string, string>
  /** The blocks of the providers whose blocks Redis keeps; one absent here was never changed since Redis lost them. */
  blocks: Map<string, ProviderBlocks>
}

/**
 * The providers' state that replicas share, in Redis (keys under the prefix):
 * `provider:<name>:health` (JSON, the cooldown part of the health), `provider:tokens` (hash
 * name → token, as PROVIDER_TOKENS_FILE keeps them), `provider:<name>:blocks` (hash model → JSON)
 * with `provider:blocks-kept` (the set of providers whose blocks Redis holds, so an empty hash and
 * blocks lost with a FLUSHALL tell apart). The code that decides (ProviderHealth, the registry, the
 * catalogue) stays the owner; this only reads and writes, and turns a Redis that does not answer
 * into MD_STATE_STORE_UNAVAILABLE.
 */
export class SharedProviderState {
  readonly #redis: Redis
  readonly #prefix: string

  constructor (redis: Redis, prefix: string) {
    this.#redis = redis
    this.#prefix = prefix
  }

  #health (name: string): string { return `${this.#prefix}provider:${name}:health` }
  #blocks (name: string): string { return `${this.#prefix}provider:${name}:blocks` }
  get #tokens (): string { return `${this.#prefix}provider:tokens` }
  get #kept (): string { return `${this.#prefix}provider:blocks-kept` }

  /** Refuses a change at once while Redis is away: no upstream check is run for a change that cannot be kept. */
  assertAvailable (): void {
    if (this.#redis.status !== 'ready') throw new MdStateStoreUnavailableError(`Redis is ${this.#redis.status}`)
  }

  async read (names: string[]): Promise<SharedProviders> {
    const replies = await this.#run(async () => {
      const pipeline = this.#redis.pipeline().hgetall(this.#tokens).smembers(this.#kept)
      for (const name of names) pipeline.get(this.#health(name)).hgetall(this.#blocks(name))
      return pipeline.exec()
    })
    const value = (index: number): unknown => {
      const [err, reply] = replies?.[index] ?? [new Error('no reply')]
      if (err !== null) throw new MdStateStoreUnavailableError(err.message)
      return reply
    }
    const kept = new Set(value(1) as string[])
    const state: SharedProviders = { health: new Map(), tokens: new Map(Object.entries(value(0) as Record<string, string>)), blocks: new Map() }
    names.forEach((name, i) => {
      const health = parseHealth(value(2 + 2 * i))
      if (health !== undefined) state.health.set(name, health)
      if (kept.has(name)) state.blocks.set(name, parseBlocks(value(3 + 2 * i) as Record<string, string>))
    })
    return state
  }

  async readHealth (name: string): Promise<SharedHealth | undefined> {
    return parseHealth(await this.#run(async () => this.#redis.get(this.#health(name))))
  }

  async writeHealth (name: string, health: SharedHealth): Promise<void> {
    await this.#run(async () => this.#redis.set(this.#health(name), JSON.stringify(health)))
  }

  async writeToken (name: string, token: string): Promise<void> {
    await this.#run(async () => this.#redis.hset(this.#tokens, name, token))
  }

  /**
   * One block set (or lifted, `block` undefined) atomically with the mark that Redis keeps this
   * provider's blocks. `seed`: the blocks this replica holds, written too when Redis did not keep them yet.
   */
  async writeBlock (name: string, modelId: string, block: ModelBlock | undefined, seed?: ProviderBlocks): Promise<void> {
    await this.#run(async () => {
      const multi = this.#redis.multi()
      for (const [id, kept] of Object.entries(seed ?? {})) multi.hset(this.#blocks(name), id, JSON.stringify(kept))
      if (block === undefined) multi.hdel(this.#blocks(name), modelId)
      else multi.hset(this.#blocks(name), modelId, JSON.stringify(block))
      return multi.sadd(this.#kept, name).exec()
    })
  }

  async #run<T> (command: () => Promise<T>): Promise<T> {
    this.assertAvailable()
    try {
      return await command()
    } catch (err) {
      throw new MdStateStoreUnavailableError((err as Error).message)
    }
  }
}

function parseHealth (reply: unknown): SharedHealth | undefined {
  if (typeof reply !== 'string') return undefined
  try {
    const health = JSON.parse(reply) as SharedHealth
    return typeof health.changedAt === 'number' && typeof health.consecutive429s === 'number' ? health : undefined
  } catch {
    return undefined // written by something else: as if absent, and overwritten at the next change
  }
}

function parseBlocks (hash: Record<string, string>): ProviderBlocks {
  const blocks: ProviderBlocks = {}
  for (const [modelId, text] of Object.entries(hash)) {
    try {
      const block = JSON.parse(text) as Partial<ModelBlock>
      if (typeof block.reason === 'string' && typeof block.at === 'string') blocks[modelId] = { reason: block.reason, at: block.at }
    } catch { /* unreadable: left out */ }
  }
  return blocks
}
