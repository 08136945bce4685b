import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { freePort } from '../helpers/free-port.js'

// A real n8n 2, installed by .ci/run into N8N_DIR (npm's n8n package, on Node 24), started on a free
// loopback port with a folder of its own, and driven through the REST API its editor uses.

export const N8N_DIR = process.env.N8N_DIR ?? join(homedir(), '.cache', 'modeldepot-n8n')
const N8N_PACKAGE = join(N8N_DIR, 'node_modules', 'n8n')

/** The n8n version installed in N8N_DIR. */
export function installedN8nVersion (): string {
  const manifest = join(N8N_PACKAGE, 'package.json')
  if (!existsSync(manifest)) throw new Error(`no n8n in ${N8N_DIR}: .ci/run installs it (see its install_n8n)`)
  return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version
}

export interface Execution {
  id: string
  status: string
  /** The nodes that ran, in the order n8n lists them in the run data. */
  ranNodes: string[]
  /** The first output item of each node's last run. */
  output: (node: string) => Record<string, any> | undefined
  error: string | undefined
}

export interface N8n {
  url: string
  /** n8n's log so far, for a failure's message. */
  log: () => string
  rest: <T = any>(method: string, path: string, body?: unknown) => Promise<T>
  /** Runs a workflow from its trigger as the editor's "Execute workflow" button does; answers the execution id. */
  run: (workflowId: string, trigger: string) => Promise<string>
  /** Polls the execution until it ends (success, error, crashed, canceled), or throws after `timeoutMs`. */
  finished: (executionId: string, timeoutMs?: number) => Promise<Execution>
}

const ENDED = new Set(['success', 'error', 'crashed', 'canceled'])

/**
 * Starts n8n on `port` (a free one when absent) with `env` added (MODELDEPOT_URL, …), sets up its
 * owner and logs in; stopped after the test.
 */
export async function startN8n (t: Test, env: Record<string, string>, port?: number): Promise<N8n> {
  const folder = mkdtempSync(join(tmpdir(), 'modeldepot-n8n-'))
  port ??= await freePort()
  const url = `http://127.0.0.1:${port}`
  const child = spawn(process.execPath, [join(N8N_PACKAGE, 'bin', 'n8n'), 'start'], {
    cwd: folder,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: folder,
      N8N_USER_FOLDER: folder,
      N8N_PORT: String(port),
      N8N_LISTEN_ADDRESS: '127.0.0.1',
      N8N_HOST: '127.0.0.1',
      N8N_PROTOCOL: 'http',
      N8N_WEBHOOK_URL: `${url}/`,
      N8N_EDITOR_BASE_URL: `${url}/`,
      N8N_SECURE_COOKIE: 'false',
      // Nothing leaves the machine: no telemetry, version checks, templates, banners or community nodes.
      N8N_DIAGNOSTICS_ENABLED: 'false',
      N8N_VERSION_NOTIFICATIONS_ENABLED: 'false',
      N8N_PERSONALIZATION_ENABLED: 'false',
      N8N_TEMPLATES_ENABLED: 'false',
      N8N_HIRING_BANNER_ENABLED: 'false',
      N8N_COMMUNITY_PACKAGES_ENABLED: 'false',
      N8N_AI_ENABLED: 'false',
      N8N_LICENSE_AUTO_RENEW_ENABLED: 'false',
      N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS: 'false',
      EXTERNAL_FRONTEND_HOOKS_URLS: '',
      N8N_LOG_LEVEL: 'info',
      ...env
    }
  })
  let log = ''
  child.stdout.on('data', (chunk: Buffer) => { log += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { log += chunk.toString() })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await Promise.race([exited, sleep(20_000)])
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    }
    rmSync(folder, { recursive: true, force: true })
  })

  // Ready once the database is migrated and the REST API answers (a minute or more on a loaded machine).
  const deadline = Date.now() + 240_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`n8n exited (${child.exitCode}):\n${log}`)
    const ready = await fetch(`${url}/healthz/readiness`).then((res) => res.ok, () => false)
    if (ready) break
    if (Date.now() > deadline) throw new Error(`n8n did not become ready:\n${log}`)
    await sleep(500)
  }

  let cookie = ''
  const rest = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${url}/rest${path}`, {
      method,
      // The auth cookie is bound to the browser-id it was issued to.
      headers: { 'content-type': 'application/json', 'browser-id': 'modeldepot-n8n-test', cookie },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    })
    const setCookie = res.headers.getSetCookie().find((value) => value.startsWith('n8n-auth='))
    if (setCookie !== undefined) cookie = setCookie.split(';')[0]!
    const text = await res.text()
    if (!res.ok) throw new Error(`n8n answered ${res.status} to ${method} /rest${path}: ${text}`)
    return (JSON.parse(text) as { data: T }).data
  }
  await rest('POST', '/owner/setup', { email: 'owner@example.test', firstName: 'Model', lastName: 'Depot', password: 'Modeldepot-test-1' })

  // The run data comes as `flatted` text; n8n's own copy reads it.
  const flatted = createRequire(join(N8N_PACKAGE, 'package.json'))('flatted') as { parse: (text: string) => any }

  const run = async (workflowId: string, trigger: string): Promise<string> => {
    const started = await rest<{ executionId?: string }>('POST', `/workflows/${workflowId}/run`, { triggerToStartFrom: { name: trigger } })
    if (started.executionId === undefined) throw new Error(`n8n started no execution: ${JSON.stringify(started)}`)
    return started.executionId
  }

  const finished = async (executionId: string, timeoutMs = 120_000): Promise<Execution> => {
    const until = Date.now() + timeoutMs
    for (;;) {
      const execution = await rest<{ id: string, status: string, data: string }>('GET', `/executions/${executionId}`)
      if (ENDED.has(execution.status)) {
        const data = flatted.parse(execution.data)
        const runData = (data?.resultData?.runData ?? {}) as Record<string, Array<{ data?: { main?: Array<Array<{ json: Record<string, any> }> | null> } }>>
        const resultError = data?.resultData?.error as { message?: string, description?: string } | undefined
        return {
          id: execution.id,
          status: execution.status,
          ranNodes: Object.keys(runData),
          output: (node) => runData[node]?.at(-1)?.data?.main?.find((items) => (items?.length ?? 0) > 0)?.[0]?.json,
          error: resultError === undefined ? undefined : `${resultError.message ?? ''} ${resultError.description ?? ''}`.trim()
        }
      }
      if (Date.now() > until) throw new Error(`execution ${executionId} still ${execution.status} after ${timeoutMs} ms`)
      await sleep(250)
    }
  }

  return { url, log: () => log, rest, run, finished }
}
