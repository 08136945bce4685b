import fc from 'fast-check'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import t from 'tap'
import { auth, KEY, OTHER_KEY } from '../helpers/app.js'
import { TOKENS } from '../helpers/providers.js'
import { treeChanges } from '../helpers/tree-snapshot.js'
import { contractProblems } from './answer-contract.js'
import { fuzzSandbox } from './fuzz-sandbox.js'
import { describeRequest, oddRequest, toInject } from './odd-request.js'
import { documentedOperations, endlessStreams } from './route-catalogue.js'

// Property: whatever a client sends to whichever route, the answer keeps the contract (no 5xx, every
// error in the ErrorResponse shape with a documented status, no secret) and nothing outside the
// cache directory is created, changed or deleted. FUZZ_SEED and FUZZ_RUNS replay or widen a run.

const seed = Number(process.env.FUZZ_SEED ?? 20261122)
const numRuns = Number(process.env.FUZZ_RUNS ?? 400)
const SECRETS = [KEY, OTHER_KEY, ...Object.values(TOKENS)]

const jobIdOf = (res: LightMyRequestResponse): string | undefined => {
  if (res.statusCode >= 300 || !String(res.headers['content-type']).startsWith('application/json')) return undefined
  const body = res.json() as { job_id?: unknown, jobs?: Array<{ job_id?: unknown }> }
  const id = body.job_id ?? body.jobs?.[0]?.job_id
  return typeof id === 'string' ? id : undefined
}

// A run that rotated a provider's token to a fuzzed one puts the real one back, so the next run
// starts from a working node and a 5xx still means a fault of ours, not of the upstream.
async function restoreTokens (app: FastifyInstance): Promise<void> {
  const tokens: Record<string, string> = { huggingface: TOKENS.hf, openrouter: TOKENS.openrouter, openai: TOKENS.openai }
  for (const [name, token] of Object.entries(tokens)) {
    const res = await app.inject({ method: 'PUT', url: `/api/providers/${name}/token?validate=false`, headers: auth(), payload: { token } })
    if (res.statusCode !== 200) throw new Error(`could not restore the ${name} token: ${res.body}`)
  }
}

/** fast-check's seed and path line, then what broke (the counterexample itself can be megabytes). */
function report (err: Error): string {
  const [failed, where] = err.message.split('\n')
  return `${failed ?? ''} ${where ?? ''}\n${(err.cause as Error | undefined)?.message ?? err.message.slice(0, 2000)}`
}

t.test('every documented route, fed odd values everywhere, keeps the contract and touches nothing outside the cache', async (t) => {
  const sandbox = await fuzzSandbox(t)
  const { app, rawLogs, logs } = sandbox
  // What the server logged about a failed request: the cause of a 500 is only there.
  const loggedErrors = (requestId: string): string => logs()
    .filter((line) => line.reqId === requestId && Number(line.level) >= 50)
    .map((line) => `\nlogged: ${JSON.stringify(line.err ?? line.msg).slice(0, 1500)}`).join('')
  const operations = await documentedOperations(app)
  const endless = await endlessStreams(app)
  t.ok(operations.some((operation) => operation.path === '/api/download-model') && operations.length >= 20, `${operations.length} operations, read from the OpenAPI document`)
  const before = sandbox.snapshot()
  t.ok(before.size > 10, 'the canaries are in place')

  let lastJobId: string | undefined
  const statuses = new Map<number, number>()
  const byOperation = new Map<string, Set<number>>()
  const property = fc.asyncProperty(fc.array(oddRequest(operations), { minLength: 1, maxLength: 4 }), async (sequence) => {
    let rotated = false
    try {
      for (const request of sequence) {
        const options = toInject(request, lastJobId)
        // A job id of `.` makes a client (and the test's injector) resolve the URL of one job's stream
        // to the stream of every job, which never ends: the one request the fuzz cannot wait for.
        if (endless.has(new URL(String(options.url), 'http://fuzz').pathname)) continue
        const res = await app.inject(options)
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
        const seen = `${request.method} ${request.operation.path}`
        byOperation.set(seen, new Set([...byOperation.get(seen) ?? [], res.statusCode]))
        const operation = request.method === request.operation.method ? request.operation : undefined
        const problems = contractProblems(res, { operation, secrets: SECRETS, tokenRotated: rotated })
        if (problems.length > 0) {
          throw new Error([
            describeRequest(options),
            `→ ${res.statusCode} ${res.body.slice(0, 500)}`,
            `${problems.join('\n')}${loggedErrors(String(res.headers['x-request-id']))}`
          ].join('\n'))
        }
        lastJobId = jobIdOf(res) ?? lastJobId
        if (request.operation.path.endsWith('/token') && res.statusCode === 200) rotated = true
      }
      const changes = treeChanges(before, sandbox.snapshot())
      if (changes.length > 0) throw new Error(`files outside the cache changed:\n${changes.join('\n')}`)
    } finally {
      if (rotated) await restoreTokens(app)
      // An odd but valid cap (64 KiB/s, say) would slow every later run's downloads: none again.
      await app.inject({ method: 'PATCH', url: '/api/limits', headers: auth(), payload: { max_bytes_per_s: null } })
    }
  })

  t.comment(`fuzzing with FUZZ_SEED=${seed} FUZZ_RUNS=${numRuns}`)
  const failure = await fc.assert(property, { seed, numRuns }).then(() => undefined, report)
  t.equal(failure, undefined, 'every answer kept the contract', { diagnostic: true, replay: `FUZZ_SEED=${seed} FUZZ_RUNS=${numRuns}` })
  t.comment(`answers by status: ${JSON.stringify(Object.fromEntries([...statuses].sort(([a], [b]) => a - b)))}`)
  t.comment(`statuses by operation:\n${[...byOperation].map(([operation, seen]) => `${operation}: ${[...seen].sort().join(' ')}`).sort().join('\n')}`)
  const reached = operations.filter((operation) => [...byOperation.get(`${operation.method} ${operation.path}`) ?? []].some((status) => status < 300))
  t.ok(reached.length >= operations.length * 0.75, `${reached.length} of ${operations.length} operations got past validation and succeeded at least once`)
  for (const route of ['POST /api/download-model', 'DELETE /api/delete-model', 'PUT /api/providers/{name}/token']) {
    t.ok([...byOperation.get(route) ?? []].some((status) => status < 300), `${route} did its work at least once`)
  }
  t.ok((statuses.get(400) ?? 0) > 0 && (statuses.get(404) ?? 0) > 0, 'and many requests were refused')
  const text = rawLogs()
  t.same(SECRETS.filter((secret) => text.includes(secret)), [], 'no key or token reached the logs')
})
