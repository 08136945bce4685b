import t from 'tap'
import { CallbackReceiver } from '../fakes/callback-receiver.js'
import { cluster, model, post, runnerOf, sleep, until } from './download-cluster.js'

// Three server processes per test, beside the other test files on two cores: more than the default two minutes.
t.setTimeout(300_000)

// A callback that is due when its replica dies is sent by another replica, once, with the same body
// and signature: the replica that ends a job puts the callback in Redis's outbox before sending it.

t.test('a callback still being retried when its replica dies is delivered by another, once, with the same body and signature', { timeout: 120_000 }, async (t) => {
  const receiver = await CallbackReceiver.start()
  t.teardown(() => receiver.close())
  const { hub, replicas } = await cluster(t, {
    CALLBACK_ALLOWED_HOSTS: new URL(receiver.url).host,
    CALLBACK_SECRET: 'outbox-secret-0123456789abcdef',
    // The first attempt fails; the next would come only after a minute: the replica dies before.
    CALLBACK_RETRY_BASE_MS: '60000'
  })
  hub.addRepo({ id: 'org/outbox', revisions: { main: { commit: '7'.repeat(40), files: model(64 * 1024).files } } })
  receiver.answer(503)
  const started = await post(replicas[0]!, { model_id: 'org/outbox', callback_url: `${receiver.url}/resume/abc?token=s3cret` })
  const jobId = started.body.job_id as string
  await until('the first attempt', 20_000, async () => receiver.received.length > 0 ? true : undefined)
  const runner = replicas.find((replica) => replica.server.stdout().includes('"callback attempt failed"')) ?? runnerOf(replicas, jobId)
  t.ok(runner, 'the replica that ended the job made the first attempt')
  await runner!.kill()

  await until('another replica to deliver it', 30_000, async () => receiver.received.length > 1 ? true : undefined)
  await sleep(2000)
  t.equal(receiver.received.length, 2, 'one failed attempt, then one delivery: nothing sent twice')
  const [first, second] = receiver.received
  t.equal(second!.body, first!.body, 'the same body')
  t.equal(second!.headers['x-modeldepot-signature'], first!.headers['x-modeldepot-signature'], 'the same signature')
  t.match(second!.headers['x-modeldepot-signature'], /^sha256=[0-9a-f]{64}$/)
  t.match(JSON.parse(second!.body), { job_id: jobId, status: 'complete' })
  const survivor = replicas.find((replica) => replica !== runner)!
  const job = await until('the delivery recorded on the job', 10_000, async () => {
    const { body } = await survivor.call(`/api/downloads/${jobId}`)
    return body.callback?.delivered_at !== null ? body : undefined
  })
  t.match(job.callback, { last_status: 200, error: null }, 'the job shows it delivered')
})
