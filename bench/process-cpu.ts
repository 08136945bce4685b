import { readFileSync } from 'node:fs'

// CPU time of a process from /proc, to tell whether a load test saturated the server or the load generator.

const TICKS_PER_SECOND = 100

/** User plus system CPU seconds the process has used so far; undefined where /proc is not there. */
export function cpuSeconds (pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name, which is in parentheses and may contain spaces: utime is the 12th, stime the 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND
  } catch {
    return undefined
  }
}
