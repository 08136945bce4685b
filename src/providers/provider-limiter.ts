import Bottleneck from 'bottleneck'
import type { Redis } from 'ioredis'

export interface LimiterSettings { maxConcurrent: number, minTime: number }

// A call falls back to the replica's own limiter when the connection is gone (closed, or not yet
// connected), at once. A command that is only slow, as on a loaded machine where redis-server or this
// process waits seconds for a core, must not count as gone: the app's 2 s would split the cluster's
// limit in two for the calls that were waiting. Still bounded, for a Redis that hangs with its
// connection open.
const LIMITER_TIMEOUT_MS = 15_000

/**
 * The Redis connection every provider's limiter shares: a client of its own (a duplicate of the app's,
 * failing at once while not connected, with longer timeouts) for Bottleneck's scripts, and
 * Bottleneck's subscriber beside it (its own duplicate of this one).
 */
export class LimiterConnection {
  readonly client: Redis
  readonly bottleneck: Bottleneck.IORedisConnection

  constructor (redis: Redis) {
    this.client = redis.duplicate({ commandTimeout: LIMITER_TIMEOUT_MS, connectTimeout: LIMITER_TIMEOUT_MS })
    // A lost connection is logged once per outage by the app's client; Bottleneck would repeat it.
    this.client.on('error', () => {})
    this.bottleneck = new Bottleneck.IORedisConnection({ client: this.client })
    this.bottleneck.on('error', () => {})
  }

  /** After every limiter on it is stopped. */
  close (): void {
    this.bottleneck.disconnect(false).catch(() => {})
  }
}

export interface LimiterCluster {
  connection: LimiterConnection
  /** One per provider, with the key prefix, so clusters sharing a Redis never share a limiter. */
  id: string
  /** Told when the clustered limiter is re-created or a call falls back to the local one. */
  warn?: (message: string, err?: unknown) => void
}

const HEARTBEAT_MS = 1000

export interface LimiterCounts { queued: number, running: number }

type Outcome<T> = { ok: true, value: T } | { ok: false, err: unknown }

interface Waiting {
  /** The task has begun (on whichever limiter got it first). */
  started: boolean
  /** Handed to the local limiter: the clustered job, if it ever runs, does nothing. */
  abandoned: boolean
  fallBack: (why: string, err?: unknown) => void
}

/**
 * Bottleneck's scripts test `e.message === "SETTINGS_KEY_NOT_FOUND"` to re-create their keys, but
 * Redis 7 prefixes script errors with "ERR ", so once Redis has lost the keys (FLUSHALL, a failover,
 * eviction) every schedule fails forever. Known and unfixed upstream:
 * https://github.com/SGrondin/bottleneck/issues/205 and https://github.com/SGrondin/bottleneck/issues/219
 * (reproduced with bottleneck 2.19.5, ioredis 5 and Redis 7). UNKNOWN_CLIENT (the client's
 * registration lost with the keys) has the same defect.
 */
export const lostKeys = (err: unknown): boolean =>
  err instanceof Error && /SETTINGS_KEY_NOT_FOUND|UNKNOWN_CLIENT/.test(err.message)

/**
 * One provider's limiter. Alone, a Bottleneck in memory. With a cluster, a Bottleneck on Redis, so
 * `maxConcurrent` and `minTime` hold across every replica; it recovers by itself when Redis lost its
 * keys (re-created at the first failure), and while Redis is away a call goes through this replica's
 * own limiter instead of waiting for Redis or failing: limits then hold per replica.
 */
export class ProviderLimiter {
  readonly #settings: LimiterSettings
  readonly #local: Bottleneck
  readonly #cluster: LimiterCluster | undefined
  #clustered: Bottleneck | undefined
  readonly #waiting = new Set<Waiting>()
  #stopped = false
  /** Why calls last went to the local limiter; cleared by the next clustered call, so one warning per spell. */
  #fallingBack: string | undefined

  constructor (settings: LimiterSettings, cluster?: LimiterCluster) {
    this.#settings = { ...settings }
    this.#local = new Bottleneck({ ...this.#settings })
    this.#cluster = cluster
    if (cluster === undefined) return
    this.#clustered = this.#createClustered()
    // Calls queued in Redis for capacity would wait for its messages, which a Redis that is away never
    // sends: they go to the local limiter instead.
    cluster.connection.client.on('close', () => this.#fallBackAll('the Redis connection closed'))
  }

  get clustered (): boolean {
    return this.#cluster !== undefined
  }

  #createClustered (): Bottleneck {
    const limiter = new Bottleneck({
      ...this.#settings,
      id: this.#cluster!.id,
      datastore: 'ioredis',
      connection: this.#cluster!.connection.bottleneck,
      clearDatastore: false,
      // Bottleneck's heartbeat is what notices lost keys when this replica sends nothing (its calls
      // queued for capacity wait for a message that never comes): every second, so recovery takes seconds.
      heartbeatInterval: HEARTBEAT_MS
    })
    limiter.on('error', (err: unknown) => {
      if (lostKeys(err)) this.#recover(limiter, err)
    })
    // The settings already in Redis win over a new limiter's; this replica's PROVIDERS_FILE applies.
    limiter.ready().then(async () => limiter.updateSettings({ ...this.#settings })).catch(() => {})
    return limiter
  }

  /** Runs `task` when the limiter allows; its own result or error is the answer. */
  async schedule<T> (task: () => Promise<T>): Promise<T> {
    const clustered = this.#clustered
    if (clustered === undefined) return this.#local.schedule(task)
    const status = this.#cluster!.connection.client.status
    if (status !== 'ready') {
      this.#fellBack(`the Redis connection is ${status}`)
      return this.#local.schedule(task)
    }
    return new Promise<T>((resolve, reject) => {
      let settled = false
      const settle = (outcome: Outcome<T>): void => {
        if (settled) return
        settled = true
        this.#waiting.delete(waiting)
        if (outcome.ok) resolve(outcome.value)
        else reject(outcome.err)
      }
      const runLocally = (): void => {
        this.#local.schedule(task).then((value) => settle({ ok: true, value }), (err: unknown) => settle({ ok: false, err }))
      }
      const waiting: Waiting = {
        started: false,
        abandoned: false,
        fallBack: (why: string, err?: unknown) => {
          if (waiting.started || waiting.abandoned) return
          this.#fellBack(why, err)
          waiting.abandoned = true
          this.#waiting.delete(waiting)
          runLocally()
        }
      }
      this.#waiting.add(waiting)
      // The task's outcome is kept apart from the job's: Bottleneck may fail the job after the task
      // ran (freeing its slot in Redis), and that must neither hide the answer nor run the task twice.
      let outcome: Outcome<T> | undefined
      clustered.schedule(async () => {
        if (waiting.abandoned) return
        waiting.started = true
        this.#fallingBack = undefined
        this.#waiting.delete(waiting)
        try {
          outcome = { ok: true, value: await task() }
        } catch (err) {
          outcome = { ok: false, err }
        }
      }).then(() => {
        if (outcome !== undefined) settle(outcome)
      }, (err: unknown) => {
        if (lostKeys(err)) this.#recover(clustered, err)
        if (outcome !== undefined) settle(outcome)
        else waiting.fallBack('Bottleneck failed the call', err)
      })
    })
  }

  /** Once per loss, whatever the number of calls that hit it: a fresh limiter writes the keys again. */
  #recover (failed: Bottleneck, err: unknown): void {
    if (this.#stopped || failed !== this.#clustered) return
    this.#cluster!.warn?.('the provider limiter lost its keys in Redis and is re-created (bottleneck issues #205, #219)', err)
    this.#clustered = this.#createClustered()
    this.#release(failed)
    this.#fallBackAll('the limiter was re-created')
  }

  #fallBackAll (why: string): void {
    for (const waiting of [...this.#waiting]) waiting.fallBack(why)
  }

  #fellBack (why: string, err?: unknown): void {
    if (this.#fallingBack !== undefined) return
    this.#fallingBack = why
    this.#cluster!.warn?.(`provider calls go through this replica's own limiter until the clustered one answers: ${why}`, err)
  }

  /** This replica's calls: waiting for their turn, and under way. */
  counts (): LimiterCounts {
    const limiters = [this.#local, ...(this.#clustered === undefined ? [] : [this.#clustered])]
    return limiters.map((limiter) => limiter.counts()).reduce((sum, counts) => ({
      queued: sum.queued + counts.QUEUED + counts.RECEIVED,
      running: sum.running + counts.RUNNING + counts.EXECUTING
    }), { queued: 0, running: 0 })
  }

  /** Drops the calls still waiting; the connection stays open for the other providers' limiters. */
  async stop (): Promise<void> {
    this.#stopped = true
    await this.#local.stop({ dropWaitingJobs: true }).catch(() => {})
    // The heartbeats end with the connection's close (LimiterConnection.close), after every limiter is stopped.
    await this.#clustered?.stop({ dropWaitingJobs: true }).catch(() => {})
  }

  // The limiter that lost its keys is left behind, but its heartbeat would go on failing every second.
  // Not disconnect(): that unsubscribes the channel the new limiter shares (`b_<id>`, by the id), and
  // Bottleneck does not await the unsubscribe (a rejection nobody handles when Redis is away).
  #release (limiter: Bottleneck): void {
    clearInterval((limiter as unknown as { _store?: { heartbeat?: NodeJS.Timeout } })._store?.heartbeat)
  }
}
