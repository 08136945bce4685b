import { readdirSync, readFileSync } from 'node:fs'
import t from 'tap'
import { pathToFileURL } from 'node:url'
import { parse } from 'yaml'
import { repoFile } from './helpers/repo-root.js'

// The n8n workflows in examples/n8n must import and call routes that exist, the way the contract says.
interface Node { name: string, type: string, parameters: Record<string, any>, credentials?: Record<string, { id: string, name: string }> }
interface Workflow { name: string, nodes: Node[], connections: Record<string, { main: Array<Array<{ node: string }>> }> }

const dir = pathToFileURL(`${repoFile('examples/n8n')}/`)
const openapi = JSON.parse(readFileSync(repoFile('openapi/openapi.json'), 'utf8')) as {
  paths: Record<string, Record<string, { parameters?: Array<{ name: string }>, requestBody?: unknown }>>
  components: { schemas: { DownloadParams: { properties: Record<string, unknown> } } }
}

const files = readdirSync(dir).filter((file) => file.endsWith('.json'))
const readWorkflow = (file: string): Workflow => JSON.parse(readFileSync(new URL(file, dir), 'utf8')) as Workflow
// Every URL reads modeldepot's address from n8n's environment: in the n8n container, localhost is n8n.
const BASE = '={{ $env.MODELDEPOT_URL }}'
const CREDENTIAL = 'modeldepot API key'

/** What n8n shows for an expression such as `={{ $json.a + 1 }}`, evaluated as plain JavaScript. */
function evaluate (expression: string, json: unknown): unknown {
  const body = /^=\{\{([\s\S]*)\}\}$/.exec(expression)?.[1]
  if (body === undefined) throw new Error(`not a whole-value expression: ${expression}`)
  // eslint-disable-next-line no-new-func -- the expression is the example's own, from the repository
  return new Function('$json', `return (${body})`)(json)
}

t.test('there are example workflows for download, progress, delete and alerts', async (t) => {
  const all = files.map((file) => readFileSync(new URL(file, dir), 'utf8')).join('\n')
  for (const route of ['/api/download-model', '/api/download-progress', '/api/delete-model', '/api/system-status']) t.ok(all.includes(route), route)
})

for (const file of files) {
  t.test(`examples/n8n/${file} is a workflow n8n can import, calling the API as documented`, async (t) => {
    const workflow = JSON.parse(readFileSync(new URL(file, dir), 'utf8')) as Workflow
    t.type(workflow.name, 'string')
    const names = new Set(workflow.nodes.map((node) => node.name))
    t.equal(names.size, workflow.nodes.length, 'node names are unique')
    for (const [from, outputs] of Object.entries(workflow.connections)) {
      t.ok(names.has(from), `connection from ${from}`)
      for (const target of outputs.main.flat()) t.ok(names.has(target.node), `connection to ${target.node}`)
    }
    for (const node of workflow.nodes.filter((candidate) => candidate.type === 'n8n-nodes-base.httpRequest')) {
      const url = node.parameters.url as string
      t.ok(url.startsWith(`${BASE}/api/`), `${node.name} calls the modeldepot MODELDEPOT_URL names`)
      const path = url.slice(BASE.length)
      const operation = openapi.paths[path]?.[(node.parameters.method as string).toLowerCase()]
      t.ok(operation, `${node.name}: ${node.parameters.method as string} ${path} is in the contract`)
      // n8n 2 binds it on import by this name and type; the README tells users to create it first.
      t.same(node.credentials, { httpHeaderAuth: { id: 'REPLACE_WITH_YOUR_CREDENTIAL_ID', name: CREDENTIAL } }, `${node.name} takes the key from a header credential`)
      for (const query of node.parameters.queryParameters?.parameters ?? []) {
        t.ok(operation?.parameters?.some((parameter) => parameter.name === query.name), `${node.name}: query ${query.name as string} is documented`)
      }
      if (node.parameters.sendBody === true) {
        // A body that starts with "=" is an n8n expression; its {{ }} parts sit inside JSON strings.
        const body = JSON.parse((node.parameters.jsonBody as string).replace(/^=/, '')) as Record<string, unknown>
        for (const key of Object.keys(body)) t.ok(key in openapi.components.schemas.DownloadParams.properties, `${node.name}: body field ${key} is documented`)
      }
    }
  })
}

t.test('the callback workflow passes its resume URL and waits for a POST to it', async (t) => {
  const workflow = readWorkflow('download-and-resume-on-callback.json')
  const download = workflow.nodes.find((node) => node.name === 'Download model')!
  t.match(JSON.parse((download.parameters.jsonBody as string).replace(/^=/, '')), { callback_url: '{{ $execution.resumeUrl }}' })
  const wait = workflow.nodes.find((node) => node.type === 'n8n-nodes-base.wait')!
  t.match(wait.parameters, { resume: 'webhook', httpMethod: 'POST' }, 'resumes on a POST, the method callbacks use')
  t.same(workflow.connections[download.name]?.main.flat().map((target) => target.node), [wait.name], 'straight from the download to the wait')
})

t.test('the callback workflow plans first: a model already in the cache sends no callback that would beat the Wait node', async (t) => {
  const workflow = readWorkflow('download-and-resume-on-callback.json')
  const [first] = workflow.connections.Start?.main.flat() ?? []
  const plan = workflow.nodes.find((node) => node.name === first?.node)!
  const planBody = JSON.parse(plan.parameters.jsonBody as string) as Record<string, unknown>
  t.equal(planBody.auto, false, 'the first call downloads nothing')
  t.notOk('callback_url' in planBody, 'and asks for no callback')
  const download = workflow.nodes.find((node) => node.name === 'Download model')!
  const downloadBody = JSON.parse((download.parameters.jsonBody as string).replace(/^=/, '')) as Record<string, unknown>
  const { auto: _auto, ...planned } = planBody
  const { callback_url: _callback, ...downloaded } = downloadBody
  t.same(planned, downloaded, 'the plan is of the very download')
  const [check] = workflow.connections[plan.name]?.main.flat() ?? []
  const cached = workflow.nodes.find((node) => node.name === check?.node)!
  t.equal(cached.type, 'n8n-nodes-base.if')
  t.match(cached.parameters.conditions.conditions, [{ leftValue: '={{ $json.bytes_missing }}', rightValue: 0, operator: { type: 'number', operation: 'equals' } }])
  const [whenCached, whenMissing] = workflow.connections[cached.name]?.main ?? []
  t.same(whenCached?.map((target) => target.node), ['Model ready'], 'nothing missing: done, no download, no wait')
  t.same(whenMissing?.map((target) => target.node), [download.name], 'something missing: the download with its callback')
})

t.test('the callback workflow says how a download ended: cancelled, failed, or no callback in time', async (t) => {
  const workflow = readWorkflow('download-and-resume-on-callback.json')
  const complete = workflow.nodes.find((node) => node.name === 'Complete?')!
  const failed = workflow.nodes.find((node) => node.name === 'Download failed')!
  const condition = (complete.parameters.conditions.conditions as Array<{ leftValue: string }>)[0]!.leftValue
  const message = (json: unknown): unknown => evaluate(failed.parameters.errorMessage as string, json)
  const cancelled = { headers: {}, body: { job_id: 'j1', status: 'cancelled', error: null } }
  t.equal(evaluate(condition, cancelled), 'cancelled', 'a cancelled job is not complete')
  t.equal(message(cancelled), 'Download cancelled')
  const error = { body: { status: 'error', error: { code: 'MD_HUB_UNREACHABLE', message: 'The Hub could not be reached', hint: 'Check HF_ENDPOINT' } } }
  t.equal(message(error), 'Download error: The Hub could not be reached — Check HF_ENDPOINT')
  t.equal(message({ body: { status: 'error', error: { code: 'X', message: 'Disk full', hint: null } } }), 'Download error: Disk full')
  // A Wait node that runs out resumes with its input: the download's 202 answer, without `body`.
  const timedOut = { job_id: 'j1', status: 'queued' }
  t.equal(evaluate(condition, timedOut), 'timed out')
  t.equal(message(timedOut), 'Download timed out: no callback within 12 hours')
  t.equal(evaluate(condition, { body: { status: 'complete' } }), 'complete')
})

t.test('the delete workflow deletes the model it listed, not one written into the delete', async (t) => {
  const workflow = readWorkflow('delete-model.json')
  const remove = workflow.nodes.find((node) => node.parameters.method === 'DELETE')!
  const modelId = (remove.parameters.queryParameters.parameters as Array<{ name: string, value: string }>).find((query) => query.name === 'model_id')
  t.equal(modelId?.value, '={{ $json.model_id }}', 'the model id of the item that reaches it')
  // Start → list → one item per cached model → the filter → delete: each item is one listed model.
  const order: string[] = []
  for (let name: string | undefined = 'Start'; name !== undefined; name = workflow.connections[name]?.main.flat()[0]?.node) order.push(name)
  const types = order.map((name) => workflow.nodes.find((node) => node.name === name)!.type)
  t.same(types, ['n8n-nodes-base.manualTrigger', 'n8n-nodes-base.httpRequest', 'n8n-nodes-base.splitOut', 'n8n-nodes-base.filter', 'n8n-nodes-base.httpRequest'])
  t.equal(workflow.nodes.find((node) => node.type === 'n8n-nodes-base.splitOut')?.parameters.fieldToSplitOut, 'models', 'the items are GET /api/models\' models')
})

t.test('compose gives n8n what the examples read, and the README says what to set outside compose', async (t) => {
  const compose = parse(readFileSync(repoFile('docker-compose.yml'), 'utf8')) as { services: Record<string, { image?: string, environment?: Record<string, string> }> }
  const n8n = compose.services.n8n!
  t.equal(n8n.environment?.MODELDEPOT_URL, 'http://modeldepot:8787')
  t.equal(n8n.environment?.N8N_BLOCK_ENV_ACCESS_IN_NODE, 'false', 'n8n 2 blocks $env otherwise')
  t.equal(n8n.environment?.N8N_WEBHOOK_URL, 'http://n8n:5678/', 'resume URLs name the n8n service')
  t.notOk('WEBHOOK_URL' in (n8n.environment ?? {}), 'not the name n8n 2 deprecates')
  // The n8n test installs this version (.ci/run) and checks it runs it.
  const pinned = /^N8N_VERSION=\$\{N8N_VERSION:-(2\.\d+\.\d+)\}$/m.exec(readFileSync(repoFile('.ci/run'), 'utf8'))?.[1]
  t.equal(n8n.image, `docker.n8n.io/n8nio/n8n:${pinned ?? 'not pinned in .ci/run'}`, 'compose runs the n8n version the tests run')
  const readme = readFileSync(repoFile('README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('### From n8n'), readme.indexOf('## Providers'))
  t.ok(section.includes(`named exactly \`${CREDENTIAL}\``), 'the README names the credential the workflows reference')
  t.ok(section.includes('MODELDEPOT_URL=http://localhost:8787 N8N_BLOCK_ENV_ACCESS_IN_NODE=false'), 'and what to set outside compose')
  for (const route of ['/api/download-model', '/api/download-progress', '/api/downloads', '/api/models', '/api/delete-model', '/api/default-model', '/api/system-status']) {
    t.ok(section.includes(`\`…${route}`), `the n8n table lists ${route}`)
  }
})
