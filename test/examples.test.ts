import { readdirSync, readFileSync } from 'node:fs'
import t from 'tap'
import { pathToFileURL } from 'node:url'
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
      const url = new URL(node.parameters.url as string)
      t.equal(url.origin, 'http://localhost:8787', `${node.name} calls a local modeldepot`)
      const operation = openapi.paths[url.pathname]?.[(node.parameters.method as string).toLowerCase()]
      t.ok(operation, `${node.name}: ${node.parameters.method as string} ${url.pathname} is in the contract`)
      t.same(node.credentials, { httpHeaderAuth: { id: 'REPLACE_WITH_YOUR_CREDENTIAL_ID', name: 'modeldepot API key' } }, `${node.name} takes the key from a header credential`)
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
  const workflow = JSON.parse(readFileSync(new URL('download-and-resume-on-callback.json', dir), 'utf8')) as Workflow
  const download = workflow.nodes.find((node) => node.parameters.url === 'http://localhost:8787/api/download-model')!
  t.match(JSON.parse((download.parameters.jsonBody as string).replace(/^=/, '')), { callback_url: '{{ $execution.resumeUrl }}' })
  const wait = workflow.nodes.find((node) => node.type === 'n8n-nodes-base.wait')!
  t.match(wait.parameters, { resume: 'webhook', httpMethod: 'POST' }, 'resumes on a POST, the method callbacks use')
  t.same(workflow.connections[download.name]?.main.flat().map((target) => target.node), [wait.name], 'straight from the download to the wait')
})
