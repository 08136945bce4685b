import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { sha256Hex } from '../fakes/fake-hub.js'
import { C1, hubAndApp, servedSince, startDownload, waitForEnd, waitForJob, type HubAndApp } from '../helpers/downloads.js'
import { repoFile } from '../helpers/repo-root.js'

// Issue 17, point 2: modeldepot and huggingface_hub write the same blob of one cache a few seconds
// apart, in both orders. huggingface_hub is not installed here: test/fakes/hf-lock-writer.py follows
// its protocol (the flock on `.locks/{repo}/{etag}.lock`, the partial, the rename, the link) with the
// standard library, in the 0.36/1.x style (`{etag}.incomplete`) and the later process-unique one.
// Whoever comes second waits for the lock and then uses the finished blob: one transfer in all.

const WEIGHTS = 4 * 1024 * 1024
const FILE = 'model.safetensors'
const PYTHON = '/usr/bin/python3'

interface WriterEvent { event: string, t: number, how?: string, partial?: string, waited?: boolean, error?: string }

interface Writer { events: () => WriterEvent[], exited: Promise<number | null>, next: (event: string) => Promise<WriterEvent>, kill: () => void }

/** Starts the huggingface_hub-like writer of the weights, at `rate` bytes per second. */
function startWriter (t: Test, env: HubAndApp, rate: number, partial: 'shared' | 'unique'): Writer {
  const etag = sha256Hex(env.model.weights)
  const child = spawn(PYTHON, [repoFile('test/fakes/hf-lock-writer.py'),
    '--cache', env.cacheDir, '--repo', 'org/tiny', '--commit', C1, '--filename', FILE, '--etag', etag,
    '--size', String(WEIGHTS), '--url', `${env.hub.url}/org/tiny/resolve/${C1}/${FILE}`, '--rate', String(rate), '--partial', partial])
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  let err = ''
  child.stderr.on('data', (chunk: Buffer) => { err += chunk.toString() })
  const exited = once(child, 'exit').then(([code]) => code as number | null)
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const events = (): WriterEvent[] => out.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as WriterEvent)
  const next = async (event: string): Promise<WriterEvent> => {
    for (;;) {
      const found = events().find((candidate) => candidate.event === event)
      if (found !== undefined) return found
      if (child.exitCode !== null) throw new Error(`the writer ended before '${event}': ${out}${err}`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
  return { events, exited, next, kill: () => child.kill('SIGKILL') }
}

/**
 * The Hub, the app and the weights, with the app warmed up by a first small download: its first
 * request is slow to start (seconds on a loaded machine), which would blur the order of the writers.
 */
async function setUp (t: Test): Promise<HubAndApp> {
  const env = await hubAndApp(t, {}, WEIGHTS)
  const { job } = await startDownload(env.app, { model_id: 'org/tiny', allow_patterns: ['config.json'] })
  t.equal((await waitForEnd(env.app, job.job_id)).status, 'complete', 'the warm-up download completes')
  return env
}

const blobsOf = (env: HubAndApp): string => join(env.cacheDir, 'models--org--tiny', 'blobs')

const partials = (env: HubAndApp): string[] => readdirSync(blobsOf(env)).filter((name) => name.includes('.incomplete'))

/** Waits until a partial of that name has bytes: its writer is writing. */
async function partialGrows (env: HubAndApp, name: (entry: string) => boolean): Promise<string> {
  for (;;) {
    const found = existsSync(blobsOf(env)) ? readdirSync(blobsOf(env)).find(name) : undefined
    if (found !== undefined && statSync(join(blobsOf(env), found)).size > 0) return found
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** What both orders check at the end: one correct blob, linked, no partial left, one transfer of its bytes in all. */
function checkCache (t: Test, env: HubAndApp): void {
  const etag = sha256Hex(env.model.weights)
  t.same(readFileSync(join(blobsOf(env), etag)), env.model.weights, 'the blob holds the right bytes')
  t.same(partials(env), [], 'no partial left, of either writer')
  t.equal(readlinkSync(join(env.cacheDir, 'models--org--tiny', 'snapshots', C1, FILE)), `../../blobs/${etag}`, 'the snapshot links it')
  t.equal(env.hub.bytesServed(FILE), WEIGHTS, 'the Hub sent the file once: the second writer fetched nothing')
  t.ok(existsSync(join(env.cacheDir, '.locks', 'models--org--tiny', `${etag}.lock`)), "huggingface_hub's lock file stays")
}

t.test('modeldepot writes first; huggingface_hub started 1.5 s later waits for the lock, then uses the blob', async (t) => {
  const env = await setUp(t)
  // 4 MiB at 1 MiB/s: the download runs about four seconds.
  env.hub.injectFault({ kind: 'slow', path: FILE, bytesPerSecond: 1024 * 1024, times: 1 })
  const { job } = await startDownload(env.app, { model_id: 'org/tiny', allow_patterns: [FILE] })
  t.equal(await partialGrows(env, (name) => name.endsWith('.incomplete')), `${sha256Hex(env.model.weights)}.modeldepot.incomplete`, 'modeldepot writes a partial of its own name')
  await new Promise((resolve) => setTimeout(resolve, 1500))
  const writer = startWriter(t, env, 0, 'shared')
  await writer.next('waiting')
  const locked = await writer.next('locked')
  const end = await waitForEnd(env.app, job.job_id)
  t.equal(end.status, 'complete', 'the download completes')
  t.equal(await writer.exited, 0, 'the writer succeeds')
  t.equal((await writer.next('done')).how, 'blob-existed', 'huggingface_hub finds the blob done once it has the lock, and writes no partial')
  t.notOk(writer.events().some((event) => event.event === 'writing'), 'it never opened a partial')
  t.ok(locked.waited === true && locked.t * 1000 >= statSync(join(blobsOf(env), sha256Hex(env.model.weights))).mtimeMs - 50, 'it got the lock only after the last byte of the blob was written')
  checkCache(t, env)
})

for (const partial of ['shared', 'unique'] as const) {
  t.test(`huggingface_hub writes first (${partial === 'shared' ? '0.36/1.x `{etag}.incomplete`' : 'process-unique partial'}); modeldepot started 1.5 s later waits, then uses the blob`, async (t) => {
    const env = await setUp(t)
    const writer = startWriter(t, env, 1024 * 1024, partial)
    await writer.next('locked')
    const theirs = await partialGrows(env, (name) => name.endsWith('.incomplete'))
    t.ok(partial === 'shared' ? theirs === `${sha256Hex(env.model.weights)}.incomplete` : /^[0-9a-f]{64}\.[0-9a-f]{8}\.incomplete$/.test(theirs), `huggingface_hub writes ${theirs}`)
    await new Promise((resolve) => setTimeout(resolve, 1500))
    const { job } = await startDownload(env.app, { model_id: 'org/tiny', allow_patterns: [FILE] })
    // The job waits on the lock: while it does, the only partial is huggingface_hub's, and no byte of it moves.
    await waitForJob(env.app, job.job_id, (running) => running.status === 'downloading', 'downloading')
    await new Promise((resolve) => setTimeout(resolve, 500))
    t.notOk(writer.events().some((event) => event.event === 'done'), 'huggingface_hub is still writing')
    t.same(partials(env), [theirs], 'modeldepot writes no partial while huggingface_hub holds the lock')
    const end = await waitForEnd(env.app, job.job_id)
    t.equal(end.status, 'complete', 'the download completes')
    t.equal(end.bytes_transferred, 0, 'modeldepot fetched no byte: it used the blob huggingface_hub finished')
    t.equal(await writer.exited, 0, `the writer succeeds: ${JSON.stringify(writer.events().at(-1))}`)
    const done = await writer.next('done')
    t.equal(done.how, 'downloaded', 'huggingface_hub wrote the whole file into its own partial')
    checkCache(t, env)
  })
}

t.test('a partial a huggingface_hub that died left under the shared name is taken over under the locks: resumed, not fetched again', async (t) => {
  const env = await setUp(t)
  const writer = startWriter(t, env, 1024 * 1024, 'shared')
  const name = await partialGrows(env, (entry) => entry.endsWith('.incomplete'))
  while (statSync(join(blobsOf(env), name)).size < WEIGHTS / 4) await new Promise((resolve) => setTimeout(resolve, 20))
  writer.kill()
  await writer.exited
  const left = statSync(join(blobsOf(env), name)).size
  const mark = env.hub.requests.length
  const { job } = await startDownload(env.app, { model_id: 'org/tiny', allow_patterns: [FILE] })
  const end = await waitForEnd(env.app, job.job_id)
  t.equal(end.status, 'complete', 'the download completes')
  t.same(readFileSync(join(blobsOf(env), sha256Hex(env.model.weights))), env.model.weights, 'the blob holds the right bytes')
  t.same(partials(env), [], 'the shared partial was taken over, and is gone with the rename')
  t.equal(servedSince(env.hub, mark, FILE), WEIGHTS - left, `modeldepot fetched only the ${WEIGHTS - left} bytes the partial lacked`)
})
