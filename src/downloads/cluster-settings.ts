import type { Redis } from 'ioredis'
import { ConfigError, type RedisSettings } from '../config.js'
import type { Logger } from './job-run.js'

/** How long a replica waits at its start for Redis to answer before it starts without the check. */
const CONNECT_WAIT_MS = 3000

/**
 * A setting every replica on one Redis must share (MAX_CONCURRENT_DOWNLOADS counts for the whole
 * cluster): the first replica to start writes its value, with a TTL the live replicas renew; a
 * replica that finds another value in use refuses to start. Once every replica is stopped the value
 * runs out, so the cluster can be restarted with a new one. Answers the function that stops renewing.
 */
export async function agreeOnClusterSetting (redis: Redis, settings: RedisSettings, name: string, value: number, log: Logger): Promise<() => void> {
  const key = `${settings.keyPrefix}cluster:${name}`
  const ttlMs = settings.jobLeaseMs * 3
  const mine = String(value)
  const check = async (): Promise<void> => {
    const set = await redis.set(key, mine, 'PX', ttlMs, 'NX')
    if (set === 'OK') return
    const other = await redis.get(key)
    if (other !== null && other !== mine) {
      throw new ConfigError(`${name} is ${mine} here but ${other} on the replicas already running with this Redis and REDIS_KEY_PREFIX; set the same ${name} on every replica`)
    }
  }
  if (redis.status !== 'ready') await readyWithin(redis, CONNECT_WAIT_MS)
  if (redis.status === 'ready') {
    await check()
  } else {
    log.warn({ setting: name }, 'Redis does not answer yet: this replica starts, and checks that the cluster shares its settings once Redis answers')
    redis.once('ready', () => {
      check().catch((err: unknown) => log.warn({ reason: (err as Error).message }, 'this replica does not share the cluster\'s settings'))
    })
  }
  const renew = setInterval(() => {
    void (async () => {
      if (((await redis.get(key)) ?? mine) === mine) await redis.set(key, mine, 'PX', ttlMs)
    })().catch(() => {})
  }, Math.floor(ttlMs / 3))
  renew.unref()
  return () => clearInterval(renew)
}

/** Resolves once the client is ready or `ms` have passed, whichever is first; a failed attempt (an 'error') is no reason to stop waiting. */
async function readyWithin (redis: Redis, ms: number): Promise<void> {
  await new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer)
      redis.off('ready', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    redis.on('ready', done)
  })
}
