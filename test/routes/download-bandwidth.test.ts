import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { FakeHub, GeneratedContent } from '../fakes/fake-hub.js'
import { auth, buildTestApp } from '../helpers/app.js'
import { assertRateNear } from '../helpers/byte-rate.js'
import { C1, HF_TOKEN, startDownload, waitForEnd, waitForJob } from '../helpers/downloads.js'

// Issue 19, the bandwidth cap: DOWNLOAD_MAX_BYTES_PER_S for the server, `max_bytes_per_s` per job,
// the smaller one holds; measured on the bytes the jobs received, within ±10 % over 10 s, with
// several files over several connections; a change takes effect within a second and is kept
// across a restart.

const MiB = 1024 * 1024

/** A model of `count` generated 16 MiB files, each fetched as range parts over several connections. */
function addBigModel (hub: FakeHub, id: string, count: number, seed: number): void {
  const files = Array.from({ length: count }, (_, i) => ({ path: `model-0000${i}.safetensors`, content: new GeneratedContent(seed + i, 16 * MiB), lfs: true as const }))
  hub.addRepo({ id, revisions: { main: { commit: C1, files: [{ path: 'config.json', content: '{}' }, ...files] } } })
}

async function setup (t: Test, env: Record<string, string> = {}) {
  const hub = await FakeHub.start({ tokens: { [HF_TOKEN]: { name: 'reader', role: 'read' } } })
  t.teardown(() => hub.close())
  addBigModel(hub, 'org/big', 7, 1)
  addBigModel(hub, 'org/other', 2, 100)
  const cacheDir = t.testdir()
  const fullEnv = { HF_ENDPOINT: hub.url, HF_TOKEN, HF_HUB_CACHE: cacheDir, DOWNLOAD_PART_SIZE_MB: '4', DOWNLOAD_CONNECTIONS_PER_FILE: '4', DOWNLOAD_FILE_CONCURRENCY: '3', RATE_LIMIT_PER_MINUTE: '100000', ...env }
  const { app } = await buildTestApp(t, fullEnv)
  return { app, hub, env: fullEnv }
}

const transferred = async (app: FastifyInstance, jobId: string): Promise<number> =>
  (await app.inject({ url: `/api/downloads/${jobId}`, headers: auth() })).json().bytes_transferred

t.test('the server cap holds over 10 s, several files and connections; a change applies within a second, and is kept across a restart', async (t) => {
  const { app, env } = await setup(t, { DOWNLOAD_MAX_BYTES_PER_S: String(4 * MiB) })
  t.match((await app.inject({ url: '/api/limits', headers: auth() })).json(), { max_bytes_per_s: 4 * MiB, source: 'env', updated_at: null })
  const { job } = await startDownload(app, { model_id: 'org/big' })
  // Past the first second's reservoir: the rate as it holds.
  await waitForJob(app, job.job_id, (now) => now.bytes_transferred >= 6 * MiB, 'six MiB')
  const running = (await app.inject({ url: `/api/downloads/${job.job_id}`, headers: auth() })).json()
  t.ok(running.current_files.length >= 2, `several files at once (${running.current_files.length as number})`)
  await assertRateNear(t, async () => transferred(app, job.job_id), 10_000, 4 * MiB, 'over 10 s')

  const changed = await app.inject({ method: 'PATCH', url: '/api/limits', headers: auth(), payload: { max_bytes_per_s: 8 * MiB } })
  t.match(changed.json(), { max_bytes_per_s: 8 * MiB, source: 'state', updated_at: String })
  await sleep(1000)
  await assertRateNear(t, async () => transferred(app, job.job_id), 5000, 8 * MiB, 'from a second after the change, over 5 s')

  t.match((await app.inject({ method: 'PATCH', url: '/api/limits', headers: auth(), payload: { max_bytes_per_s: 0 } })).json(), { max_bytes_per_s: null })
  t.equal((await waitForEnd(app, job.job_id)).status, 'complete', 'uncapped, it ran to its end')
  t.match((await app.inject({ method: 'PATCH', url: '/api/limits', headers: auth(), payload: { max_bytes_per_s: 3 * MiB } })).json(), { max_bytes_per_s: 3 * MiB })
  await app.close()

  const { app: again } = await buildTestApp(t, env)
  t.match((await again.inject({ url: '/api/limits', headers: auth() })).json(), { max_bytes_per_s: 3 * MiB, source: 'state' }, 'the change outlived the restart, over DOWNLOAD_MAX_BYTES_PER_S')
})

t.test('a job\'s own cap, smaller than the server\'s, is the one it keeps; caps too small are refused', async (t) => {
  const { app } = await setup(t, { DOWNLOAD_MAX_BYTES_PER_S: String(16 * MiB) })
  const { job, statusCode } = await startDownload(app, { model_id: 'org/other', max_bytes_per_s: 2 * MiB })
  t.equal(statusCode, 202)
  t.equal(job.max_bytes_per_s, 2 * MiB, 'the job shows its cap')
  await waitForJob(app, job.job_id, (now) => now.bytes_transferred >= 3 * MiB, 'three MiB')
  await assertRateNear(t, async () => transferred(app, job.job_id), 6000, 2 * MiB, 'the job\'s cap')
  await app.inject({ method: 'DELETE', url: `/api/downloads/${job.job_id}`, headers: auth() })

  for (const payload of [{ model_id: 'org/big', max_bytes_per_s: 1000 }]) {
    const refused = await app.inject({ method: 'POST', url: '/api/download-model', headers: auth(), payload })
    t.match({ status: refused.statusCode, body: refused.json() }, { status: 400, body: { code: 'MD_VALIDATION_FAILED', message: /max_bytes_per_s .*65536/ } })
  }
  const tooSmall = await app.inject({ method: 'PATCH', url: '/api/limits', headers: auth(), payload: { max_bytes_per_s: 1000 } })
  t.equal(tooSmall.statusCode, 400)
  t.match((await app.inject({ url: '/api/limits', headers: auth() })).json(), { max_bytes_per_s: 16 * MiB, source: 'env' }, 'nothing changed')
})
