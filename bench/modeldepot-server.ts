import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { eventLoopLag, memoryAfterFullGc, probeArgs, probeMemory, type EventLoopLag, type ProbeMemory } from './event-loop-reader.js'
import { startNodeServer, type NodeServer } from './node-process.js'

/** The built entry point: what `npm start` and the Docker image run. */
const SERVER = fileURLToPath(new URL('../src/server.js', import.meta.url))
export const API_KEY = 'bench-key-0123456789abcdef'

/**
 * The node flags of `npm start` (`node <flags> dist/src/server.js`; the Docker image's CMD is the same
 * command, test/docker.test.ts checks it): the bench starts the server as a user starts it.
 */
export const START_COMMAND = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: { start: string } }).scripts.start
export const START_NODE_ARGS: string[] = START_COMMAND.split(' ').slice(1, -1)

export interface ModeldepotOptions {
  /** Where its cache and log go. */
  dir: string
  hubUrl: string
  env?: Record<string, string>
  /** Extra arguments to node, such as --cpu-prof. */
  nodeArgs?: string[]
  /** Another build's entry point (a baseline to compare with); this build's by default. */
  script?: string | undefined
}

/**
 * modeldepot with default settings, pointed at the fake Hub. The one change: a rate limit high
 * enough that load tests measure the server rather than its 429s (the limiter still runs).
 */
export async function startModeldepot ({ dir, hubUrl, env = {}, nodeArgs = [] }: ModeldepotOptions): Promise<NodeServer> {
  mkdirSync(dir, { recursive: true })
  return startNodeServer(SERVER, settings(dir, hubUrl, env), dir, join(dir, 'modeldepot.log'), [...START_NODE_ARGS, ...nodeArgs])
}

export interface ProbedModeldepot {
  server: NodeServer
  lagBetween: (from: number, to: number) => Promise<EventLoopLag>
  /** The probe's memory readings (V8 heap, Buffers, RSS) between two moments. */
  memoryBetween: (from: number, to: number) => Promise<ProbeMemory[]>
  /** A full garbage collection in the server, and the memory left after it (needs nodeArgs ['--expose-gc']). */
  memoryAfterFullGc: () => Promise<ProbeMemory>
}

/** The same, with the event-loop probe preloaded (event-loop-probe.ts), to measure its lag and memory from inside. */
export async function startProbedModeldepot ({ dir, hubUrl, env = {}, nodeArgs = [], script = SERVER }: ModeldepotOptions): Promise<ProbedModeldepot> {
  mkdirSync(dir, { recursive: true })
  const file = join(dir, 'event-loop.txt')
  const server = await startNodeServer(script, { ...settings(dir, hubUrl, env), BENCH_EVENT_LOOP_FILE: file }, dir, join(dir, 'modeldepot.log'), [...START_NODE_ARGS, ...probeArgs, ...nodeArgs])
  return {
    server,
    lagBetween: async (from, to) => eventLoopLag(file, from, to),
    memoryBetween: async (from, to) => probeMemory(file, from, to),
    memoryAfterFullGc: async () => memoryAfterFullGc(file)
  }
}

function settings (dir: string, hubUrl: string, env: Record<string, string>): Record<string, string> {
  return { API_KEY, HF_ENDPOINT: hubUrl, HF_HUB_CACHE: cacheDirOf(dir), RATE_LIMIT_PER_MINUTE: '1000000000', ...env }
}

export const cacheDirOf = (dir: string): string => join(dir, 'hub')
