import { mkdirSync, writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { PartState, type Part } from '../../../src/downloads/part-state.js'
import { resumeParts } from '../../../src/downloads/resume-parts.js'
import { tempDir } from './range-server.js'

// After a kill -9, a part's bytes past its last saved checkpoint are on disk, and the parts state does
// not know them: they are counted from the partial itself, and only where they are proven written.

const SIZE = 4 * 256 * 1024
const PART = 256 * 1024
const ETAG = 'e'.repeat(64)
const plan = { partSize: PART, maxParts: 4 }
const data = (bytes: number, byte = 7): Buffer => Buffer.alloc(bytes, byte)

async function partialWith (t: Test, writes: Array<{ at: number, bytes: Buffer }>, saved: Part[]) {
  const dir = tempDir(t)
  mkdirSync(join(dir, 'blobs'))
  const partialPath = join(dir, 'blobs', `${ETAG}.incomplete`)
  // As the part fetchers leave it: a sparse file, written at each part's place.
  const handle = await open(partialPath, 'w')
  for (const write of writes) await handle.write(write.bytes, 0, write.bytes.length, write.at)
  await handle.close()
  writeFileSync(`${partialPath}.parts.json`, JSON.stringify({ etag: ETAG, size: SIZE, parts: saved }))
  return resumeParts({ partialPath, size: SIZE, etag: ETAG }, new PartState(partialPath, join(dir, '.tmp')), plan)
}

const part = (i: number, done: number): Part => ({ start: i * PART, length: PART, done })
const dones = (parts: Part[]): number[] => parts.map((p) => p.done)

t.test('bytes a part wrote after its checkpoint are counted', async (t) => {
  const parts = await partialWith(t, [
    { at: 0, bytes: data(100_000) },
    { at: PART, bytes: data(PART) },
    { at: 2 * PART, bytes: data(70_001) }
  ], [part(0, 40_000), part(1, 100), part(2, 0), part(3, 0)])
  t.same(dones(parts), [100_000, PART, 70_001, 0])
})

t.test('zeros are never trusted: data ending in zeros, and data after a block of zeros, are fetched again', async (t) => {
  const endsInZeros = Buffer.concat([data(1000), Buffer.alloc(10)])
  // Zeros that fill a whole block of the scan look like a hole: the count stops before them.
  const zeroRun = Buffer.concat([data(1000), Buffer.alloc(2 * 64 * 1024), data(1000)])
  const parts = await partialWith(t, [
    { at: 0, bytes: endsInZeros },
    { at: PART, bytes: zeroRun }
  ], [part(0, 0), part(1, 0), part(2, 0), part(3, 0)])
  t.equal(parts[0]!.done, 1000, 'up to the last byte that is not zero')
  t.equal(parts[1]!.done, 1000, 'what follows a block of zeros is fetched again')
})

t.test('a part never counts bytes of the next one', async (t) => {
  const parts = await partialWith(t, [{ at: 0, bytes: data(SIZE) }], [part(0, 10), part(1, 0), part(2, PART), part(3, 5)])
  t.same(dones(parts), [PART, PART, PART, PART])
})
