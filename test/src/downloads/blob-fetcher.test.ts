import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { downloadToTmpAndMove, type ConnectionSettings, type TransferHooks } from '../../../src/downloads/blob-fetcher.js'
import type { Part } from '../../../src/downloads/part-state.js'
import { RestartFileError } from '../../../src/downloads/restart-file-error.js'
import { caught, hubAt, sendRange, startServer, tempDir, type RangeOptions, type Route } from './range-server.js'

// The steps together, as a job runs them: resume, fetch and hash, verify, move. A file that must
// start again is thrown away here, by the one that owns it, and nowhere else.

const KiB = 1024
const SIZE = 1024 * KiB
const PART = 256 * KiB
const content = randomBytes(SIZE)
const etag = createHash('sha256').update(content).digest('hex')

function cache (t: Test) {
  const dir = tempDir(t)
  const blobs = join(dir, 'models--org--tiny', 'blobs')
  const blob = { size: SIZE, etag, lfs: true, partialPath: join(blobs, `${etag}.incomplete`), blobPath: join(blobs, etag), tmpDir: join(dir, '.tmp') }
  return { blobs, blob, tmpDir: blob.tmpDir, stateFile: `${blob.partialPath}.parts.json` }
}

async function server (t: Test, route: Route) {
  const served = await startServer(t, route)
  const settings: ConnectionSettings = { ...hubAt(served.base), connection: async (task) => task(), partSize: PART, connectionsPerFile: 4 }
  return { ...served, url: `${served.base}/file`, settings }
}

const serving = (options: (range: string | undefined) => RangeOptions = () => ({})): Route =>
  (req, res) => sendRange(content, req, res, options(req.headers.range))

function hooks (signal = new AbortController().signal) {
  const seen = { position: 0, transferred: 0 }
  const transfer: TransferHooks = {
    signal,
    onPosition: (bytes) => { seen.position = bytes },
    onTransferred: (bytes) => { seen.transferred += bytes }
  }
  return { seen, transfer }
}

const ranges = (requests: Array<{ range: string | undefined }>): Array<string | undefined> => requests.map((request) => request.range).sort()
const allParts = ['bytes=0-262143', 'bytes=262144-524287', 'bytes=524288-786431', 'bytes=786432-1048575']

t.test('a parted file comes down with its parts landing out of order; only its blob is left', async (t) => {
  const { blobs, blob, tmpDir } = cache(t)
  // The first part is the last to arrive: the hash waits for it, then runs through.
  const { url, settings, requests } = await server(t, serving((range) => range?.startsWith('bytes=0-') === true ? { delayMs: 150 } : {}))
  const { seen, transfer } = hooks()
  await downloadToTmpAndMove({ ...blob, url }, settings, transfer)
  t.same(readFileSync(blob.blobPath), content)
  t.same(readdirSync(blobs), [etag], 'no partial, no parts state')
  t.same(readdirSync(tmpDir), [], 'no temporary file')
  t.same(ranges(requests), allParts)
  t.same(seen, { position: SIZE, transferred: SIZE })
})

t.test('a small file that is not LFS is one plain stream, checked against its git blob id', async (t) => {
  const { blobs, blob } = cache(t)
  const text = Buffer.from('{"model_type":"llama"}')
  const gitId = createHash('sha1').update(`blob ${text.length}\0`).update(text).digest('hex')
  const { url, settings, requests } = await server(t, (req, res) => sendRange(text, req, res))
  const file = { ...blob, url, size: text.length, etag: gitId, lfs: false, blobPath: join(blobs, gitId) }
  await downloadToTmpAndMove(file, settings, hooks().transfer)
  t.same(readFileSync(file.blobPath), text)
  t.same(ranges(requests), [undefined], 'no Range header for a fresh single stream')
})

t.test('a server that ignores Range: the partial is thrown away, and the next attempt starts from byte 0', async (t) => {
  const { blobs, blob } = cache(t)
  mkdirSync(blobs, { recursive: true })
  writeFileSync(blob.partialPath, content.subarray(0, 100 * KiB))
  const { url, settings, requests } = await server(t, serving(() => ({ ignoreRange: true })))
  const single = { ...settings, partSize: SIZE }
  const err = await caught(downloadToTmpAndMove({ ...blob, url }, single, hooks().transfer))
  t.type(err, RestartFileError)
  t.same(readdirSync(blobs), [], 'nothing of it is kept')

  await downloadToTmpAndMove({ ...blob, url }, single, hooks().transfer)
  t.same(ranges(requests), ['bytes=102400-', undefined], 'resumed once, then asked for from the start')
  t.same(readFileSync(blob.blobPath), content)
})

t.test('a 416 on one part throws away the partial and its parts state, though other parts were half way', async (t) => {
  const { blobs, blob, stateFile } = cache(t)
  mkdirSync(blobs, { recursive: true })
  const parts: Part[] = [0, 1, 2, 3].map((index) => ({ start: index * PART, length: PART, done: PART / 2 }))
  const onDisk = Buffer.alloc(SIZE)
  for (const part of parts) content.copy(onDisk, part.start, part.start, part.start + part.done)
  writeFileSync(blob.partialPath, onDisk)
  writeFileSync(stateFile, JSON.stringify({ etag, size: SIZE, parts }))
  const refuseThird = serving((range) => range?.startsWith(`bytes=${2 * PART + PART / 2}-`) === true ? { shift: SIZE } : { delayMs: 50 })
  const { url, settings } = await server(t, refuseThird)
  const err = await caught(downloadToTmpAndMove({ ...blob, url }, settings, hooks().transfer))
  t.type(err, RestartFileError)
  t.match(err.message, '(416)')
  t.notOk(existsSync(blob.partialPath), 'the partial is gone')
  t.notOk(existsSync(stateFile), 'and so are the parts that described it')

  const good = await server(t, serving())
  await downloadToTmpAndMove({ ...blob, url: good.url }, good.settings, hooks().transfer)
  t.same(ranges(good.requests), allParts, 'every part asked for from its start')
  t.same(readFileSync(blob.blobPath), content)
})

t.test('bytes that do not hash right never reach blobs/, and nothing of them is kept', async (t) => {
  const { blobs, blob } = cache(t)
  const corrupted = Buffer.from(content)
  corrupted[SIZE - 1] = (corrupted[SIZE - 1]! + 1) % 256
  const { url, settings } = await server(t, (req, res) => sendRange(corrupted, req, res))
  const err = await caught(downloadToTmpAndMove({ ...blob, url }, settings, hooks().transfer))
  t.type(err, RestartFileError)
  t.match(err.message, /^checksum mismatch/)
  t.same(readdirSync(blobs), [], 'no blob, no partial, no parts state')
})

t.test('a cancel keeps the partial and the exact parts state; the next attempt resumes every part', async (t) => {
  const { blobs, blob, stateFile } = cache(t)
  const half = PART / 2
  const { url, settings } = await server(t, serving(() => ({ stallAfter: half })))
  const cancel = new AbortController()
  const { seen, transfer } = hooks(cancel.signal)
  const running = caught(downloadToTmpAndMove({ ...blob, url }, settings, transfer))
  while (seen.position < 4 * half) await new Promise((resolve) => setTimeout(resolve, 10))
  const reason = new Error('cancelled')
  cancel.abort(reason)
  t.equal(await running, reason, 'the cancel is what it ends with')
  t.notOk(existsSync(blob.blobPath))
  const saved = JSON.parse(readFileSync(stateFile, 'utf8')) as { parts: Part[] }
  t.same(saved.parts.map((part) => part.done), [half, half, half, half], 'what is on disk, part by part')
  t.same(readFileSync(blob.partialPath).subarray(0, half), content.subarray(0, half))

  const good = await server(t, serving())
  await downloadToTmpAndMove({ ...blob, url: good.url }, good.settings, hooks().transfer)
  t.same(ranges(good.requests), ['bytes=131072-262143', 'bytes=393216-524287', 'bytes=655360-786431', 'bytes=917504-1048575'])
  t.same(readFileSync(blob.blobPath), content)
  t.same(readdirSync(blobs), [etag])
})
