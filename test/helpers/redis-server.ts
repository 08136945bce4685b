import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { freePort } from './free-port.js'

export interface RedisServer {
  port: number
  /** redis://[:password@]127.0.0.1:port */
  url: string
  /** Stops redis-server (SIGTERM, waits for the exit): the port answers nothing until start(). */
  stop: () => Promise<void>
  /** Starts it again on the same port, with an empty data set, and waits until it answers PING. */
  start: () => Promise<void>
  /** Sends one command and reads its first reply line, e.g. command('DBSIZE') → ':3'. */
  command: (...args: string[]) => Promise<string>
  /**
   * Freezes redis-server for `ms` (SIGSTOP, then SIGCONT): connections stay open and commands go
   * unanswered until then, as when a starved machine does not schedule it.
   */
  pause: (ms: number) => Promise<void>
}

// RESP by hand, so the helper does not test the app's client with itself.
async function sendCommand (port: number, password: string | undefined, args: string[]): Promise<string> {
  const encode = (parts: string[]): string => `*${parts.length}\r\n${parts.map((part) => `$${Buffer.byteLength(part)}\r\n${part}\r\n`).join('')}`
  const socket = connect(port, '127.0.0.1')
  socket.setTimeout(2000, () => socket.destroy(new Error('redis-server did not answer')))
  const expected = password === undefined ? 1 : 2
  return new Promise((resolve, reject) => {
    let received = ''
    socket.on('error', reject)
    socket.on('connect', () => socket.write((password === undefined ? '' : encode(['AUTH', password])) + encode(args)))
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString()
      const lines = received.split('\r\n')
      if (lines.length > expected) {
        socket.end()
        resolve(lines[expected - 1] ?? '')
      }
    })
  })
}

/**
 * A real redis-server for one test: its own free loopback port and temporary directory, nothing
 * saved to disk, stopped at the end of the test. Never a system service, never a fixed port.
 */
export async function startRedisServer (t: Test, options: { password?: string } = {}): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'modeldepot-redis-'))
  let port = await freePort()
  let child: ChildProcess | undefined
  let output = ''
  const command = async (...args: string[]): Promise<string> => sendCommand(port, options.password, args)

  const start = async (): Promise<void> => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no']
    if (options.password !== undefined) args.push('--requirepass', options.password)
    const started = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    child = started
    output = ''
    started.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
    started.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
    const deadline = Date.now() + 10_000
    for (;;) {
      if (started.exitCode !== null) throw new Error(`redis-server exited: ${output}`)
      // Its own "ready" line, not only a PONG: a free port picked by another test file in between
      // would have this one exit while that file's redis-server answered in its place.
      const reply = output.includes('Ready to accept connections') ? await command('PING').catch(() => '') : ''
      if (reply === '+PONG') return
      if (Date.now() > deadline) throw new Error(`redis-server did not answer PING: ${output}`)
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
  }

  const stop = async (): Promise<void> => {
    const running = child
    child = undefined
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return
    const exited = once(running, 'exit')
    running.kill('SIGTERM')
    await exited
  }

  const pause = async (ms: number): Promise<void> => {
    if (child === undefined) throw new Error('redis-server is not running')
    const frozen = child
    frozen.kill('SIGSTOP')
    try {
      await new Promise((resolve) => setTimeout(resolve, ms))
    } finally {
      frozen.kill('SIGCONT')
    }
  }

  t.teardown(async () => {
    child?.kill('SIGCONT')
    await stop()
    rmSync(dir, { recursive: true, force: true })
  })
  // The port was free when picked; another process may have taken it since: then another one.
  for (let attempt = 1; ; attempt++) {
    try {
      await start()
      break
    } catch (err) {
      if (attempt === 5 || !output.includes('Address already in use')) throw err
      port = await freePort()
    }
  }
  const auth = options.password === undefined ? '' : `:${encodeURIComponent(options.password)}@`
  return { port, url: `redis://${auth}127.0.0.1:${port}`, stop, start, command, pause }
}
