import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { truncateSync, writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { ProgressSignal } from '../../../src/downloads/file-hasher.js'
import { HashPool } from '../../../src/downloads/hash-pool.js'
import { planParts, type Part, type PartialFile } from '../../../src/downloads/part-state.js'
import { RetryableError } from '../../../src/downloads/retry.js'
import { caught, tempDir } from './range-server.js'

// The hash thread reads each file back in file order as far as its parts are written, whatever
// order they land in; a thread that dies fails only the files it was hashing, as retryable.

const MiB = 1024 * 1024

async function partialOf (t: Test, onDisk: Buffer, parts: Part[]): Promise<PartialFile> {
  const path = join(tempDir(t), 'blob.incomplete')
  writeFileSync(path, onDisk)
  const handle = await open(path, 'r+')
  t.teardown(async () => handle.close())
  return { path, handle, size: parts.reduce((sum, part) => sum + part.length, 0), parts }
}

function pool (t: Test): HashPool {
  const hashes = new HashPool(1)
  t.teardown(async () => hashes.close())
  return hashes
}

async function land (partial: PartialFile, content: Buffer, progress: ProgressSignal, part: Part, bytes: number): Promise<void> {
  await partial.handle.write(content, part.start + part.done, bytes, part.start + part.done)
  part.done += bytes
  progress.notify()
}

t.test('a parted file is hashed on the thread in file order while its parts land out of order', async (t) => {
  const content = randomBytes(9 * MiB + 123)
  const partial = await partialOf(t, Buffer.alloc(content.length), planParts(content.length, 3 * MiB, 3))
  const progress = new ProgressSignal()
  const hashing = pool(t).hashInFileOrder(partial, true, progress, new AbortController().signal)
  const [first, middle, last] = partial.parts as [Part, Part, Part]
  await land(partial, content, progress, last, last.length)
  await land(partial, content, progress, middle, middle.length)
  await land(partial, content, progress, first, MiB)
  await land(partial, content, progress, first, first.length - MiB)
  t.equal(await hashing, createHash('sha256').update(content).digest('hex'))
})

t.test('two files on one thread at once, one of them not LFS: each gets its own digest', async (t) => {
  const hashes = pool(t)
  const weights = randomBytes(5 * MiB)
  const text = Buffer.from('{"model_type":"llama"}\n'.repeat(1000))
  const a = await partialOf(t, weights, [{ start: 0, length: weights.length, done: weights.length }])
  const b = await partialOf(t, text, [{ start: 0, length: text.length, done: text.length }])
  const [sha256, gitId] = await Promise.all([
    hashes.hashInFileOrder(a, true, new ProgressSignal(), new AbortController().signal),
    hashes.hashInFileOrder(b, false, new ProgressSignal(), new AbortController().signal)
  ])
  t.equal(sha256, createHash('sha256').update(weights).digest('hex'))
  t.equal(gitId, execFileSync('git', ['hash-object', b.path], { encoding: 'utf8' }).trim(), 'the git blob id, as git hash-object says')
})

t.test('a hash thread that dies fails the file it hashes as retryable; the next file gets a new thread', async (t) => {
  const hashes = pool(t)
  const content = randomBytes(2 * MiB)
  const waiting = await partialOf(t, Buffer.alloc(content.length), [{ start: 0, length: content.length, done: 0 }])
  const progress = new ProgressSignal()
  const hashing = hashes.hashInFileOrder(waiting, true, progress, new AbortController().signal)
  await land(waiting, content, progress, waiting.parts[0]!, MiB)
  await sleep(50)
  await hashes.close()
  const err = await caught(hashing)
  t.type(err, RetryableError)
  t.match(err.message, /the hash thread (stopped|failed)/)

  const whole = await partialOf(t, content, [{ start: 0, length: content.length, done: content.length }])
  t.equal(await hashes.hashInFileOrder(whole, true, new ProgressSignal(), new AbortController().signal), createHash('sha256').update(content).digest('hex'))
})

t.test('a partial shorter than its parts say is a RetryableError, not a digest of fewer bytes', async (t) => {
  const partial = await partialOf(t, randomBytes(MiB), [{ start: 0, length: MiB, done: MiB }])
  truncateSync(partial.path, MiB / 2)
  const err = await caught(pool(t).hashInFileOrder(partial, true, new ProgressSignal(), new AbortController().signal))
  t.type(err, RetryableError)
  t.match(err.message, /shorter than its recorded progress/)
})

t.test('a cancel stops a hash that waits for bytes, with the cancel\'s reason', async (t) => {
  const partial = await partialOf(t, Buffer.alloc(1000), [{ start: 0, length: 1000, done: 0 }])
  const cancel = new AbortController()
  const hashing = pool(t).hashInFileOrder(partial, true, new ProgressSignal(), cancel.signal)
  const reason = new Error('cancelled')
  cancel.abort(reason)
  t.equal(await caught(hashing), reason)
})

// A verify (POST /api/models/verify) hashes a cached blob that is whole on a hash thread.

t.test('a whole file: its sha256 or git sha1 from the thread, the bytes told as it goes; one that is not there rejects with ENOENT', async (t) => {
  const dir = tempDir(t)
  const content = randomBytes(20 * MiB + 12345)
  const path = join(dir, 'blob')
  writeFileSync(path, content)
  const hashes = pool(t)
  const told: number[] = []
  t.equal(await hashes.hashWholeFile(path, true, (bytes) => told.push(bytes), new AbortController().signal), createHash('sha256').update(content).digest('hex'))
  t.equal(told.reduce((sum, bytes) => sum + bytes, 0), content.length, 'every byte told, once')
  t.ok(told.length >= 3 && told.length <= 4, `told every 8 MiB and at the end, not every chunk (${told.length} times)`)
  const gitSha1 = createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex')
  t.equal(await hashes.hashWholeFile(path, false, () => {}, new AbortController().signal), gitSha1, 'not LFS: the git blob sha1')
  const missing = await caught(hashes.hashWholeFile(join(dir, 'gone'), true, () => {}, new AbortController().signal))
  t.equal((missing as NodeJS.ErrnoException).code, 'ENOENT')
})

t.test('a whole file is hashed as it is when read: a blob cut short since it was listed hashes to what is left', async (t) => {
  const path = join(tempDir(t), 'blob')
  const content = randomBytes(12 * MiB)
  writeFileSync(path, content)
  truncateSync(path, 9 * MiB)
  t.equal(await pool(t).hashWholeFile(path, true, () => {}, new AbortController().signal), createHash('sha256').update(content.subarray(0, 9 * MiB)).digest('hex'))
})

t.test('a whole file cut short while the thread reads it hashes to the bytes it read, all of them told', async (t) => {
  const path = join(tempDir(t), 'blob')
  const content = randomBytes(128 * MiB)
  writeFileSync(path, content)
  let told = 0
  const digest = await pool(t).hashWholeFile(path, true, (bytes) => {
    if (told === 0) truncateSync(path, 10 * MiB)
    told += bytes
  }, new AbortController().signal)
  t.ok(told >= 10 * MiB && told <= content.length, `read ${told} bytes`)
  t.equal(digest, createHash('sha256').update(content.subarray(0, told)).digest('hex'), 'the digest of exactly what was read: no error, no bytes made up')
})

t.test('a cancel stops a whole file\'s hash part way, with the cancel\'s reason; the thread goes on to the next file', async (t) => {
  const path = join(tempDir(t), 'blob')
  const content = randomBytes(64 * MiB)
  writeFileSync(path, content)
  const hashes = pool(t)
  const cancel = new AbortController()
  const reason = new Error('cancelled')
  let told = 0
  const hashing = hashes.hashWholeFile(path, true, (bytes) => {
    told += bytes
    cancel.abort(reason)
  }, cancel.signal)
  t.equal(await caught(hashing), reason)
  t.ok(told < content.length, 'stopped before the end')
  t.equal(await caught(hashes.hashWholeFile(path, true, () => {}, cancel.signal)), reason, 'a signal already aborted starts nothing')
  t.equal(await hashes.hashWholeFile(path, true, () => {}, new AbortController().signal), createHash('sha256').update(content).digest('hex'), 'the next file hashes in full')
})
