import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, openSync, readFileSync, statSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'

// A Node server started the way a user starts one (`node file.js`, settings in the environment,
// PORT=0), its log going to a file: reading the log through a pipe would cost the harness CPU.

const LISTENING = /listening at (http:\/\/127\.0\.0\.1:\d+)/
const live = new Set<ChildProcess>()

export interface NodeServer {
  url: string
  pid: number
  /** Peak resident memory so far (VmHWM), undefined where /proc is not there. */
  peakRssBytes: () => number | undefined
  /** SIGTERM, as a supervisor stops it; SIGKILL after 10 s. */
  stop: () => Promise<void>
  /** kill -9: no shutdown code runs. */
  kill: () => Promise<void>
}

export async function startNodeServer (
  script: string,
  env: Record<string, string>,
  cwd: string,
  logFile: string,
  nodeArgs: string[] = []
): Promise<NodeServer> {
  // A restarted server appends to the same log: only what this one writes counts.
  const logStart = statSync(logFile, { throwIfNoEntry: false })?.size ?? 0
  const log = openSync(logFile, 'a')
  const child = spawn(process.execPath, [...nodeArgs, script], {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: cwd, HOST: '127.0.0.1', PORT: '0', ...env },
    stdio: ['ignore', log, log]
  })
  closeSync(log)
  live.add(child)
  const exited = once(child, 'exit').finally(() => live.delete(child))
  const end = async (signal: NodeJS.Signals): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    child.kill(signal)
    await exited
    clearTimeout(timer)
  }
  for (let waited = 0; ; waited += 20) {
    const url = LISTENING.exec(readFileSync(logFile).subarray(logStart).toString())?.[1]
    if (url !== undefined) {
      return { url, pid: child.pid!, peakRssBytes: () => peakRss(child.pid!), stop: async () => end('SIGTERM'), kill: async () => end('SIGKILL') }
    }
    if (child.exitCode !== null || waited > 30_000) {
      await end('SIGKILL')
      throw new Error(`${script} did not start; its log:\n${readFileSync(logFile, 'utf8').slice(-2000)}`)
    }
    await sleep(20)
  }
}

/** VmHWM of a live process, in bytes. */
export function peakRss (pid: number): number | undefined {
  return statusBytes(pid, 'VmHWM')
}

/** VmRSS of a live process (resident now), in bytes; read from outside, so a busy server cannot delay it. */
export function currentRss (pid: number): number | undefined {
  return statusBytes(pid, 'VmRSS')
}

function statusBytes (pid: number, field: 'VmHWM' | 'VmRSS'): number | undefined {
  try {
    const kb = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
    return kb === undefined ? undefined : Number(kb) * 1024
  } catch {
    return undefined
  }
}

/** Kills whatever is still running, so an interrupted run leaves no server behind. */
export function killAll (): void {
  for (const child of live) child.kill('SIGKILL')
}
