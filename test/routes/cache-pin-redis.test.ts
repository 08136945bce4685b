import t from 'tap'
import { auth, buildTestApp } from '../helpers/app.js'
import { cachedModel } from '../helpers/cache-models.js'
import { startRedisServer } from '../helpers/redis-server.js'

// With REDIS_URL the pins are the cluster's: while Redis is away a pin or an unpin is refused with a
// clear 503 and changes nothing; reads go on with what this replica last knew.

t.test('with Redis away, pinning answers 503 MD_STATE_STORE_UNAVAILABLE and the listing still answers', async (t) => {
  const redis = await startRedisServer(t)
  const { app } = await buildTestApp(t, { REDIS_URL: redis.url })
  cachedModel(app.config.hubCacheDir, 'org/a', 1000, 3600)
  cachedModel(app.config.hubCacheDir, 'org/b', 1000, 3600)
  await app.ready()
  for (let i = 0; app.redis?.status !== 'ready'; i++) {
    if (i > 200) throw new Error('never connected to Redis')
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  t.equal((await app.inject({ method: 'PUT', url: '/api/models/pin', headers: auth(), payload: { model_id: 'org/a' } })).statusCode, 200)
  t.equal(await redis.command('HEXISTS', 'modeldepot:pins', 'org/a'), ':1', 'the pin is in Redis')

  await redis.stop()
  const refused = await app.inject({ method: 'PUT', url: '/api/models/pin', headers: auth(), payload: { model_id: 'org/b' } })
  t.equal(refused.statusCode, 503)
  t.match(refused.json(), { code: 'MD_STATE_STORE_UNAVAILABLE', hint: String })
  t.equal(refused.headers['retry-after'], '5')
  const unpin = await app.inject({ method: 'DELETE', url: '/api/models/pin?model_id=org/a', headers: auth() })
  t.equal(unpin.statusCode, 503, 'an unpin too')
  const models = await app.inject({ url: '/api/models', headers: auth() })
  t.equal(models.statusCode, 200)
  t.same(models.json().models.map((model: { model_id: string, pinned: boolean }) => [model.model_id, model.pinned]), [['org/a', true], ['org/b', false]],
    'what this replica last knew: nothing changed')
})
