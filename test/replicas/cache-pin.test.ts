import { existsSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { FakeHub } from '../fakes/fake-hub.js'
import { cachedModel } from '../helpers/cache-models.js'
import { tinyModel, C1 } from '../helpers/downloads.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { startReplicas, type Replica } from '../helpers/replicas.js'
import { until } from './download-cluster.js'

// Issue 19: a pin is the cluster's. Made on replica a, it shows on b at once, and b's cache quota
// evicts another model rather than the pinned one, though the pinned one is the least recently used.

t.setTimeout(120_000)

const ready = async (replica: Replica): Promise<boolean | undefined> =>
  (await fetch(`http://127.0.0.1:${replica.port}/health/ready`)).status === 200 ? true : undefined

t.test('a pin made on replica a is seen and honoured on replica b', async (t) => {
  const redis = await startRedisServer(t)
  const hub = await FakeHub.start()
  t.teardown(() => hub.close())
  hub.addRepo({ id: 'org/tiny', revisions: { main: { commit: C1, files: tinyModel(64 * 1024).main } } })
  const { replicas: [a, b], cacheDir } = await startReplicas(t, ['a', 'b'], {
    REDIS_URL: redis.url,
    HF_ENDPOINT: hub.url,
    CACHE_MAX_BYTES: '130000'
  })
  await until('both replicas ready', 15_000, async () => (await ready(a!)) === true && (await ready(b!)) === true ? true : undefined)
  cachedModel(cacheDir, 'org/pinned', 50_000, 10 * 3600)
  cachedModel(cacheDir, 'org/spare', 50_000, 1 * 3600)

  const pin = await a!.call('/api/models/pin', { method: 'PUT', body: JSON.stringify({ model_id: 'org/pinned' }) })
  t.equal(pin.status, 200)
  const listed = await b!.call('/api/models')
  t.same(listed.body.models.map((model: { model_id: string, pinned: boolean }) => [model.model_id, model.pinned]), [['org/pinned', true], ['org/spare', false]], 'b lists the pin')
  const order = (await b!.call('/api/cache')).body.eviction_order
  t.same(order.map((model: { model_id: string, protected: string | null }) => [model.model_id, model.protected]), [['org/spare', null], ['org/pinned', 'pinned']])

  const started = await b!.call('/api/download-model', { method: 'POST', body: JSON.stringify({ model_id: 'org/tiny' }) })
  t.equal(started.status, 202, 'b makes room for the download')
  const job = await until('the download ends', 30_000, async () => {
    const { body } = await b!.call(`/api/downloads/${started.body.job_id as string}`)
    return ['complete', 'error', 'cancelled'].includes(body.status) ? body : undefined
  })
  t.equal(job.status, 'complete')
  t.ok(existsSync(join(cacheDir, 'models--org--pinned')), 'the pinned model is kept')
  t.notOk(existsSync(join(cacheDir, 'models--org--spare')), 'the other one was evicted')
  t.match(b!.server.stdout(), /"model_id":"org\/spare".*model evicted/, 'b logged the eviction')

  const unpin = await b!.call('/api/models/pin?model_id=org/pinned', { method: 'DELETE' })
  t.equal(unpin.body.pinned, false)
  const onA = (await a!.call('/api/cache')).body.eviction_order
  t.same(onA.map((model: { model_id: string, protected: string | null }) => [model.model_id, model.protected]), [['org/pinned', null], ['org/tiny', null]], 'the unpin made on b holds on a')
})
