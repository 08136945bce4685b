import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import type { Test } from 'tap'
import { KEY, withTestStateDir } from './app.js'
import { repoFile } from './repo-root.js'

// The built entry point, exactly what `npm start` and the Docker image run (`npm test` builds first).
export const SERVER = repoFile('dist/src/server.js')

export interface ServerProcess {
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  exited: Promise<number | null>
}

/** Starts the real server as a child process, killed after the test if still running. */
export function startServer (t: Test, env: Record<string, string>, cwd: string, nodeArgs: string[] = []): ServerProcess {
  const child = spawn(process.execPath, [...nodeArgs, SERVER], { cwd, env: { PATH: process.env.PATH ?? '', HOME: cwd, HOST: '127.0.0.1', PORT: '0', ...withTestStateDir(t, env) } })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const exited = once(child, 'exit').then(([code]) => code as number | null)
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  return { child, stdout: () => stdout, stderr: () => stderr, exited }
}

/** The port the server listens on, once it says so. */
export async function listeningPort (server: ServerProcess): Promise<number> {
  for (;;) {
    const match = /listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(server.stdout())
    if (match !== null) return Number(match[1])
    if (server.child.exitCode !== null) throw new Error(`server exited: ${server.stderr()}${server.stdout()}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/** A JSON call to the real server on `port`, with the test key; answers the parsed body. */
export async function callServer (port: number, path: string, init: RequestInit = {}): Promise<any> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { ...init, headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', ...init.headers } })
  return res.json()
}
