import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { killAll } from './node-process.js'

export interface BenchSession {
  /** A fresh scratch folder for the run, removed by `cleanUp`. */
  workDir: string
  /** A progress line on stderr, with the seconds since the run began. */
  note: (message: string) => void
  /** Kills every process the run started and removes its scratch folder. */
  cleanUp: () => void
}

/** What each benchmark entry point begins with; Ctrl-C leaves no server or fake Hub behind. */
export function startSession (label: string): BenchSession {
  const workDir = mkdtempSync(join(tmpdir(), `modeldepot-${label}-`))
  const started = Date.now()
  const note = (message: string): void => { process.stderr.write(`[${label} ${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${message}\n`) }
  const cleanUp = (): void => {
    killAll()
    rmSync(workDir, { recursive: true, force: true })
  }
  process.on('SIGINT', () => {
    cleanUp()
    process.exit(130)
  })
  return { workDir, note, cleanUp }
}
