import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { RestartFileError } from '../../../src/downloads/restart-file-error.js'
import { verifyAndMove } from '../../../src/downloads/verify-and-move.js'
import { caught, tempDir } from './range-server.js'

// Nothing gets a name in blobs/ before its size and hash are the ones the Hub promised.

const content = randomBytes(10_000)
const etag = createHash('sha256').update(content).digest('hex')

function finished (t: Test, onDisk: Buffer) {
  const blobs = join(tempDir(t), 'blobs')
  mkdirSync(blobs)
  const partialPath = join(blobs, `${etag}.incomplete`)
  writeFileSync(partialPath, onDisk)
  return { blobs, file: { partialPath, blobPath: join(blobs, etag), size: content.length, etag } }
}

t.test('a partial of the right size and hash becomes the blob', async (t) => {
  const { blobs, file } = finished(t, content)
  await verifyAndMove(file, etag)
  t.same(readFileSync(file.blobPath), content)
  t.same(readdirSync(blobs), [etag], 'and the partial is gone')
})

t.test('a wrong hash is refused: no blob, the partial left for its owner to throw away', async (t) => {
  const { blobs, file } = finished(t, content)
  const err = await caught(verifyAndMove(file, 'f'.repeat(64)))
  t.type(err, RestartFileError, 'the file starts again')
  t.equal(err.message, `checksum mismatch: expected ${etag}, got ${'f'.repeat(64)} over ${content.length} bytes`)
  t.notOk(existsSync(file.blobPath))
  t.same(readdirSync(blobs), [`${etag}.incomplete`])
})

t.test('a wrong size is refused even when the digest matches', async (t) => {
  // A byte written past the end after the hasher finished: the digest no longer tells the whole file.
  const { file } = finished(t, Buffer.concat([content, Buffer.from([0])]))
  const err = await caught(verifyAndMove(file, etag))
  t.type(err, RestartFileError)
  t.match(err.message, `over ${content.length + 1} bytes`)
  t.notOk(existsSync(file.blobPath))
})
