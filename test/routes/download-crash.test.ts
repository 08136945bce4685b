import { createHmac } from 'node:crypto'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { CallbackReceiver } from '../fakes/callback-receiver.js'
import { FakeHub, sha256Hex } from '../fakes/fake-hub.js'
import { KEY } from '../helpers/app.js'
import { C1, HF_TOKEN, incompleteFiles, tinyModel } from '../helpers/downloads.js'
import { callServer, listeningPort, startServer } from '../helpers/server-process.js'

t.test('a server killed with SIGKILL mid-download resumes the job by itself after a restart, fetches only the missing bytes, and fires its callback', async (t) => {
  const hub = await FakeHub.start({ tokens: { [HF_TOKEN]: { name: 'reader', role: 'read' } } })
  t.teardown(() => hub.close())
  const model = tinyModel(4 * 1024 * 1024)
  hub.addRepo({ id: 'org/tiny', revisions: { main: { commit: C1, files: model.main } } })
  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: 2 * 1024 * 1024 })
  const cwd = t.testdir({ cache: {} })
  const cacheDir = join(cwd, 'cache')
  const receiver = await CallbackReceiver.start()
  t.teardown(() => receiver.close())
  const env = { API_KEY: KEY, HF_ENDPOINT: hub.url, HF_TOKEN, HF_HUB_CACHE: cacheDir, DOWNLOAD_RETRY_BASE_MS: '10', CALLBACK_ALLOWED_HOSTS: '127.0.0.1', CALLBACK_SECRET: 'crash-test-secret' }

  const first = startServer(t, env, cwd)
  const port = await listeningPort(first)
  const job = await callServer(port, '/api/download-model', { method: 'POST', body: JSON.stringify({ model_id: 'org/tiny', callback_url: `${receiver.url}/done` }) })
  for (let moved = 0; moved < 1_000_000;) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    moved = (await callServer(port, `/api/downloads/${job.job_id as string}`)).bytes_transferred
  }
  first.child.kill('SIGKILL')
  await first.exited

  const [partial] = incompleteFiles(cacheDir, 'org/tiny')
  t.ok(partial, 'the partial file survived the kill')
  const kept = statSync(join(cacheDir, 'models--org--tiny', 'blobs', partial!)).size
  t.ok(kept > 0 && kept < model.weights.length)
  const requestsBefore = hub.requests.length

  const second = startServer(t, env, cwd)
  // Nobody asks again: the journal brings the job back under its own id.
  const done = await callServer(await listeningPort(second), `/api/download-progress?job_id=${job.job_id as string}&wait=60`)
  t.equal(done.status, 'complete')
  t.equal(done.created_at, job.created_at, 'the same job')
  t.same(readFileSync(join(cacheDir, 'models--org--tiny', 'blobs', sha256Hex(model.weights))), model.weights, 'the weights are correct')
  for (const file of model.main) {
    t.same(readFileSync(join(cacheDir, 'models--org--tiny', 'snapshots', C1, file.path)), Buffer.from(file.content), `${file.path} is correct`)
  }
  const after = hub.requests.slice(requestsBefore).filter((request) => request.url.includes('/cdn/'))
  t.equal(after.length, 1, 'one request for the rest of the weights')
  t.equal(after[0]?.range, `bytes=${kept}-`, 'starting exactly where the partial file ends')
  t.equal(after[0]?.bodyBytes, model.weights.length - kept, 'only the missing bytes came down')
  const [callback] = await receiver.waitFor(1)
  t.equal(callback!.headers['x-modeldepot-event'], 'complete')
  t.match(JSON.parse(callback!.body), { job_id: job.job_id, status: 'complete' }, 'its callback fired when it ended')
  t.equal(callback!.headers['x-modeldepot-signature'], `sha256=${createHmac('sha256', 'crash-test-secret').update(callback!.body).digest('hex')}`)
  second.child.kill('SIGTERM')
  t.equal(await second.exited, 0)
})

t.test('a server killed with SIGKILL mid parted download resumes every part from its last checkpoint, or from what it wrote after', async (t) => {
  const hub = await FakeHub.start({ tokens: { [HF_TOKEN]: { name: 'reader', role: 'read' } } })
  t.teardown(() => hub.close())
  const model = tinyModel(8 * 1024 * 1024)
  hub.addRepo({ id: 'org/tiny', revisions: { main: { commit: C1, files: model.main } } })
  // Four parts of 2 MiB, all four at once, at 512 KiB/s each: the kill comes seconds before any part is done.
  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: 512 * 1024, times: 4 })
  const cwd = t.testdir({ cache: {} })
  const cacheDir = join(cwd, 'cache')
  const blobs = join(cacheDir, 'models--org--tiny', 'blobs')
  const env = { API_KEY: KEY, HF_ENDPOINT: hub.url, HF_TOKEN, HF_HUB_CACHE: cacheDir, DOWNLOAD_PART_SIZE_MB: '2', DOWNLOAD_CONNECTIONS_PER_FILE: '4' }
  const savedParts = (): Array<{ start: number, length: number, done: number }> => {
    try {
      const file = readdirSync(blobs).find((name) => name.endsWith('.incomplete.parts.json'))
      return (JSON.parse(readFileSync(join(blobs, file ?? 'none'), 'utf8')) as { parts: Array<{ start: number, length: number, done: number }> }).parts
    } catch {
      return []
    }
  }

  const first = startServer(t, env, cwd)
  const port = await listeningPort(first)
  await callServer(port, '/api/download-model', { method: 'POST', body: JSON.stringify({ model_id: 'org/tiny' }) })
  // While the transfer runs, the parts state on disk moves on: a checkpoint with progress in every part.
  for (let i = 0; i < 200 && !(savedParts().length === 4 && savedParts().every((part) => part.done > 0)); i++) {
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  first.child.kill('SIGKILL')
  await first.exited
  const saved = savedParts()
  t.equal(saved.length, 4, 'four parts')
  t.ok(saved.every((part) => part.done > 0 && part.done < part.length), 'each saved mid-way, while the server ran')

  // Counted before the restart: the journal resumes the job as soon as the server is up.
  const before = hub.bytesServed('model.safetensors')
  const requestsBefore = hub.requests.length
  const second = startServer(t, env, cwd)
  const port2 = await listeningPort(second)
  const again = await callServer(port2, '/api/download-model', { method: 'POST', body: JSON.stringify({ model_id: 'org/tiny' }) })
  t.equal((await callServer(port2, `/api/download-progress?job_id=${again.job_id as string}&wait=60`)).status, 'complete')
  t.same(readFileSync(join(blobs, sha256Hex(model.weights))), model.weights, 'the weights are correct')
  const ranges = hub.requests.slice(requestsBefore).filter((request) => request.url.includes('/cdn/')).map((request) => request.range)
  // What a part wrote after its checkpoint is found on disk (written-past-checkpoint.ts): it may start past it.
  const fromCheckpoint = (range: string | undefined): boolean => {
    const [, from, to] = /^bytes=(\d+)-(\d+)$/.exec(range ?? '') ?? []
    const part = saved.find((p) => p.start + p.length - 1 === Number(to))
    return part !== undefined && Number(from) >= part.start + part.done
  }
  t.ok(ranges.length > 0 && ranges.every(fromCheckpoint), 'each part asked for from its checkpoint or past it')
  t.ok(ranges.length <= saved.length, 'at most one request a part')
  const missing = saved.reduce((sum, part) => sum + part.length - part.done, 0)
  t.ok(hub.bytesServed('model.safetensors') - before <= missing, 'and no more than those bytes came down')
  second.child.kill('SIGTERM')
  t.equal(await second.exited, 0)
})
