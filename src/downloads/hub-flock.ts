import { spawn } from 'node:child_process'
import { constants } from 'node:fs'
import { mkdir, open, stat, type FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { ReleaseLock } from './blob-lock.js'

// huggingface_hub's lock on a blob: `fcntl.flock(LOCK_EX)` on `.locks/models--{org}--{name}/{etag}.lock`
// (filelock's UnixFileLock, in WeakFileLock), held while it writes `blobs/{etag}.incomplete` and moves
// it into `blobs/{etag}`. Node has no flock(2), and a native addon would not build under the Docker
// image's `npm ci --ignore-scripts`; so util-linux `flock(1)` (Debian's essential util-linux: in
// node:24-slim and on every Linux CI image) takes it on a descriptor this process opened and hands to
// it. A flock belongs to the open file, not to the process that asked: once `flock 3` exits, the lock
// is this process's, held until the descriptor is closed, and released by the kernel if the process
// dies, even by kill -9. One short-lived process per blob written, none per blob already cached.

/** No flock(1) on this host (not Linux, or a minimal image): the lock cannot be taken. */
export class FlockUnavailableError extends Error {
  override name = 'FlockUnavailableError'
}

/**
 * Waits for huggingface_hub's flock on `path` (created if missing, never deleted: huggingface_hub
 * leaves it behind and expects to find the same file). A cancel stops the wait at once (the helper
 * is killed). If the file was replaced while we waited (a prune removed it), the lock we got guards
 * nothing another program can see, so it is taken again on the file now at that path.
 */
export async function acquireHubFlock (path: string, signal: AbortSignal): Promise<ReleaseLock> {
  await mkdir(dirname(path), { recursive: true })
  for (;;) {
    signal.throwIfAborted()
    // The mode huggingface_hub >= 1.0 gives it: users who share a cache can all wait on it.
    const handle = await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o664)
    try {
      await flockDescriptor(handle, signal)
      const [held, now] = await Promise.all([handle.stat(), stat(path).catch(() => undefined)])
      if (now !== undefined && now.ino === held.ino && now.dev === held.dev) return async () => handle.close()
    } catch (err) {
      await handle.close()
      throw err
    }
    await handle.close()
  }
}

/**
 * The flock if nobody holds it right now, else undefined. Without flock(1) it counts as held: what
 * it guards is then left alone.
 */
export async function tryHubFlock (path: string): Promise<ReleaseLock | undefined> {
  await mkdir(dirname(path), { recursive: true })
  const handle = await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o664)
  try {
    await flockDescriptor(handle, new AbortController().signal, true)
    return async () => handle.close()
  } catch {
    await handle.close()
    return undefined
  }
}

/** `flock --exclusive 3` on our descriptor: resolves once the lock is ours, rejects on a cancel (or, with `nonblock`, when it is held). */
async function flockDescriptor (handle: FileHandle, signal: AbortSignal, nonblock = false): Promise<void> {
  const child = spawn('flock', ['--exclusive', ...(nonblock ? ['--nonblock'] : []), '3'], { stdio: ['ignore', 'ignore', 'pipe', handle.fd] })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      child.kill('SIGKILL')
      reject(signal.reason)
    }
    if (signal.aborted) onAbort()
    signal.addEventListener('abort', onAbort, { once: true })
    child.once('error', (err: NodeJS.ErrnoException) => {
      signal.removeEventListener('abort', onAbort)
      reject(err.code === 'ENOENT' ? new FlockUnavailableError('util-linux flock(1) is not installed') : err)
    })
    child.once('close', (code) => {
      signal.removeEventListener('abort', onAbort)
      if (code === 0) resolve()
      else reject(new Error(`flock(1) failed (exit ${String(code)}): ${stderr.trim()}`))
    })
  })
}
