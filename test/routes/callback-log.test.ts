import { createServer } from 'node:net'
import t from 'tap'
import { CallbackReceiver } from '../fakes/callback-receiver.js'
import { hubAndApp, startDownload, waitForEnd } from '../helpers/downloads.js'

// What an operator reads when an n8n Wait node never resumes: one info line per callback attempt,
// with the URL (its query secrets masked), the attempt number, the answer or the error, and how long it took.

async function closedPort (): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

const callbackLines = (logs: Array<Record<string, unknown>>): Array<Record<string, any>> =>
  logs.filter((line) => line.msg === 'callback delivered' || line.msg === 'callback attempt failed')

async function linesFor (logs: () => Array<Record<string, unknown>>, count: number): Promise<Array<Record<string, any>>> {
  for (let i = 0; i < 400; i++) {
    const lines = callbackLines(logs())
    if (lines.length >= count) return lines
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(`${count} callback log lines expected, ${callbackLines(logs()).length} written`)
}

t.test('each callback attempt is logged at info: masked URL, attempt, status, duration; delivered at the end', async (t) => {
  const receiver = await CallbackReceiver.start()
  t.teardown(() => receiver.close())
  receiver.answer(503, 429)
  const { app, logs, rawLogs } = await hubAndApp(t, { CALLBACK_ALLOWED_HOSTS: '127.0.0.1', CALLBACK_RETRY_BASE_MS: '10' })
  const started = await startDownload(app, { model_id: 'org/tiny', callback_url: `${receiver.url}/webhook-waiting/9?signature=resume-token-abc&x=1` })
  t.equal((await waitForEnd(app, started.job.job_id)).status, 'complete')

  const lines = await linesFor(logs, 3)
  const masked = `${receiver.url}/webhook-waiting/9?signature=****&x=****`
  t.match(lines, [
    { level: 30, msg: 'callback attempt failed', callback_url: masked, event: 'complete', attempt: 1, status: 503, duration_ms: Number, delivered: false, error: 'the receiver answered 503', retry: true },
    { level: 30, msg: 'callback attempt failed', callback_url: masked, attempt: 2, status: 429, duration_ms: Number, delivered: false, error: 'the receiver answered 429', retry: true },
    { level: 30, msg: 'callback delivered', callback_url: masked, attempt: 3, status: 200, duration_ms: Number, delivered: true }
  ])
  for (const line of lines) t.ok(line.duration_ms >= 0, 'a duration in milliseconds')
  t.equal(lines.length, 3, 'one line per attempt')
  t.notOk(rawLogs().includes('resume-token-abc'), 'the resume token is never logged')
})

t.test('an attempt that gets no answer logs the error and no status; the last one says it is not retried', async (t) => {
  const port = await closedPort()
  const { app, logs } = await hubAndApp(t, { CALLBACK_ALLOWED_HOSTS: '127.0.0.1', CALLBACK_RETRY_BASE_MS: '10', CALLBACK_MAX_ATTEMPTS: '2' })
  const started = await startDownload(app, { model_id: 'org/tiny', callback_url: `http://127.0.0.1:${port}/hook` })
  t.equal((await waitForEnd(app, started.job.job_id)).status, 'complete')

  const lines = await linesFor(logs, 2)
  t.match(lines, [
    { level: 30, msg: 'callback attempt failed', callback_url: `http://127.0.0.1:${port}/hook`, attempt: 1, status: null, duration_ms: Number, error: /could not be reached \(ECONNREFUSED\)/, retry: true },
    { level: 30, msg: 'callback attempt failed', attempt: 2, status: null, error: /ECONNREFUSED/, retry: false }
  ])
})
