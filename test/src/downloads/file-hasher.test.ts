import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { setImmediate as tick } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { hashInFileOrder, newHasher, ProgressSignal } from '../../../src/downloads/file-hasher.js'
import { planParts, type Part, type PartialFile } from '../../../src/downloads/part-state.js'
import { RetryableError } from '../../../src/downloads/retry.js'
import { caught, tempDir } from './range-server.js'

// The hasher follows the parts through the file front to back, whatever order they land in: its
// digest is the file's, with no second read of it.

const MiB = 1024 * 1024

async function partialOf (t: Test, onDisk: Buffer, parts: Part[]): Promise<PartialFile & { path: string }> {
  const path = join(tempDir(t), 'blob.incomplete')
  writeFileSync(path, onDisk)
  const handle = await open(path, 'r+')
  t.teardown(async () => handle.close())
  return { path, handle, size: parts.reduce((sum, part) => sum + part.length, 0), parts }
}

t.test('the digest is the sha256 of the content while the parts land out of order', async (t) => {
  // Larger than one read of the hasher, so it reads back in several chunks.
  const content = randomBytes(9 * MiB + 123)
  const partial = await partialOf(t, Buffer.alloc(content.length), planParts(content.length, 3 * MiB, 3))
  const progress = new ProgressSignal()
  const land = async (part: Part, bytes: number): Promise<void> => {
    await partial.handle.write(content, part.start + part.done, bytes, part.start + part.done)
    part.done += bytes
    progress.notify()
    await tick()
  }
  let digest: string | undefined
  const hashing = hashInFileOrder(partial, newHasher(true, content.length), progress, new AbortController().signal).then((hex) => { digest = hex })
  const [first, middle, last] = partial.parts as [Part, Part, Part]
  await land(last, last.length)
  await land(middle, middle.length)
  t.equal(digest, undefined, 'nothing to finish while the first part is missing')
  await land(first, MiB)
  await land(first, first.length - MiB)
  await hashing
  t.equal(digest, createHash('sha256').update(content).digest('hex'))
})

t.test('a file that is not LFS hashes to its git blob id, as git hash-object says', async (t) => {
  const content = Buffer.from('{"model_type":"llama","hidden_size":64}\n')
  // A resumed partial that is already whole: hashed from disk, with no part left to wait for.
  const partial = await partialOf(t, content, [{ start: 0, length: content.length, done: content.length }])
  const digest = await hashInFileOrder(partial, newHasher(false, content.length), new ProgressSignal(), new AbortController().signal)
  t.equal(digest, execFileSync('git', ['hash-object', partial.path], { encoding: 'utf8' }).trim())
})

t.test('a cancel stops a hasher that waits for bytes', async (t) => {
  const partial = await partialOf(t, Buffer.alloc(1000), [{ start: 0, length: 1000, done: 0 }])
  const cancel = new AbortController()
  const hashing = hashInFileOrder(partial, newHasher(true, 1000), new ProgressSignal(), cancel.signal)
  const reason = new Error('cancelled')
  cancel.abort(reason)
  t.equal(await caught(hashing), reason)
})

t.test('a partial shorter than its parts claim is a transfer to try again, not a wrong hash', async (t) => {
  const partial = await partialOf(t, Buffer.alloc(500), [{ start: 0, length: 1000, done: 1000 }])
  const err = await caught(hashInFileOrder(partial, newHasher(true, 1000), new ProgressSignal(), new AbortController().signal))
  t.type(err, RetryableError)
  t.equal(err.message, 'the partial file is shorter than its recorded progress at byte 500')
})
