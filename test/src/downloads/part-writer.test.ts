import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { BATCH_BYTES, BATCH_WAIT_MS, PartWriter, rest, writeAllAt } from '../../../src/downloads/part-writer.js'
import { caught, tempDir } from './range-server.js'

// A part's bytes gathered into few large writes, each at its place, counted only once on disk.

const SIZE = 2 * 1024 * 1024

async function zeros (t: Test, size = SIZE): Promise<{ path: string, handle: Awaited<ReturnType<typeof open>> }> {
  const path = join(tempDir(t), 'blob.incomplete')
  writeFileSync(path, Buffer.alloc(size))
  const handle = await open(path, 'r+')
  t.teardown(async () => handle.close().catch(() => {}))
  return { path, handle }
}

/** `bytes` cut into network-sized chunks (16 KiB, as a socket hands them over). */
const chunksOf = (bytes: Buffer, size = 16 * 1024): Buffer[] => {
  const out: Buffer[] = []
  for (let at = 0; at < bytes.length; at += size) out.push(bytes.subarray(at, at + size))
  return out
}

t.test('many small chunks land in place as a few batch-sized writes, each counted once it is on disk', async (t) => {
  const { path, handle } = await zeros(t)
  const content = randomBytes(SIZE / 2)
  const from = SIZE / 4
  const counted: number[] = []
  const writer = new PartWriter(handle, from, (bytes) => {
    counted.push(bytes)
    // What is counted is already in the file, front to back.
    const written = counted.reduce((sum, n) => sum + n, 0)
    t.same(readFileSync(path).subarray(from, from + written), content.subarray(0, written))
  })
  for (const chunk of chunksOf(content)) await writer.add(chunk)
  t.equal(writer.received, from + content.length)
  await writer.flush()
  const disk = readFileSync(path)
  t.same(disk.subarray(from, from + content.length), content)
  t.ok(disk.subarray(0, from).every((byte) => byte === 0) && disk.subarray(from + content.length).every((byte) => byte === 0), 'nothing outside the part is touched')
  t.equal(counted.reduce((sum, n) => sum + n, 0), content.length)
  // Batch-sized unless the wait ran out between two chunks (a busy machine): far fewer writes than chunks either way.
  const chunks = content.length / (16 * 1024)
  t.ok(counted.length >= content.length / BATCH_BYTES && counted.length <= chunks / 4, `${chunks} chunks, ${counted.length} writes`)
})

t.test('a batch a slow connection never fills is written after a short wait, without another chunk', async (t) => {
  const { path, handle } = await zeros(t)
  let counted = 0
  const writer = new PartWriter(handle, 0, (bytes) => { counted += bytes })
  await writer.add(Buffer.from('first bytes'))
  t.equal(counted, 0, 'not yet')
  await sleep(BATCH_WAIT_MS * 4)
  t.equal(counted, 11, 'written and counted while the connection is silent')
  t.equal(readFileSync(path).subarray(0, 11).toString(), 'first bytes')
})

t.test('a write that fails is thrown to whoever adds or flushes next, and nothing after it is counted', async (t) => {
  const { handle } = await zeros(t)
  let counted = 0
  const writer = new PartWriter(handle, 0, (bytes) => { counted += bytes })
  await handle.close()
  await writer.add(Buffer.alloc(BATCH_BYTES))
  const err = await caught(writer.flush())
  t.equal((err as NodeJS.ErrnoException).code, 'EBADF')
  t.equal(counted, 0)
  t.equal((await caught(writer.add(Buffer.alloc(10))) as NodeJS.ErrnoException).code, 'EBADF', 'and again at the next chunk')
})

t.test('writeAllAt writes every buffer in order at the position given', async (t) => {
  const { path, handle } = await zeros(t, 4096)
  await writeAllAt(handle, [Buffer.from('abc'), Buffer.alloc(0), Buffer.from('defg')], 100)
  t.equal(readFileSync(path).subarray(100, 107).toString(), 'abcdefg')
})

t.test('after a short write, what is left starts at the first byte not written, inside a buffer or at its end', async (t) => {
  const chunks = [Buffer.from('abc'), Buffer.from('defg'), Buffer.from('h')]
  const left = (written: number): string => Buffer.concat(rest(chunks, written)).toString()
  t.equal(left(0), 'abcdefgh')
  t.equal(left(2), 'cdefgh', 'inside the first buffer')
  t.equal(left(3), 'defgh', 'at the end of the first')
  t.equal(left(5), 'fgh', 'inside the second')
  t.equal(left(8), '', 'all of it')
  t.same(rest([Buffer.alloc(0), Buffer.from('x')], 0).map(String), ['x'], 'an empty buffer is skipped')
})
