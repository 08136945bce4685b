import { execFileSync } from 'node:child_process'
import { cpus, release, tmpdir, totalmem, type } from 'node:os'

/** What the figures were measured on, printed with them. */
export interface Machine { date: string, cpu: string, cores: number, memoryGiB: number, node: string, os: string, fileSystem: string, curl: string }

export function describeMachine (): Machine {
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    os: `${type()} ${release()}`,
    fileSystem: commandOutput('df', ['--output=fstype', tmpdir()]).split('\n').at(-1) ?? 'unknown',
    curl: commandOutput('curl', ['--version']).split(' ').slice(0, 2).join(' ')
  }
}

function commandOutput (command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return 'unknown'
  }
}
