import { existsSync, lutimesSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { FakeHub, sha256Hex } from '../fakes/fake-hub.js'
import { KEY, testStateDir } from '../helpers/app.js'
import { cacheLeftovers, wrongBlobs } from '../helpers/cache-checks.js'
import { C1, HF_TOKEN, tinyModel } from '../helpers/downloads.js'
import { callServer, listeningPort, startServer } from '../helpers/server-process.js'
import { repoFile } from '../helpers/repo-root.js'

// The real server killed with SIGKILL at the exact points where a download moves from one state of
// the cache to the next, by a preload that kills the process when it makes that file-system call.
// After a restart the same request completes, every file is right, and nothing is left behind.
// (A kill in the middle of a file's bytes is in test/routes/download-crash.test.ts.)

const KILL_AT = repoFile('test/fakes/kill-at.mjs')

/** What an atomic write of `{STATE_DIR}/jobs.json` (or another state file) leaves when killed. */
const stateTemporaries = (cacheDir: string): string[] =>
  readdirSync(testStateDir(cacheDir)).filter((name) => /^[\w-]+\.json\.[\w-]+(\.tmp)?$/.test(name))

interface KillPoint {
  name: string
  /** The file-system call the server dies on: its name, which argument, and what that argument matches. */
  at: { fn: 'symlink' | 'rename', arg: number, match: string }
  /** What the cache holds right after the kill, which shows the kill came where it was meant to. */
  leaves: (t: Test, paths: { blob: string, link: string, ref: string, tmp: string, state: string }) => void
}

const model = tinyModel(1024 * 1024)
const weightsSha = sha256Hex(model.weights)

const POINTS: KillPoint[] = [
  {
    name: 'after the weights are renamed into blobs/, before their snapshot link is made',
    at: { fn: 'symlink', arg: 0, match: `${weightsSha}$` },
    leaves: (t, { blob, link, ref }) => {
      t.same(readFileSync(blob), model.weights, 'the verified blob is in place')
      t.notOk(existsSync(link), 'not linked yet')
      t.notOk(existsSync(ref), 'no ref yet')
    }
  },
  {
    name: 'after the snapshot link is made aside, before it is renamed into snapshots/',
    at: { fn: 'rename', arg: 1, match: `snapshots/${C1}/model\\.safetensors$` },
    leaves: (t, { link, ref, tmp }) => {
      t.notOk(existsSync(link), 'not in snapshots/ yet')
      t.ok(readdirSync(tmp).length > 0, 'the link made aside is left in the repo\'s .modeldepot-tmp/')
      t.notOk(existsSync(ref), 'no ref yet')
    }
  },
  {
    name: 'while refs/main is written',
    at: { fn: 'rename', arg: 1, match: '/refs/main$' },
    leaves: (t, { link, ref, tmp }) => {
      t.same(readFileSync(link), model.weights, 'every file is linked')
      t.notOk(existsSync(ref), 'the ref is not there: no reader takes the revision for complete')
      t.ok(readdirSync(tmp).length > 0, 'the ref written aside is left in the repo\'s .modeldepot-tmp/')
    }
  },
  {
    name: 'while the job journal is first written, as the job is taken',
    at: { fn: 'rename', arg: 1, match: '/jobs\\.json$' },
    leaves: (t, { ref, state }) => {
      t.notOk(existsSync(ref), 'nothing is published')
      t.ok(readdirSync(state).some((name) => name.startsWith('jobs.json.')), 'the journal written aside is left')
    }
  }
]

for (const point of POINTS) {
  t.test(`killed ${point.name}: after a restart the same request completes and leaves nothing behind`, { timeout: 90_000 }, async (t) => {
    const hub = await FakeHub.start({ tokens: { [HF_TOKEN]: { name: 'reader', role: 'read' } } })
    t.teardown(() => hub.close())
    hub.addRepo({ id: 'org/tiny', revisions: { main: { commit: C1, files: model.main } } })
    const cwd = t.testdir({ cache: {} })
    const cacheDir = join(cwd, 'cache')
    const repo = join(cacheDir, 'models--org--tiny')
    const paths = {
      blob: join(repo, 'blobs', weightsSha),
      link: join(repo, 'snapshots', C1, 'model.safetensors'),
      ref: join(repo, 'refs', 'main'),
      tmp: join(repo, '.modeldepot-tmp'),
      state: testStateDir(cacheDir)
    }
    const env = { API_KEY: KEY, HF_ENDPOINT: hub.url, HF_TOKEN, HF_HUB_CACHE: cacheDir, DOWNLOAD_RETRY_BASE_MS: '10' }
    const request = { method: 'POST', body: JSON.stringify({ model_id: 'org/tiny' }) }

    const first = startServer(t, { ...env, MODELDEPOT_TEST_KILL_AT: JSON.stringify(point.at) }, cwd, ['--import', KILL_AT])
    // The kill may come before the answer does.
    await callServer(await listeningPort(first), '/api/download-model', request).catch(() => undefined)
    await first.exited
    t.equal(first.child.signalCode, 'SIGKILL', 'the server died at the kill point')
    point.leaves(t, paths)

    // As if the restart came a while later: what was made aside is then plainly abandoned.
    const past = new Date(Date.now() - 2 * 3_600_000)
    for (const name of existsSync(paths.tmp) ? readdirSync(paths.tmp) : []) lutimesSync(join(paths.tmp, name), past, past)
    for (const name of stateTemporaries(cacheDir)) lutimesSync(join(paths.state, name), past, past)
    // A small file may have been under way, its lock held, when the process died on another one.
    for (const lock of cacheLeftovers(cacheDir).filter((found) => found.startsWith('lock '))) lutimesSync(join(cacheDir, lock.slice(5)), past, past)

    const second = startServer(t, env, cwd)
    const port = await listeningPort(second)
    const job = await callServer(port, '/api/download-model', request)
    const done = await callServer(port, `/api/download-progress?job_id=${job.job_id as string}&wait=60`)
    t.equal(done.status, 'complete')
    for (const file of model.main) {
      t.same(readFileSync(join(repo, 'snapshots', C1, file.path)), Buffer.from(file.content), `${file.path} is right`)
    }
    t.equal(readFileSync(paths.ref, 'utf8'), C1, 'refs/main names the commit')
    t.same(wrongBlobs(cacheDir), [], 'every blob holds the bytes its name promises')
    t.same(cacheLeftovers(cacheDir), [], 'no partial, temporary, lock or dangling link is left')
    second.child.kill('SIGTERM')
    t.equal(await second.exited, 0)
    t.same(stateTemporaries(cacheDir), [], 'nor a temporary of the journal')
  })
}
