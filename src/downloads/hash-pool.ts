import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import type { ProgressSignal } from './file-hasher.js'
import type { FromHasher, ToHasher } from './hash-messages.js'
import { contiguousEnd, type PartialFile } from './part-state.js'
import { RetryableError } from './retry.js'

const WORKER = new URL('./hash-worker.js', import.meta.url)

/** Files at least this large are hashed on a hash thread; below, a thread's start costs more than the hash. */
export const HASH_IN_WORKER_BYTES = 8 * 1024 * 1024
/** A hash thread with no file to hash for this long ends, so an idle server holds none. */
const IDLE_MS = 2000

interface Pending { resolve: (digest: string) => void, reject: (err: Error) => void, onHashed?: (bytes: number) => void }

/** One hash thread and the files it hashes. */
class HashThread {
  readonly worker: Worker
  readonly pending = new Map<number, Pending>()
  #idle: NodeJS.Timeout | undefined
  #onGone: (thread: HashThread) => void

  constructor (onGone: (thread: HashThread) => void) {
    this.#onGone = onGone
    this.worker = new Worker(WORKER)
    this.worker.unref()
    this.worker.on('message', (message: FromHasher) => {
      const waiting = this.pending.get(message.id)
      if ('hashed' in message) {
        waiting?.onHashed?.(message.hashed)
        return
      }
      this.settle(message.id)
      if ('digest' in message) waiting?.resolve(message.digest)
      else waiting?.reject(Object.assign(new RetryableError(message.error), message.code === undefined ? {} : { code: message.code }))
    })
    // A thread that dies takes its files' hashes with it: each of them fails and is tried again (a new thread).
    const fail = (why: string): void => {
      this.#onGone(this)
      clearTimeout(this.#idle)
      const waiting = [...this.pending.values()]
      this.pending.clear()
      for (const { reject } of waiting) reject(new RetryableError(`the hash thread ${why}`))
    }
    this.worker.on('error', (err) => fail(`failed (${err.message})`))
    this.worker.on('exit', (code) => fail(`stopped (exit code ${code})`))
  }

  post (message: ToHasher): void {
    this.worker.postMessage(message)
  }

  add (id: number, pending: Pending): void {
    clearTimeout(this.#idle)
    this.pending.set(id, pending)
  }

  settle (id: number): void {
    this.pending.delete(id)
    if (this.pending.size > 0) return
    clearTimeout(this.#idle)
    // Out of the pool first, so that no file is given to a thread on its way out.
    this.#idle = setTimeout(() => {
      this.#onGone(this)
      void this.worker.terminate()
    }, IDLE_MS)
    this.#idle.unref()
  }
}

/**
 * How much more of a file has to be written before its thread is told (it reads that back 1 MiB at a
 * time). Told of every write batch (256 KiB), the main thread spent some 100 ms per 2 GiB in postMessage.
 */
const TELL_BYTES = 4 * 1024 * 1024

/**
 * Hashes large files on threads of their own, so the main thread only moves the bytes to disk: each file
 * is read back in file order from what its parts wrote (the page cache holds it), as the hash of the main
 * thread did. Threads start when a file needs one, at most one per core, and end when idle. One per
 * core, not one per core but one: the hashes that cannot keep up with the parts wait for the file's
 * last bytes, and two files hashed side by side on 2 cores end about 0.3 s sooner per 2 GiB than on one
 * thread (issue 18, measured): the main thread mostly waits for the network and the disk meanwhile.
 */
export class HashPool {
  readonly #threads: HashThread[] = []
  readonly #maxThreads: number
  #nextId = 1

  constructor (maxThreads = availableParallelism()) {
    this.#maxThreads = maxThreads
  }

  /**
   * The digest of the partial once every byte of it is written and hashed. Told of each write by
   * `progress`; stops on `signal`. A hash thread that fails is a RetryableError for the file.
   */
  async hashInFileOrder (partial: PartialFile, lfs: boolean, progress: ProgressSignal, signal: AbortSignal): Promise<string> {
    signal.throwIfAborted()
    const thread = this.#thread()
    const id = this.#nextId++
    const digest = new Promise<string>((resolve, reject) => thread.add(id, { resolve, reject }))
    thread.post({ type: 'open', id, path: partial.path, lfs, size: partial.size })
    let told = 0
    const stopped = new AbortController()
    // Tells the thread how far the file is written, once a chunk more is (or the whole file); only ever ends by `signal`
    // (a cancel, or a part that failed) or once the digest is in.
    const tell = async (): Promise<never> => {
      const until = AbortSignal.any([signal, stopped.signal])
      for (;;) {
        const end = contiguousEnd(partial.parts)
        if (end > told && (end - told >= TELL_BYTES || end === partial.size)) {
          told = end
          thread.post({ type: 'written', id, end })
        }
        await progress.next(until)
      }
    }
    const telling = tell()
    try {
      return await Promise.race([digest, telling])
    } catch (err) {
      if (signal.aborted) {
        thread.settle(id)
        thread.post({ type: 'close', id })
        throw signal.reason
      }
      throw err
    } finally {
      stopped.abort()
      telling.catch(() => {})
    }
  }

  /**
   * The digest of a file that is whole (a cached blob being verified), read to its end on a hash
   * thread; `onHashed` is told the bytes hashed as it goes (every 8 MiB), `signal` stops it. A file
   * that is not there rejects with its `code` ENOENT.
   */
  async hashWholeFile (path: string, lfs: boolean, onHashed: (bytes: number) => void, signal: AbortSignal): Promise<string> {
    signal.throwIfAborted()
    const thread = this.#thread()
    const id = this.#nextId++
    const digest = new Promise<string>((resolve, reject) => thread.add(id, { resolve, reject, onHashed }))
    let stop = (): void => {}
    const stopped = new Promise<never>((_resolve, reject) => {
      stop = () => {
        thread.settle(id)
        thread.post({ type: 'close', id })
        reject(signal.reason)
      }
    })
    // One listener, taken off again: a verify of many blobs shares the job's signal.
    signal.addEventListener('abort', stop, { once: true })
    thread.post({ type: 'open', id, path, lfs, whole: true })
    try {
      return await Promise.race([digest, stopped])
    } finally {
      signal.removeEventListener('abort', stop)
      stopped.catch(() => {})
    }
  }

  /** Ends every hash thread; the files they hash fail (their next attempt starts new ones). */
  async close (): Promise<void> {
    await Promise.all([...this.#threads].map(async (thread) => thread.worker.terminate()))
  }

  #thread (): HashThread {
    if (this.#threads.length < this.#maxThreads) {
      const thread = new HashThread((gone) => {
        const index = this.#threads.indexOf(gone)
        if (index >= 0) this.#threads.splice(index, 1)
      })
      this.#threads.push(thread)
      return thread
    }
    return this.#threads.reduce((least, thread) => thread.pending.size < least.pending.size ? thread : least)
  }
}

/** The process's hash threads, shared by every job. */
export const hashPool = new HashPool()
