import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { sha256Hex } from '../fakes/fake-hub.js'
import { hubAndApp, startDownload, waitForEnd } from '../helpers/downloads.js'

// Large files are hashed on a hash thread (src/downloads/hash-pool.ts): a mismatch it finds is
// what one found on the main thread was, a file fetched again, never a wrong blob.

const MiB = 1024 * 1024
// Above HASH_IN_WORKER_BYTES, and parted.
const WEIGHTS = 12 * MiB
const partedEnv = { DOWNLOAD_PART_SIZE_MB: '1', DOWNLOAD_CONNECTIONS_PER_FILE: '4' }

t.test('a byte corrupted in one part of a file hashed on the hash thread: the file comes down again, right', async (t) => {
  const { app, hub, cacheDir, model } = await hubAndApp(t, partedEnv, WEIGHTS)
  hub.injectFault({ kind: 'corrupt', path: 'model.safetensors', times: 1 })
  const { job } = await startDownload(app, { model_id: 'org/tiny' })
  const ended = await waitForEnd(app, job.job_id)
  t.equal(ended.status, 'complete')
  const blobs = join(cacheDir, 'models--org--tiny', 'blobs')
  t.same(readFileSync(join(blobs, sha256Hex(model.weights))), model.weights, 'the blob is the file')
  t.same(readdirSync(blobs).filter((name) => name.includes('.incomplete')), [], 'no partial left')
  const served = hub.requests.filter((request) => request.url.includes('/cdn/')).reduce((sum, request) => sum + request.bodyBytes, 0)
  t.ok(served >= 2 * WEIGHTS, `the file was fetched again after the mismatch (${served} bytes served)`)
})

t.test('a byte corrupted on every try: the job fails with a checksum mismatch and no blob is named', async (t) => {
  const { app, hub, cacheDir, model } = await hubAndApp(t, { ...partedEnv, DOWNLOAD_RETRIES: '1' }, WEIGHTS)
  hub.injectFault({ kind: 'corrupt', path: 'model.safetensors', times: Number.MAX_SAFE_INTEGER })
  const { job } = await startDownload(app, { model_id: 'org/tiny' })
  const ended = await waitForEnd(app, job.job_id)
  t.equal(ended.status, 'error')
  t.match(ended.error?.message ?? JSON.stringify(ended), /checksum mismatch/)
  t.notOk(readdirSync(join(cacheDir, 'models--org--tiny', 'blobs')).includes(sha256Hex(model.weights)), 'no blob under the file\'s name')
})
