import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { checkRangeAnswer, openRange } from '../../../src/downloads/range-request.js'
import { RestartFileError } from '../../../src/downloads/restart-file-error.js'
import { RetryableError } from '../../../src/downloads/retry.js'
import { errorCode } from '../../../src/error-code.js'
import { caught, hubAt, sendRange, startServer } from './range-server.js'

// The response check of a resumed request: the bytes asked for, or a typed error that says what
// the caller must do (start the file again, retry later, or give up).

const content = randomBytes(64 * 1024)

async function fileServer (t: Test) {
  return startServer(t, (req, res) => {
    switch (req.url) {
      case '/file': return sendRange(content, req, res)
      case '/ignores-range': return sendRange(content, req, res, { ignoreRange: true })
      case '/shifted': return sendRange(content, req, res, { shift: 1 })
      case '/busy': res.writeHead(503, { 'retry-after': '7' }); return res.end('busy')
      case '/missing': res.writeHead(404); return res.end()
      default: res.writeHead(500); return res.end()
    }
  })
}

async function readAll (body: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of body) chunks.push(chunk)
  return Buffer.concat(chunks)
}

const signal = new AbortController().signal

t.test('the 206 asked for is accepted and holds exactly the bytes of the range', async (t) => {
  const { base, requests } = await fileServer(t)
  const answer = await openRange(`${base}/file`, hubAt(base), 1000, 1999, signal)
  t.equal(answer.statusCode, 206)
  t.same(await readAll(answer.body), content.subarray(1000, 2000))
  t.equal(requests[0]?.range, 'bytes=1000-1999')
})

t.test('a fresh single stream asks for no range, and a plain 200 is what it wants', async (t) => {
  const { base, requests } = await fileServer(t)
  const answer = await openRange(`${base}/file`, hubAt(base), 0, undefined, signal)
  t.equal(answer.statusCode, 200)
  t.same(await readAll(answer.body), content)
  t.equal(requests[0]?.range, undefined)
  const ignoring = await openRange(`${base}/ignores-range`, hubAt(base), 0, undefined, signal)
  t.same(await readAll(ignoring.body), content, 'so a server without Range support still serves a file from its start')
})

t.test('a server that cannot continue at the offset asked for means: start the file again', async (t) => {
  const { base } = await fileServer(t)
  const ignored = await caught(openRange(`${base}/ignores-range`, hubAt(base), 1000, undefined, signal))
  t.type(ignored, RestartFileError, '200 to a Range request')
  t.equal(ignored.message, 'the server ignored a Range request at byte 1000; the file is fetched again')
  const shifted = await caught(openRange(`${base}/shifted`, hubAt(base), 1000, 1999, signal))
  t.type(shifted, RestartFileError, '206 at another offset')
  t.equal(shifted.message, 'the server could not resume at byte 1000 (206); the file is fetched again')
  const unsatisfiable = await caught(openRange(`${base}/file`, hubAt(base), content.length + 10, undefined, signal))
  t.type(unsatisfiable, RestartFileError, '416')
  t.equal(unsatisfiable.message, `the server could not resume at byte ${content.length + 10} (416); the file is fetched again`)
})

t.test('a restart is still an error worth another attempt', async (t) => {
  const { base } = await fileServer(t)
  const err = await caught(openRange(`${base}/file`, hubAt(base), content.length, undefined, signal))
  t.type(err, RestartFileError)
  t.type(err, RetryableError, 'withRetries retries it like any bad transfer')
})

t.test('a busy server is retried after its Retry-After, without throwing the partial away', async (t) => {
  const { base } = await fileServer(t)
  const err = await caught(openRange(`${base}/busy`, hubAt(base), 1000, 1999, signal))
  t.type(err, RetryableError)
  t.notOk(err instanceof RestartFileError)
  t.match(err, { message: 'the server answered 503', retryAfterMs: 7000 })
})

t.test('a file the Hub does not have is the Hub\'s error, not retried', async (t) => {
  const { base } = await fileServer(t)
  const err = await caught(openRange(`${base}/missing`, hubAt(base), 0, undefined, signal))
  t.notOk(err instanceof RetryableError)
  t.match(errorCode(err), /^MD_/)
})

t.test('the Hub\'s redirect to its CDN is followed with the range, and the token stays with the Hub', async (t) => {
  const cdn = await fileServer(t)
  const hub = await startServer(t, (_req, res) => {
    res.writeHead(302, { location: `${cdn.base}/file` })
    res.end()
  })
  const answer = await openRange(`${hub.base}/resolve/file`, hubAt(hub.base, { authorization: 'Bearer hf_secret' }), 10, 19, signal)
  t.same(await readAll(answer.body), content.subarray(10, 20))
  t.same(hub.requests.map(({ range, authorization }) => ({ range, authorization })), [{ range: 'bytes=10-19', authorization: 'Bearer hf_secret' }])
  t.same(cdn.requests.map(({ range, authorization }) => ({ range, authorization })), [{ range: 'bytes=10-19', authorization: undefined }])
})

t.test('checkRangeAnswer on its own: what each answer to "from byte 1000" means', async (t) => {
  const { base } = await fileServer(t)
  const check = async (path: string, range: string | undefined) => {
    const response = await request(`${base}${path}`, { headers: range === undefined ? {} : { range } })
    const verdict = await checkRangeAnswer(response, 1000, base).then(() => 'accepted', (err: unknown) => (err as Error).constructor.name)
    await response.body.dump()
    return verdict
  }
  t.equal(await check('/file', 'bytes=1000-'), 'accepted', 'the 206 asked for')
  t.equal(await check('/ignores-range', 'bytes=1000-'), 'RestartFileError', 'a 200')
  t.equal(await check('/shifted', 'bytes=1000-'), 'RestartFileError', 'a 206 at 1001')
  t.equal(await check('/file', `bytes=${content.length}-`), 'RestartFileError', 'a 416')
  t.equal(await check('/busy', 'bytes=1000-'), 'RetryableError', 'a 503')
})
