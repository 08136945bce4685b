import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'

export const KEY = 'test-key-alpha-0123456789'
export const OTHER_KEY = 'test-key-bravo-9876543210'
export const auth = (key: string = KEY): Record<string, string> => ({ authorization: `Bearer ${key}` })

export interface TestApp {
  app: FastifyInstance
  /** Every log line the app wrote so far, parsed. */
  logs: () => Array<Record<string, unknown>>
  /** The raw log text, to search for what must never be there. */
  rawLogs: () => string
}

/**
 * The STATE_DIR a test gives the app of a cache: beside it and named after it, so two apps on one
 * cache (a restart) share it and two tests never do. (The default beside a cache set alone would be
 * one `modeldepot` folder in the temporary directory, shared by every test.)
 */
export const testStateDir = (cacheDir: string): string => `${cacheDir}.state`

/** The env with STATE_DIR set for its cache, unless it sets STATE_DIR or HF_HOME itself; the folder goes after the test. */
export function withTestStateDir (t: Test, env: Record<string, string>): Record<string, string> {
  const cache = env.HF_HUB_CACHE
  if (env.STATE_DIR !== undefined || env.HF_HOME !== undefined || cache === undefined || cache === '') return env
  const stateDir = testStateDir(cache)
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }))
  return { ...env, STATE_DIR: stateDir }
}

/** Builds the app as a user would configure it, with its own empty cache directory; closed after the test. */
export async function buildTestApp (t: Test, env: Record<string, string> = {}, options: { now?: () => number } = {}): Promise<TestApp> {
  const cache = mkdtempSync(join(tmpdir(), 'modeldepot-test-'))
  t.teardown(() => rmSync(cache, { recursive: true, force: true }))
  const config = loadConfig(withTestStateDir(t, { API_KEY: `${KEY},${OTHER_KEY}`, HF_HUB_CACHE: cache, HOME: cache, LOG_LEVEL: 'info', ...env }))
  const chunks: string[] = []
  const logDestination = new Writable({
    write (chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString())
      callback()
    }
  })
  const app = await buildApp(config, { logDestination, ...options })
  t.teardown(() => app.close())
  const rawLogs = (): string => chunks.join('')
  const logs = (): Array<Record<string, unknown>> =>
    rawLogs().split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>)
  return { app, logs, rawLogs }
}
