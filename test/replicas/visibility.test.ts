import t from 'tap'
import { KEY } from '../helpers/app.js'
import { wrongBlobs } from '../helpers/cache-checks.js'
import { openStream } from '../helpers/event-stream.js'
import type { Replica } from '../helpers/replicas.js'
import { WEIGHTS, sleep, model, cluster, post } from './download-cluster.js'

// Three server processes per test, beside the other test files on two cores: more than the default two minutes.
t.setTimeout(300_000)

// Three server processes, one Redis, one cache (download-cluster.ts).

t.test('a download asked on one replica is seen on every replica, joined by the same request, and fetched once', { timeout: 120_000 }, async (t) => {
  const { hub, replicas, cacheDir } = await cluster(t)
  const [a, b, c] = replicas as [Replica, Replica, Replica]
  const { files, weights } = model(3 * 1024 * 1024)
  hub.addRepo({ id: 'org/shared', revisions: { main: { commit: '1'.repeat(40), files } } })
  hub.injectFault({ kind: 'slow', path: WEIGHTS, bytesPerSecond: 1024 * 1024, times: 1000 })

  const started = await post(a, { model_id: 'org/shared' })
  t.equal(started.status, 202)
  const jobId = started.body.job_id as string
  const stream = await openStream(`http://127.0.0.1:${b.port}/api/downloads/${jobId}/events`, { authorization: `Bearer ${KEY}` })
  t.teardown(() => stream.close())

  // The same download sent to B and C while it runs: the same job, nothing queued twice.
  const [onB, onC] = await Promise.all([post(b, { model_id: 'org/shared' }), post(c, { model_id: 'org/shared' })])
  t.same([onB.status, onB.body.job_id, onC.status, onC.body.job_id], [200, jobId, 200, jobId], 'B and C answer the job A started')

  // While it runs, every replica shows it, and none lags far behind the freshest view.
  const seen: Array<{ at: number, bytes: number[] }> = []
  for (;;) {
    const answers = await Promise.all(replicas.map(async (replica) => replica.call(`/api/downloads/${jobId}`)))
    t.ok(answers.every((answer) => answer.status === 200), 'every replica knows the job')
    seen.push({ at: Date.now(), bytes: answers.map((answer) => answer.body.bytes_downloaded as number) })
    if (answers.some((answer) => answer.body.status === 'complete')) break
    await sleep(200)
  }
  for (const sample of seen) {
    const freshestTwoSecondsBefore = Math.max(0, ...seen.filter((earlier) => earlier.at <= sample.at - 2000).flatMap((earlier) => earlier.bytes))
    if (sample.bytes.some((bytes) => bytes < freshestTwoSecondsBefore)) {
      t.fail(`a replica showed fewer bytes than another had shown 2 s before: ${JSON.stringify(sample)}`)
    }
  }
  t.ok(seen.length >= 5, `sampled the running download ${seen.length} times`)

  const listed = await c.call('/api/downloads')
  t.ok(listed.body.jobs.some((job: { job_id: string }) => job.job_id === jobId), 'C lists it')
  const polled = await c.call(`/api/download-progress?job_id=${jobId}&wait=30`)
  t.match(polled.body, { job_id: jobId, status: 'complete', bytes_downloaded: weights.length + files[0]!.content.length })
  await stream.ended
  t.ok(stream.events.filter((event) => event.event === 'progress').length >= 2, 'the stream on B showed progress')
  t.equal(stream.events.at(-1)?.event, 'complete', 'and ended with the job')
  t.equal(hub.bytesServed(WEIGHTS), weights.length, 'no byte of the weights was fetched twice')
  t.same(wrongBlobs(cacheDir), [], 'every blob is what the Hub has')
})
