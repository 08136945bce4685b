import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import pLimit from 'p-limit'
import t, { type Test } from 'tap'
import { fetchPart, fetchParts, type PartSource } from '../../../src/downloads/part-fetch.js'
import { planParts, type PartialFile } from '../../../src/downloads/part-state.js'
import { RestartFileError } from '../../../src/downloads/restart-file-error.js'
import { RetryableError } from '../../../src/downloads/retry.js'
import { caught, hubAt, sendRange, startServer, tempDir, type RangeOptions } from './range-server.js'

// One part streamed into its place in the partial file, and all of a file's parts side by side.

const SIZE = 256 * 1024
const content = randomBytes(SIZE)

/** A partial of SIZE zeros, split in four parts, open as a transfer holds it. */
async function partialFile (t: Test, partCount = 4): Promise<PartialFile & { path: string }> {
  const path = join(tempDir(t), 'blob.incomplete')
  writeFileSync(path, Buffer.alloc(SIZE))
  const handle = await open(path, 'r+')
  t.teardown(async () => handle.close())
  return { path, handle, size: SIZE, parts: planParts(SIZE, SIZE / partCount, partCount) }
}

async function source (t: Test, options: (range: string | undefined) => RangeOptions = () => ({}), connection = async <T>(task: () => Promise<T>) => task()) {
  const server = await startServer(t, (req, res) => sendRange(content, req, res, options(req.headers.range)))
  const from: PartSource = { url: `${server.base}/file`, hub: hubAt(server.base), connection }
  return { ...server, source: from }
}

const signal = new AbortController().signal

t.test('a part lands at its own offset and counts only the bytes it wrote', async (t) => {
  const { source: from, requests } = await source(t)
  const partial = await partialFile(t)
  const part = partial.parts[2]!
  let written = 0
  await fetchPart(from, partial, part, (bytes) => { written += bytes }, signal)
  t.equal(requests[0]?.range, `bytes=${part.start}-${part.start + part.length - 1}`)
  t.equal(part.done, part.length)
  t.equal(written, part.length)
  const disk = readFileSync(partial.path)
  t.same(disk.subarray(part.start, part.start + part.length), content.subarray(part.start, part.start + part.length))
  t.ok(disk.subarray(0, part.start).every((byte) => byte === 0), 'the bytes of other parts are not touched')
  t.equal(disk.length, SIZE)
})

t.test('a part that was half done asks for the rest of its range only', async (t) => {
  const { source: from, requests } = await source(t)
  const partial = await partialFile(t)
  const part = partial.parts[1]!
  part.done = 1000
  await partial.handle.write(content, part.start, 1000, part.start)
  await fetchPart(from, partial, part, () => {}, signal)
  t.equal(requests[0]?.range, `bytes=${part.start + 1000}-${part.start + part.length - 1}`)
  t.same(readFileSync(partial.path).subarray(part.start, part.start + part.length), content.subarray(part.start, part.start + part.length))
})

t.test('the only part of a file asks for the rest of the file, as huggingface_hub does', async (t) => {
  const { source: from, requests } = await source(t)
  const partial = await partialFile(t, 1)
  partial.parts[0]!.done = 4096
  await partial.handle.write(content, 0, 4096, 0)
  await fetchPart(from, partial, partial.parts[0]!, () => {}, signal)
  t.equal(requests[0]?.range, 'bytes=4096-')
  t.same(readFileSync(partial.path), content)
})

t.test('a connection that breaks mid-part is retryable, and what arrived is kept and counted', async (t) => {
  const { source: from } = await source(t, () => ({ breakAfter: 5000 }))
  const partial = await partialFile(t)
  const part = partial.parts[0]!
  const err = await caught(fetchPart(from, partial, part, () => {}, signal))
  t.type(err, RetryableError)
  t.match(err.message, /broke off|ended early/)
  t.ok(part.done > 0 && part.done <= 5000, `done is what was written (${part.done})`)
  t.same(readFileSync(partial.path).subarray(0, part.done), content.subarray(0, part.done))
})

t.test('a server that sends more than the range is refused before a byte lands past the part', async (t) => {
  const { source: from } = await source(t, () => ({ extra: 10 }))
  const partial = await partialFile(t)
  const part = partial.parts[1]!
  const err = await caught(fetchPart(from, partial, part, () => {}, signal))
  t.type(err, RetryableError)
  t.equal(err.message, `the server sent more than the ${part.length} bytes asked for`)
  const next = partial.parts[2]!
  t.ok(readFileSync(partial.path).subarray(next.start, next.start + next.length).every((byte) => byte === 0), 'the next part is untouched')
})

t.test('every part, each in its place, within the connection bound', async (t) => {
  let open = 0
  let peak = 0
  const limit = pLimit(2)
  const { source: from } = await source(t, () => ({ delayMs: 20 }), async (task) => limit(async () => {
    peak = Math.max(peak, ++open)
    try { return await task() } finally { open-- }
  }))
  const partial = await partialFile(t)
  await fetchParts(from, partial, () => {}, new AbortController())
  t.same(readFileSync(partial.path), content)
  t.ok(partial.parts.every((part) => part.done === part.length))
  t.equal(peak, 2, 'never more than two at once')
})

t.test('one part the server cannot continue stops the others; the partial is left to its owner', async (t) => {
  const partial = await partialFile(t)
  const last = partial.parts[3]!
  // The last part is refused at once; the others answer too late to matter.
  const { source: from } = await source(t, (range) => range?.startsWith(`bytes=${last.start}-`) === true ? { shift: SIZE } : { delayMs: 300 })
  const attempt = new AbortController()
  const err = await caught(fetchParts(from, partial, () => {}, attempt))
  t.type(err, RestartFileError)
  t.equal(attempt.signal.reason, err, 'the attempt stops with the first failure')
  t.ok(partial.parts.every((part) => part.done === 0), 'no other part went on')
  t.ok(existsSync(partial.path), 'the request code never deletes the partial')
})

t.test('parts go front first, at most connectionsPerFile at once, so the file\'s front is complete early', async (t) => {
  let open = 0
  let peak = 0
  const { source: from, requests } = await source(t, () => ({ delayMs: 10 }))
  const counting: PartSource = {
    ...from,
    connectionsPerFile: 2,
    connection: async (task) => {
      peak = Math.max(peak, ++open)
      try { return await task() } finally { open-- }
    }
  }
  const partial = await partialFile(t, 8)
  await fetchParts(counting, partial, () => {}, new AbortController())
  t.same(readFileSync(partial.path), content)
  t.equal(peak, 2, 'two of the file\'s parts at once')
  // Two requests that go at once may arrive either way round; none is asked for before the parts two ahead of it.
  const order = requests.map((request) => partial.parts.findIndex((part) => request.range?.startsWith(`bytes=${part.start}-`) === true))
  t.same([...order].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7], 'each part asked for once')
  t.ok(order.every((part, i) => part < i + 2), `front first (${order.join(', ')})`)
})

/** A Hub that redirects /file to a signed CDN address, each address good for `uses` requests (then 403, as an expired one). */
async function hubWithCdn (t: Test, uses = Infinity) {
  let signature = 0
  const used = new Map<number, number>()
  const server = await startServer(t, (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    if (url.pathname === '/file') {
      res.writeHead(302, { location: `/cdn/file?sig=${++signature}` })
      res.end()
      return
    }
    const sig = Number(url.searchParams.get('sig'))
    used.set(sig, (used.get(sig) ?? 0) + 1)
    if (used.get(sig)! > uses) {
      res.writeHead(403)
      res.end('Request has expired')
      return
    }
    sendRange(content, req, res, { delayMs: 10 })
  })
  const count = (path: RegExp): number => server.requests.filter((request) => path.test(request.path)).length
  return { server, hubCalls: () => count(/^\/file$/), cdnCalls: () => count(/^\/cdn\//) }
}

t.test('a file\'s later parts go straight to the address the Hub redirected to', async (t) => {
  const { server, hubCalls, cdnCalls } = await hubWithCdn(t)
  const from: PartSource = { url: `${server.base}/file`, hub: hubAt(server.base), connection: async (task) => task(), connectionsPerFile: 2 }
  const partial = await partialFile(t, 8)
  await fetchParts(from, partial, () => {}, new AbortController())
  t.same(readFileSync(partial.path), content)
  t.equal(hubCalls(), 2, 'the Hub was asked once per connection, not once per part')
  t.equal(cdnCalls(), 8, 'every part came from the CDN')
})

t.test('a CDN address that is refused (expired) is asked of the Hub again, and the parts go on', async (t) => {
  const { server, hubCalls, cdnCalls } = await hubWithCdn(t, 2)
  const from: PartSource = { url: `${server.base}/file`, hub: hubAt(server.base), connection: async (task) => task(), connectionsPerFile: 1 }
  const partial = await partialFile(t, 8)
  await fetchParts(from, partial, () => {}, new AbortController())
  t.same(readFileSync(partial.path), content, 'the file is right')
  // Each address serves two parts; the third is refused and the Hub gives a new one: 4 addresses for 8 parts.
  t.equal(hubCalls(), 4)
  t.equal(cdnCalls(), 8 + 3, 'each refusal cost one request, and no part failed')
})
