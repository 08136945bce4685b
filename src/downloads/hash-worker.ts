import { createHash, type Hash } from 'node:crypto'
import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import { parentPort } from 'node:worker_threads'
import type { FromHasher, ToHasher } from './hash-messages.js'

// The hash thread (hash-pool.ts starts it): hashes files front to back, reading back from disk what
// their parts wrote, as far as the main thread says is written. Several files share it, a chunk each
// in turn, so one long read-back (a resumed partial of many GiB) does not hold up the others.

// Read back 1 MiB at a time: the buffer is resident while the thread lives (4 MiB cost 3 MB more of peak RSS per thread).
const CHUNK_BYTES = 1024 * 1024

// A whole file tells how far it is once this much more is hashed (a message per MiB would cost the main thread more).
const REPORT_BYTES = 8 * 1024 * 1024

interface FileHash { fd: number, hash: Hash, size: number, hashed: number, end: number, whole: boolean, unreported: number }

const port = parentPort
if (port === null) throw new Error('hash-worker.js runs as a worker thread')
const files = new Map<number, FileHash>()
const buffer = Buffer.allocUnsafe(CHUNK_BYTES)
let scheduled = false

const send = (message: FromHasher): void => port.postMessage(message)

function newHash (lfs: boolean, size: number): Hash {
  // sha256 for LFS files; for the rest the git blob id, sha1 over "blob <size>\0" + content.
  return lfs ? createHash('sha256') : createHash('sha1').update(`blob ${size}\0`)
}

function drop (id: number): void {
  const file = files.get(id)
  files.delete(id)
  if (file !== undefined) closeSync(file.fd)
}

/** One chunk of every file that has bytes to hash, then back to the messages. */
function hashSome (): void {
  scheduled = false
  let more = false
  for (const [id, file] of files) {
    try {
      if (file.hashed < file.end) {
        const bytesRead = readSync(file.fd, buffer, 0, Math.min(CHUNK_BYTES, file.end - file.hashed), file.hashed)
        if (bytesRead === 0 && !file.whole) throw new Error(`the partial file is shorter than its recorded progress at byte ${file.hashed}`)
        // A whole file that shrank while it was read (another program wrote it) hashes as far as it goes, as it now is.
        if (bytesRead === 0) file.size = file.hashed
        file.hash.update(buffer.subarray(0, bytesRead))
        file.hashed += bytesRead
        file.unreported += bytesRead
      }
      if (file.whole && file.unreported > 0 && (file.unreported >= REPORT_BYTES || file.hashed === file.size)) {
        send({ id, hashed: file.unreported })
        file.unreported = 0
      }
      if (file.hashed === file.size) {
        drop(id)
        send({ id, digest: file.hash.digest('hex') })
      } else if (file.hashed < file.end) {
        more = true
      }
    } catch (err) {
      drop(id)
      send({ id, error: (err as Error).message, ...errorCode(err) })
    }
  }
  if (more) schedule()
}

const errorCode = (err: unknown): { code?: string } => {
  const code = (err as NodeJS.ErrnoException).code
  return typeof code === 'string' ? { code } : {}
}

function schedule (): void {
  if (scheduled) return
  scheduled = true
  setImmediate(hashSome)
}

port.on('message', (message: ToHasher) => {
  if (message.type === 'open') {
    try {
      const fd = openSync(message.path, 'r')
      const whole = 'whole' in message
      // The size the git sha1 covers is the one found now, for a whole file.
      let size: number
      try {
        size = whole ? fstatSync(fd).size : message.size
      } catch (err) {
        closeSync(fd)
        throw err
      }
      files.set(message.id, { fd, hash: newHash(message.lfs, size), size, hashed: 0, end: whole ? size : 0, whole, unreported: 0 })
    } catch (err) {
      send({ id: message.id, error: (err as Error).message, ...errorCode(err) })
      return
    }
    schedule()
  } else if (message.type === 'written') {
    const file = files.get(message.id)
    if (file === undefined) return
    file.end = Math.max(file.end, message.end)
    schedule()
  } else {
    drop(message.id)
  }
})
