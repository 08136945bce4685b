import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import t, { type Test } from 'tap'
import { parse } from 'yaml'
import { addExamplesModel, EXAMPLES_MODEL } from '../fakes/examples-model.js'
import { FakeHub } from '../fakes/fake-hub.js'
import { KEY } from '../helpers/app.js'
import { repoFile } from '../helpers/repo-root.js'
import { listeningPort, startServer } from '../helpers/server-process.js'
import { freePort } from '../helpers/free-port.js'
import { installedN8nVersion, startN8n, type Execution } from './n8n-process.js'

// Every workflow in examples/n8n, imported unchanged into a real n8n 2 (the version compose pins) and
// run there against the built modeldepot (`dist/src/server.js`) and a fake Hub that serves the
// examples' model. An example counts only when n8n reports its execution successful, and only with
// the effect on modeldepot a user imports it for. Not part of `npm test`: `npm run test:n8n`.

const dir = pathToFileURL(`${repoFile('examples/n8n')}/`)
const read = (file: string): Record<string, any> => JSON.parse(readFileSync(new URL(file, dir), 'utf8')) as Record<string, any>
// The credential the examples reference, created as the README says before importing.
const CREDENTIAL = 'modeldepot API key'
const OTHER_MODEL = 'org/kept'

t.test('the n8n installed is the version compose pins', async (t) => {
  const compose = parse(readFileSync(repoFile('docker-compose.yml'), 'utf8')) as { services: { n8n: { image: string } } }
  t.equal(`docker.n8n.io/n8nio/n8n:${installedN8nVersion()}`, compose.services.n8n.image)
})

t.test('every example runs unchanged in n8n and does what it is for', async (t) => {
  const hub = await FakeHub.start()
  t.teardown(() => hub.close())
  addExamplesModel(hub)
  hub.addRepo({ id: OTHER_MODEL, revisions: { main: { commit: '3'.repeat(40), files: [{ path: 'config.json', content: '{}' }] } } })

  const cache = mkdtempSync(join(tmpdir(), 'modeldepot-n8n-cache-'))
  t.teardown(() => rmSync(cache, { recursive: true, force: true }))
  // n8n's port first: modeldepot must allow callbacks to it, as compose allows n8n:5678.
  const n8nPort = await freePort()
  const server = startServer(t, { API_KEY: KEY, HF_HUB_CACHE: cache, HF_ENDPOINT: hub.url, CALLBACK_ALLOWED_HOSTS: `127.0.0.1:${n8nPort}`, LOG_LEVEL: 'info' }, cache)
  const modeldepot = `http://127.0.0.1:${await listeningPort(server)}`
  const api = async (method: string, path: string): Promise<any> => {
    const res = await fetch(`${modeldepot}${path}`, { method, headers: { authorization: `Bearer ${KEY}` } })
    return await res.json()
  }
  const cached = async (): Promise<string[]> => ((await api('GET', '/api/models')).models as Array<{ model_id: string }>).map((model) => model.model_id).sort()

  // As compose sets them: the examples read MODELDEPOT_URL, which n8n 2 hides unless told not to.
  const n8n = await startN8n(t, { MODELDEPOT_URL: modeldepot, N8N_BLOCK_ENV_ACCESS_IN_NODE: 'false' }, n8nPort)
  // What the README warns of: imported before the credential exists, a workflow stays bound to the placeholder.
  const early = await n8n.rest<{ id: string }>('POST', '/workflows', read('system-alert.json'))
  const credential = await n8n.rest<{ id: string }>('POST', '/credentials', { name: CREDENTIAL, type: 'httpHeaderAuth', data: { name: 'Authorization', value: `Bearer ${KEY}` } })

  // Imported as the editor's "Import from file" saves it: the file's JSON, unchanged.
  const imported = new Map<string, { id: string, nodes: Array<{ name: string, credentials?: Record<string, { id: string }> }> }>()
  for (const file of readdirSync(dir).filter((name) => name.endsWith('.json'))) {
    const workflow = await n8n.rest<{ id: string, nodes: Array<{ name: string, credentials?: Record<string, { id: string }> }> }>('POST', '/workflows', read(file))
    imported.set(file, workflow)
  }
  t.same([...imported.keys()].sort(), ['delete-model.json', 'download-and-resume-on-callback.json', 'download-model.json', 'system-alert.json'])
  for (const [file, workflow] of imported) {
    for (const node of workflow.nodes.filter((candidate) => candidate.credentials !== undefined)) {
      t.equal(node.credentials?.httpHeaderAuth?.id, credential.id, `${file}: ${node.name} is bound to the credential by its name`)
    }
  }

  const runExample = async (t: Test, file: string, timeoutMs?: number): Promise<Execution> => {
    const workflow = read(file)
    const trigger = (workflow.nodes as Array<{ name: string, type: string }>).find((node) => /trigger/i.test(node.type))!
    const execution = await n8n.finished(await n8n.run(imported.get(file)!.id, trigger.name), timeoutMs)
    t.equal(execution.status, 'success', `${file}: n8n reports the execution successful${execution.error === undefined ? '' : ` (${execution.error})`}`)
    return execution
  }
  const jobs = async (): Promise<Array<Record<string, any>>> => (await api('GET', '/api/downloads')).jobs as Array<Record<string, any>>

  await t.test('a workflow imported before its credential was created fails to run, as the README warns', async (t) => {
    const execution = await n8n.finished(await n8n.run(early.id, 'Every 5 minutes'))
    t.equal(execution.status, 'error')
    t.match(execution.error, /Credential with ID "REPLACE_WITH_YOUR_CREDENTIAL_ID" does not exist/)
  })

  await t.test('download-and-resume-on-callback.json: downloads, pauses, and resumes on the callback', async (t) => {
    const execution = await runExample(t, 'download-and-resume-on-callback.json')
    t.ok(execution.ranNodes.includes('Wait for the download to end'), 'it waited')
    t.match(execution.output('Wait for the download to end'), { body: { model_id: EXAMPLES_MODEL, status: 'complete' } }, 'and resumed with the job modeldepot POSTed')
    t.ok(execution.ranNodes.includes('Model ready'))
    t.same(await cached(), [EXAMPLES_MODEL], 'the model is in the cache')
    const [job] = await jobs()
    t.match(job, { model_id: EXAMPLES_MODEL, status: 'complete', callback: { last_status: 200 } }, 'the callback was delivered')
    t.type(job?.callback?.delivered_at, 'string')
    t.ok(server.stdout().includes('"msg":"callback delivered"'), 'and logged')
  })

  await t.test('download-and-resume-on-callback.json again: the model is cached, so no download, no wait', async (t) => {
    const before = (await jobs()).length
    const execution = await runExample(t, 'download-and-resume-on-callback.json')
    t.notOk(execution.ranNodes.includes('Download model'), 'nothing to download')
    t.notOk(execution.ranNodes.includes('Wait for the download to end'), 'and nothing to wait for')
    t.ok(execution.ranNodes.includes('Model ready'))
    t.equal((await jobs()).length, before, 'no job, so no callback that would come before a Wait node listens')
  })

  await t.test('delete-model.json: deletes the model it listed, and only that one', async (t) => {
    const started = await fetch(`${modeldepot}/api/download-model`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model_id: OTHER_MODEL })
    })
    const { job_id: jobId } = await started.json() as { job_id: string }
    t.match(await api('GET', `/api/download-progress?job_id=${jobId}&wait=30`), { status: 'complete' })
    t.same(await cached(), [EXAMPLES_MODEL, OTHER_MODEL].sort())
    const execution = await runExample(t, 'delete-model.json')
    t.match(execution.output('Delete model'), { model_id: EXAMPLES_MODEL }, 'modeldepot answered the delete of the listed model')
    t.same(await cached(), [OTHER_MODEL], 'gone from the cache; the other model stays')
  })

  await t.test('download-and-resume-on-callback.json: a download cancelled meanwhile ends the execution as cancelled', async (t) => {
    // The weights stall, so the job is still running when it is cancelled.
    hub.injectFault({ kind: 'stall', afterBytes: 0, path: 'model.safetensors', times: 10 })
    t.teardown(() => hub.clearFaults())
    const executionId = await n8n.run(imported.get('download-and-resume-on-callback.json')!.id, 'Start')
    let job: Record<string, any> | undefined
    for (let i = 0; i < 600 && job === undefined; i++) {
      job = (await jobs()).find((candidate) => candidate.callback !== null && !['complete', 'error', 'cancelled'].includes(candidate.status as string))
      if (job === undefined) await new Promise((resolve) => setTimeout(resolve, 100))
    }
    t.ok(job, 'the workflow started a download with a callback')
    const cancelled = await fetch(`${modeldepot}/api/downloads/${job?.job_id as string}`, { method: 'DELETE', headers: { authorization: `Bearer ${KEY}` } })
    t.equal(cancelled.status, 200)
    const execution = await n8n.finished(executionId)
    t.equal(execution.status, 'error', 'the execution fails')
    t.match(execution.error, /^Download cancelled/, 'saying the download was cancelled, not that no callback came')
    t.match(execution.output('Wait for the download to end'), { body: { status: 'cancelled' } }, 'the Wait node resumed with the cancelled job')
  })

  await t.test('download-model.json: downloads and long-polls until complete', async (t) => {
    const execution = await runExample(t, 'download-model.json')
    t.match(execution.output('Download progress (waits up to 55 s)'), { model_id: EXAMPLES_MODEL, status: 'complete' })
    t.ok(execution.ranNodes.includes('Model ready'))
    t.same(await cached(), [EXAMPLES_MODEL, OTHER_MODEL].sort(), 'the model is in the cache again')
    const files = (await api('GET', '/api/models')).models.find((model: { model_id: string }) => model.model_id === EXAMPLES_MODEL).file_count as number
    t.equal(files, 5, 'the files its allow_patterns take, not README.md')
  })

  await t.test('system-alert.json: reads the status (run now rather than in 5 minutes)', async (t) => {
    const execution = await runExample(t, 'system-alert.json')
    t.match(execution.output('System status'), { overall_health: String }, 'it got the system status')
  })
})
