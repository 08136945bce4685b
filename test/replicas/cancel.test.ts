import t from 'tap'
import type { Replica } from '../helpers/replicas.js'
import { WEIGHTS, sleep, model, cluster, until, post, runnerOf } from './download-cluster.js'

// Three server processes per test, beside the other test files on two cores: more than the default two minutes.
t.setTimeout(300_000)

// Three server processes, one Redis, one cache (download-cluster.ts).

t.test('cancel on one replica stops the transfer on the replica that runs it; delete-model on another answers 409', { timeout: 120_000 }, async (t) => {
  const { hub, replicas } = await cluster(t)
  const { files, weights } = model(4 * 1024 * 1024)
  hub.addRepo({ id: 'org/cancel', revisions: { main: { commit: '4'.repeat(40), files } } })
  hub.injectFault({ kind: 'slow', path: WEIGHTS, bytesPerSecond: 512 * 1024, times: 1000 })
  const started = await post(replicas[0]!, { model_id: 'org/cancel' })
  const jobId = started.body.job_id as string
  const runner = await until('the job to run somewhere', 10_000, async () => runnerOf(replicas, jobId))
  const [other, third] = replicas.filter((replica) => replica !== runner) as [Replica, Replica]
  await until('some bytes', 10_000, async () => hub.bytesServed(WEIGHTS) > 0 ? true : undefined)

  const refused = await other.call('/api/delete-model?model_id=org/cancel', { method: 'DELETE' })
  t.match({ status: refused.status, code: refused.body.code }, { status: 409, code: 'MD_MODEL_PROTECTED' }, 'a model downloading elsewhere is protected')

  const asked = Date.now()
  const cancelled = await third.call(`/api/downloads/${jobId}`, { method: 'DELETE' })
  t.match(cancelled.body, { job_id: jobId, status: 'cancelled' }, 'answered once the runner stopped it')
  t.ok(Date.now() - asked < 2000, `stopped within 2 s (${Date.now() - asked} ms)`)
  const servedThen = hub.bytesServed(WEIGHTS)
  await sleep(1000)
  t.ok(hub.bytesServed(WEIGHTS) - servedThen < 64 * 1024, 'the transfer stopped')
  t.ok(hub.bytesServed(WEIGHTS) < weights.length, 'before the end of the file')
  t.match((await runner.call(`/api/downloads/${jobId}`)).body, { status: 'cancelled' }, 'the runner shows it cancelled too')
})

t.test('pause on one replica stops the transfer where it runs; paused on every replica; resumed on another, it fetches only the rest', { timeout: 120_000 }, async (t) => {
  const { hub, replicas } = await cluster(t)
  const { files, weights } = model(4 * 1024 * 1024)
  hub.addRepo({ id: 'org/pause', revisions: { main: { commit: '5'.repeat(40), files } } })
  hub.injectFault({ kind: 'slow', path: WEIGHTS, bytesPerSecond: 512 * 1024, times: 1000 })
  const started = await post(replicas[0]!, { model_id: 'org/pause' })
  const jobId = started.body.job_id as string
  const runner = await until('the job to run somewhere', 10_000, async () => runnerOf(replicas, jobId))
  const [other, third] = replicas.filter((replica) => replica !== runner) as [Replica, Replica]
  await until('some bytes', 10_000, async () => hub.bytesServed(WEIGHTS) > 0 ? true : undefined)

  const paused = await other.call(`/api/downloads/${jobId}/pause`, { method: 'POST' })
  t.match({ status: paused.status, body: paused.body }, { status: 200, body: { job_id: jobId, status: 'paused' } }, 'answered once the runner paused it')
  const servedThen = hub.bytesServed(WEIGHTS)
  await sleep(1000)
  t.ok(hub.bytesServed(WEIGHTS) - servedThen < 64 * 1024, 'the transfer stopped')
  for (const replica of replicas) t.match((await replica.call(`/api/downloads/${jobId}`)).body, { status: 'paused' }, `${replica.name} shows it paused`)
  const refused = await third.call('/api/delete-model?model_id=org/pause', { method: 'DELETE' })
  t.equal(refused.status, 409, 'a paused model is protected from delete-model')

  const resumed = await third.call(`/api/downloads/${jobId}/resume`, { method: 'POST' })
  t.equal(resumed.status, 200)
  const ended = await until('the end', 60_000, async () => {
    const job = (await other.call(`/api/download-progress?job_id=${jobId}&wait=20`)).body
    return job.status === 'complete' ? job : undefined
  })
  t.match(ended, { job_id: jobId, status: 'complete' })
  t.ok(hub.bytesServed(WEIGHTS) < weights.length * 1.05, `the weights came about once in all (${hub.bytesServed(WEIGHTS)} of ${weights.length} bytes)`)
})
