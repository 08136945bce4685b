import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { FakeHub } from '../fakes/fake-hub.js'
import { TOKENS } from '../helpers/providers.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { startReplicas, type Replica } from '../helpers/replicas.js'

// Two server processes, one Redis: the cooldown a 429's RateLimit `t` sets on one replica holds the
// other back too, and once it ends the replicas probe the Hub by themselves, without traffic.

t.setTimeout(180_000)

async function redisReady (replica: Replica): Promise<void> {
  for (let i = 0; i < 150 && (await fetch(`http://127.0.0.1:${replica.port}/health/ready`)).status !== 200; i++) await sleep(100)
}

const health = async (replica: Replica): Promise<Record<string, any>> => (await replica.call('/api/providers/huggingface')).body.health
const plan = { method: 'POST', body: JSON.stringify({ model_id: 'org/tiny', auto: false }) }

t.test('a 429 with only RateLimit t holds back every replica for t seconds; then they recover with no traffic', async (t) => {
  const redis = await startRedisServer(t)
  const hub = await FakeHub.start({ tokens: { [TOKENS.hf]: { name: 'ada', role: 'read' } } })
  t.teardown(() => hub.close())
  hub.addRepo({ id: 'org/tiny', revisions: { main: { commit: '1'.repeat(40), files: [{ path: 'config.json', content: '{}' }] } } })
  const { replicas: [a, b] } = await startReplicas(t, ['a', 'b'], { REDIS_URL: redis.url, HF_ENDPOINT: hub.url, HF_TOKEN: TOKENS.hf })
  await Promise.all([a!, b!].map(redisReady))

  hub.scriptApi('/api/models/org/tiny', [{ status: 429, rateLimit: { bucket: 'api', remaining: 0, resetS: 3, quota: 1000, windowS: 300 } }])
  const limited = await a!.call('/api/download-model', plan)
  t.match({ status: limited.status, retryAfter: limited.headers.get('retry-after') }, { status: 502, retryAfter: '3' })
  const onA = await health(a!)
  t.match(onA, { status: 'rate_limited' })
  t.match(await health(b!), { status: 'rate_limited', cooldown_until: onA.cooldown_until }, 'the other replica has the same cooldown')

  const sent = hub.requests.length
  const refused = await b!.call('/api/download-model', plan)
  t.match(refused, { status: 503, body: { code: 'MD_PROVIDER_UNAVAILABLE', details: { status: 'rate_limited', cooldown_until: onA.cooldown_until } } })
  t.equal(hub.requests.length, sent, 'the other replica sent the Hub nothing')

  // Nobody calls: the probes after the cooldown bring both replicas' view back.
  for (let i = 0; i < 600 && (await health(b!)).consecutive_429s !== 0; i++) await sleep(50)
  t.match(await health(b!), { consecutive_429s: 0, cooldown_until: null })
  const probes = hub.requests.slice(sent)
  t.ok(probes.length >= 1 && probes.length <= 2, `one probe per replica at most (${probes.length})`)
  t.ok(probes.every((request) => request.path === '/api/whoami-v2' && request.at >= Date.parse(onA.cooldown_until)), 'whoami-v2, once the cooldown had ended')
})
