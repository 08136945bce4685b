import { spawnSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { HubProcess } from './hub-control.js'
import type { PythonPeer } from './python-hub.js'
import type { BenchSettings } from './settings.js'

/** What every measurement gets: the fake Hub, a scratch directory, the settings, a progress line. */
export interface BenchContext {
  hub: HubProcess
  workDir: string
  settings: BenchSettings
  /** Progress for the person waiting, on stderr; stdout carries only the report. */
  note: (message: string) => void
  /** Extra node arguments for the servers that download in (1) and (2), such as --cpu-prof. */
  serverNodeArgs: string[]
  /** Python huggingface_hub, a peer in (1) and (1b) where the bench found one, and what the report says of it. */
  python: PythonPeer
  /** BENCH_BASELINE_SERVER: another build's dist/src/server.js, a contender in (1) and (1b) beside this one. */
  baselineServer?: string | undefined
}

let runs = 0

/**
 * Runs `body` in a new directory under the work directory and deletes it afterwards, then flushes
 * the page cache's dirty pages so the next run does not pay for this one's writes.
 */
export async function inFreshDir<T> (ctx: Pick<BenchContext, 'workDir' | 'note'>, name: string, body: (dir: string) => Promise<T>): Promise<T> {
  const dir = join(ctx.workDir, `${String(++runs).padStart(3, '0')}-${name}`)
  mkdirSync(dir, { recursive: true })
  flushDisk()
  try {
    return await body(dir)
  } catch (err) {
    showLogs(ctx, dir)
    throw err
  } finally {
    rmSync(dir, { recursive: true, force: true })
    flushDisk()
  }
}

export function flushDisk (): void {
  spawnSync('sync', { stdio: 'ignore' })
}

/** The end of every server log of a failed run, before its directory goes. */
function showLogs (ctx: Pick<BenchContext, 'note'>, dir: string): void {
  const logs = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((name) => name.endsWith('.log'))
  for (const log of logs) ctx.note(`${log}, last lines:\n${readFileSync(join(dir, log), 'utf8').split('\n').slice(-20).join('\n')}`)
}
