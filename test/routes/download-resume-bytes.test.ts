import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { FakeHub, sha256Hex } from '../fakes/fake-hub.js'
import { KEY } from '../helpers/app.js'
import { C1, HF_TOKEN } from '../helpers/downloads.js'
import { callServer, listeningPort, startServer } from '../helpers/server-process.js'

// Issue 18: after a kill -9 in the middle of a parted download, the restart fetches at most 1 % more
// than the bytes that were missing on disk, whenever between two checkpoints of the parts state the
// kill comes.

/** Random bytes without a zero, so that a hole of the sparse partial never passes for data when the test counts what is on disk. */
function weightsWithoutZeros (bytes: number): Buffer {
  const weights = randomBytes(bytes)
  for (let i = 0; i < weights.length; i++) if (weights[i] === 0) weights[i] = 1
  return weights
}

/** Bytes of the partial that are the file's own at their place: what a perfect resume still needs is the rest. */
function bytesInPlace (partial: Buffer, weights: Buffer): number {
  let equal = 0
  for (let i = 0; i < Math.min(partial.length, weights.length); i++) if (partial[i] === weights[i]) equal++
  return equal
}

t.test('a kill -9 between two checkpoints of a parted download: the restart fetches the missing bytes, at most 1 % more', async (t) => {
  const hub = await FakeHub.start({ tokens: { [HF_TOKEN]: { name: 'reader', role: 'read' } } })
  t.teardown(() => hub.close())
  const weights = weightsWithoutZeros(8 * 1024 * 1024)
  hub.addRepo({ id: 'org/tiny', revisions: { main: { commit: C1, files: [{ path: 'config.json', content: '{}' }, { path: 'model.safetensors', content: weights, lfs: true }] } } })
  // Four parts of 2 MiB at 1 MiB/s each: a checkpoint (every 250 ms) holds back up to 256 KiB of each part.
  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: 1024 * 1024, times: 4 })
  const cwd = t.testdir({ cache: {} })
  const cacheDir = join(cwd, 'cache')
  const blobs = join(cacheDir, 'models--org--tiny', 'blobs')
  const env = { API_KEY: KEY, HF_ENDPOINT: hub.url, HF_TOKEN, HF_HUB_CACHE: cacheDir, DOWNLOAD_PART_SIZE_MB: '2', DOWNLOAD_CONNECTIONS_PER_FILE: '4' }

  const first = startServer(t, env, cwd)
  const port = await listeningPort(first)
  const job = await callServer(port, '/api/download-model', { method: 'POST', body: JSON.stringify({ model_id: 'org/tiny' }) })
  // The kill comes at whatever moment the progress passes 40 %, in no step with the checkpoints.
  for (let moved = 0; moved < weights.length * 0.4;) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    moved = (await callServer(port, `/api/downloads/${job.job_id as string}`)).bytes_transferred
  }
  first.child.kill('SIGKILL')
  await first.exited

  const partialName = readdirSync(blobs).find((name) => name.endsWith('.incomplete'))
  t.ok(partialName, 'the partial survived the kill')
  const missing = weights.length - bytesInPlace(readFileSync(join(blobs, partialName!)), weights)
  t.ok(missing > 0 && missing < weights.length * 0.7, `${missing} bytes missing`)

  const before = hub.bytesServed('model.safetensors')
  const second = startServer(t, env, cwd)
  const port2 = await listeningPort(second)
  const again = await callServer(port2, '/api/download-model', { method: 'POST', body: JSON.stringify({ model_id: 'org/tiny' }) })
  t.equal((await callServer(port2, `/api/download-progress?job_id=${again.job_id as string}&wait=60`)).status, 'complete')
  t.same(readFileSync(join(blobs, sha256Hex(weights))), weights, 'the weights are correct')
  const fetched = hub.bytesServed('model.safetensors') - before
  t.ok(fetched >= missing, `fetched ${fetched} bytes, at least the ${missing} missing`)
  t.ok(fetched <= missing * 1.01, `fetched ${fetched} bytes: at most 1 % beyond the ${missing} missing (${(((fetched - missing) / missing) * 100).toFixed(2)} % beyond)`)
  second.child.kill('SIGTERM')
  t.equal(await second.exited, 0)
})
