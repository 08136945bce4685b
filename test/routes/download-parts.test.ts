import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { sha256Hex, type FakeHub } from '../fakes/fake-hub.js'
import { auth } from '../helpers/app.js'
import { hubAndApp, startDownload, waitForBytes, waitForEnd } from '../helpers/downloads.js'

// A large file comes down as range parts over several connections, each part resumable on its own.
const MiB = 1024 * 1024
const WEIGHTS = 8 * MiB
// Four parts of 2 MiB, all four at once.
const partedEnv = { DOWNLOAD_PART_SIZE_MB: '2', DOWNLOAD_CONNECTIONS_PER_FILE: '4' }
const FOUR_PARTS = ['bytes=0-2097151', 'bytes=2097152-4194303', 'bytes=4194304-6291455', 'bytes=6291456-8388607']

const cdnRequests = (hub: FakeHub) => hub.requests.filter((request) => request.url.includes('/cdn/'))

/** Samples how many CDN transfers are open at once until `done` settles. */
async function peakConcurrency (hub: FakeHub, done: Promise<unknown>): Promise<number> {
  let peak = 0
  const state = { finished: false }
  void done.finally(() => { state.finished = true })
  while (!state.finished) {
    const open = cdnRequests(hub).filter((request) => request.status === 206 && request.bodyBytes < rangeLength(request.range)).length
    peak = Math.max(peak, open)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return peak
}

function rangeLength (range: string | undefined): number {
  const match = /bytes=(\d+)-(\d+)/.exec(range ?? '')
  return match === null ? Infinity : Number(match[2]) - Number(match[1]) + 1
}

t.test('a large file is fetched as parallel range parts that cover it exactly', async (t) => {
  const { app, hub, cacheDir, model } = await hubAndApp(t, partedEnv, WEIGHTS)
  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: 4 * MiB, times: 4 })
  const { job } = await startDownload(app, { model_id: 'org/tiny' })
  const ended = waitForEnd(app, job.job_id)
  const peak = await peakConcurrency(hub, ended)
  t.equal((await ended).status, 'complete')
  t.ok(peak >= 2, `several parts were in flight at once (peak ${peak})`)
  const ranges = cdnRequests(hub).map((request) => request.range).sort()
  t.same(ranges, FOUR_PARTS, 'four parts, no gap, no overlap')
  t.same(readFileSync(join(cacheDir, 'models--org--tiny', 'blobs', sha256Hex(model.weights))), model.weights, 'assembled and verified')
  t.same(readdirSync(join(cacheDir, 'models--org--tiny', 'blobs')).filter((name) => name.includes('.incomplete')), [], 'no partial or part state left')
})

t.test('a cancelled parted download resumes every part where it stopped', async (t) => {
  const { app, hub, cacheDir, model } = await hubAndApp(t, partedEnv, WEIGHTS)
  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: 1 * MiB, times: 4 })
  const { job } = await startDownload(app, { model_id: 'org/tiny' })
  await waitForBytes(app, job.job_id, 2 * MiB)
  await app.inject({ method: 'DELETE', url: `/api/downloads/${job.job_id}`, headers: auth() })
  const blobs = join(cacheDir, 'models--org--tiny', 'blobs')
  const stateFile = readdirSync(blobs).find((name) => name.endsWith('.incomplete.parts.json'))
  t.ok(stateFile, 'the parts state is kept beside the partial file')
  const saved = JSON.parse(readFileSync(join(blobs, stateFile!), 'utf8')) as { parts: Array<{ start: number, length: number, done: number }> }
  t.equal(saved.parts.length, 4)
  t.ok(saved.parts.every((part) => part.done > 0), 'every part made progress')

  const before = cdnRequests(hub).length
  const resumed = await startDownload(app, { model_id: 'org/tiny' })
  t.equal((await waitForEnd(app, resumed.job.job_id)).status, 'complete')
  const again = cdnRequests(hub).slice(before)
  for (const part of saved.parts) {
    const request = again.find((candidate) => candidate.range?.endsWith(`-${part.start + part.length - 1}`))
    t.ok(request, `part at ${part.start} was asked for again`)
    t.ok(Number(/bytes=(\d+)-/.exec(request?.range ?? '')?.[1]) >= part.start + part.done, 'from where it stopped, or later')
  }
  t.ok(hub.bytesServed('model.safetensors') < WEIGHTS + 256 * 1024, 'about one copy of the file in all')
  t.same(readFileSync(join(blobs, sha256Hex(model.weights))), model.weights)
  t.notOk(existsSync(join(blobs, stateFile!)), 'the parts state is gone once the file is verified')
})

t.test('a corrupted part fails the whole-file hash: the file is fetched again and nothing bad is kept', async (t) => {
  const { app, hub, cacheDir, model } = await hubAndApp(t, partedEnv, WEIGHTS)
  hub.injectFault({ kind: 'corrupt', path: 'model.safetensors', afterBytes: 1000 })
  const job = await waitForEnd(app, (await startDownload(app, { model_id: 'org/tiny' })).job.job_id)
  t.equal(job.status, 'complete')
  t.same(readFileSync(join(cacheDir, 'models--org--tiny', 'blobs', sha256Hex(model.weights))), model.weights)
  t.equal(hub.bytesServed('model.safetensors'), 2 * WEIGHTS, 'the first copy was thrown away whole')
})

t.test('DOWNLOAD_MAX_CONNECTIONS bounds the connections a job opens', async (t) => {
  const { app, hub } = await hubAndApp(t, { ...partedEnv, DOWNLOAD_MAX_CONNECTIONS: '2' }, WEIGHTS)
  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: 6 * MiB, times: 4 })
  const { job } = await startDownload(app, { model_id: 'org/tiny' })
  const ended = waitForEnd(app, job.job_id)
  const peak = await peakConcurrency(hub, ended)
  t.equal((await ended).status, 'complete')
  t.ok(peak <= 2, `never more than 2 at once (peak ${peak})`)
})

t.test('a part the CDN cannot resume (416) throws the partial file away: the next attempt trusts none of it', async (t) => {
  const { app, hub, cacheDir, model } = await hubAndApp(t, { ...partedEnv, DOWNLOAD_MAX_CONNECTIONS: '3' }, WEIGHTS)
  // Three parts start; the fourth is asked for once the quick one is done, while the two slow ones
  // are half way, and is refused.
  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: 8 * MiB })
  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: 1 * MiB, times: 2 })
  hub.injectFault({ kind: 'status', status: 416, path: 'model.safetensors' })
  const { job } = await startDownload(app, { model_id: 'org/tiny' })
  t.equal((await waitForEnd(app, job.job_id)).status, 'complete')
  t.same(readFileSync(join(cacheDir, 'models--org--tiny', 'blobs', sha256Hex(model.weights))), model.weights)
  const requests = cdnRequests(hub)
  const retried = requests.slice(requests.findIndex((request) => request.status === 416) + 1)
  t.same(retried.map((request) => request.range).sort(), FOUR_PARTS, 'the next attempt asked for every part from its start')
  t.ok(retried.every((request) => request.status === 206 && request.bodyBytes === rangeLength(request.range)), 'and each came down whole, once')
})

t.test('a parted partial whose parts state is stale is trusted only as far as it was written front to back', async (t) => {
  const { app, hub, cacheDir, model } = await hubAndApp(t, partedEnv, WEIGHTS)
  const blobs = join(cacheDir, 'models--org--tiny', 'blobs')
  const partial = join(blobs, `${sha256Hex(model.weights)}.incomplete`)
  mkdirSync(blobs, { recursive: true })
  // A dead parted transfer: the first part 1 MiB in, the last one finished, holes between; its
  // state is stale (it names another size), so it cannot say which bytes are real.
  writeFileSync(partial, Buffer.alloc(WEIGHTS))
  const handle = openSync(partial, 'r+')
  writeSync(handle, model.weights, 0, MiB, 0)
  writeSync(handle, model.weights, 4718592, WEIGHTS - 4718592, 4718592)
  closeSync(handle)
  writeFileSync(`${partial}.parts.json`, JSON.stringify({
    etag: sha256Hex(model.weights),
    size: WEIGHTS + 1,
    parts: [{ start: 0, length: 1572864, done: MiB }, { start: 4718592, length: WEIGHTS - 4718592, done: WEIGHTS - 4718592 }]
  }))
  const { job } = await startDownload(app, { model_id: 'org/tiny' })
  t.equal((await waitForEnd(app, job.job_id)).status, 'complete')
  t.same(readFileSync(join(blobs, sha256Hex(model.weights))), model.weights)
  t.equal(hub.bytesServed('model.safetensors'), WEIGHTS - MiB, 'the first MiB was trusted, the rest fetched once: the holes were never taken for bytes')
})

t.test('many parts come front first, a few at a time, and the Hub is asked for the file once per connection, not once per part', async (t) => {
  const { app, hub, cacheDir, model } = await hubAndApp(t, { DOWNLOAD_PART_SIZE_MB: '1', DOWNLOAD_CONNECTIONS_PER_FILE: '2' }, WEIGHTS)
  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: 8 * MiB, times: 8 })
  const { job } = await startDownload(app, { model_id: 'org/tiny' })
  const ended = waitForEnd(app, job.job_id)
  const peak = await peakConcurrency(hub, ended)
  t.equal((await ended).status, 'complete')
  t.ok(peak <= 2, `at most two of the file's parts at once (peak ${peak})`)
  const parts = cdnRequests(hub)
  t.equal(parts.length, 8, 'eight parts of 1 MiB')
  // Two requests that go at once may arrive either way round; none is asked for before the parts two ahead of it.
  const order = parts.map((request) => Number(/bytes=(\d+)-/.exec(request.range ?? '')?.[1]) / MiB)
  t.ok(order.every((part, i) => part < i + 2), `front first (${order.join(', ')})`)
  const resolves = hub.requests.filter((request) => request.method === 'GET' && request.path.includes('/resolve/') && request.path.endsWith('/model.safetensors'))
  t.ok(resolves.length >= 1 && resolves.length <= 2, `the Hub's resolve was asked ${resolves.length} times for 8 parts; the others went to the CDN address it gave`)
  t.same(readFileSync(join(cacheDir, 'models--org--tiny', 'blobs', sha256Hex(model.weights))), model.weights)
})
