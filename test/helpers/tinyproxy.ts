import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { freePort } from './free-port.js'

export interface Tinyproxy {
  port: number
  /** http://user:password@127.0.0.1:port, as HTTPS_PROXY / HTTP_PROXY take it. */
  url: string
  /** The same proxy with a wrong password. */
  urlWithPassword: (password: string) => string
  /** The host:port of every tunnel (CONNECT) asked of it so far, in order, as its log says. */
  tunnels: () => string[]
  /** Everything it logged. */
  output: () => string
}

export interface TinyproxyOptions {
  user: string
  password: string
  /** The only ports it tunnels to (tinyproxy's ConnectPort). */
  connectPorts: number[]
}

async function accepts (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

/**
 * A real forward proxy for one test (Debian's tinyproxy): on its own free loopback port, with its
 * own config file in a temporary folder, Basic credentials required, clients from 127.0.0.1 only,
 * tunnels only to the ports given; in the foreground, stopped at the end of the test.
 */
export async function startTinyproxy (t: Test, options: TinyproxyOptions): Promise<Tinyproxy> {
  const dir = mkdtempSync(join(tmpdir(), 'modeldepot-tinyproxy-'))
  let child: ChildProcess | undefined
  let output = ''
  let port = 0

  const start = async (): Promise<void> => {
    port = await freePort()
    const config = join(dir, 'tinyproxy.conf')
    writeFileSync(config, [
      `Port ${port}`,
      'Listen 127.0.0.1',
      'Timeout 60',
      'MaxClients 100',
      'LogLevel Connect',
      'Allow 127.0.0.1',
      `BasicAuth ${options.user} ${options.password}`,
      ...options.connectPorts.map((connectPort) => `ConnectPort ${connectPort}`),
      ''
    ].join('\n'))
    const started = spawn('tinyproxy', ['-d', '-c', config], { stdio: ['ignore', 'pipe', 'pipe'] })
    child = started
    output = ''
    started.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
    started.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
    const deadline = Date.now() + 10_000
    for (;;) {
      // Its own start-up line first: a port taken by another test's server in between would answer too.
      if (output.includes('Reloading config file finished') && started.exitCode === null && await accepts(port)) return
      if (started.exitCode !== null) throw new Error(`tinyproxy exited: ${output}`)
      if (Date.now() > deadline) throw new Error(`tinyproxy did not start: ${output}`)
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
  }

  t.teardown(async () => {
    const running = child
    if (running !== undefined && running.exitCode === null && running.signalCode === null) {
      const exited = once(running, 'exit')
      running.kill('SIGTERM')
      await exited
    }
    rmSync(dir, { recursive: true, force: true })
  })
  // The port was free when picked; another process may have taken it since: then another one.
  for (let attempt = 1; ; attempt++) {
    try {
      await start()
      break
    } catch (err) {
      child?.kill('SIGKILL')
      if (attempt === 5) throw err
    }
  }
  const urlWithPassword = (password: string): string =>
    `http://${encodeURIComponent(options.user)}:${encodeURIComponent(password)}@127.0.0.1:${port}`
  const tunnels = (): string[] => [...output.matchAll(/Request \(file descriptor \d+\): CONNECT (\S+) HTTP\//g)].map((match) => match[1]!)
  return { port, url: urlWithPassword(options.password), urlWithPassword, tunnels, output: () => output }
}
