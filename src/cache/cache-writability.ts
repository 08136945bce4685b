import { checkCacheDirWritable, type CacheDirCheck } from './cache-dir.js'

/** A check of a local directory takes microseconds; one this late is stuck on its file system. */
const HUNG_CHECK_MS = 10_000

/**
 * The cache directory's writability, checked at start and then every `intervalMs` rather than on each
 * health call: an orchestrator polling /health (or a load balancer hammering it) costs no file-system
 * call, and the answer is at most one period old. A check that does not come back (a hung network
 * mount) is itself a failure once it has been under way for `HUNG_CHECK_MS` (or three periods, if longer).
 */
export class CacheWritability {
  readonly #dir: string
  readonly #intervalMs: number
  readonly #now: () => number
  readonly #onChange: (check: CacheDirCheck) => void
  #last: CacheDirCheck = { ok: false, reason: 'the model cache directory has not been checked yet' }
  #checked = false
  #running: Promise<void> | undefined
  #runningSince = 0
  #timer: NodeJS.Timeout | undefined

  /** `onChange` hears of each check whose answer differs from the one before (the first one, only if it failed). */
  constructor (dir: string, intervalMs: number, onChange: (check: CacheDirCheck) => void = () => {}, now: () => number = Date.now) {
    this.#dir = dir
    this.#intervalMs = intervalMs
    this.#onChange = onChange
    this.#now = now
  }

  /** Checks once (resolves when that check is in), then keeps checking until `stop`. */
  async start (): Promise<void> {
    await this.check()
    this.#timer = setInterval(() => { void this.check() }, this.#intervalMs)
    this.#timer.unref()
  }

  stop (): void {
    clearInterval(this.#timer)
  }

  /** One check now; a check still under way is joined rather than doubled. */
  async check (): Promise<void> {
    if (this.#running === undefined) {
      this.#runningSince = this.#now()
      this.#running = checkCacheDirWritable(this.#dir).then((result) => {
        const before: CacheDirCheck = this.#checked ? this.#last : { ok: true }
        const changed = result.ok !== before.ok || (!result.ok && !before.ok && result.reason !== before.reason)
        this.#last = result
        this.#checked = true
        if (changed) this.#onChange(result)
      })
        .finally(() => { this.#running = undefined })
    }
    return this.#running
  }

  /** The last check's answer, or a failure while a check hangs. */
  current (): CacheDirCheck {
    const hungAfterMs = Math.max(HUNG_CHECK_MS, 3 * this.#intervalMs)
    if (this.#running !== undefined && this.#now() - this.#runningSince > hungAfterMs) {
      return { ok: false, reason: `the model cache directory has not answered a check for ${Math.round(hungAfterMs / 1000)} s` }
    }
    return this.#last
  }
}
