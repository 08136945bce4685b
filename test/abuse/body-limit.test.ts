import { once } from 'node:events'
import { connect } from 'node:net'
import t from 'tap'
import { auth, buildTestApp, KEY } from '../helpers/app.js'
import { listeningPort, startServer } from '../helpers/server-process.js'

// A body over 1 MiB is refused with a 413 of the common shape, whether it says its length up front
// or streams without one, and the server does not read a declared huge body before saying so.

const LIMIT = 1024 * 1024
const tooLarge = { statusCode: 413, error: 'Payload Too Large', code: 'MD_PAYLOAD_TOO_LARGE', message: String, hint: /1 MiB/ }
const bodyOf = (size: number): string => {
  const prefix = '{"model_id":"'
  return `${prefix}${'a'.repeat(size - prefix.length - 2)}"}`
}

t.test('a JSON body one byte over the limit is a 413 of the common shape, on every route that takes one', async (t) => {
  const { app } = await buildTestApp(t)
  for (const [method, url] of [['POST', '/api/download-model'], ['DELETE', '/api/delete-model'], ['PUT', '/api/default-model'], ['PUT', '/api/providers/openai/token']] as const) {
    const res = await app.inject({ method, url, headers: { ...auth(), 'content-type': 'application/json' }, payload: bodyOf(LIMIT + 1) })
    t.equal(res.statusCode, 413, `${method} ${url}`)
    t.match(res.json(), tooLarge)
  }
  const atLimit = await app.inject({ method: 'POST', url: '/api/download-model', headers: { ...auth(), 'content-type': 'application/json' }, payload: bodyOf(LIMIT) })
  t.equal(atLimit.statusCode, 400, 'a body of exactly 1 MiB is read (and its over-long model id refused)')
  t.match(atLimit.json(), { code: 'MD_VALIDATION_FAILED', message: /model_id is too long/ })
})

/** Sends raw bytes to the server and collects what it answers until it closes or `ms` pass. */
async function exchange (port: number, send: (write: (chunk: string) => boolean) => Promise<void>, ms = 5000): Promise<{ answer: string, closed: boolean }> {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  const seen = { answer: '', closed: false }
  socket.on('data', (chunk: Buffer) => { seen.answer += chunk.toString() })
  socket.on('close', () => { seen.closed = true })
  await send((chunk) => !seen.closed && socket.write(chunk))
  const deadline = Date.now() + ms
  while (!seen.closed && !seen.answer.includes('}') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  socket.destroy()
  // A copy: the close that destroy() causes comes later and must not change what was seen.
  return { ...seen }
}

t.test('on the real server: a streamed body without a length and a declared huge one are both refused', async (t) => {
  const dir = t.testdir({})
  const server = startServer(t, { API_KEY: KEY, HF_HUB_CACHE: dir }, dir)
  const port = await listeningPort(server)
  const head = (extra: string): string => `POST /api/download-model HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nContent-Type: application/json\r\n${extra}\r\n`

  const chunked = await exchange(port, async (write) => {
    write(head('Transfer-Encoding: chunked\r\n'))
    const chunk = `{"model_id":"${'a'.repeat(64 * 1024)}`
    for (let sent = 0; sent <= LIMIT + chunk.length && write(`${Buffer.byteLength(chunk).toString(16)}\r\n${chunk}\r\n`); sent += chunk.length) {
      await new Promise((resolve) => setImmediate(resolve))
    }
  })
  t.match(chunked.answer, /^HTTP\/1\.1 413 /, 'a chunked body is cut off at the limit')
  t.match(JSON.parse(chunked.answer.slice(chunked.answer.indexOf('{'))), tooLarge)

  const started = Date.now()
  const declared = await exchange(port, async (write) => { write(head(`Content-Length: ${100 * LIMIT}\r\n`)) })
  t.match(declared.answer, /^HTTP\/1\.1 413 /, 'a declared 100 MiB body is refused')
  t.ok(Date.now() - started < 2000, 'at once, without waiting for the body')
  t.match(JSON.parse(declared.answer.slice(declared.answer.indexOf('{'))), tooLarge)
})
