import t from 'tap'
import type { Replica } from '../helpers/replicas.js'
import { WEIGHTS, sleep, model, cluster, post, runnerOf } from './download-cluster.js'

// Three server processes per test, beside the other test files on two cores: more than the default two minutes.
t.setTimeout(300_000)

// Three server processes, one Redis, one cache (download-cluster.ts).

t.test('MAX_CONCURRENT_DOWNLOADS holds for the cluster; a queued job starts on whichever replica has room', { timeout: 120_000 }, async (t) => {
  const { hub, replicas } = await cluster(t)
  const [a, b, c] = replicas as [Replica, Replica, Replica]
  for (const name of ['org/one', 'org/two', 'org/three']) {
    hub.addRepo({ id: name, revisions: { main: { commit: '2'.repeat(40), files: model(512 * 1024).files } } })
  }
  hub.injectFault({ kind: 'slow', path: WEIGHTS, bytesPerSecond: 512 * 1024, times: 1000 })
  const jobs = await Promise.all([post(a, { model_id: 'org/one' }), post(b, { model_id: 'org/two' }), post(c, { model_id: 'org/three' })])
  const ids = jobs.map((job) => job.body.job_id as string)
  let mostAtOnce = 0
  let countedTogether = 0
  for (;;) {
    const { body } = await c.call('/api/downloads')
    const ours = (body.jobs as Array<{ job_id: string, status: string }>).filter((job) => ids.includes(job.job_id))
    const running = ours.filter((job) => job.status === 'downloading' || job.status === 'verifying').length
    mostAtOnce = Math.max(mostAtOnce, running)
    // The counts and the list are two reads: a job may change between them, so they agree most of the time, not always.
    t.ok(body.active_downloads <= 1, `the cluster's count never passes the limit (${body.active_downloads as number})`)
    if (body.active_downloads === running && running === 1) countedTogether++
    if (ours.every((job) => job.status === 'complete')) break
    if (ours.some((job) => job.status === 'error' || job.status === 'cancelled')) throw new Error(JSON.stringify(ours))
    await sleep(100)
  }
  t.equal(mostAtOnce, 1, 'never more than one job ran at once, on any replica')
  t.ok(countedTogether > 0, 'c counted the job running on the cluster, whichever replica ran it')
  const runners = ids.map((jobId) => runnerOf(replicas, jobId)?.name)
  t.ok(runners.every((name) => name !== undefined), `each job ran on one replica (${runners.join(', ')})`)
})

t.test('a replica started with another MAX_CONCURRENT_DOWNLOADS than the running ones refuses to start, and says why', { timeout: 120_000 }, async (t) => {
  const { add } = await cluster(t)
  await t.rejects(add('d', { MAX_CONCURRENT_DOWNLOADS: '2' }),
    /server exited: modeldepot: MAX_CONCURRENT_DOWNLOADS is 2 here but 1 on the replicas already running with this Redis and REDIS_KEY_PREFIX/,
    'it exits before it listens, with the reason')
})
