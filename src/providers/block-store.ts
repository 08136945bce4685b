import { readFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import writeFileAtomic from 'write-file-atomic'

export interface ModelBlock { reason: string, at: string }
export type ProviderBlocks = Record<string, ModelBlock>

/**
 * The models operators blocked, per provider, kept in `{STATE_DIR}/blocks.json` so a block
 * survives a restart. Written atomically (temporary file, fsync, rename): a crash never leaves half a file.
 */
export class BlockStore {
  readonly #file: string
  #saved: Record<string, ProviderBlocks>

  constructor (stateDir: string) {
    this.#file = join(stateDir, 'blocks.json')
    this.#saved = this.#load()
  }

  /** What was blocked for this provider when the server started. */
  initial (provider: string): ProviderBlocks {
    return { ...this.#saved[provider] }
  }

  // One write at a time, each of the whole file as it is then: two changes at once both land.
  #saving: Promise<void> = Promise.resolve()

  async save (provider: string, blocks: ProviderBlocks): Promise<void> {
    const saved = this.#saving.then(async () => {
      const next = { ...this.#saved, [provider]: { ...blocks } }
      await mkdir(dirname(this.#file), { recursive: true })
      await writeFileAtomic(this.#file, `${JSON.stringify(next, null, 2)}\n`)
      this.#saved = next
    })
    this.#saving = saved.catch(() => {})
    return saved
  }

  #load (): Record<string, ProviderBlocks> {
    let parsed: unknown
    try {
      parsed = JSON.parse(readFileSync(this.#file, 'utf8'))
    } catch {
      return {} // none yet, or unreadable: start with no blocks rather than refuse to start
    }
    const blocks: Record<string, ProviderBlocks> = {}
    for (const [provider, models] of Object.entries(isObject(parsed) ? parsed : {})) {
      if (!isObject(models)) continue
      blocks[provider] = Object.fromEntries(Object.entries(models).filter((entry): entry is [string, ModelBlock] =>
        isObject(entry[1]) && typeof entry[1].reason === 'string' && typeof entry[1].at === 'string'))
    }
    return blocks
  }
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)
