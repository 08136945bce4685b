import { watch } from 'node:fs'
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'

const PERIOD_MS = 100

/** Asks until the answer has the wanted status, at most `periods` check periods (the machine may be loaded). */
async function statusWithin (app: FastifyInstance, url: string, wanted: number, periods = 30): Promise<{ statusCode: number, body: Record<string, unknown> }> {
  let res = await app.inject({ url })
  for (let i = 0; i < periods && res.statusCode !== wanted; i++) {
    await sleep(PERIOD_MS)
    res = await app.inject({ url })
  }
  return { statusCode: res.statusCode, body: res.json() }
}

t.test('a cache directory that stops being writable is reported at the next check, and its recovery too', async (t) => {
  const dir = t.testdir({})
  const cache = join(dir, 'hub')
  const { app } = await buildTestApp(t, { HF_HUB_CACHE: cache, HEALTH_CHECK_INTERVAL_MS: String(PERIOD_MS) })
  t.equal((await app.inject({ url: '/health' })).statusCode, 200, 'writable at start')

  // As root a mode of 0555 does not stop writes, so the directory is replaced by a file: nothing can be created in it.
  rmSync(cache, { recursive: true })
  writeFileSync(cache, 'not a directory')
  for (const url of ['/health', '/health/ready']) {
    const res = await statusWithin(app, url, 503)
    t.equal(res.statusCode, 503, `${url}: reported`)
    t.match(res.body, { status: 'unavailable', reason: /model cache directory cannot be created or written \(ENOTDIR\)/ }, `${url}: with the reason`)
  }
  t.equal((await app.inject({ url: '/health/live' })).statusCode, 200, 'still alive')

  rmSync(cache)
  mkdirSync(cache)
  t.equal((await statusWithin(app, '/health', 200)).statusCode, 200, 'healthy again at a later check')
})

t.test('between checks /health answers from the last one: a change shows only at the next check', async (t) => {
  const dir = t.testdir({})
  const cache = join(dir, 'hub')
  // A period far longer than the test: only the start-up check ever runs.
  const { app } = await buildTestApp(t, { HF_HUB_CACHE: cache, HEALTH_CHECK_INTERVAL_MS: '3600000' })
  rmSync(cache, { recursive: true })
  writeFileSync(cache, 'not a directory')
  t.equal((await app.inject({ url: '/health' })).statusCode, 200, 'the last check said writable')
})

t.test('checking writes nothing into the hub cache root, not even for a moment', async (t) => {
  const cache = t.testdir({})
  const seen: string[] = []
  const watcher = watch(cache, (_event, name) => { seen.push(String(name)) })
  t.teardown(() => watcher.close())
  const { app } = await buildTestApp(t, { HF_HUB_CACHE: cache, HEALTH_CHECK_INTERVAL_MS: '10' })
  for (let i = 0; i < 20; i++) {
    t.equal((await app.inject({ url: i % 2 === 0 ? '/health' : '/health/ready' })).statusCode, 200)
    await sleep(10)
  }
  t.same(seen, [], 'no entry was created or removed')
  t.same(readdirSync(cache), [], 'the cache root is as it was')
})
