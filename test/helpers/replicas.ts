import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { KEY } from './app.js'
import { listeningPort, startServer, type ServerProcess } from './server-process.js'

export interface Replica {
  name: string
  port: number
  server: ServerProcess
  /** Calls the replica with the API key, JSON in and out; answers the status, headers and parsed body. */
  call: (path: string, init?: RequestInit) => Promise<{ status: number, headers: Headers, body: any }>
  /** kill -9: the process dies where it is, with no shutdown. */
  kill: () => Promise<void>
}

export interface ReplicaSet {
  replicas: Replica[]
  /** The hub cache every replica mounts. */
  cacheDir: string
  /** Starts one more replica on the same cache and Redis (e.g. to replace a killed one). */
  add: (name: string, env?: Record<string, string>) => Promise<Replica>
}

/**
 * Real server processes (the built entry point, as `npm start` runs it) sharing one cache directory
 * and whatever the env names (REDIS_URL): the topology "N replicas, one Redis, one volume". Each
 * listens on its own free loopback port and is killed at the end of the test.
 */
export async function startReplicas (t: Test, names: string[], env: Record<string, string>): Promise<ReplicaSet> {
  const home = mkdtempSync(join(tmpdir(), 'modeldepot-replicas-'))
  t.teardown(() => rmSync(home, { recursive: true, force: true }))
  const cacheDir = join(home, 'hub')
  const add = async (name: string, extra: Record<string, string> = {}): Promise<Replica> => {
    // One STATE_DIR for the set, removed with `home` once every replica is killed (not by the first
    // replica's teardown while the others still write to it).
    const server = startServer(t, { API_KEY: KEY, HF_HUB_CACHE: cacheDir, STATE_DIR: join(home, 'state'), LOG_LEVEL: 'info', RATE_LIMIT_PER_MINUTE: '100000', ...env, ...extra }, home)
    const port = await listeningPort(server)
    const call = async (path: string, init: RequestInit = {}): Promise<{ status: number, headers: Headers, body: any }> => {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${KEY}`, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }), ...init.headers }
      })
      const text = await res.text()
      return { status: res.status, headers: res.headers, body: text === '' ? undefined : JSON.parse(text) }
    }
    const kill = async (): Promise<void> => {
      if (server.child.exitCode !== null || server.child.signalCode !== null) return
      server.child.kill('SIGKILL')
      await server.exited
    }
    return { name, port, server, call, kill }
  }
  const started: Replica[] = []
  // What the replicas said, when something went wrong: the only way to see inside several processes.
  t.teardown(() => {
    if (t.passing()) return
    for (const replica of started) t.comment(`--- replica ${replica.name}\n${replica.server.stdout().slice(-6000)}${replica.server.stderr()}`)
  })
  const addLogged = async (name: string, extra?: Record<string, string>): Promise<Replica> => {
    const replica = await add(name, extra)
    started.push(replica)
    return replica
  }
  const replicas = await Promise.all(names.map(async (name) => addLogged(name)))
  return { replicas, cacheDir, add: addLogged }
}
