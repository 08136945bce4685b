import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { FakeHub, GeneratedContent } from '../fakes/fake-hub.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { startReplicas, type Replica } from '../helpers/replicas.js'
import { runnerOf, until } from './download-cluster.js'

// Issue 19 with replicas: DOWNLOAD_MAX_BYTES_PER_S is the cluster's cap, so two replicas with one
// download each together receive it (±10 % over 8 s, measured on the jobs' own counts of bytes that
// came over the network); a PATCH /api/limits on one replica moves the sum within a second; and a
// PATCH /api/downloads/{job_id} sent to one replica caps the job where another replica runs it.

t.setTimeout(300_000)

const MiB = 1024 * 1024
const TOLERANCE = 0.1
const C1 = '1'.repeat(40)

/** A model of `count` generated 16 MiB files, each fetched as range parts over several connections. */
function addBigModel (hub: FakeHub, id: string, count: number, seed: number): void {
  const files = Array.from({ length: count }, (_, i) => ({ path: `model-0000${i}.safetensors`, content: new GeneratedContent(seed + i, 16 * MiB), lfs: true as const }))
  hub.addRepo({ id, revisions: { main: { commit: C1, files: [{ path: 'config.json', content: '{}' }, ...files] } } })
}

interface Running { jobId: string, runner: Replica }

/** The job's bytes as the replica that runs it counts them (the others see them up to half a second late). */
const transferred = async ({ jobId, runner }: Running): Promise<number> => (await runner.call(`/api/downloads/${jobId}`)).body.bytes_transferred

/** Bytes per second the jobs received together over `ms`. */
async function rateOver (jobs: Running[], ms: number): Promise<number> {
  const sum = async (): Promise<number> => (await Promise.all(jobs.map(transferred))).reduce((a, b) => a + b, 0)
  const before = await sum()
  const started = performance.now()
  await sleep(ms)
  const after = await sum()
  return (after - before) / ((performance.now() - started) / 1000)
}

function assertNear (t: Test, measured: number, cap: number, what: string): void {
  const ratio = measured / cap
  t.ok(Math.abs(ratio - 1) <= TOLERANCE, `${what}: ${(measured / MiB).toFixed(2)} MiB/s against a cap of ${(cap / MiB).toFixed(2)} MiB/s (${ratio.toFixed(3)}×)`)
}

t.test('two replicas keep the cluster\'s cap together, follow a PATCH of it, and cap a job that runs on the other one', async (t) => {
  const redis = await startRedisServer(t)
  const hub = await FakeHub.start()
  t.teardown(() => hub.close())
  addBigModel(hub, 'org/left', 4, 1)
  addBigModel(hub, 'org/right', 4, 100)
  const { replicas } = await startReplicas(t, ['a', 'b'], {
    REDIS_URL: redis.url,
    HF_ENDPOINT: hub.url,
    MAX_CONCURRENT_DOWNLOADS: '2',
    DOWNLOAD_MAX_BYTES_PER_S: String(4 * MiB),
    DOWNLOAD_PART_SIZE_MB: '4',
    DOWNLOAD_CONNECTIONS_PER_FILE: '4',
    DOWNLOAD_FILE_CONCURRENCY: '2'
  })
  const [a, b] = replicas as [Replica, Replica]
  const started = await Promise.all([
    a.call('/api/download-model', { method: 'POST', body: JSON.stringify({ model_id: 'org/left' }) }),
    b.call('/api/download-model', { method: 'POST', body: JSON.stringify({ model_id: 'org/right' }) })
  ])
  t.same(started.map((res) => res.status), [202, 202])
  const ids = started.map((res) => res.body.job_id as string)
  const jobs = await until('both jobs to run', 30_000, async () => {
    const runners = ids.map((jobId) => runnerOf(replicas, jobId))
    return runners.every((runner) => runner !== undefined) ? ids.map((jobId, i) => ({ jobId, runner: runners[i]! })) : undefined
  })
  t.same(jobs.map((job) => job.runner.name), ['a', 'b'], 'each replica runs the job it was sent')
  // Past the first second's reservoir: the rate as it holds.
  await until('a few MiB', 60_000, async () => (await Promise.all(jobs.map(transferred))).every((bytes) => bytes >= 3 * MiB) ? true : undefined)
  assertNear(t, await rateOver(jobs, 8000), 4 * MiB, 'both jobs together, over 8 s')

  const changed = await a.call('/api/limits', { method: 'PATCH', body: JSON.stringify({ max_bytes_per_s: 8 * MiB }) })
  t.match(changed.body, { max_bytes_per_s: 8 * MiB, source: 'state' })
  await sleep(1000)
  assertNear(t, await rateOver(jobs, 6000), 8 * MiB, 'the cap PATCHed on a, from a second after, over 6 s')

  const onB = jobs[1]!
  const capped = await a.call(`/api/downloads/${onB.jobId}`, { method: 'PATCH', body: JSON.stringify({ max_bytes_per_s: MiB }) })
  t.equal(capped.status, 200)
  t.match(capped.body, { job_id: onB.jobId, status: 'downloading', max_bytes_per_s: MiB }, 'a answers the job b runs with its new cap')
  await sleep(1000)
  assertNear(t, await rateOver([onB], 5000), MiB, 'the job on b, capped through a, over 5 s')
  t.equal((await b.call(`/api/downloads/${onB.jobId}`)).body.max_bytes_per_s, MiB, 'b shows it too')

  for (const { jobId } of jobs) await a.call(`/api/downloads/${jobId}`, { method: 'DELETE' })
})
