import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync, statfsSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { FakeHub, sha256Hex } from '../fakes/fake-hub.js'
import { buildTestApp } from '../helpers/app.js'
import { cacheLeftovers, wrongBlobs } from '../helpers/cache-checks.js'
import { C1, HF_TOKEN, incompleteFiles, startDownload, tinyModel, waitForBytes, waitForEnd } from '../helpers/downloads.js'

// A volume that fills up while a download writes to it: the cache on a real 16 MiB file system
// (tmpfs), and another writer that takes the free space once the download is under way.

/** A fresh tmpfs of `bytes`, unmounted after the test, or why this machine will not mount one. */
function smallVolume (t: Test, bytes: number): string | { refused: string } {
  const dir = mkdtempSync(join(tmpdir(), 'modeldepot-volume-'))
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { stdio: 'pipe' })
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    return { refused: String((err as { stderr?: Buffer }).stderr ?? err).trim() }
  }
  t.teardown(() => {
    execFileSync('umount', ['-l', dir])
    rmSync(dir, { recursive: true, force: true })
  })
  return dir
}

// Mounting needs root (CI runs as root); where it is refused, download-faults.test.ts still covers
// ENOSPC mid-write, with /dev/full.
const probe = smallVolume(t, 1024 * 1024)
const skip = typeof probe === 'string' ? false : `cannot mount a tmpfs here: ${probe.refused}`

t.test('the disk fills up mid-write: the job ends in MD_INSUFFICIENT_STORAGE, the server answers, the partial is kept, and once space is freed the same request resumes it', { skip }, async (t) => {
  const volume = smallVolume(t, 16 * 1024 * 1024) as string
  const hub = await FakeHub.start({ tokens: { [HF_TOKEN]: { name: 'reader', role: 'read' } } })
  t.teardown(() => hub.close())
  const model = tinyModel(8 * 1024 * 1024)
  hub.addRepo({ id: 'org/tiny', revisions: { main: { commit: C1, files: model.main } } })
  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: 4 * 1024 * 1024 })
  const cacheDir = join(volume, 'cache')
  const { app } = await buildTestApp(t, { HF_ENDPOINT: hub.url, HF_TOKEN, HF_HUB_CACHE: cacheDir, DOWNLOAD_RETRY_BASE_MS: '10', DOWNLOAD_PART_SIZE_MB: '64' })

  const { statusCode, job } = await startDownload(app, { model_id: 'org/tiny' })
  t.equal(statusCode, 202, 'there was room when it started')
  await waitForBytes(app, job.job_id, 2 * 1024 * 1024)
  // Another writer takes all but 1 MiB of what is left.
  const filler = join(volume, 'filler')
  const { bavail, bsize } = statfsSync(volume)
  writeFileSync(filler, Buffer.alloc(bavail * bsize - 1024 * 1024))

  const ended = await waitForEnd(app, job.job_id)
  t.equal(ended.status, 'error')
  t.match(ended.error, { code: 'MD_INSUFFICIENT_STORAGE', message: /disk filled up/, hint: /Free space/ })
  t.equal((await app.inject({ url: '/health/live' })).statusCode, 200, 'the server still answers')
  const [partial] = incompleteFiles(cacheDir, 'org/tiny')
  t.ok(partial, 'the partial file is kept, to resume')
  const kept = statSync(join(cacheDir, 'models--org--tiny', 'blobs', partial!)).size
  t.ok(kept >= 2 * 1024 * 1024, `it holds what was written (${kept} bytes)`)
  t.same(wrongBlobs(cacheDir), [], 'no blob holds wrong bytes')

  rmSync(filler)
  const servedBefore = hub.bytesServed('model.safetensors')
  const again = await startDownload(app, { model_id: 'org/tiny' })
  t.equal((await waitForEnd(app, again.job.job_id)).status, 'complete')
  t.equal(hub.bytesServed('model.safetensors') - servedBefore, model.weights.length - kept, 'only the missing bytes came down')
  t.same(readFileSync(join(cacheDir, 'models--org--tiny', 'blobs', sha256Hex(model.weights))), model.weights)
  t.same(cacheLeftovers(cacheDir), [])
})
