import { sweepAbandonedStateTemporaries } from './cache-temporaries.js'

export interface StateDirLog {
  info: (fields: object, message: string) => void
  warn: (fields: object, message: string) => void
}

/**
 * Makes STATE_DIR ready before any store reads it: the temporaries of state files that a killed
 * process left there are removed. A failure is logged, never a refusal to start (the stores then
 * start empty, as with a missing file).
 */
export async function prepareStateDir (stateDir: string, log: StateDirLog): Promise<void> {
  const removed = await sweepAbandonedStateTemporaries(stateDir).catch((err: unknown) => {
    log.warn({ reason: (err as Error).message }, 'leftover temporary state files could not be removed')
    return 0
  })
  if (removed > 0) log.info({ removed }, 'removed temporary state files left by a process that stopped mid-write')
}
