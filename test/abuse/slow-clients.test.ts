import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { FakeHub } from '../fakes/fake-hub.js'
import { KEY } from '../helpers/app.js'
import { listeningPort, startServer } from '../helpers/server-process.js'

// A client that sends slowly, or not at all, cannot hold a connection: the real server (what
// `npm start` runs), with short deadlines set through the environment, closes each kind in time.

interface Slow { socket: Socket, closedAfter: Promise<number> }

/** A raw connection; `closedAfter` resolves with the milliseconds from connecting to the server closing it. */
async function open (port: number): Promise<Slow> {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  socket.resume()
  await once(socket, 'connect')
  const start = Date.now()
  return { socket, closedAfter: once(socket, 'close').then(() => Date.now() - start) }
}

/** Writes `chunk` every `everyMs` until the server closes the connection. */
function trickle (slow: Slow, chunk: string, everyMs: number): void {
  const timer = setInterval(() => { if (!slow.socket.destroyed) slow.socket.write(chunk) }, everyMs)
  void slow.closedAfter.then(() => clearInterval(timer))
}

async function server (t: Test, env: Record<string, string>): Promise<number> {
  const dir = t.testdir({})
  return listeningPort(startServer(t, { API_KEY: KEY, HF_HUB_CACHE: dir, ...env }, dir))
}

t.test('headers, bodies and idle keep-alive connections each have a deadline', async (t) => {
  const port = await server(t, { HEADERS_TIMEOUT_MS: '500', REQUEST_TIMEOUT_MS: '1000', KEEP_ALIVE_TIMEOUT_MS: '400' })
  // Node checks the deadlines every min(1 s, HEADERS_TIMEOUT_MS): allow that much, plus a busy CI
  // machine's scheduling. Node's own defaults would hold each of these for 60 s or more.
  const slack = 500 + 1500

  const headers = await open(port)
  headers.socket.write('GET /health HTTP/1.1\r\nHost: x\r\n')
  trickle(headers, 'X-Slow: 1\r\n', 100)
  const headersClosed = await headers.closedAfter
  t.ok(headersClosed >= 450 && headersClosed < 500 + slack, `headers trickled a line every 100 ms: closed after ${headersClosed} ms (HEADERS_TIMEOUT_MS=500)`)

  const body = await open(port)
  body.socket.write(`POST /api/download-model HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{`)
  trickle(body, ' ', 100)
  const bodyClosed = await body.closedAfter
  t.ok(bodyClosed >= 950 && bodyClosed < 1000 + slack, `a body trickled a byte every 100 ms: closed after ${bodyClosed} ms (REQUEST_TIMEOUT_MS=1000)`)

  const silent = await open(port)
  const silentClosed = await silent.closedAfter
  t.ok(silentClosed < 500 + slack, `a connection that never sends: closed after ${silentClosed} ms`)

  const idle = await open(port)
  let answer = ''
  idle.socket.on('data', (chunk: Buffer) => { answer += chunk.toString() })
  idle.socket.write('GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n')
  const idleClosed = await idle.closedAfter
  t.match(answer, /^HTTP\/1\.1 200 /, 'the kept-alive connection got its answer')
  // Node adds a fixed 1 s to the keep-alive deadline, so a client that sends just as it passes is not cut mid-request.
  t.ok(idleClosed >= 400 && idleClosed < 400 + 1000 + slack, `then sat idle: closed after ${idleClosed} ms (KEEP_ALIVE_TIMEOUT_MS=400, plus Node's 1 s)`)

  t.equal((await fetch(`http://127.0.0.1:${port}/health/live`)).status, 200, 'and the server answers everyone else throughout')
})

t.test('a connection with no traffic at all is closed after CONNECTION_TIMEOUT_MS, well before the other deadlines', async (t) => {
  const port = await server(t, { HEADERS_TIMEOUT_MS: '20000', REQUEST_TIMEOUT_MS: '30000', CONNECTION_TIMEOUT_MS: '600' })
  const stalled = await open(port)
  stalled.socket.write('GET /health HTTP/1.1\r\nHost: x\r\n')
  const closed = await stalled.closedAfter
  t.ok(closed >= 550 && closed < 3000, `closed after ${closed} ms (CONNECTION_TIMEOUT_MS=600, HEADERS_TIMEOUT_MS=20000)`)
})

t.test('a long poll is not cut: the deadlines bound how a request arrives, not how long its answer takes', async (t) => {
  const hub = await FakeHub.start()
  t.teardown(() => hub.close())
  hub.addRepo({ id: 'org/slow', revisions: { main: { commit: '1'.repeat(40), files: [{ path: 'model.safetensors', content: Buffer.alloc(1024 * 1024, 7), lfs: true }] } } })
  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: 100 * 1024 })
  const port = await server(t, { HF_ENDPOINT: hub.url, HEADERS_TIMEOUT_MS: '300', REQUEST_TIMEOUT_MS: '300', KEEP_ALIVE_TIMEOUT_MS: '300' })
  const headers = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }
  const started = await fetch(`http://127.0.0.1:${port}/api/download-model`, { method: 'POST', headers, body: '{"model_id":"org/slow"}' })
  t.equal(started.status, 202)
  const job = await started.json() as { job_id: string }
  const asked = Date.now()
  const poll = await fetch(`http://127.0.0.1:${port}/api/download-progress?job_id=${job.job_id}&wait=2`, { headers })
  t.equal(poll.status, 200, 'the poll is answered')
  t.ok(Date.now() - asked >= 1900, 'after holding it for wait=2 seconds, far past REQUEST_TIMEOUT_MS=300')
  t.equal((await poll.json() as { status: string }).status, 'downloading')
  await fetch(`http://127.0.0.1:${port}/api/downloads/${job.job_id}`, { method: 'DELETE', headers: { authorization: `Bearer ${KEY}` } })
})
