import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import type { DownloadJob } from '../../../src/downloads/download-job.js'
import type { DownloadPlan, DownloadRequest } from '../../../src/downloads/download-plan.js'
import { JobTransitionError, JobUnknownError, type JobProgress, type JobStore } from '../../../src/downloads/job-store.js'
import { newJob } from '../../../src/downloads/new-job.js'

// What every JobStore must do, whatever keeps the jobs: run it with a maker for each implementation.

export interface StoreOptions {
  /** Ended jobs kept at most. */
  limit?: number
}

/**
 * Makes a store over `place` (a fresh temporary folder per test; a shared store may derive a key prefix from
 * it): two stores made over the same place share what is kept, as two starts of one server do.
 */
export type MakeStore = (place: string, options?: StoreOptions) => JobStore | Promise<JobStore>

const PLAN: DownloadPlan = {
  model_id: 'org/tiny',
  revision: 'main',
  commit: 'c'.repeat(40),
  files: [
    { path: 'config.json', size: 10, etag: 'e1', lfs: false, cached: true },
    { path: 'model.safetensors', size: 90, etag: 'e2', lfs: true, cached: false }
  ] as unknown as DownloadPlan['files'],
  bytes_total: 100,
  bytes_cached: 10,
  bytes_missing: 90,
  free_bytes: 1e9
}

export const requestFor = (modelId: string, callbackUrl?: string): DownloadRequest =>
  ({ modelId, revision: 'main', ...(callbackUrl === undefined ? {} : { callbackUrl }) })

export const jobFor = (request: DownloadRequest, saved?: DownloadJob): DownloadJob =>
  newJob(request, { ...PLAN, model_id: request.modelId }, new Date().toISOString(), saved)

const PROGRESS: JobProgress = {
  bytes_downloaded: 55, progress: 55, bytes_transferred: 45, files_done: 1, speed_bps: 1000, eta_seconds: 1, current_files: ['model.safetensors']
}

const refused = async (t: Test, fn: () => unknown, from: string, to: string, what: string): Promise<void> => {
  try {
    await fn()
    t.fail(`${what}: it was allowed`)
  } catch (err) {
    t.ok(err instanceof JobTransitionError, `${what}: a JobTransitionError`)
    t.match(err, { code: 'JOB_TRANSITION_REFUSED', from, to }, what)
  }
}

/** Creates a queued job and answers it (the contract's create answers it with whether it was made). */
const created = async (store: JobStore, request: DownloadRequest, to?: 'queued' | 'complete'): Promise<DownloadJob> => {
  const { job, created } = await store.create(jobFor(request), request, to)
  if (!created) throw new Error(`not created: ${request.modelId}`)
  return job
}

export function jobStoreContract (t: Test, makeStore: MakeStore): void {
  const make = async (t: Test, options?: StoreOptions): Promise<{ store: JobStore, place: string }> => {
    const place = mkdtempSync(join(tmpdir(), 'job-store-'))
    const store = await makeStore(place, options)
    // Writes still under way land before the folder goes.
    t.teardown(async () => {
      await store.flush()
      await store.close()
      rmSync(place, { recursive: true, force: true })
    })
    return { store, place }
  }

  t.test('a job goes queued, downloading, verifying, complete, with its progress in between', async (t) => {
    const { store } = await make(t)
    const request = requestFor('org/a')
    const job = await created(store, request)
    t.match(job, { status: 'queued', bytes_downloaded: 10, started_at: null, completed_at: null })
    t.same(await store.get(job.job_id), job, 'get answers what create answered')
    t.same(await store.request(job.job_id), request, 'the request is kept while the job runs')
    t.equal((await store.claim(1))?.job_id, job.job_id, 'taken from the queue')
    t.equal((await store.get(job.job_id))!.status, 'downloading')
    t.ok((await store.get(job.job_id))!.started_at, 'started_at is stamped')
    t.match(store.progress(job.job_id, PROGRESS), { ...PROGRESS, status: 'downloading' })
    t.equal((await store.transition(job.job_id, 'verifying', { progress: { ...PROGRESS, bytes_downloaded: 100, progress: 100, current_files: [] } })).status, 'verifying')
    t.match(store.progress(job.job_id, { ...PROGRESS, bytes_downloaded: 100 }), { status: 'verifying', bytes_downloaded: 100 })
    const ended = await store.transition(job.job_id, 'complete')
    t.match(ended, { status: 'complete', progress: 100, bytes_downloaded: 100, files_done: 2, speed_bps: 0, eta_seconds: 0, current_files: [], error: null })
    t.ok(ended.completed_at, 'completed_at is stamped')
    t.equal(await store.request(job.job_id), undefined, 'the request is let go once the job ended')
    t.equal(await store.findUnfinished(request), undefined, 'an ended job is not joined')
  })

  t.test('every change that the table does not list is refused, and the job stays as it was', async (t) => {
    const { store } = await make(t)
    const request = requestFor('org/b')
    const job = await created(store, request)
    await refused(t, async () => store.transition(job.job_id, 'verifying'), 'queued', 'verifying', 'queued cannot skip to verifying')
    await refused(t, async () => store.transition(job.job_id, 'complete'), 'queued', 'complete', 'queued cannot complete')
    await refused(t, () => store.progress(job.job_id, PROGRESS), 'queued', 'progress', 'a queued job tells no progress')
    await refused(t, async () => store.create(jobFor(request, job), request), 'queued', 'queued', 'a job is created once')
    t.equal((await store.get(job.job_id))!.status, 'queued', 'still queued')
    await store.claim(1)
    await refused(t, async () => store.transition(job.job_id, 'downloading'), 'downloading', 'downloading', 'a running job is not taken twice')
    await refused(t, async () => store.recordCallback(job.job_id, job.callback ?? { url: 'x', attempts: 1, last_status: 200, delivered_at: null, error: null }), 'downloading', 'callback', 'no callback before the end')
    await store.transition(job.job_id, 'cancelled', { error: { code: 'MD_X', message: 'stopped' } })
    t.match(await store.get(job.job_id), { status: 'cancelled', error: { code: 'MD_X' }, eta_seconds: null })
    for (const to of ['queued', 'downloading', 'verifying', 'complete', 'error', 'cancelled'] as const) {
      await refused(t, async () => store.transition(job.job_id, to), 'cancelled', to, `an ended job stays ended (${to})`)
    }
    await refused(t, () => store.progress(job.job_id, PROGRESS), 'cancelled', 'progress', 'an ended job tells no progress')
    await t.rejects(store.transition('no-such-job', 'downloading'), JobUnknownError, 'an unknown job is refused')
    t.equal(await store.get('no-such-job'), undefined)
  })

  t.test('a request the cache has complete is created complete at once', async (t) => {
    const { store } = await make(t)
    const request = requestFor('org/c')
    t.match(await created(store, request, 'complete'), { status: 'complete', progress: 100, completed_at: String })
  })

  t.test('snapshots cannot change the store, nor can what was handed to it', async (t) => {
    const { store } = await make(t)
    const request = requestFor('org/d', 'http://hooks.example/done?token=secret')
    const job = jobFor(request)
    const { job: made } = await store.create(job, request)
    job.status = 'complete'
    job.bytes_downloaded = 99
    t.throws(() => { (made as { status: string }).status = 'error' }, TypeError, 'a snapshot is frozen')
    t.throws(() => { made.current_files.push('x') }, TypeError, 'its arrays too')
    t.throws(() => { made.callback!.attempts = 5 }, TypeError, 'and its callback')
    await store.claim(1)
    const progress = { ...PROGRESS, current_files: ['a'] }
    store.progress(job.job_id, progress)
    progress.current_files.push('b')
    progress.bytes_downloaded = 1
    t.match(await store.get(job.job_id), { status: 'downloading', bytes_downloaded: 55, current_files: ['a'] }, 'the store kept its own copies')
    t.equal((await store.all())[0]!.current_files.length, 1)
  })

  t.test('the list is newest first, the queue oldest first, and unfinished jobs are found by their request', async (t) => {
    const { store } = await make(t)
    const ids: string[] = []
    for (const id of ['org/e1', 'org/e2', 'org/e3']) ids.push((await created(store, requestFor(id))).job_id)
    t.same((await store.all()).map((job) => job.job_id), [...ids].reverse())
    t.same(await store.counts(), { running: 0, queued: 3 })
    t.equal((await store.claim(1))?.job_id, ids[0], 'the oldest is taken first')
    t.equal(await store.claim(1), undefined, 'no more than maxRunning run at once')
    t.same(await store.counts(), { running: 1, queued: 2 })
    t.equal((await store.claim(2))?.job_id, ids[1], 'then the next, when there is room')
    t.equal((await store.findUnfinished(requestFor('org/e2')))?.job_id, ids[1])
    t.equal(await store.findUnfinished(requestFor('org/e2', 'http://hooks.example/x')), undefined, 'another callback is another download')
    t.same((await store.unfinished()).map((job) => job.job_id).sort(), [...ids].sort())
    const again = await store.create(jobFor(requestFor('org/e3')), requestFor('org/e3'))
    t.same({ created: again.created, job_id: again.job.job_id }, { created: false, job_id: ids[2] }, 'the same download is not queued twice')
  })

  t.test('a job waiting for the Hub\'s cooldown stays queued, passed over, until its time; taken, it waits no more', async (t) => {
    const { store } = await make(t)
    const waitingFor = (ms: number): { reason: 'provider_cooldown', until: string } => ({ reason: 'provider_cooldown', until: new Date(Date.now() + ms).toISOString() })
    const later = { ...jobFor(requestFor('org/w1')), waiting: waitingFor(3_600_000) }
    t.match((await store.create(later, requestFor('org/w1'))).job, { status: 'queued', waiting: { reason: 'provider_cooldown' } })
    const plain = await created(store, requestFor('org/w2'))
    t.equal((await store.claim(5))?.job_id, plain.job_id, 'the younger job that does not wait goes first')
    t.equal(await store.claim(5), undefined, 'the waiting one is not taken before its time')
    t.match(await store.get(later.job_id), { status: 'queued', waiting: { until: later.waiting.until } })
    t.same(await store.counts(), { running: 1, queued: 1 }, 'it counts as queued')

    const due = { ...jobFor(requestFor('org/w3')), waiting: waitingFor(-1000) }
    await store.create(due, requestFor('org/w3'))
    const taken = await store.claim(5)
    t.equal(taken?.job_id, due.job_id, 'once its time has passed it is taken')
    t.notOk(taken !== undefined && 'waiting' in taken, 'and waits no more')
    const planned = store.progress(due.job_id, { ...PROGRESS, commit: 'd'.repeat(40), bytes_total: 200, files_total: 3 })
    t.match(planned, { commit: 'd'.repeat(40), bytes_total: 200, files_total: 3, bytes_downloaded: 55 }, 'its plan is told with its first progress')
    await store.transition(later.job_id, 'cancelled')
    t.notOk('waiting' in (await store.get(later.job_id))!, 'an ended job waits for nothing')
  })

  t.test('a job given back goes to the head of the queue and is taken again with its progress', async (t) => {
    const { store } = await make(t)
    const first = await created(store, requestFor('org/q1'))
    const second = await created(store, requestFor('org/q2'))
    await store.claim(1)
    store.progress(first.job_id, PROGRESS)
    const back = await store.transition(first.job_id, 'queued')
    t.match(back, { status: 'queued', bytes_downloaded: 55, current_files: [], speed_bps: 0 })
    t.equal((await store.claim(1))?.job_id, first.job_id, 'it waited longest: it goes first')
    t.equal((await store.get(second.job_id))!.status, 'queued')
  })

  t.test('a paused job leaves the queue and frees its slot, stays unfinished and joinable, and queues again when resumed', async (t) => {
    const { store } = await make(t)
    const running = await created(store, requestFor('org/p1'))
    const waiting = await created(store, requestFor('org/p2'))
    await store.claim(1)
    store.progress(running.job_id, PROGRESS)
    const paused = await store.transition(running.job_id, 'paused')
    t.match(paused, { status: 'paused', bytes_downloaded: 55, current_files: [], speed_bps: 0, eta_seconds: null, completed_at: null })
    t.same(await store.counts(), { running: 0, queued: 1 }, 'neither running nor queued')
    await refused(t, () => store.progress(running.job_id, PROGRESS), 'paused', 'progress', 'a paused job tells no progress')
    await refused(t, async () => store.transition(running.job_id, 'downloading'), 'paused', 'downloading', 'a paused job is not taken')
    t.equal((await store.claim(1))?.job_id, waiting.job_id, 'its slot went to the queued job')
    t.same((await store.unfinished()).map((job) => job.job_id).sort(), [running.job_id, waiting.job_id].sort(), 'still unfinished')
    t.equal((await store.findUnfinished(requestFor('org/p1')))?.job_id, running.job_id, 'the same download finds it')
    t.match(await store.transition(waiting.job_id, 'paused'), { status: 'paused' }, 'a running job is paused by the process that runs it')
    t.equal(await store.claim(1), undefined, 'nothing queued')
    t.match(await store.transition(running.job_id, 'queued'), { status: 'queued', bytes_downloaded: 55 }, 'resumed: queued again')
    t.equal((await store.claim(1))?.job_id, running.job_id, 'and taken')
    t.match(await store.transition(waiting.job_id, 'cancelled'), { status: 'cancelled' }, 'a paused job can be cancelled')
    t.equal(await store.findUnfinished(requestFor('org/p2')), undefined)
  })

  t.test('a verify job takes no download slot: taken to verifying while the slots are full, and its own table', async (t) => {
    const { store } = await make(t)
    const download = await created(store, requestFor('org/v1'))
    const waiting = await created(store, requestFor('org/v2'))
    const verifyRequest: DownloadRequest = { ...requestFor('org/v3'), kind: 'verify', repair: true }
    const { job: verify } = await store.create({ ...jobFor(verifyRequest), kind: 'verify' }, verifyRequest)
    t.equal((await store.claim(1))?.job_id, download.job_id, 'the download takes the one slot')
    const taken = await store.claim(1)
    t.match(taken, { job_id: verify.job_id, kind: 'verify', status: 'verifying' }, 'the verify is taken anyway, straight to verifying')
    t.equal(await store.claim(1), undefined, 'the queued download still waits for the slot')
    t.equal((await store.findUnfinished(verifyRequest))?.job_id, verify.job_id, 'the same verify finds it')
    t.equal((await store.findUnfinished(requestFor('org/v3')))?.job_id, undefined, 'a download of that model is another job')
    const result = { mismatched: ['a.bin'], missing: [], unchecked: [] }
    t.match(store.progress(verify.job_id, { ...PROGRESS, current_files: [], verify: result }), { status: 'verifying', verify: result })
    t.match(await store.transition(verify.job_id, 'downloading'), { status: 'downloading', verify: result }, 'a repair downloads after the check')
    t.match(await store.transition(verify.job_id, 'verifying'), { status: 'verifying' })
    t.match(await store.transition(verify.job_id, 'complete'), { status: 'complete', kind: 'verify', verify: result }, 'the findings stay on the ended job')
    await refused(t, async () => store.transition(download.job_id, 'queued').then(async () => store.transition(waiting.job_id, 'verifying')), 'queued', 'verifying', 'a queued download still cannot skip to verifying')
  })

  t.test('ended jobs beyond the history bound are let go, oldest first; unfinished ones never', async (t) => {
    const { store } = await make(t, { limit: 3 })
    const running = (await created(store, requestFor('org/f0'))).job_id
    const ended: string[] = []
    for (let i = 1; i <= 4; i++) ended.push((await created(store, requestFor(`org/f${i}`), 'complete')).job_id)
    t.equal((await store.all()).length, 3)
    t.ok(await store.get(running), 'the unfinished job is kept')
    t.same((await store.all()).map((job) => job.job_id), [ended[3], ended[2], running], 'the newest ended ones are kept')
  })

  t.test('every change is told to the listeners as a snapshot; a callback delivery is not', async (t) => {
    const { store } = await make(t)
    const seen: DownloadJob[] = []
    const stop = store.onChange((job) => seen.push(job))
    t.equal(store.changeListeners, 1)
    const request = requestFor('org/g', 'http://hooks.example/done')
    const job = await created(store, request)
    await store.claim(1)
    store.progress(job.job_id, PROGRESS)
    const ended = await store.transition(job.job_id, 'error', { error: { code: 'MD_DOWNLOAD_FAILED', message: 'boom' } })
    await store.recordCallback(job.job_id, { ...ended.callback!, attempts: 1, last_status: 200, delivered_at: new Date().toISOString() })
    t.same(seen.map((change) => change.status), ['queued', 'downloading', 'downloading', 'error'])
    t.ok(seen.every(Object.isFrozen), 'listeners get frozen snapshots')
    t.match((await store.get(job.job_id))!.callback, { attempts: 1, last_status: 200 }, 'the delivery is kept on the job')
    stop()
    t.equal(store.changeListeners, 0)
  })

  t.test('a job ended by a shutdown is taken up again by the next start, or stays in the shared queue', async (t) => {
    const { store, place } = await make(t)
    const running = requestFor('org/h1', 'http://hooks.example/h1?token=secret')
    const stopped = requestFor('org/h2')
    const done = requestFor('org/h3')
    const a = await created(store, running)
    await store.claim(1)
    const b = await created(store, stopped)
    const c = await created(store, done, 'complete')
    if (store.sharedQueue) {
      t.notOk(store.keepsInterrupted, 'a shared store keeps no interrupted jobs: they wait in its queue')
      const next = await makeStore(place)
      t.teardown(async () => next.close())
      t.match(await next.get(c.job_id), { status: 'complete' }, 'the history is shared')
      t.match(await next.get(a.job_id), { status: 'downloading' }, 'and the job running on the other')
      t.same(await next.interrupted(), [])
      t.equal((await next.claim(2))?.job_id, b.job_id, 'the other takes what is queued')
      return
    }
    t.ok(store.keepsInterrupted, 'this store keeps jobs across restarts')
    // A shutdown: the job shows its end, and stays unfinished for the next start.
    await store.transition(b.job_id, 'cancelled', { error: { code: 'MD_SERVER_SHUTDOWN', message: 'later' }, interrupted: true })
    t.equal((await store.get(b.job_id))!.status, 'cancelled')
    t.equal((await store.request(b.job_id))?.modelId, 'org/h2', 'its request is kept for the next start')
    await store.flush()

    const next = await makeStore(place)
    t.teardown(async () => next.flush())
    t.match(await next.get(c.job_id), { status: 'complete' }, 'the history survives')
    t.match(await next.get(a.job_id), { status: 'downloading' }, 'a job that never ended shows where it was')
    const interrupted = await next.interrupted()
    t.same(interrupted.map((entry) => entry.job.job_id).sort(), [a.job_id, b.job_id].sort())
    t.same(interrupted.find((entry) => entry.job.job_id === a.job_id)?.request, running, 'with its request, callback URL in full')
    t.equal(interrupted.find((entry) => entry.job.job_id === b.job_id)?.job.status, 'queued', 'the stopped one is taken up as queued')
    t.same(await next.unfinished(), [], 'nothing runs until it is taken up')
    t.same(await next.counts(), { running: 0, queued: 0 })
    await refused(t, async () => next.transition(a.job_id, 'downloading'), 'interrupted', 'downloading', 'an interrupted job is taken up first')
    await refused(t, () => next.progress(a.job_id, PROGRESS), 'interrupted', 'progress', 'nor tells progress')
    const { job: resumed } = await next.create(jobFor(running, interrupted.find((entry) => entry.job.job_id === a.job_id)!.job), running)
    t.match(resumed, { job_id: a.job_id, status: 'queued', created_at: a.created_at })
    t.equal((await next.findUnfinished(running))?.job_id, a.job_id, 'the job taken up is joined by the same request')
    t.equal((await next.all()).length, 3, 'the same job, not a second one')
    const failed = await next.transition(b.job_id, 'error', { error: { code: 'MD_X', message: 'cannot plan' } })
    t.equal(failed.status, 'error', 'an interrupted job that cannot be planned ends in error')
    await next.flush()

    const third = await makeStore(place)
    t.teardown(async () => third.flush())
    t.same((await third.interrupted()).map((entry) => entry.job.job_id), [a.job_id], 'the job taken up is unfinished still; the failed one ended')
    t.match(await third.get(b.job_id), { status: 'error' })
  })
}
