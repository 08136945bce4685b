import { randomBytes } from 'node:crypto'
import { readFileSync, readlinkSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import t from 'tap'
import { WEIGHTS, cluster, model, post, until } from './download-cluster.js'

// Three server processes per test, beside the other test files on two cores: more than the default two minutes.
t.setTimeout(300_000)

// Issue 19, verify across replicas: a verify asked of one replica takes none of the cluster's
// download slots (MAX_CONCURRENT_DOWNLOADS=1 here, held by a download elsewhere), repairs exactly
// the bad file, and every replica shows the same job.

const COMMIT = '7'.repeat(40)

t.test('a verify with repair asked of one replica runs while the cluster\'s only slot is taken, and every replica shows its findings', { timeout: 180_000 }, async (t) => {
  const { hub, replicas, cacheDir } = await cluster(t)
  const [a, b, c] = replicas as [typeof replicas[0], typeof replicas[0], typeof replicas[0]]
  const { files, weights } = model(2 * 1024 * 1024)
  hub.addRepo({ id: 'org/verify', revisions: { main: { commit: COMMIT, files } } })
  const first = await post(a, { model_id: 'org/verify' })
  await until('org/verify in the cache', 60_000, async () => {
    const job = (await b.call(`/api/download-progress?job_id=${first.body.job_id as string}&wait=10`)).body
    return job.status === 'complete' ? job : undefined
  })

  // The cluster's one download slot, held by a slow download.
  hub.addRepo({ id: 'org/busy', revisions: { main: { commit: '8'.repeat(40), files: [{ path: 'big.safetensors', content: randomBytes(4 * 1024 * 1024), lfs: true }] } } })
  hub.injectFault({ kind: 'slow', path: 'big.safetensors', bytesPerSecond: 256 * 1024, times: 1000 })
  const busy = (await post(a, { model_id: 'org/busy' })).body.job_id as string
  await until('the busy download to run', 20_000, async () => (await a.call(`/api/downloads/${busy}`)).body.status === 'downloading' ? true : undefined)

  const link = join(cacheDir, 'models--org--verify', 'snapshots', COMMIT, WEIGHTS)
  const blob = resolve(dirname(link), readlinkSync(link))
  const bytes = readFileSync(blob)
  bytes[99] = (bytes[99]! + 1) % 256
  writeFileSync(blob, bytes)
  const served = hub.bytesServed(WEIGHTS)

  const asked = await b.call('/api/models/verify', { method: 'POST', body: JSON.stringify({ model_id: 'org/verify', repair: true }) })
  t.equal(asked.status, 202)
  t.match(asked.body, { kind: 'verify', model_id: 'org/verify', commit: COMMIT })
  const jobId = asked.body.job_id as string
  const ended = await until('the verify to end', 60_000, async () => {
    const job = (await c.call(`/api/download-progress?job_id=${jobId}&wait=10`)).body
    return ['complete', 'error', 'cancelled'].includes(job.status) ? job : undefined
  })
  t.match(ended, { status: 'complete', kind: 'verify', verify: { mismatched: [WEIGHTS], missing: [], repaired: [WEIGHTS] } })
  t.equal(hub.bytesServed(WEIGHTS) - served, weights.length, 'exactly the bad file came again, once')
  t.same(readFileSync(link), weights, 'and it is right again')
  t.equal((await a.call(`/api/downloads/${busy}`)).body.status, 'downloading', 'the download kept the cluster\'s only slot all along')
  for (const replica of replicas) {
    t.match((await replica.call(`/api/downloads/${jobId}`)).body, { status: 'complete', verify: { repaired: [WEIGHTS] } }, `${replica.name} shows the same findings`)
  }
  t.ok(replicas.some((replica) => replica.server.stdout().includes('"verify running here"')), 'one replica ran it')
  await a.call(`/api/downloads/${busy}`, { method: 'DELETE' })
})
