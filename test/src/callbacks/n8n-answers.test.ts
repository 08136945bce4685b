import t, { type Test } from 'tap'
import { CallbackReceiver } from '../../fakes/callback-receiver.js'
import { auth } from '../../helpers/app.js'
import { hubAndApp, startDownload, waitForEnd } from '../../helpers/downloads.js'

// What n8n 2 answers a resume URL (its waiting-webhooks.js): 409 "is running already" while the
// workflow has not reached its Wait node, worth retrying; 409 "has finished …" once the Wait timed
// out or the execution was stopped, which no retry can change.

async function settledCallback (t: Test, answer: { status: number, body: string }): Promise<{ callback: Record<string, any>, received: number }> {
  const receiver = await CallbackReceiver.start()
  t.teardown(() => receiver.close())
  const { app } = await hubAndApp(t, { CALLBACK_ALLOWED_HOSTS: '127.0.0.1', CALLBACK_RETRY_BASE_MS: '10', CALLBACK_MAX_ATTEMPTS: '5' })
  receiver.answer(answer)
  const { job } = await startDownload(app, { model_id: 'org/tiny', callback_url: `${receiver.url}/webhook-waiting/7?signature=abc` })
  await waitForEnd(app, job.job_id)
  await receiver.waitFor(1)
  // Retries come 10-20 ms apart: after a second, a retried callback has long been delivered.
  await new Promise((resolve) => setTimeout(resolve, 1000))
  const current = (await app.inject({ url: `/api/downloads/${job.job_id}`, headers: auth() })).json()
  return { callback: current.callback, received: receiver.received.length }
}

t.test("n8n's 409 for a finished execution is not retried: the job says why", async (t) => {
  const { callback, received } = await settledCallback(t, { status: 409, body: '{"code":409,"message":"The execution \\"7 has finished already."}' })
  t.equal(received, 1, 'one attempt, not five')
  t.match(callback, { attempts: 1, last_status: 409, delivered_at: null, error: /execution has finished/ })
})

t.test('nor for one that finished with an error', async (t) => {
  const { received } = await settledCallback(t, { status: 409, body: '{"code":409,"message":"The execution \\"7\\" has finished with error."}' })
  t.equal(received, 1)
})

t.test("n8n's 409 while the execution is still running is retried until the Wait node listens", async (t) => {
  const { callback, received } = await settledCallback(t, { status: 409, body: '{"code":409,"message":"The execution \\"7\\" is running already."}' })
  t.equal(received, 2)
  t.match(callback, { attempts: 2, last_status: 200, delivered_at: String })
})
