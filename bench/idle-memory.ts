import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { inFreshDir, type BenchContext } from './bench-context.js'
import { cacheDirOf, START_NODE_ARGS, startModeldepot } from './modeldepot-server.js'
import { currentRss, peakRss } from './node-process.js'

// Issue 18's figure: the server as `npm start` runs it, with its default settings (API_KEY set, nothing
// preloaded), VmHWM and VmRSS once it has started, and VmRSS again once it has been at rest for half a
// minute; and the same in pieces, each in a process of its own with the same node flags, to say what
// the idle figure is made of.

const PIECES_CHILD = fileURLToPath(new URL('./idle-pieces-child.js', import.meta.url))
/** After the server answers: start-up work that runs on timers (the first health check) is done by then. */
const SETTLE_MS = 2000
/**
 * At rest for this long after it answers: V8 gives the heap's start-up garbage back to the system only
 * in its memory reducer's collections, which begin some 8 s after the last full one and run while
 * the process allocates little (seen here: 15 to 20 s after start).
 */
export const AT_REST_MS = 30_000
export const IDLE_PIECES = ['node', 'modules', 'app'] as const
export type IdlePiece = (typeof IDLE_PIECES)[number]

export interface IdleRound {
  peakRssBytes: number | undefined
  rssBytes: number | undefined
  /** VmRSS after AT_REST_MS at rest. */
  atRestRssBytes: number | undefined
  /** VmHWM of a process that went only as far as each piece. */
  pieces: Record<IdlePiece, number | undefined>
}

export async function measureIdleMemory (ctx: BenchContext, rounds: number): Promise<IdleRound[]> {
  const results: IdleRound[] = []
  for (let round = 0; round < rounds; round++) {
    const result = await inFreshDir(ctx, 'idle', async (dir) => {
      const server = await startModeldepot({ dir, hubUrl: ctx.hub.url })
      const answered = performance.now()
      try {
        await sleep(SETTLE_MS)
        const measured = { peakRssBytes: peakRss(server.pid), rssBytes: currentRss(server.pid) }
        // The pieces while the server rests (each in a process of its own, nothing sent to the server).
        const pieces = {} as IdleRound['pieces']
        for (const piece of IDLE_PIECES) pieces[piece] = await pieceRss(piece, { API_KEY: 'bench-key-0123456789abcdef', HF_ENDPOINT: ctx.hub.url, HF_HUB_CACHE: cacheDirOf(dir) }, dir)
        await sleep(Math.max(0, AT_REST_MS - (performance.now() - answered)))
        return { ...measured, atRestRssBytes: currentRss(server.pid), pieces }
      } finally {
        await server.stop()
      }
    })
    results.push(result)
    ctx.note(`idle round ${round + 1}/${rounds}: VmRSS ${((result.rssBytes ?? 0) / 1e6).toFixed(1)} MB, ${((result.atRestRssBytes ?? 0) / 1e6).toFixed(1)} MB at rest`)
  }
  return results
}

async function pieceRss (piece: IdlePiece, env: Record<string, string>, cwd: string): Promise<number | undefined> {
  const child = spawn(process.execPath, [...START_NODE_ARGS, PIECES_CHILD, piece], { cwd, env: { PATH: process.env.PATH ?? '', HOME: cwd, LOG_LEVEL: 'silent', ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  await once(child, 'exit')
  const bytes = Number(out.trim())
  return Number.isFinite(bytes) && bytes > 0 ? bytes : undefined
}
