import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { readFileSync, statSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { FakeHub, sha256Hex, type FakeFile } from '../fakes/fake-hub.js'
import { KEY, testStateDir } from '../helpers/app.js'
import { cacheLeftovers, wrongBlobs } from '../helpers/cache-checks.js'
import { C1, HF_TOKEN, servedSince } from '../helpers/downloads.js'
import { gitSha1, readAsOfflineReader } from '../helpers/hf-cache.js'
import { callServer, listeningPort, startServer } from '../helpers/server-process.js'

// The real server, four downloads running and fifty clients polling them, then SIGTERM: what a user
// of a busy node sees when it is restarted (a deploy, a compose down). Nothing may hang or be lost,
// and the restarted server finishes the four by itself.

const MiB = 1024 * 1024
const MODELS = ['org/m1', 'org/m2', 'org/m3', 'org/m4']
const CLIENTS = 50
const weightsPath = (modelId: string): string => `${modelId.split('/')[1]!}.safetensors`

/** One poll; `afterSignal` when it ended after SIGTERM was sent. */
interface Outcome { status?: number, body?: any, requestId?: string, failure?: string, afterSignal: boolean }

t.test('SIGTERM with 4 downloads and 50 polling clients: every poll answered, exit 0 in the grace period, nothing lost, the restart finishes all 4', async (t) => {
  const hub = await FakeHub.start({ tokens: { [HF_TOKEN]: { name: 'reader', role: 'read' } } })
  t.teardown(() => hub.close())
  const files = new Map<string, FakeFile[]>()
  for (const modelId of MODELS) {
    files.set(modelId, [{ path: 'config.json', content: JSON.stringify({ model: modelId }) }, { path: weightsPath(modelId), content: randomBytes(3 * MiB), lfs: true }])
    hub.addRepo({ id: modelId, revisions: { main: { commit: C1, files: files.get(modelId)! } } })
    // Throttled: about 12 s per file, so all four are mid-way when the signal comes.
    hub.injectFault({ kind: 'slow', path: weightsPath(modelId), bytesPerSecond: 256 * 1024 })
  }
  const cwd = t.testdir({ cache: {} })
  const cacheDir = join(cwd, 'cache')
  const env = {
    API_KEY: KEY,
    HF_ENDPOINT: hub.url,
    HF_TOKEN,
    HF_HUB_CACHE: cacheDir,
    MAX_CONCURRENT_DOWNLOADS: '4',
    RATE_LIMIT_PER_MINUTE: '1000000',
    SHUTDOWN_TIMEOUT_MS: '10000',
    DOWNLOAD_RETRY_BASE_MS: '10'
  }

  const first = startServer(t, env, cwd)
  const port = await listeningPort(first)
  const jobs: string[] = []
  for (const modelId of MODELS) jobs.push((await callServer(port, '/api/download-model', { method: 'POST', body: JSON.stringify({ model_id: modelId }) })).job_id)
  for (let moving = false; !moving;) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    const states = await Promise.all(jobs.map(async (jobId) => callServer(port, `/api/downloads/${jobId}`)))
    moving = states.every((job) => job.status === 'downloading' && job.bytes_transferred > 100_000)
  }

  // Each client polls one job, every fifth with a long poll (wait=30) that is in flight at the signal.
  let signalled = false
  const outcomes: Outcome[][] = Array.from({ length: CLIENTS }, () => [])
  const client = async (i: number): Promise<void> => {
    const query = `job_id=${jobs[i % jobs.length]!}${i % 5 === 0 ? '&wait=30' : ''}`
    for (;;) {
      try {
        // A request still unanswered after 40 s is a hung one: the grace period is 10 s.
        const res = await fetch(`http://127.0.0.1:${port}/api/download-progress?${query}`, { headers: { authorization: `Bearer ${KEY}` }, signal: AbortSignal.timeout(40_000) })
        const body: unknown = await res.json()
        outcomes[i]!.push({ status: res.status, body, requestId: res.headers.get('x-request-id') ?? undefined, afterSignal: signalled })
      } catch (err) {
        const cause = (err as { cause?: { code?: string, name?: string } }).cause
        outcomes[i]!.push({ failure: (err as Error).name === 'TimeoutError' ? 'hung' : cause?.code ?? cause?.name ?? (err as Error).message, afterSignal: signalled })
        return // the server is gone
      }
      if (first.child.exitCode !== null) return
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  const clients = Array.from({ length: CLIENTS }, async (_, i) => client(i))
  const shortPolls = outcomes.filter((_, i) => i % 5 !== 0)
  for (let i = 0; i < 1500 && shortPolls.some((polls) => polls.length < 2); i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.ok(shortPolls.every((polls) => polls.length >= 2), 'every client has been answered while the downloads run (the long polls are waiting)')

  // One more client has sent half its request's headers when the signal comes, the rest once the
  // shutdown has begun: it must get the documented refusal, whatever the polls above happened to meet.
  const late = connect(port, '127.0.0.1')
  await once(late, 'connect')
  const lateClosed = once(late, 'close')
  late.on('error', () => {})
  let lateAnswer = ''
  late.on('data', (chunk: Buffer) => { lateAnswer += chunk.toString() })
  late.write(`GET /api/download-progress?job_id=${jobs[0]!} HTTP/1.1\r\nHost: modeldepot\r\n`)

  signalled = true
  first.child.kill('SIGTERM')
  // Readiness answers 503 from the start of the shutdown (or the listener is already closed).
  for (let closing = false; !closing;) {
    const probe = await fetch(`http://127.0.0.1:${port}/health/ready`).then((res) => res.status, () => 'refused')
    closing = probe === 503 || probe === 'refused'
    if (!closing) await new Promise((resolve) => setTimeout(resolve, 20))
  }
  late.end(`Authorization: Bearer ${KEY}\r\n\r\n`)
  await lateClosed
  t.match(lateAnswer, /^HTTP\/1\.1 503 /, 'a request that arrives during the shutdown is refused with 503')
  t.match(lateAnswer, /\r\nconnection: close\r\n/i, 'and its connection closed')
  t.match(lateAnswer, /\r\nx-request-id: \S+\r\n/i)
  const lateBody = JSON.parse(lateAnswer.slice(lateAnswer.indexOf('\r\n\r\n') + 4))
  t.match(lateBody, { statusCode: 503, error: 'Service Unavailable', code: 'MD_SHUTTING_DOWN', message: /shutting down/ }, 'in the documented shape')

  const exitCode = await first.exited
  t.equal(exitCode, 0, 'the server exited by itself, within SHUTDOWN_TIMEOUT_MS (else close-with-grace exits 1)')
  // Why it did not, when it did not: the server's own last words.
  if (exitCode !== 0) t.comment(`stderr: ${first.stderr()}\nstdout (end): ${first.stdout().slice(-4000)}`)
  await Promise.all(clients)

  const all = outcomes.flat()
  t.same(all.filter((outcome) => outcome.failure === 'hung'), [], 'no poll hung')
  t.same(all.filter((outcome) => !outcome.afterSignal && outcome.status !== 200), [], 'before the signal every poll got a 200')
  const refused = all.filter((outcome) => outcome.status !== undefined && outcome.status !== 200)
  const documented = (outcome: Outcome): boolean => outcome.status === 503 && typeof outcome.requestId === 'string' &&
    outcome.body?.statusCode === 503 && outcome.body.error === 'Service Unavailable' && outcome.body.code === 'MD_SHUTTING_DOWN' && typeof outcome.body.message === 'string'
  t.same(refused.filter((outcome) => !documented(outcome)), [], 'the only refusal is a 503 MD_SHUTTING_DOWN in the documented shape, with its x-request-id')
  t.comment(`${all.length} polls: ${all.filter((outcome) => outcome.status === 200).length} answered 200, ${refused.length} refused with 503 during the shutdown, ` +
    `${all.filter((outcome) => outcome.failure !== undefined).length} found the server gone (${[...new Set(all.map((outcome) => outcome.failure).filter(Boolean))].join(', ')})`)
  // A connection the server no longer accepts is refused or closed before any answer; never a cut answer.
  const gone = ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']
  const otherFailures = all.filter((outcome) => outcome.failure !== undefined && !gone.includes(outcome.failure)).map((outcome) => outcome.failure)
  t.same(otherFailures, [], 'no other failure')
  t.ok(all.filter((outcome) => outcome.failure !== undefined).every((outcome) => outcome.afterSignal), 'and only after the signal')
  // A long poll in flight at the signal is answered as its job stops: cancelled until the restart.
  const longPolls = outcomes.filter((_, i) => i % 5 === 0).map((polls) => polls[0]!)
  for (const outcome of longPolls) t.match(outcome, { status: 200, body: { status: 'cancelled', error: { code: 'MD_SERVER_SHUTDOWN' } } }, 'the long poll in flight was answered')

  t.same(wrongBlobs(cacheDir), [], 'every file in blobs/ is the file its name says')
  const journal = JSON.parse(readFileSync(join(testStateDir(cacheDir), 'jobs.json'), 'utf8'))
  t.same(journal.unfinished.map((entry: { job: { job_id: string } }) => entry.job.job_id).sort(), [...jobs].sort(), 'the four jobs are journaled as unfinished')
  const blobs = (modelId: string): string => join(cacheDir, `models--${modelId.replace('/', '--')}`, 'blobs')
  // What is on disk of each file: a verified blob, or a partial of some length.
  const kept = new Map<string, number>()
  let configsMissing = 0
  for (const modelId of MODELS) {
    const [config, weights] = files.get(modelId)!
    const partial = statSync(join(blobs(modelId), `${sha256Hex(weights!.content)}.modeldepot.incomplete`), { throwIfNoEntry: false })
    const blob = statSync(join(blobs(modelId), sha256Hex(weights!.content)), { throwIfNoEntry: false })
    t.ok(partial !== undefined || blob !== undefined, `${modelId}: the weights are kept, whole or in part`)
    kept.set(modelId, blob?.size ?? partial?.size ?? 0)
    if (statSync(join(blobs(modelId), gitSha1(config!.content)), { throwIfNoEntry: false }) === undefined) configsMissing += Buffer.byteLength(config!.content)
  }
  t.ok([...kept.values()].every((size) => size < 3 * MiB), 'the weights were mid-way')
  const mark = hub.requests.length

  // The restart: nobody asks again, the journal resumes the jobs under their ids.
  const second = startServer(t, env, cwd)
  const port2 = await listeningPort(second)
  for (const jobId of jobs) t.match(await callServer(port2, `/api/download-progress?job_id=${jobId}&wait=60`), { job_id: jobId, status: 'complete' })
  for (const modelId of MODELS) {
    for (const file of files.get(modelId)!) t.same(readAsOfflineReader(cacheDir, modelId, 'main', file.path), Buffer.from(file.content), `${modelId} ${file.path} is right`)
    t.equal(servedSince(hub, mark, weightsPath(modelId)), 3 * MiB - kept.get(modelId)!, `${modelId}: only the missing bytes came down`)
  }
  t.equal(servedSince(hub, mark, 'config.json'), configsMissing, 'and of the config files, only those not yet there')
  t.same(wrongBlobs(cacheDir), [])
  t.same(cacheLeftovers(cacheDir), [], 'no partial, lock or scratch file is left')
  second.child.kill('SIGTERM')
  t.equal(await second.exited, 0)
})
