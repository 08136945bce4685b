import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { Agent, request } from 'undici'
import { ApiClient, type Job } from './api-client.js'
import { totalBytes, weightsModel, type BenchModel } from './bench-models.js'
import { startSession } from './bench-session.js'
import { mb, num, range, table } from './format.js'
import { HubProcess } from './hub-control.js'
import { describeMachine } from './machine.js'
import { API_KEY, startModeldepot } from './modeldepot-server.js'
import type { NodeServer } from './node-process.js'
import { startRedis } from './redis-process.js'
import { MiB, percentile, spread } from './stats.js'

// `npm run bench:replicas` (or `-- --quick`, as CI runs it): three modeldepot processes on one Redis
// and one cache, as the README's "Running several replicas" sets them up. Measures the takeover after
// kill -9 of the replica that runs a download (time, and bytes fetched again), how far behind the
// replica that runs a job the others show its progress, and GET progress requests per second with one
// and with three replicas. The report goes to stdout and into bench/results/latest.md (its
// "Replicas" section, between the markers), and bench/results/replicas(-quick).md.

const RESULTS_DIR = fileURLToPath(new URL('../../bench/results/', import.meta.url))
const quick = process.argv.includes('--quick')
const ROUNDS = quick ? 2 : 5
const SHARD_BYTES = (quick ? 32 : 128) * MiB
const LEASE_MS = 5000
const LOAD_SECONDS = quick ? 3 : 10
const CONNECTIONS = 32

interface Replica { name: string, dir: string, server: NodeServer, api: ApiClient }

const { workDir, note, cleanUp } = startSession('replicas')
const hub = await HubProcess.start()
const redis = await startRedis(workDir)
const cacheDir = join(workDir, 'hub')
const env = {
  REDIS_URL: redis.url,
  HF_HUB_CACHE: cacheDir,
  JOB_LEASE_MS: String(LEASE_MS),
  MAX_CONCURRENT_DOWNLOADS: '1',
  LOG_LEVEL: 'info'
}

const start = async (name: string): Promise<Replica> => {
  const dir = join(workDir, name)
  const server = await startModeldepot({ dir, hubUrl: hub.url, env })
  return { name, dir, server, api: new ApiClient(server.url) }
}
const logOf = (replica: Replica): string => readFileSync(join(replica.dir, 'modeldepot.log'), 'utf8')
const runnerOf = (replicas: Replica[], jobId: string): Replica | undefined =>
  replicas.find((replica) => logOf(replica).split('\n').some((line) => line.includes('"download running here"') && line.includes(jobId)))

async function waitFor<T> (what: string, ms: number, check: () => Promise<T | undefined> | T | undefined, everyMs = 20): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`)
    await sleep(everyMs)
  }
}

interface Takeover { takeoverMs: number, missingAtKill: number, fetchedAfterKill: number }

/** One round: a download, its runner killed at about 40 %, the time until another replica runs it, and the bytes it fetches. */
async function takeoverRound (replicas: Replica[], model: BenchModel): Promise<Takeover> {
  const bytes = totalBytes(model)
  const job = await replicas[0]!.api.startDownload(model.id)
  const runner = await waitFor('a runner', 20_000, () => runnerOf(replicas, job.job_id))
  const watcher = replicas.find((replica) => replica !== runner)!
  await waitFor('40 %', 120_000, async () => (await watcher.api.job(job.job_id)).bytes_downloaded > bytes * 0.4 ? true : undefined, 50)
  const servedBefore = await hub.bytesServed()
  await runner.server.kill()
  const killedAt = Date.now()
  // What the replica that goes on will find missing: as the job last showed it, before the kill.
  const atKill = await watcher.api.job(job.job_id)
  const others = replicas.filter((replica) => replica !== runner)
  await waitFor('the takeover', LEASE_MS + 30_000, () => runnerOf(others, job.job_id))
  const takeoverMs = Date.now() - killedAt
  const ended = await watcher.api.waitForEnd(job.job_id)
  if (ended.status !== 'complete') throw new Error(`the job ended ${ended.status}`)
  const fetchedAfterKill = (await hub.bytesServed()) - servedBefore
  // The killed replica comes back for the next round.
  replicas[replicas.indexOf(runner)] = await start(runner.name)
  return { takeoverMs, missingAtKill: bytes - atKill.bytes_downloaded, fetchedAfterKill }
}

/** How stale each replica's view of a running job is, against the freshest view of the three. */
async function progressLag (replicas: Replica[], model: BenchModel): Promise<number[]> {
  const job = await replicas[0]!.api.startDownload(model.id)
  const samples: Array<{ at: number, bytes: number[] }> = []
  for (;;) {
    const jobs = await Promise.all(replicas.map(async (replica) => replica.api.job(job.job_id)))
    samples.push({ at: Date.now(), bytes: jobs.map((seen: Job) => seen.bytes_downloaded) })
    if (jobs.some((seen) => seen.status === 'complete')) break
    await sleep(25)
  }
  // For every view: how long before it the freshest view had already shown as many bytes.
  const lags: number[] = []
  for (const sample of samples) {
    for (const bytes of sample.bytes) {
      const first = samples.find((earlier) => Math.max(...earlier.bytes) >= bytes)!
      lags.push(sample.at - first.at)
    }
  }
  return lags
}

const progressAgent = new Agent({ connections: CONNECTIONS, pipelining: 1 })

/** GET /api/download-progress?job_id= as fast as CONNECTIONS clients can, spread over the given replicas. */
async function progressRate (replicas: Replica[], jobId: string): Promise<number> {
  let answered = 0
  const until = Date.now() + LOAD_SECONDS * 1000
  await Promise.all(Array.from({ length: CONNECTIONS }, async (_, client) => {
    const target = replicas[client % replicas.length]!
    while (Date.now() < until) {
      const response = await request(`${target.server.url}/api/download-progress?job_id=${jobId}`, { dispatcher: progressAgent, headers: { authorization: `Bearer ${API_KEY}` } })
      await response.body.dump()
      if (response.statusCode !== 200) throw new Error(`progress answered ${response.statusCode}`)
      answered++
    }
  }))
  return answered / LOAD_SECONDS
}

let report = ''
try {
  note(`${quick ? 'quick' : 'full'} run in ${workDir}`)
  const takeoverModels = Array.from({ length: ROUNDS }, (_, i) => weightsModel(`bench/takeover-${i}`, SHARD_BYTES, 500 + 10 * i, 'takeover'))
  const lagModel = weightsModel('bench/lag', SHARD_BYTES, 900, 'lag')
  await hub.addModels([...takeoverModels, lagModel])
  // As a CDN caps a connection: the download lasts long enough to be killed in the middle.
  await hub.injectFault({ kind: 'slow', bytesPerSecond: 32 * 1e6, times: 1_000_000 })
  const replicas = await Promise.all(['a', 'b', 'c'].map(start))

  const rounds: Takeover[] = []
  for (const [i, model] of takeoverModels.entries()) {
    rounds.push(await takeoverRound(replicas, model))
    note(`takeover round ${i + 1}: ${rounds.at(-1)!.takeoverMs} ms`)
  }
  const lags = await progressLag(replicas, lagModel)
  note(`progress lag: ${lags.length} views`)
  const doneJob = (await replicas[0]!.api.call<{ jobs: Job[] }>('GET', '/api/downloads')).jobs[0]!.job_id
  const oneRate = await progressRate(replicas.slice(0, 1), doneJob)
  const threeRate = await progressRate(replicas, doneJob)
  note(`progress: ${num(oneRate, 0)} req/s on one replica, ${num(threeRate, 0)} on three`)

  const machine = describeMachine()
  report = [
    '## Replicas: three processes, one Redis, one cache',
    '',
    `${machine.date} · ${machine.cpu}, ${machine.cores} cores · Node ${machine.node} · \`npm run bench:replicas${quick ? ' -- --quick' : ''}\` ·`,
    `JOB_LEASE_MS=${LEASE_MS}, MAX_CONCURRENT_DOWNLOADS=1, every Hub connection capped at 32 MB/s, 2 × ${SHARD_BYTES / MiB} MiB per model. Figures are min / **median** / max.`,
    '',
    table(['Measure', 'Result'], [
      [`Takeover after kill -9 of the replica running the job (${ROUNDS} rounds): time until another one runs it`, `${range(spread(rounds.map((round) => round.takeoverMs / 1000)), 1, ' s')}`],
      ['Bytes fetched after the kill ÷ bytes missing when it was killed (as the other replicas showed it, up to ½ s behind)', range(spread(rounds.map((round) => round.fetchedAfterKill / round.missingAtKill)), 3)],
      ['Bytes fetched again (after the kill, beyond what was missing)', range(spread(rounds.map((round) => Math.max(0, round.fetchedAfterKill - round.missingAtKill) / 1e6)), 1, ' MB')],
      [`Progress lag between replicas (${lags.length} views): p50 / p99 / max`, `${num(percentile(lags, 50), 0)} / ${num(percentile(lags, 99), 0)} / ${num(Math.max(...lags), 0)} ms`],
      [`GET /api/download-progress, ${CONNECTIONS} clients, ${LOAD_SECONDS} s: one replica`, `${num(oneRate, 0)} req/s`],
      ['The same spread over three replicas (reads go to Redis)', `${num(threeRate, 0)} req/s (${num(threeRate / oneRate, 2)}×)`]
    ]),
    '',
    `A takeover waits out the lease (${LEASE_MS / 1000} s here, 15 s by default) plus at most one heartbeat (a third of it); the replica that`,
    'goes on fetches what the partial files lack (each file resumes from its saved parts). Progress reaches the other replicas',
    'through Redis twice a second. With three replicas on 2 cores the processes share the same cores, so the req/s do not add up.',
    `Each model is ${mb(totalBytes(takeoverModels[0]!))}.`
  ].join('\n')
  process.stdout.write(`${report}\n`)
} finally {
  await hub.stop()
  await redis.stop()
  cleanUp()
}

mkdirSync(RESULTS_DIR, { recursive: true })
writeFileSync(join(RESULTS_DIR, quick ? 'replicas-quick.md' : 'replicas.md'), `${report}\n`)
if (!quick) {
  // latest.md keeps the other sections as the full bench wrote them; this one is replaced in place.
  const latest = join(RESULTS_DIR, 'latest.md')
  const begin = '<!-- replicas: npm run bench:replicas -->'
  const end = '<!-- /replicas -->'
  const text = existsSync(latest) ? readFileSync(latest, 'utf8') : ''
  const section = `${begin}\n${report}\n${end}`
  const at = text.indexOf(begin)
  writeFileSync(latest, at === -1 ? `${text.trimEnd()}\n\n${section}\n` : `${text.slice(0, at)}${section}${text.slice(text.indexOf(end) + end.length)}`)
}
