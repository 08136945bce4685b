import { CallbackReceiver } from '../fakes/callback-receiver.js'
import t from 'tap'
import { KEY } from '../helpers/app.js'
import { wrongBlobs } from '../helpers/cache-checks.js'
import { openStream } from '../helpers/event-stream.js'
import { WEIGHTS, LEASE_MS, sleep, model, cluster, until, post, runnerOf } from './download-cluster.js'

// Three server processes per test, beside the other test files on two cores: more than the default two minutes.
t.setTimeout(300_000)

// Three server processes, one Redis, one cache (download-cluster.ts).

t.test('kill -9 of the replica running a download: another one takes it over and completes it from the partial file', { timeout: 120_000 }, async (t) => {
  const receiver = await CallbackReceiver.start()
  t.teardown(() => receiver.close())
  const { hub, replicas, cacheDir } = await cluster(t, { CALLBACK_ALLOWED_HOSTS: new URL(receiver.url).host })
  const { files, weights } = model(4 * 1024 * 1024)
  hub.addRepo({ id: 'org/takeover', revisions: { main: { commit: '3'.repeat(40), files } } })
  hub.injectFault({ kind: 'slow', path: WEIGHTS, bytesPerSecond: 1024 * 1024, times: 1000 })

  const started = await post(replicas[0]!, { model_id: 'org/takeover', callback_url: `${receiver.url}/done` })
  const jobId = started.body.job_id as string
  const runner = await until('the job to run somewhere', 10_000, async () => runnerOf(replicas, jobId))
  const others = replicas.filter((replica) => replica !== runner)
  const watcher = others[0]!
  const stream = await openStream(`http://127.0.0.1:${watcher.port}/api/downloads/${jobId}/events`, { authorization: `Bearer ${KEY}` })
  t.teardown(() => stream.close())
  await until('a third of the weights', 20_000, async () => {
    const { body } = await watcher.call(`/api/downloads/${jobId}`)
    return body.bytes_downloaded > weights.length / 3 ? true : undefined
  })
  await runner.kill()
  const killedAt = Date.now()

  const next = await until('another replica to take the job over', LEASE_MS + 10_000, async () => runnerOf(others, jobId))
  t.ok(Date.now() - killedAt < LEASE_MS + 10_000, `taken over by ${next.name} ${Date.now() - killedAt} ms after the kill`)
  const ended = await watcher.call(`/api/download-progress?job_id=${jobId}&wait=60`)
  t.match(ended.body, { job_id: jobId, status: 'complete' }, 'the same job completes')
  t.same(wrongBlobs(cacheDir), [], 'every file is hash-checked and right')
  const served = hub.bytesServed(WEIGHTS)
  t.ok(served < weights.length * 1.25, `the weights were fetched once and a bit: ${served} bytes for ${weights.length}`)
  await stream.ended
  t.ok(stream.events.every((event) => event.data.job_id === jobId), 'the stream on a survivor shows one job throughout')
  t.equal(stream.events.at(-1)?.event, 'complete', 'and ends with it complete')
  await until('the callback', 10_000, async () => receiver.received.length > 0 ? true : undefined)
  await sleep(1000)
  t.equal(receiver.received.length, 1, 'the completion callback was delivered once')
  t.match(JSON.parse(receiver.received[0]!.body), { job_id: jobId, status: 'complete' })
})
