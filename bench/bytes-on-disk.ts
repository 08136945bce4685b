import { open } from 'node:fs/promises'
import type { GeneratedContent } from '../test/fakes/generated-content.js'

const CHUNK_BYTES = 1024 * 1024
const ZEROS = Buffer.alloc(CHUNK_BYTES)

/**
 * How many bytes of `expected` sit at their place in the file at `path` (0 when there is no file):
 * the ground truth of what a resume still needs, whatever the downloader's own bookkeeping says.
 * A hole in a sparse file reads as zeros, and the benchmark files never contain a zero byte
 * (GeneratedContent), so unwritten bytes never count.
 */
export async function bytesInPlace (path: string, expected: GeneratedContent | Buffer): Promise<number> {
  const file = await open(path, 'r').catch(() => undefined)
  if (file === undefined) return 0
  try {
    const buffer = Buffer.alloc(CHUNK_BYTES)
    let matching = 0
    for (let offset = 0; offset < expected.length; offset += CHUNK_BYTES) {
      const { bytesRead } = await file.read(buffer, 0, Math.min(CHUNK_BYTES, expected.length - offset), offset)
      if (bytesRead === 0) break
      const actual = buffer.subarray(0, bytesRead)
      const wanted = expected.subarray(offset, offset + bytesRead)
      if (actual.equals(wanted)) matching += bytesRead
      else if (!actual.equals(ZEROS.subarray(0, bytesRead))) matching += countEqual(actual, wanted)
    }
    return matching
  } finally {
    await file.close()
  }
}

function countEqual (a: Buffer, b: Buffer): number {
  let equal = 0
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) equal++
  return equal
}
