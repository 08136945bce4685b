import { distance } from 'fastest-levenshtein'
import { failureCode, isOwnError } from '../error-code.js'
import { MdProviderError } from '../errors.js'
import { validateRepoId } from '../hub/repo-id.js'
import type { BlockStore, ModelBlock, ProviderBlocks } from './block-store.js'
import type { Provider } from './provider.js'
import type { SharedProviderState } from './shared-provider-state.js'

export interface CatalogueModel { id: string, name: string | null, context_length: number | null }

export interface CatalogueList {
  models: CatalogueModel[]
  fetched_at: string
  /** The upstream failed: this is the last good list. */
  stale: boolean
  from_cache: boolean
}

export interface Validation { valid: boolean, reason: string | null, alternatives: string[] }

interface Cached { models: CatalogueModel[], fetchedAt: number, generation: number }

/** Where each kind keeps its model list, and how to read it. */
const CATALOGUE_PATH: Record<Provider['kind'], string> = {
  // The Hub lists millions of models; the catalogue is the most downloaded text-generation ones.
  huggingface: '/api/models?pipeline_tag=text-generation&sort=downloads&limit=100',
  openrouter: '/models',
  openai: '/models'
}

/**
 * A provider's model list, cached for `ttlMs` and checked for shape. When the upstream fails the
 * last good list is served, marked stale. A list fetched with a token that has since been rotated
 * is never cached nor served.
 */
export class ModelCatalogue {
  readonly #provider: Provider
  readonly #ttlMs: number
  readonly #now: () => number
  #cached: Cached | undefined
  #inFlight: { generation: number, promise: Promise<CatalogueModel[]> } | undefined
  readonly #blocks: Map<string, ModelBlock>
  readonly #store: BlockStore | undefined
  readonly #shared: SharedProviderState | undefined
  /** Redis holds this provider's blocks (as of the last sync): a change need not write the others too. */
  #keptInRedis = false
  hits = 0
  misses = 0

  /**
   * With a store, blocks are read from it at start and saved on every change; without, they live in
   * memory. With `shared` (Redis), a change is written there first, and refused while Redis is away.
   */
  constructor (provider: Provider, ttlMs: number, now: () => number = Date.now, store?: BlockStore, shared?: SharedProviderState) {
    this.#provider = provider
    this.#ttlMs = ttlMs
    this.#now = now
    this.#store = store
    this.#shared = shared
    this.#blocks = new Map(Object.entries(store?.initial(provider.name) ?? {}))
  }

  get fetchedAt (): string | null {
    return this.#cached === undefined ? null : new Date(this.#cached.fetchedAt).toISOString()
  }

  get size (): number | null {
    return this.#cached?.models.length ?? null
  }

  clear (): void {
    this.#cached = undefined
    this.#inFlight = undefined
  }

  async list (refresh = false): Promise<CatalogueList> {
    const cached = this.#cached
    if (!refresh && cached !== undefined && cached.generation === this.#provider.tokenGeneration && this.#now() - cached.fetchedAt < this.#ttlMs) {
      this.hits++
      return { models: cached.models, fetched_at: new Date(cached.fetchedAt).toISOString(), stale: false, from_cache: true }
    }
    this.misses++
    try {
      const fresh = await this.#fetchCurrent()
      return { models: fresh.models, fetched_at: new Date(fresh.fetchedAt).toISOString(), stale: false, from_cache: false }
    } catch (err) {
      const last = this.#cached
      if (last === undefined || last.generation !== this.#provider.tokenGeneration) throw err
      return { models: last.models, fetched_at: new Date(last.fetchedAt).toISOString(), stale: true, from_cache: true }
    }
  }

  // Fetches until the list was fetched with the token in use when it arrived.
  async #fetchCurrent (): Promise<Cached> {
    for (;;) {
      const generation = this.#provider.tokenGeneration
      if (this.#inFlight?.generation !== generation) {
        const promise = this.#fetch()
        this.#inFlight = { generation, promise }
        promise.finally(() => { if (this.#inFlight?.promise === promise) this.#inFlight = undefined }).catch(() => {})
      }
      let models: CatalogueModel[]
      try {
        models = await this.#inFlight.promise
      } catch (err) {
        // A failure of the old token is no answer for the new one: ask again.
        if (generation !== this.#provider.tokenGeneration) continue
        throw err
      }
      if (generation !== this.#provider.tokenGeneration) continue
      const fresh = { models, fetchedAt: this.#now(), generation }
      this.#cached = fresh
      return fresh
    }
  }

  async #fetch (): Promise<CatalogueModel[]> {
    const provider = this.#provider
    const response = await provider.fetch(`${provider.baseUrl}${CATALOGUE_PATH[provider.kind]}`, { headers: { accept: 'application/json', ...provider.authHeaders() } })
      .catch((err: unknown) => { throw unreachable(provider, err) })
    if (!response.ok) {
      await response.body?.cancel()
      throw new MdProviderError(`${provider.name} answered ${response.status} for its model list`)
    }
    return parseCatalogue(await response.json().catch(() => undefined), provider.name)
  }

  async block (modelId: string, reason: string): Promise<ModelBlock> {
    const block = { reason, at: new Date(this.#now()).toISOString() }
    await this.#changeBlock(modelId, block)
    return block
  }

  async unblock (modelId: string): Promise<boolean> {
    if (!this.#blocks.has(modelId)) return false
    await this.#changeBlock(modelId, undefined)
    return true
  }

  /**
   * The blocks another replica changed, as Redis keeps them (`undefined`: Redis holds none for this
   * provider, e.g. after it lost its data; this replica's are written there at its next change).
   */
  adoptBlocks (blocks: ProviderBlocks | undefined): void {
    this.#keptInRedis = blocks !== undefined
    if (blocks === undefined) return
    this.#blocks.clear()
    for (const [modelId, block] of Object.entries(blocks)) this.#blocks.set(modelId, block)
  }

  /** Changes one block and saves them all; a save that fails leaves the block as it was. */
  async #changeBlock (modelId: string, block: ModelBlock | undefined): Promise<void> {
    if (this.#shared !== undefined) {
      // In Redis first, as one atomic change: refused (503) while Redis is away, and then nothing changed.
      await this.#shared.writeBlock(this.#provider.name, modelId, block, this.#keptInRedis ? undefined : Object.fromEntries(this.#blocks))
      this.#keptInRedis = true
    }
    const before = this.#blocks.get(modelId)
    const apply = (value: ModelBlock | undefined): unknown => value === undefined ? this.#blocks.delete(modelId) : this.#blocks.set(modelId, value)
    apply(block)
    try {
      await this.#store?.save(this.#provider.name, Object.fromEntries(this.#blocks))
    } catch (err) {
      apply(before)
      throw err
    }
  }

  blocked (modelId: string): ModelBlock | undefined {
    return this.#blocks.get(modelId)
  }

  blocks (): Array<{ model_id: string, reason: string, at: string }> {
    return [...this.#blocks].map(([modelId, block]) => ({ model_id: modelId, ...block }))
  }

  // The Hub's catalogue is only its most downloaded models: any model on the Hub is a valid one.
  async #existsOnHub (modelId: string): Promise<boolean> {
    const provider = this.#provider
    const response = await provider.fetch(`${provider.baseUrl}/api/models/${modelId}`, { headers: provider.authHeaders() })
      .catch((err: unknown) => { throw unreachable(provider, err) })
    await response.body?.cancel()
    return response.ok
  }

  async validate (modelId: string): Promise<Validation> {
    const block = this.#blocks.get(modelId)
    if (block !== undefined) {
      return {
        valid: false,
        reason: `blocked: ${block.reason}`,
        alternatives: closest(modelId, (await this.list()).models.map((model) => model.id).filter((id) => !this.#blocks.has(id)))
      }
    }
    if (this.#provider.kind === 'huggingface') {
      // The id goes into a Hub URL: only a well-formed one is asked about.
      try {
        validateRepoId(modelId)
      } catch (err) {
        return { valid: false, reason: (err as Error).message, alternatives: [] }
      }
      if (await this.#existsOnHub(modelId)) return { valid: true, reason: null, alternatives: [] }
    }
    const { models } = await this.list()
    if (models.some((model) => model.id === modelId)) return { valid: true, reason: null, alternatives: [] }
    return { valid: false, reason: `${modelId} is not in the ${this.#provider.name} catalogue`, alternatives: closest(modelId, models.map((model) => model.id).filter((id) => !this.#blocks.has(id))) }
  }
}

/** A network failure as an API error: our errors (a cooldown) pass as they are. */
function unreachable (provider: Provider, err: unknown): Error {
  if (isOwnError(err)) return err as Error
  const code = failureCode(err) ?? (err as Error).name
  return new MdProviderError(`${provider.name} could not be reached at ${provider.baseUrl} (${code})`)
}

/** The ids nearest to `target` by edit distance, ignoring case. */
export function closest (target: string, ids: string[], count = 5): string[] {
  const wanted = target.toLowerCase()
  return ids
    .map((id) => ({ id, score: distance(wanted, id.toLowerCase()) - (id.toLowerCase().includes(wanted.split('/').at(-1) ?? wanted) ? 5 : 0) }))
    .sort((a, b) => a.score - b.score || a.id.localeCompare(b.id))
    .slice(0, count)
    .map((entry) => entry.id)
}

/** The Hub answers an array; OpenRouter and OpenAI `{ data: [...] }`. Anything else is refused, not cached. */
export function parseCatalogue (body: unknown, provider: string): CatalogueModel[] {
  const items = Array.isArray(body) ? body : (body as { data?: unknown } | undefined)?.data
  if (!Array.isArray(items)) throw new MdProviderError(`${provider} answered a model list of an unknown shape`)
  return items.filter((item): item is Record<string, unknown> => typeof item === 'object' && item !== null && typeof (item as { id?: unknown }).id === 'string')
    .map((item) => ({
      id: item.id as string,
      name: typeof item.name === 'string' ? item.name : null,
      context_length: typeof item.context_length === 'number' ? item.context_length : null
    }))
}
