import { sweepAbandoned } from '../cache/cache-temporaries.js'
import type { Logger } from './job-run.js'

/** Removes the temporaries and trash that killed processes left in the cache; one sweep at a time. */
export class LeftoverSweep {
  readonly #cacheDir: string
  readonly #log: Logger
  #running: Promise<void> | undefined

  constructor (cacheDir: string, log: Logger) {
    this.#cacheDir = cacheDir
    this.#log = log
  }

  async run (): Promise<void> {
    this.#running ??= (async () => {
      // File times are real times, whatever clock the jobs are stamped with.
      const removed = await sweepAbandoned(this.#cacheDir, Date.now()).catch((err: unknown) => {
        this.#log.warn({ reason: (err as Error).message }, 'leftover temporary files could not be removed')
        return 0
      })
      if (removed > 0) this.#log.info({ removed }, 'removed temporary files left by a process that stopped mid-step')
    })().finally(() => { this.#running = undefined })
    await this.#running
  }

  /** Resolves once the sweep under way, if any, is over. */
  async settled (): Promise<void> {
    await this.#running
  }
}
