import { setImmediate as nextTurn } from 'node:timers/promises'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import { auth } from '../helpers/app.js'
import { hubAndApp, startDownload, waitForEnd } from '../helpers/downloads.js'
import { listen, openStream, until } from '../helpers/event-stream.js'

const MB = 1024 * 1024

t.test('one job: its state at once, ordered progress at most four a second, the final event, then the end', async (t) => {
  const { app, hub } = await hubAndApp(t, { EVENT_STREAM_HEARTBEAT_MS: '1000' })
  const base = await listen(app)
  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: 1.5 * MB })
  const { job } = await startDownload(app, { model_id: 'org/tiny' })
  const opened = Date.now()
  const stream = await openStream(`${base}/api/downloads/${job.job_id}/events`)
  t.equal(stream.status, 200)
  t.match(stream.headers.get('content-type'), /^text\/event-stream/)
  await stream.ended
  const elapsed = Date.now() - opened

  const { events } = stream
  t.equal(events[0]?.event, 'progress', 'the state at once')
  t.equal(events.at(-1)?.event, 'complete', 'the final event names the final status')
  t.match(events.at(-1)?.data, { job_id: job.job_id, status: 'complete', progress: 100 })
  const progress = events.slice(0, -1)
  t.ok(progress.every((event) => event.event === 'progress' && event.data.job_id === job.job_id))
  t.ok(progress.length >= 3, `progress was reported while it ran (${progress.length} events)`)
  const bytes = progress.map((event) => event.data.bytes_downloaded as number)
  t.same(bytes, [...bytes].sort((a, b) => a - b), 'in order, never backwards')
  t.ok(progress.length <= elapsed / 250 + 2, `at most four a second (${progress.length} in ${elapsed} ms)`)
  t.match(stream.raw(), /^: heartbeat$/m, 'heartbeat comments keep the stream alive')
})

t.test('a job that has ended answers its final event and closes; errors before the stream are JSON', async (t) => {
  const { app } = await hubAndApp(t)
  const base = await listen(app)
  const { job } = await startDownload(app, { model_id: 'org/tiny' })
  await waitForEnd(app, job.job_id)
  const stream = await openStream(`${base}/api/downloads/${job.job_id}/events`)
  await stream.ended
  t.same(stream.events.map((event) => event.event), ['complete'])

  const missing = await fetch(`${base}/api/downloads/00000000-0000-4000-8000-000000000000/events`, { headers: auth() })
  t.equal(missing.status, 404)
  t.match(await missing.json(), { code: 'MD_JOB_NOT_FOUND' })
  const anonymous = await fetch(`${base}/api/downloads/events`)
  t.equal(anonymous.status, 401)
  t.match(await anonymous.json(), { code: 'MD_UNAUTHORIZED' })
})

t.test('all jobs: every job\'s progress and final event on one stream that stays open', async (t) => {
  const { app } = await hubAndApp(t)
  const base = await listen(app)
  const stream = await openStream(`${base}/api/downloads/events`)
  const first = (await startDownload(app, { model_id: 'org/tiny' })).job.job_id
  const second = (await startDownload(app, { model_id: 'org/tiny', revision: 'v2' })).job.job_id
  await until(() => stream.events.filter((event) => event.event === 'complete').length === 2, 'two final events')
  const finals = stream.events.filter((event) => event.event === 'complete').map((event) => event.data.job_id as string)
  t.same(finals.sort(), [first, second].sort())
  for (const id of [first, second]) {
    const ofJob = stream.events.filter((event) => event.data.job_id === id)
    t.equal(ofJob.at(-1)?.event, 'complete', 'the final event comes last for each job')
  }
  let ended = false
  void stream.ended.then(() => { ended = true })
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.notOk(ended, 'the stream stays open for the next job')
  stream.close()
})

t.test('open streams are bounded: past EVENT_STREAMS_MAX a clear 503, and a closed stream frees its slot', async (t) => {
  const { app } = await hubAndApp(t, { EVENT_STREAMS_MAX: '2' })
  const base = await listen(app)
  const a = await openStream(`${base}/api/downloads/events`)
  const b = await openStream(`${base}/api/downloads/events`)
  const refused = await fetch(`${base}/api/downloads/events`, { headers: auth() })
  t.equal(refused.status, 503)
  t.equal(refused.headers.get('retry-after'), '5')
  t.match(await refused.json(), { code: 'MD_TOO_MANY_STREAMS', hint: /EVENT_STREAMS_MAX/ })
  a.close()
  await until(() => app.eventStreams.open === 1, 'the slot to be given back')
  const c = await openStream(`${base}/api/downloads/events`)
  t.equal(c.status, 200)
  b.close()
  c.close()
})

t.test('more than ten streams open at once: no listener-leak warning in the server\'s log (each takes its listener off as it ends)', async (t) => {
  const { app } = await hubAndApp(t)
  const base = await listen(app)
  const warnings: Error[] = []
  const onWarning = (warning: Error): void => { if (warning.name === 'MaxListenersExceededWarning') warnings.push(warning) }
  process.on('warning', onWarning)
  t.teardown(() => process.off('warning', onWarning))
  const streams = await Promise.all(Array.from({ length: 15 }, async () => openStream(`${base}/api/downloads/events`)))
  await until(() => app.eventStreams.open === 15, 'the streams to open')
  t.ok(streams.every((stream) => stream.status === 200))
  for (const stream of streams) stream.close()
  await until(() => app.eventStreams.open === 0, 'the slots to be given back')
  // Node emits the warning on the next turn of the loop.
  await nextTurn()
  t.same(warnings.map((warning) => warning.message), [], 'no MaxListenersExceededWarning')
})

t.test('a stream counts once against the rate limit, however many events it carries', async (t) => {
  const { app } = await hubAndApp(t, { RATE_LIMIT_PER_MINUTE: '2' })
  const base = await listen(app)
  const stream = await openStream(`${base}/api/downloads/events`)
  const { job } = await startDownload(app, { model_id: 'org/tiny' })
  await until(() => stream.events.some((event) => event.event === 'complete'), 'the final event')
  t.ok(stream.events.length >= 2)
  t.equal((await fetch(`${base}/api/downloads/${job.job_id}`, { headers: auth() })).status, 429, 'the stream and the POST used a budget of 2; its events did not')
  stream.close()
})

t.test('closing the server ends every stream, so shutdown never waits on one', async (t) => {
  const { app } = await hubAndApp(t)
  const base = await listen(app)
  const stream = await openStream(`${base}/api/downloads/events`)
  await until(() => app.eventStreams.open === 1, 'the stream to open')
  await app.close()
  await stream.ended
  t.pass('the stream ended with the server')
})

t.test('streams opened and dropped by the thousand leave nothing behind (memory returns to where it was)', async (t) => {
  // Without the request log: the test app keeps every log line in memory for its assertions (some
  // 0.3 KiB a request), which would count here as what the streams keep.
  const { app } = await hubAndApp(t, { EVENT_STREAMS_MAX: '1000', RATE_LIMIT_PER_MINUTE: '100000', LOG_LEVEL: 'warn' })
  const base = await listen(app)
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  const metric = async (): Promise<number> => {
    const text = await (await fetch(`${base}/metrics`, { headers: auth() })).text()
    return Number(/^modeldepot_event_streams_open (\d+)$/m.exec(text)?.[1])
  }
  const openAndDrop = async (count: number): Promise<void> => {
    const streams = await Promise.all(Array.from({ length: count }, async () => openStream(`${base}/api/downloads/events`)))
    t.ok(streams.every((stream) => stream.status === 200), `${count} streams opened`)
    await until(async () => await metric() === count, `${count} streams to be open at once`)
    for (const stream of streams) stream.close()
    await until(async () => await metric() === 0, 'every stream to be released')
  }
  // The heap a few full collections leave, each after a turn of the loop (what closes on a socket's
  // end, and code V8 compiles or drops as it ages, settle in between: one collection alone moved the
  // figure by 2 MiB either way from run to run).
  const settled = async (): Promise<number> => {
    for (let i = 0; i < 3; i++) {
      await nextTurn()
      gc()
    }
    return process.memoryUsage().heapUsed
  }
  // 1000 streams warm both ends up (sockets, parsers, compiled code; the heap levels off after
  // them), then 2000 more must not keep anything: what stays is what streams leak.
  for (let round = 0; round < 4; round++) await openAndDrop(250)
  const before = await settled()
  for (let round = 0; round < 8; round++) await openAndDrop(250)
  await until(async () => await metric() === 0, 'every stream to be released')
  t.equal(app.downloads.changeListeners, 0, 'no listener is left on the jobs')
  const grown = await settled() - before
  // A leak of even a listener and a closure per stream would keep several MiB for these 2000.
  t.ok(grown < 3 * MB, `the heap is back where it was (${Math.round(grown / 1024)} KiB more)`)
})
