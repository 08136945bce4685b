import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { PartState, type Part } from '../../../src/downloads/part-state.js'
import { resumeParts } from '../../../src/downloads/resume-parts.js'
import { tempDir } from './range-server.js'

// What a new attempt trusts of the partial it finds on disk: a part's `done` that runs ahead of the
// disk would put zeros in a blob, so only what is proven written is counted.

const SIZE = 400
const ETAG = 'a'.repeat(64)
const plan = { partSize: 100, maxParts: 4 }

function cache (t: Test) {
  const dir = tempDir(t)
  const partialPath = join(dir, 'blobs', `${ETAG}.incomplete`)
  mkdirSync(join(dir, 'blobs'))
  const state = new PartState(partialPath, join(dir, '.tmp'))
  const file = { partialPath, size: SIZE, etag: ETAG }
  const saveState = (saved: { etag?: string, size?: number, parts: Array<Omit<Part, 'length'> & { length?: number }> }): void => {
    const parts = saved.parts.map((part) => ({ length: 100, ...part }))
    writeFileSync(`${partialPath}.parts.json`, JSON.stringify({ etag: ETAG, size: SIZE, ...saved, parts }))
  }
  return { partialPath, state, file, saveState }
}

const dones = (parts: Part[]): number[] => parts.map((part) => part.done)

t.test('nothing on disk: every part from its start', async (t) => {
  const { state, file } = cache(t)
  const parts = await resumeParts(file, state, plan)
  t.same(parts, [0, 100, 200, 300].map((start) => ({ start, length: 100, done: 0 })))
})

t.test('a single-stream partial without parts state is trusted as a prefix, across the parts', async (t) => {
  const { partialPath, state, file } = cache(t)
  writeFileSync(partialPath, Buffer.alloc(250))
  t.same(dones(await resumeParts(file, state, plan)), [100, 100, 50, 0])
})

t.test('a partial larger than the file is thrown away', async (t) => {
  const { partialPath, state, file } = cache(t)
  writeFileSync(partialPath, Buffer.alloc(SIZE + 1))
  t.same(dones(await resumeParts(file, state, plan)), [0, 0, 0, 0])
  t.notOk(existsSync(partialPath))
})

t.test('saved parts that describe the partial resume each part where it stopped, holes and all', async (t) => {
  const { partialPath, state, file, saveState } = cache(t)
  writeFileSync(partialPath, Buffer.alloc(SIZE))
  saveState({ parts: [{ start: 0, done: 100 }, { start: 100, done: 30 }, { start: 200, done: 0 }, { start: 300, done: 100 }] })
  t.same(dones(await resumeParts(file, state, plan)), [100, 30, 0, 100])
})

t.test('stale saved parts are trusted only as far as they ran front to back, never by the file\'s size', async (t) => {
  const { partialPath, state, file, saveState } = cache(t)
  writeFileSync(partialPath, Buffer.alloc(SIZE))
  // Another size: these parts cannot say which bytes of this partial are real.
  saveState({ size: SIZE + 1, parts: [{ start: 0, done: 100 }, { start: 100, done: 40 }, { start: 300, done: 100 }] })
  t.same(dones(await resumeParts(file, state, plan)), [100, 40, 0, 0])
})

t.test('saved parts that claim bytes past the end of the partial are stale', async (t) => {
  const { partialPath, state, file, saveState } = cache(t)
  // Truncated since the state was saved: the last part's bytes are gone.
  writeFileSync(partialPath, Buffer.alloc(150))
  saveState({ parts: [{ start: 0, done: 100 }, { start: 100, done: 50 }, { start: 200, done: 0 }, { start: 300, done: 100 }] })
  t.same(dones(await resumeParts(file, state, plan)), [100, 50, 0, 0])
})

t.test('saved parts of another blob are stale', async (t) => {
  const { partialPath, state, file, saveState } = cache(t)
  writeFileSync(partialPath, Buffer.alloc(SIZE))
  saveState({ etag: 'b'.repeat(64), parts: [{ start: 0, done: 20 }, { start: 100, done: 100 }, { start: 200, done: 100 }, { start: 300, done: 100 }] })
  t.same(dones(await resumeParts(file, state, plan)), [20, 0, 0, 0])
})

t.test('an unreadable parts state trusts nothing of a partial that may have holes', async (t) => {
  const { partialPath, state, file } = cache(t)
  writeFileSync(partialPath, Buffer.alloc(SIZE))
  writeFileSync(`${partialPath}.parts.json`, '{"etag": "a')
  t.same(dones(await resumeParts(file, state, plan)), [0, 0, 0, 0])
})
