import { createHash } from 'node:crypto'
import { pathsInfo } from '@huggingface/hub'
import t from 'tap'
import { FakeHub, GeneratedContent, sha256Hex } from './fake-hub.js'

const COMMIT = 'e'.repeat(40)
const BLOCK = GeneratedContent.BLOCK_BYTES

// Buffers compared with equals(): tap's deep comparison walks them byte by byte, far too slowly.
const same = (a: Buffer, b: Buffer): boolean => a.equals(b)

/** The whole content in one Buffer, read in odd-sized pieces so reads across blocks are exercised. */
function readAll (content: GeneratedContent, piece = 100_003): Buffer {
  const pieces: Buffer[] = []
  for (let offset = 0; offset < content.length; offset += piece) pieces.push(content.subarray(offset, offset + piece))
  return Buffer.concat(pieces)
}

t.test('generated content is deterministic, seeded, and reads like a Buffer', async (t) => {
  const size = 3 * BLOCK + 12_345
  const content = new GeneratedContent(7, size)
  const whole = readAll(content)
  t.equal(whole.length, size)
  t.ok(same(readAll(new GeneratedContent(7, size)), whole), 'the same seed gives the same bytes')
  t.notOk(same(readAll(new GeneratedContent(8, size)), whole), 'another seed gives other bytes')
  t.same(content.subarray(BLOCK - 3, BLOCK + 9), whole.subarray(BLOCK - 3, BLOCK + 9), 'a range across a block boundary')
  t.same(content.subarray(BLOCK + 2, BLOCK + 4), whole.subarray(BLOCK + 2, BLOCK + 4), 'a range inside a block')
  t.same(content.subarray(size - 5, size + 100), whole.subarray(size - 5), 'clamped at the end, like Buffer#subarray')
  t.equal(content.subarray(size + 1, size + 5).length, 0)
  t.equal(whole.indexOf(0), -1, 'no byte is 0, so a hole in a sparse file never passes for content')
  t.notOk(same(whole.subarray(0, BLOCK), whole.subarray(BLOCK, 2 * BLOCK)), 'blocks differ, so a swapped block changes the hash')
  t.notOk(same(whole.subarray(BLOCK, 2 * BLOCK), whole.subarray(2 * BLOCK, 3 * BLOCK)))
  t.equal(content.sha256, sha256Hex(whole))
  t.equal(new GeneratedContent(1, 0).sha256, sha256Hex(''), 'empty content hashes like an empty file')
  t.throws(() => new GeneratedContent(1, -1))
})

t.test('a FakeHub serves a generated file as an LFS file, whole and by range', async (t) => {
  const hub = await FakeHub.start()
  t.teardown(() => hub.close())
  const weights = new GeneratedContent(3, 2 * BLOCK + 99)
  hub.addRepo({ id: 'bench/gen', revisions: { main: { commit: COMMIT, files: [{ path: 'model.safetensors', content: weights, lfs: true }, { path: 'config.json', content: '{}' }] } } })
  const whole = readAll(weights)

  const [info] = await pathsInfo({ repo: 'bench/gen', paths: ['model.safetensors'], hubUrl: hub.url })
  t.match(info, { size: whole.length, lfs: { oid: sha256Hex(whole), size: whole.length } }, 'listed with its sha256 and size')

  const url = `${hub.url}/bench/gen/resolve/main/model.safetensors`
  const full = await fetch(url)
  t.equal(full.status, 200)
  t.match(full.url, /\/cdn\//, 'through the CDN, like any LFS file')
  t.ok(same(Buffer.from(await full.arrayBuffer()), whole), 'the whole file')
  const part = await fetch(url, { headers: { range: `bytes=${BLOCK - 10}-${BLOCK + 10}` } })
  t.equal(part.status, 206)
  t.equal(part.headers.get('content-range'), `bytes ${BLOCK - 10}-${BLOCK + 10}/${whole.length}`)
  t.same(Buffer.from(await part.arrayBuffer()), whole.subarray(BLOCK - 10, BLOCK + 11))
  t.equal(hub.bytesServed('model.safetensors'), whole.length + 21, 'served bytes are counted')

  hub.injectFault({ kind: 'corrupt', path: 'model.safetensors', afterBytes: BLOCK + 1 })
  const corrupt = Buffer.from(await (await fetch(url)).arrayBuffer())
  t.equal(corrupt[BLOCK + 1], (whole[BLOCK + 1] ?? 0) ^ 0xff, 'a corrupt fault flips the byte')
  t.ok(same(Buffer.from(await (await fetch(url)).arrayBuffer()), whole), 'and the content itself stays intact')
})

t.test('a large generated file streams without being held in memory', async (t) => {
  const hub = await FakeHub.start()
  t.teardown(() => hub.close())
  const size = 256 * 1024 * 1024
  const weights = new GeneratedContent(5, size)
  hub.addRepo({ id: 'bench/big', revisions: { main: { commit: COMMIT, files: [{ path: 'big.safetensors', content: weights, lfs: true }] } } })
  const before = process.memoryUsage().arrayBuffers
  let peak = before
  const hash = createHash('sha256')
  const response = await fetch(`${hub.url}/bench/big/resolve/main/big.safetensors`)
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    hash.update(chunk)
    peak = Math.max(peak, process.memoryUsage().arrayBuffers)
  }
  t.equal(hash.digest('hex'), weights.sha256, 'every byte arrived')
  t.equal(hub.bytesServed('big.safetensors'), size)
  t.ok(peak - before < size / 4, `buffers grew by ${Math.round((peak - before) / 1e6)} MB while ${size / 1e6} MB streamed`)
})
