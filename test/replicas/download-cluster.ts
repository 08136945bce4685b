import { randomBytes } from 'node:crypto'
import type { Test } from 'tap'
import { FakeHub, type FakeFile } from '../fakes/fake-hub.js'
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js'
import { startReplicas, type Replica } from '../helpers/replicas.js'

// Three real server processes, one real Redis, one cache directory: the topology of "Running several
// replicas" in the README. What a user sees must not depend on which replica answers.

export const WEIGHTS = 'model.safetensors'
export const LEASE_MS = 4000
export const sleep = async (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

export function model (bytes: number): { files: FakeFile[], weights: Buffer } {
  const weights = randomBytes(bytes)
  return { weights, files: [{ path: 'config.json', content: '{"model_type":"llama"}' }, { path: WEIGHTS, content: weights, lfs: true }] }
}

export interface Cluster {
  hub: FakeHub
  redis: RedisServer
  replicas: Replica[]
  cacheDir: string
  add: (name: string, env?: Record<string, string>) => Promise<Replica>
}

/** A fake Hub, a real Redis, and replicas a, b and c on one cache, with a short lease and one download at a time. */
export async function cluster (t: Test, env: Record<string, string> = {}): Promise<Cluster> {
  const redis = await startRedisServer(t)
  const hub = await FakeHub.start()
  t.teardown(() => hub.close())
  const set = await startReplicas(t, ['a', 'b', 'c'], {
    REDIS_URL: redis.url,
    HF_ENDPOINT: hub.url,
    JOB_LEASE_MS: String(LEASE_MS),
    MAX_CONCURRENT_DOWNLOADS: '1',
    DOWNLOAD_RETRY_BASE_MS: '10',
    DOWNLOAD_RETRY_MAX_MS: '50',
    DOWNLOAD_READ_TIMEOUT_MS: '2000',
    ...env
  })
  return { hub, redis, replicas: set.replicas, cacheDir: set.cacheDir, add: async (name, extra) => set.add(name, extra) }
}

/** Polls until `check` answers something other than undefined, or fails the test after `ms`. */
export async function until<T> (what: string, ms: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(100)
  }
}

export const post = (replica: Replica, body: Record<string, unknown>): ReturnType<Replica['call']> =>
  replica.call('/api/download-model', { method: 'POST', body: JSON.stringify(body) })

/** The replica whose log says it runs the job. */
export const runnerOf = (replicas: Replica[], jobId: string): Replica | undefined =>
  replicas.find((replica) => replica.server.stdout().split('\n').some((line) => line.includes('"download running here"') && line.includes(jobId)))
