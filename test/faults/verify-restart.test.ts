import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { KEY } from '../helpers/app.js'
import { C1 } from '../helpers/downloads.js'
import { sha256, writeCachedSnapshot } from '../helpers/hf-cache.js'
import { repoFile } from '../helpers/repo-root.js'
import { callServer, listeningPort, startServer } from '../helpers/server-process.js'

// A verify is a job like a download, so it survives the server: killed with SIGKILL while a hash
// thread opens the second large blob (test/fakes/kill-at.mjs, loaded into the thread too), the
// restarted server runs the same job to its end and finds what is wrong, offline.

const KILL_AT = repoFile('test/fakes/kill-at.mjs')
const MB = 1024 * 1024

t.test('a verify killed while a hash thread reads a blob is run again after a restart, and ends with its findings', { timeout: 90_000 }, async (t) => {
  const cwd = t.testdir({ cache: {} })
  const cacheDir = join(cwd, 'cache')
  // The first blob hashed is large, so the answer is out long before the thread reaches the second one.
  const good = randomBytes(32 * MB)
  const bad = randomBytes(10 * MB)
  writeCachedSnapshot(cacheDir, 'org/large', C1, [
    { path: 'a.safetensors', content: good, lfs: true },
    { path: 'b.safetensors', content: bad, lfs: true },
    { path: 'config.json', content: '{}' }
  ], ['main'])
  const badBlob = join(cacheDir, 'models--org--large', 'blobs', sha256(bad))
  const flipped = readFileSync(badBlob)
  flipped[5 * MB] = (flipped[5 * MB]! + 1) % 256
  writeFileSync(badBlob, flipped)
  const env = { API_KEY: KEY, HF_HUB_CACHE: cacheDir, HF_HUB_OFFLINE: '1' }

  const killAt = { fn: 'openSync', arg: 0, match: `/blobs/${sha256(bad)}$` }
  const first = startServer(t, { ...env, MODELDEPOT_TEST_KILL_AT: JSON.stringify(killAt) }, cwd, ['--import', KILL_AT])
  const started = await callServer(await listeningPort(first), '/api/models/verify', { method: 'POST', body: JSON.stringify({ model_id: 'org/large' }) }).catch(() => undefined)
  await first.exited
  t.equal(first.child.signalCode, 'SIGKILL', 'the server died as the thread opened the blob')
  t.match(started, { kind: 'verify', model_id: 'org/large', job_id: String }, 'the verify was accepted first')

  const second = startServer(t, env, cwd)
  const port = await listeningPort(second)
  const ended = await callServer(port, `/api/download-progress?job_id=${started.job_id as string}&wait=60`)
  t.match(ended, { job_id: started.job_id, kind: 'verify', status: 'complete', error: null, progress: 100 })
  t.same(ended.verify, { mismatched: ['b.safetensors'], missing: [], unchecked: [] }, 'the flipped blob is found; the other two pass')
  second.child.kill('SIGTERM')
  t.equal(await second.exited, 0)
})
