import { setMaxListeners } from 'node:events'

/**
 * A bound on open event streams: each holds a connection and a listener for as long as the client
 * stays, so past `max` a new one is refused rather than let the server run out of sockets.
 */
export class StreamSlots {
  readonly max: number
  #open = 0
  readonly #closing = new AbortController()

  constructor (max: number) {
    this.max = max
    // Each open stream listens on `closing` (and takes its listener off as it ends): up to `max` of
    // them is what this signal is for, not the leak Node warns of past 10 listeners.
    setMaxListeners(max + 1, this.#closing.signal)
  }

  get open (): number {
    return this.#open
  }

  /** Aborts when the server closes: every stream ends, so shutdown never waits on one. */
  get closing (): AbortSignal {
    return this.#closing.signal
  }

  /** A slot, as the function that gives it back (calling it twice gives back one); undefined when none is free. */
  take (): (() => void) | undefined {
    if (this.#open >= this.max || this.#closing.signal.aborted) return undefined
    this.#open++
    let given = false
    return () => {
      if (given) return
      given = true
      this.#open--
    }
  }

  close (): void {
    this.#closing.abort()
  }
}
