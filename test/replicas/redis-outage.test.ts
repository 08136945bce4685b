import t from 'tap'
import { wrongBlobs } from '../helpers/cache-checks.js'
import type { Replica } from '../helpers/replicas.js'
import { WEIGHTS, cluster, model, post, runnerOf, sleep, until } from './download-cluster.js'

// Three server processes per test, beside the other test files on two cores: more than the default two minutes.
t.setTimeout(300_000)

// Redis stopped in the middle of a download, then started again empty (no persistence): the
// replicas stay up, say why they are not ready, refuse what needs Redis with 503
// MD_STATE_STORE_UNAVAILABLE, answer for the jobs they run themselves, and the running transfer goes
// on; once Redis is back, its replica writes the job into it again and everyone sees it complete.

t.test('Redis down during a download: 503 MD_STATE_STORE_UNAVAILABLE for what needs it, the transfer goes on, and its state is back once Redis is', { timeout: 120_000 }, async (t) => {
  const { hub, redis, replicas, cacheDir } = await cluster(t)
  const { files, weights } = model(3 * 1024 * 1024)
  hub.addRepo({ id: 'org/outage', revisions: { main: { commit: '5'.repeat(40), files } } })
  hub.addRepo({ id: 'org/later', revisions: { main: { commit: '6'.repeat(40), files: model(1024).files } } })
  hub.injectFault({ kind: 'slow', path: WEIGHTS, bytesPerSecond: 512 * 1024, times: 1000 })
  const started = await post(replicas[0]!, { model_id: 'org/outage' })
  const jobId = started.body.job_id as string
  const runner = await until('the job to run somewhere', 10_000, async () => runnerOf(replicas, jobId))
  const other = replicas.find((replica) => replica !== runner) as Replica
  await until('some bytes', 10_000, async () => hub.bytesServed(WEIGHTS) > 0 ? true : undefined)

  await redis.stop()
  const servedAtStop = hub.bytesServed(WEIGHTS)
  await sleep(500)
  t.equal((await runner.call('/health')).status, 200, 'liveness stays 200: no reason to restart a replica')
  const ready = await runner.call('/health/ready')
  t.equal(ready.status, 503, 'readiness answers 503')
  const status = await runner.call('/api/system-status')
  t.match(status.body.infrastructure.state_store, { kind: 'redis', available: false, error: { code: 'MD_STATE_STORE_UNAVAILABLE' } }, 'system status says why')
  t.match(status.body.reasons[0], /^MD_STATE_STORE_UNAVAILABLE: /)
  const refused = await other.call('/api/download-model', { method: 'POST', body: JSON.stringify({ model_id: 'org/later' }) })
  t.match({ status: refused.status, code: refused.body.code, retryAfter: refused.headers.get('retry-after') }, { status: 503, code: 'MD_STATE_STORE_UNAVAILABLE', retryAfter: '5' }, 'a new download is refused with Retry-After')
  t.match((await other.call(`/api/downloads/${jobId}`, { method: 'DELETE' })).body, { code: 'MD_STATE_STORE_UNAVAILABLE' }, 'so is a cancel')
  t.match((await other.call(`/api/downloads/${jobId}`)), { status: 503 }, 'a job another replica runs cannot be read')
  const own = await runner.call(`/api/downloads/${jobId}`)
  t.match(own, { status: 200, body: { job_id: jobId } }, 'the replica that runs it answers for it')
  await until('the transfer to go on without Redis', 10_000, async () => hub.bytesServed(WEIGHTS) > servedAtStop + 256 * 1024 ? true : undefined)
  t.pass('bytes keep coming while Redis is away')

  await redis.start()
  const ended = await until('the job complete, as every replica sees it', 60_000, async () => {
    const answer = await other.call(`/api/downloads/${jobId}`)
    return answer.status === 200 && answer.body.status === 'complete' ? answer.body : undefined
  })
  t.match(ended, { job_id: jobId, status: 'complete', bytes_downloaded: weights.length + files[0]!.content.length }, 'the runner wrote its job back into the empty Redis')
  t.same(wrongBlobs(cacheDir), [], 'every file right')
  t.equal(hub.bytesServed(WEIGHTS), weights.length, 'nothing fetched twice')
  t.equal((await runner.call('/health/ready')).status, 200, 'ready again')
  for (const replica of replicas) t.equal(replica.server.child.exitCode, null, `${replica.name} never crashed`)
  t.equal((await other.call('/api/download-model', { method: 'POST', body: JSON.stringify({ model_id: 'org/later' }) })).status, 202, 'new downloads are taken again')
})
