import { createHash, randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { hostname } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import type { CallbackState } from '../callbacks/callback-sender.js'
import { MdStateStoreUnavailableError } from '../errors.js'
import { FINAL_STATUSES, isFinal, type DownloadJob, type JobStatus } from './download-job.js'
import type { DownloadRequest } from './download-plan.js'
import type { Logger } from './job-run.js'
import { sameDownloadKey } from './same-download.js'
import {
  applyProgress, applyTransition, checkTransition, JobLeaseLostError, JobTransitionError, JobUnknownError, RUNNING, snapshot, takenStatus,
  type DueCallback, type InterruptedJob, type JobProgress, type JobState, type JobStore, type RunCommand, type TransitionOptions
} from './job-store.js'
import { CLAIM, CREATE, HOLD, OUTBOX_TAKE, RATE, REAP, RENEW, RESTORE, WRITE } from './redis-job-scripts.js'

export interface RedisJobStoreOptions {
  redis: Redis
  /** REDIS_KEY_PREFIX: every key of this cluster starts with it. */
  keyPrefix: string
  /** JOB_LEASE_MS: a job whose replica sends no heartbeat for this long is given back to the queue. */
  leaseMs: number
  /** Ended jobs kept; beyond it they are let go, oldest first. */
  limit?: number
  /** How long an ended job is kept (JOB_HISTORY_MAX_AGE_S). */
  historyMaxAgeMs?: number
  log?: Logger | undefined
  now?: () => number
}

/** How often a running job's progress goes to Redis (other replicas see it at most this late). */
const PROGRESS_WRITE_MS = 500
/** How long a fenced step (writing a ref) waits for a Redis that does not answer before it fails. */
const FENCE_WAIT_MS = 60_000
const SEEN_MAX = 2000
/** An ended job stays readable at least this long, whatever JOB_HISTORY_MAX_AGE_S says: a caller polls for its end. */
const HISTORY_MIN_MS = 3600_000

/** A job this replica runs: its lease, and the job as this replica last made it. */
interface OwnJob {
  token: string
  epoch: string
  job: DownloadJob
  request: DownloadRequest | undefined
  /** Progress not yet written to Redis. */
  dirty: boolean
  timer?: NodeJS.Timeout | undefined
  /** A change that Redis did not take (it was away): written again by the heartbeat. */
  unsaved: boolean
  cancelTold: boolean
  pauseTold: boolean
}

type ScriptReply = [string, string, string?, string?]

/** What a change message carries: who made it, and the job after it. */
interface ChangeMessage { from: string, job: DownloadJob }
interface CommandMessage { jobId: string, kind: 'cancel' | 'pause' | 'rate', purge: boolean, bytesPerS?: number | null }

/** A cap as the `rate` flag on a job's hash keeps it: `none` for no cap. */
const rateFlag = (bytesPerS: number | null): string => bytesPerS === null ? 'none' : String(bytesPerS)
const rateOfFlag = (flag: string): number | null => flag === 'none' ? null : Number(flag)

/**
 * The jobs of every replica that shares one Redis. A job is a hash (its JSON, its status, its epoch
 * and place in the queue); the queue and the running jobs are a sorted set and a set; each change is
 * one Lua script (redis-job-scripts.ts) that checks the change is allowed and, for the replica that
 * runs the job, that its lease still holds. Every change is published; each replica passes the
 * changes of the others on to its own listeners (event streams, long polls).
 *
 * What this object holds is about this replica's own jobs: their leases, and their latest progress,
 * which it writes to Redis twice a second and which it can still answer while Redis is away.
 */
export class RedisJobStore implements JobStore {
  readonly keepsInterrupted = false
  readonly sharedQueue = true
  readonly replicaId = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`
  readonly #redis: Redis
  readonly #subscriber: Redis
  readonly #leaseMs: number
  readonly #limit: number
  readonly #historyMaxAgeMs: number
  readonly #log: Logger | undefined
  readonly #now: () => number
  readonly #keys: ReturnType<typeof keysOf>
  readonly #own = new Map<string, OwnJob>()
  /** The callbacks this replica delivers: their outbox entries are held by it. */
  readonly #delivering = new Set<string>()
  readonly #orphans = new EventEmitter()
  readonly #changes = new EventEmitter().setMaxListeners(0)
  readonly #commands = new EventEmitter()
  readonly #queueChanges = new EventEmitter()
  /** The last status seen here of recent jobs, to refuse progress at once (no Redis call on that path). */
  readonly #seen = new Map<string, JobStatus>()
  #heartbeat: NodeJS.Timeout | undefined
  #beating: Promise<void> = Promise.resolve()
  #outage = false
  #closed = false

  constructor (options: RedisJobStoreOptions) {
    this.#redis = options.redis
    this.#leaseMs = options.leaseMs
    this.#limit = options.limit ?? 1000
    this.#historyMaxAgeMs = options.historyMaxAgeMs ?? 7 * 24 * 3600_000
    this.#log = options.log
    this.#now = options.now ?? Date.now
    this.#keys = keysOf(options.keyPrefix)
    for (const [name, lua] of Object.entries({ CREATE, CLAIM, WRITE, RATE, RENEW, RESTORE, REAP, HOLD, OUTBOX_TAKE })) {
      this.#redis.defineCommand(`mdJob${name}`, { lua })
    }
    this.#subscriber = this.#redis.duplicate()
    this.#subscriber.on('error', () => {}) // the main client logs the outage
    this.#subscriber.on('ready', () => {
      this.#subscriber.subscribe(this.#keys.changes, this.#keys.commands).catch(() => {})
    })
    this.#subscriber.on('message', (channel: string, message: string) => this.#received(channel, message))
    this.#heartbeat = setInterval(() => { void this.#beat() }, Math.max(200, Math.floor(this.#leaseMs / 3)))
    this.#heartbeat.unref()
  }

  // Reads.

  async get (jobId: string): Promise<DownloadJob | undefined> {
    const own = this.#own.get(jobId)
    if (own !== undefined) return own.job
    const [job] = await this.#read([jobId])
    return job
  }

  async all (): Promise<DownloadJob[]> {
    const ids = await this.#ask(async () => this.#redis.zrevrange(this.#keys.list, 0, -1))
    return (await this.#read(ids)).filter((job): job is DownloadJob => job !== undefined)
  }

  async request (jobId: string): Promise<DownloadRequest | undefined> {
    const own = this.#own.get(jobId)
    if (own !== undefined) return own.request
    const text = await this.#ask(async () => this.#redis.hget(this.#keys.job(jobId), 'request'))
    return text === null ? undefined : JSON.parse(text) as DownloadRequest
  }

  async findUnfinished (request: DownloadRequest): Promise<DownloadJob | undefined> {
    const jobId = await this.#ask(async () => this.#redis.get(this.#keys.same(request)))
    if (jobId === null) return undefined
    const job = await this.get(jobId)
    return job === undefined || isFinal(job.status) ? undefined : job
  }

  async unfinished (): Promise<DownloadJob[]> {
    const [queued, running, paused] = await this.#ask(async () => Promise.all([
      this.#redis.zrange(this.#keys.queue, 0, -1),
      this.#redis.smembers(this.#keys.running),
      this.#redis.smembers(this.#keys.paused)
    ]))
    return (await this.#read([...running, ...queued, ...paused])).filter((job): job is DownloadJob => job !== undefined && !isFinal(job.status))
  }

  // Nothing is journaled here: a job a replica stopped is back in the shared queue.
  async interrupted (): Promise<InterruptedJob[]> {
    return []
  }

  async counts (): Promise<{ running: number, queued: number }> {
    const [running, queued] = await this.#ask(async () => Promise.all([this.#redis.scard(this.#keys.running), this.#redis.zcard(this.#keys.queue)]))
    return { running, queued }
  }

  // Changes.

  async create (job: DownloadJob, request: DownloadRequest, to: 'queued' | 'complete' = 'queued'): Promise<{ job: DownloadJob, created: boolean }> {
    const made = snapshot(to === 'complete'
      ? applyTransition({ ...job, status: 'queued' }, 'complete', {}, this.#stamp())
      : { ...structuredClone(job), status: 'queued' })
    const [outcome, detail] = await this.#script('CREATE',
      [this.#keys.job(job.job_id), this.#keys.list, this.#keys.queue, this.#keys.same(request), this.#keys.seq],
      [job.job_id, JSON.stringify(made), JSON.stringify(request), to, this.#limit, this.#keys.jobPrefix, this.#keys.changes, this.#message(made),
        made.waiting === undefined ? 0 : Date.parse(made.waiting.until), made.kind === 'verify' ? 'verify' : ''])
    if (outcome === 'exists') throw new JobTransitionError(job.job_id, detail as JobStatus, to)
    if (outcome === 'joined') {
      const joined = await this.get(detail)
      if (joined !== undefined) return { job: joined, created: false }
    }
    this.#emit(made)
    return { job: made, created: true }
  }

  async claim (maxRunning: number): Promise<DownloadJob | undefined> {
    const args = [maxRunning, this.#keys.jobPrefix, this.#keys.leasePrefix, this.replicaId, this.#leaseMs, this.#now()]
    const claimed = await this.#ask(async () => this.#run('CLAIM', [this.#keys.queue, this.#keys.running], args) as Promise<[string, string, string, string] | null>)
    if (claimed === null) return undefined
    const [jobId, epoch, jobText, requestText] = claimed
    const taken: DownloadJob = { ...JSON.parse(jobText) as DownloadJob, status: 'queued' }
    const status = takenStatus(taken)
    const own: OwnJob = {
      token: `${this.replicaId}:${epoch}`,
      epoch,
      job: snapshot(applyTransition(taken, status, {}, this.#stamp())),
      request: requestText === '' ? undefined : JSON.parse(requestText) as DownloadRequest,
      dirty: false,
      unsaved: false,
      cancelTold: false,
      pauseTold: false
    }
    this.#own.set(jobId, own)
    // Taken: it runs here whatever happens next. Redis gone between the two steps, the heartbeat
    // writes the job as it is once Redis answers (a job left taken and not run would hold its lease forever).
    await this.#save(own, status).catch((err: unknown) => {
      if (!(err instanceof MdStateStoreUnavailableError)) throw err
      own.unsaved = true
    })
    this.#emit(own.job)
    return own.job
  }

  async transition (jobId: string, to: JobStatus, options: TransitionOptions = {}): Promise<DownloadJob> {
    const own = this.#own.get(jobId)
    if (own !== undefined) return this.#ownTransition(own, to, options)
    const current = await this.#current(jobId)
    checkTransition(jobId, current.status, to, current.kind)
    // Only the replica that runs a job changes it while it runs; others ask it (requestCancel).
    if (RUNNING.has(current.status)) throw new JobTransitionError(jobId, current.status, to)
    const next = snapshot(applyTransition(current, to, options, this.#stamp()))
    const [outcome, before] = await this.#write(jobId, current.status, '', next, true)
    if (outcome === 'unknown') throw new JobUnknownError(jobId)
    if (outcome !== 'ok') throw new JobTransitionError(jobId, before as JobState, to)
    this.#emit(next)
    return next
  }

  progress (jobId: string, progress: JobProgress): DownloadJob {
    const own = this.#own.get(jobId)
    if (own === undefined || !RUNNING.has(own.job.status)) {
      const known = own?.job.status ?? this.#seen.get(jobId)
      if (known === undefined) throw new JobUnknownError(jobId)
      throw new JobTransitionError(jobId, known, 'progress')
    }
    own.job = snapshot(applyProgress(own.job, progress, this.#stamp()))
    own.dirty = true
    own.timer ??= setTimeout(() => {
      own.timer = undefined
      void this.#saveProgress(own)
    }, PROGRESS_WRITE_MS)
    this.#emit(own.job)
    return own.job
  }

  async fence (jobId: string): Promise<void> {
    const own = this.#own.get(jobId)
    if (own === undefined) throw new JobLeaseLostError(jobId)
    const deadline = Date.now() + FENCE_WAIT_MS
    for (;;) {
      try {
        if (await this.#renew(own) === 'lost') throw new JobLeaseLostError(jobId)
        return
      } catch (err) {
        // Redis away: wait for it rather than publish without knowing the job is still ours.
        if (err instanceof JobLeaseLostError || Date.now() > deadline) throw err
        await sleep(1000)
      }
    }
  }

  async requestCancel (jobId: string, purge: boolean): Promise<void> {
    await this.#request({ jobId, kind: 'cancel', purge }, 'cancel', purge ? 'purge' : 'keep')
  }

  async requestPause (jobId: string): Promise<void> {
    await this.#request({ jobId, kind: 'pause', purge: false }, 'pause', '1')
  }

  async setByteRate (jobId: string, bytesPerS: number | null): Promise<DownloadJob> {
    const own = this.#own.get(jobId)
    if (own !== undefined) return this.#ownByteRate(own, bytesPerS)
    const current = await this.#current(jobId)
    if (isFinal(current.status)) throw new JobTransitionError(jobId, current.status, 'byte_rate')
    if (!RUNNING.has(current.status)) {
      // Queued or paused: nobody runs it, so it is written here, unless a replica takes it meanwhile.
      const request = await this.request(jobId)
      const next = snapshot({ ...current, max_bytes_per_s: bytesPerS, updated_at: this.#stamp() })
      const [outcome, before] = await this.#rate(jobId, 'queued paused', '', next, request, bytesPerS)
      if (outcome === 'unknown') throw new JobUnknownError(jobId)
      if (outcome === 'ok') {
        this.#emit(next)
        return next
      }
      if (!RUNNING.has(before as JobState)) throw new JobTransitionError(jobId, before as JobState, 'byte_rate')
    }
    // It runs on another replica: that one changes its run and writes the job.
    await this.#request({ jobId, kind: 'rate', purge: false, bytesPerS }, 'rate', rateFlag(bytesPerS))
    return current
  }

  async #ownByteRate (own: OwnJob, bytesPerS: number | null): Promise<DownloadJob> {
    const jobId = own.job.job_id
    own.job = snapshot({ ...own.job, max_bytes_per_s: bytesPerS, updated_at: this.#stamp() })
    if (own.request !== undefined) own.request = { ...own.request, maxBytesPerS: bytesPerS }
    try {
      const [outcome] = await this.#rate(jobId, 'downloading verifying', own.token, own.job, own.request, bytesPerS)
      if (outcome === 'lost') {
        this.#lost(own)
        throw new JobLeaseLostError(jobId)
      }
      if (outcome !== 'ok') own.unsaved = true
    } catch (err) {
      if (!(err instanceof MdStateStoreUnavailableError)) throw err
      // Redis away: the heartbeat writes the job (its cap with it) once it answers.
      own.unsaved = true
    }
    this.#emit(own.job)
    return own.job
  }

  async #rate (jobId: string, allowed: string, token: string, job: DownloadJob, request: DownloadRequest | undefined,
    bytesPerS: number | null): Promise<ScriptReply> {
    return this.#script('RATE', [this.#keys.job(jobId), this.#keys.lease(jobId)],
      [jobId, allowed, token, JSON.stringify(job), request === undefined ? '' : JSON.stringify(request), this.#keys.changes, this.#message(job), rateFlag(bytesPerS)])
  }

  /** A command to the replica that runs a job: told at once, and kept on the job for its heartbeat (a message can be missed). */
  async #request (message: CommandMessage, field: 'cancel' | 'pause' | 'rate', value: string): Promise<void> {
    await this.#ask(async () => {
      await this.#redis.hset(this.#keys.job(message.jobId), field, value)
      await this.#redis.publish(this.#keys.commands, JSON.stringify(message))
    })
  }

  async recordCallback (jobId: string, callback: CallbackState): Promise<void> {
    const current = await this.#current(jobId).catch((err: unknown) => {
      if (err instanceof JobUnknownError) return undefined // let go by the history bound meanwhile
      throw err
    })
    if (current === undefined) return
    if (!isFinal(current.status)) throw new JobTransitionError(jobId, current.status, 'callback')
    const next = snapshot({ ...current, callback: { ...callback }, updated_at: this.#stamp() })
    await this.#write(jobId, current.status, '', next, false)
  }

  async queueCallback (jobId: string, callback: DueCallback): Promise<void> {
    this.#delivering.add(jobId)
    await this.#ask(async () => {
      await this.#redis.multi()
        .hset(this.#keys.outbox(jobId), 'url', callback.url, 'event', callback.event, 'body', callback.body)
        .set(this.#keys.outboxLease(jobId), this.replicaId, 'PX', this.#leaseMs)
        .sadd(this.#keys.outboxSet, jobId)
        .exec()
    })
  }

  async callbackSettled (jobId: string): Promise<void> {
    this.#delivering.delete(jobId)
    await this.#ask(async () => {
      await this.#redis.multi().srem(this.#keys.outboxSet, jobId).del(this.#keys.outbox(jobId), this.#keys.outboxLease(jobId)).exec()
    })
  }

  onOrphanCallback (listener: (jobId: string, callback: DueCallback) => void): void {
    this.#orphans.on('orphan', listener)
  }

  onChange (listener: (job: DownloadJob) => void): () => void {
    this.#changes.on('change', listener)
    return () => { this.#changes.off('change', listener) }
  }

  get changeListeners (): number {
    return this.#changes.listenerCount('change')
  }

  onCommand (listener: (command: RunCommand) => void): void {
    this.#commands.on('command', listener)
  }

  /** Called when a queued job may be there to take: one was queued or given back, or a job ended somewhere. */
  onQueueChanged (listener: () => void): void {
    this.#queueChanges.on('changed', listener)
  }

  async flush (): Promise<void> {
    await Promise.all([...this.#own.values()].filter((own) => own.dirty).map(async (own) => this.#saveProgress(own)))
  }

  async close (): Promise<void> {
    this.#closed = true
    clearInterval(this.#heartbeat)
    await this.#beating
    for (const own of this.#own.values()) clearTimeout(own.timer)
    this.#subscriber.disconnect()
  }

  // The replica's own jobs.

  async #ownTransition (own: OwnJob, to: JobStatus, options: TransitionOptions): Promise<DownloadJob> {
    const jobId = own.job.job_id
    checkTransition(jobId, own.job.status, to, own.job.kind)
    clearTimeout(own.timer)
    own.timer = undefined
    const before = own.job.status
    own.job = snapshot(applyTransition(own.job, to, options, this.#stamp()))
    own.dirty = false
    const ends = to === 'queued' || to === 'paused' || isFinal(to)
    try {
      const [outcome] = await this.#write(jobId, before, own.token, own.job, true)
      if (outcome === 'lost') {
        this.#own.delete(jobId)
        throw new JobLeaseLostError(jobId)
      }
      // Redis restarted without its data: the heartbeat writes the job back.
      if (outcome === 'unknown') throw new MdStateStoreUnavailableError('Redis no longer has the job')
      if (outcome !== 'ok') throw new JobTransitionError(jobId, before, to)
      if (ends) this.#own.delete(jobId)
    } catch (err) {
      if (!(err instanceof MdStateStoreUnavailableError)) throw err
      // Redis is away: the job is this replica's still, and the heartbeat writes it once Redis answers.
      own.unsaved = true
      this.#log?.warn({ job_id: jobId, status: to }, 'Redis is unreachable: the change of this job is kept here and written once it answers')
    }
    this.#emit(own.job)
    return own.job
  }

  async #saveProgress (own: OwnJob): Promise<void> {
    if (!own.dirty || !this.#own.has(own.job.job_id)) return
    own.dirty = false
    await this.#save(own, 'downloading verifying').catch(() => { own.dirty = true })
  }

  /** Writes the replica's own job as it is now, under its lease; a lost lease stops the run. */
  async #save (own: OwnJob, allowed: string): Promise<void> {
    const [outcome] = await this.#write(own.job.job_id, allowed, own.token, own.job, true)
    if (outcome === 'lost') this.#lost(own)
    // Redis restarted without its data: the heartbeat writes the job back whole.
    if (outcome === 'unknown') own.unsaved = true
  }

  #lost (own: OwnJob): void {
    const jobId = own.job.job_id
    if (!this.#own.delete(jobId)) return
    clearTimeout(own.timer)
    this.#log?.warn({ job_id: jobId }, 'this replica lost the lease of a job it ran; another replica has taken it over')
    this.#commands.emit('command', { jobId, kind: 'lost', purge: false } satisfies RunCommand)
  }

  /** Renews the lease: `lost` when another replica holds the job now; `restored` when Redis had lost it and it was written back. */
  async #renew (own: OwnJob): Promise<'held' | 'lost' | 'restored'> {
    const jobId = own.job.job_id
    const [state, cancel, pause, rate] = await this.#script('RENEW', [this.#keys.lease(jobId), this.#keys.job(jobId), this.#keys.running],
      [own.token, this.#leaseMs, own.epoch, jobId])
    if (state === 'lost') return 'lost'
    if (state === 'gone') {
      await this.#script('RESTORE', [this.#keys.job(jobId), this.#keys.list, this.#keys.running, this.#keys.lease(jobId), this.#keys.sameOf(own.request), this.#keys.seq],
        [jobId, JSON.stringify(own.job), own.request === undefined ? '' : JSON.stringify(own.request), own.job.status, own.epoch, own.token, this.#leaseMs, own.job.kind === 'verify' ? 'verify' : ''])
      this.#log?.info({ job_id: jobId }, 'Redis had lost this job: its replica wrote it back')
      return 'restored'
    }
    // A cap asked for and not yet written (its message missed): the run is told again.
    if (rate !== undefined && rate !== '' && rateOfFlag(rate) !== (own.job.max_bytes_per_s ?? null)) {
      this.#commands.emit('command', { jobId, kind: 'rate', purge: false, bytesPerS: rateOfFlag(rate) } satisfies RunCommand)
    }
    if (cancel !== '' && !own.cancelTold) {
      own.cancelTold = true
      this.#commands.emit('command', { jobId, kind: 'cancel', purge: cancel === 'purge' } satisfies RunCommand)
    } else if (pause !== undefined && pause !== '' && cancel === '' && !own.pauseTold) {
      own.pauseTold = true
      this.#commands.emit('command', { jobId, kind: 'pause', purge: false } satisfies RunCommand)
    }
    return 'held'
  }

  /** Every third of a lease: renew this replica's leases, write what Redis missed, give back jobs whose replica died. */
  async #beat (): Promise<void> {
    if (this.#closed) return
    this.#beating = (async () => {
      try {
        for (const own of [...this.#own.values()]) {
          const lease = await this.#renew(own)
          if (lease === 'lost') {
            this.#lost(own)
            continue
          }
          if (own.unsaved) {
            // Written back whole when Redis had lost it; otherwise the change Redis missed is written now.
            if (lease === 'held') await this.#save(own, [...FINAL_STATUSES, 'queued', 'paused', 'downloading', 'verifying'].join(' '))
            own.unsaved = false
            if (isFinal(own.job.status) || own.job.status === 'queued' || own.job.status === 'paused') this.#own.delete(own.job.job_id)
          } else if (own.dirty) {
            await this.#saveProgress(own)
          }
        }
        await this.#reap()
        await this.#tendOutbox()
        if (this.#outage) this.#log?.info({}, 'Redis answers again: the jobs of this replica are written to it')
        this.#outage = false
      } catch (err) {
        if (!this.#outage) this.#log?.warn({ reason: (err as Error).message }, 'the job heartbeat could not reach Redis; it keeps trying')
        this.#outage = true
      }
    })()
    await this.#beating
  }

  async #reap (): Promise<void> {
    const reaped = await this.#run('REAP', [this.#keys.running, this.#keys.queue, this.#keys.paused], [this.#keys.jobPrefix, this.#keys.leasePrefix]) as string[]
    for (const jobId of reaped) {
      const current = await this.#current(jobId).catch(() => undefined)
      if (current === undefined) continue
      // Asked to pause before its replica died: paused, not queued (REAP decided which).
      const to = current.status === 'paused' ? 'paused' : 'queued'
      this.#log?.warn({ job_id: jobId, status: to }, to === 'queued'
        ? 'the replica that ran this job stopped renewing its lease: the job is back in the queue for another replica'
        : 'the replica that ran this job stopped renewing its lease: the job was being paused, and is paused')
      const back = snapshot(applyTransition(current, to, {}, this.#stamp()))
      const [outcome] = await this.#write(jobId, to, '', back, true)
      if (outcome === 'ok') this.#emit(back)
      const [cancel, rate] = await this.#redis.hmget(this.#keys.job(jobId), 'cancel', 'rate')
      if (cancel !== null) await this.transition(jobId, 'cancelled').catch(() => {})
      // A cap its replica was asked for and died before writing: written now, for whoever takes it up.
      else if (typeof rate === 'string' && outcome === 'ok') await this.setByteRate(jobId, rateOfFlag(rate)).catch(() => {})
    }
    // A slot may have freed anywhere: whoever has room takes the next queued job.
    this.#queueChanges.emit('changed')
  }

  /** Keeps this replica's deliveries held, and takes up those whose replica died. */
  async #tendOutbox (): Promise<void> {
    for (const jobId of [...this.#delivering]) {
      if (await this.#run('HOLD', [this.#keys.outboxLease(jobId)], [this.replicaId, this.#leaseMs]) !== 1) this.#delivering.delete(jobId)
    }
    const taken = await this.#run('OUTBOX_TAKE', [this.#keys.outboxSet], [this.#keys.outboxPrefix, this.#keys.outboxLeasePrefix, this.replicaId, this.#leaseMs]) as string[]
    for (let i = 0; i + 3 < taken.length; i += 4) {
      const [jobId, url, event, body] = taken.slice(i, i + 4) as [string, string, string, string]
      this.#delivering.add(jobId)
      this.#log?.warn({ job_id: jobId }, 'a completion callback whose replica stopped before delivering it is sent by this one')
      this.#orphans.emit('orphan', jobId, { url, event, body } satisfies DueCallback)
    }
  }

  // Redis.

  #received (channel: string, text: string): void {
    try {
      if (channel === this.#keys.commands) {
        const command = JSON.parse(text) as CommandMessage
        const own = this.#own.get(command.jobId)
        if (own === undefined || own.cancelTold) return
        if (command.kind === 'rate') {
          this.#commands.emit('command', { jobId: command.jobId, kind: 'rate', purge: false, bytesPerS: command.bytesPerS ?? null } satisfies RunCommand)
          return
        }
        if (command.kind === 'pause') {
          if (own.pauseTold) return
          own.pauseTold = true
        } else {
          own.cancelTold = true
        }
        this.#commands.emit('command', { jobId: command.jobId, kind: command.kind, purge: command.purge } satisfies RunCommand)
        return
      }
      const { from, job } = JSON.parse(text) as ChangeMessage
      if (from === this.replicaId) return
      this.#emit(snapshot(job))
      if (job.status === 'queued' || isFinal(job.status)) this.#queueChanges.emit('changed')
    } catch (err) {
      this.#log?.warn({ channel, reason: (err as Error).message }, 'a job message from another replica could not be read')
    }
  }

  async #write (jobId: string, allowed: string, token: string, job: DownloadJob, publish: boolean): Promise<ScriptReply> {
    return this.#script('WRITE', [this.#keys.job(jobId), this.#keys.queue, this.#keys.running, this.#keys.lease(jobId), this.#keys.paused],
      [jobId, allowed, token, job.status, JSON.stringify(job), publish ? this.#keys.changes : '', publish ? this.#message(job) : '', Math.max(HISTORY_MIN_MS, this.#historyMaxAgeMs)])
  }

  /** The job as Redis has it, its status from the hash (a script may have moved it before its JSON followed). */
  async #read (ids: string[]): Promise<Array<DownloadJob | undefined>> {
    if (ids.length === 0) return []
    const pipeline = this.#redis.pipeline()
    for (const id of ids) pipeline.hmget(this.#keys.job(id), 'job', 'status')
    const replies = await this.#ask(async () => pipeline.exec())
    // A pipeline sent to a Redis that is away answers each command with its error, not a rejection.
    const failed = replies?.find(([err]) => err !== null)
    if (replies === null || failed !== undefined) throw new MdStateStoreUnavailableError(failed?.[0]?.message ?? 'the pipeline was not run')
    return ids.map((id, i) => {
      const own = this.#own.get(id)
      if (own !== undefined) return own.job
      const [text, status] = replies[i]![1] as [string | null, string | null]
      if (text === null || status === null) return undefined
      return snapshot({ ...JSON.parse(text) as DownloadJob, status: status as JobStatus })
    })
  }

  async #current (jobId: string): Promise<DownloadJob> {
    const [job] = await this.#read([jobId])
    if (job === undefined) throw new JobUnknownError(jobId)
    return job
  }

  async #script (name: string, keys: string[], args: Array<string | number>): Promise<ScriptReply> {
    return this.#ask(async () => this.#run(name, keys, args) as Promise<ScriptReply>)
  }

  async #run (name: string, keys: string[], args: Array<string | number>): Promise<unknown> {
    // defineCommand adds the command by name (EVALSHA, and EVAL again after a Redis restart flushed its scripts).
    const command = (this.#redis as unknown as Record<string, (...parts: Array<string | number>) => Promise<unknown>>)[`mdJob${name}`]!
    return command.call(this.#redis, keys.length, ...keys, ...args)
  }

  /** A Redis call; a Redis that does not answer is MD_STATE_STORE_UNAVAILABLE (503, Retry-After). */
  async #ask<T> (call: () => Promise<T>): Promise<T> {
    try {
      return await call()
    } catch (err) {
      throw new MdStateStoreUnavailableError((err as Error).message)
    }
  }

  #message (job: DownloadJob): string {
    return JSON.stringify({ from: this.replicaId, job } satisfies ChangeMessage)
  }

  #emit (job: DownloadJob): void {
    this.#seen.delete(job.job_id)
    this.#seen.set(job.job_id, job.status)
    if (this.#seen.size > SEEN_MAX) this.#seen.delete(this.#seen.keys().next().value!)
    this.#changes.emit('change', job)
  }

  #stamp (): string {
    return new Date(this.#now()).toISOString()
  }
}

/** The cluster's keys: everything under `{prefix}jobs:`. */
function keysOf (prefix: string) {
  const base = `${prefix}jobs:`
  const same = (request: DownloadRequest): string => `${base}same:${createHash('sha256').update(sameDownloadKey(request)).digest('hex')}`
  return {
    jobPrefix: `${base}job:`,
    leasePrefix: `${base}lease:`,
    job: (jobId: string) => `${base}job:${jobId}`,
    lease: (jobId: string) => `${base}lease:${jobId}`,
    same,
    sameOf: (request: DownloadRequest | undefined) => request === undefined ? `${base}same:none` : same(request),
    list: `${base}list`,
    queue: `${base}queue`,
    running: `${base}running`,
    paused: `${base}paused`,
    seq: `${base}seq`,
    changes: `${base}changes`,
    outboxSet: `${base}outbox`,
    outboxPrefix: `${base}outbox:`,
    outboxLeasePrefix: `${base}outbox-lease:`,
    outbox: (jobId: string) => `${base}outbox:${jobId}`,
    outboxLease: (jobId: string) => `${base}outbox-lease:${jobId}`,
    commands: `${base}commands`
  }
}
