/** Callers holding their answer until a job ends (`?wait=`): woken when it does, or at their timeout. */
export class FinalWaiters {
  readonly #waiters = new Map<string, Set<() => void>>()

  /** Resolves when `wake(jobId)` is called or `timeoutMs` passes, whichever is first. */
  async wait (jobId: string, timeoutMs: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const waiters = this.#waiters.get(jobId) ?? new Set()
      this.#waiters.set(jobId, waiters)
      const done = (): void => {
        clearTimeout(timer)
        waiters.delete(done)
        resolve()
      }
      const timer = setTimeout(done, timeoutMs)
      waiters.add(done)
    })
  }

  /** Every caller, whatever job: the server is going away, they are answered the job as it is. */
  wakeAll (): void {
    for (const jobId of [...this.#waiters.keys()]) this.wake(jobId)
  }

  wake (jobId: string): void {
    for (const done of this.#waiters.get(jobId) ?? []) done()
    this.#waiters.delete(jobId)
  }
}
