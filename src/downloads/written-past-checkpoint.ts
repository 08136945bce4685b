import { open, type FileHandle } from 'node:fs/promises'
import type { Part } from './part-state.js'

const BLOCK_BYTES = 64 * 1024
const ZEROS = Buffer.alloc(BLOCK_BYTES)

/**
 * The parts with the bytes each wrote after its last checkpoint counted in, read from the partial
 * itself: what a `kill -9` between two checkpoints leaves on disk and the saved state does not know.
 *
 * Why this is safe: a part writes its range front to back, one write at a time (fetchPart awaits each),
 * so what it wrote is always one run from its start; the rest of its range is a hole of the sparse
 * `.incomplete`, which reads as zeros. So every byte up to the last non-zero one past the checkpoint
 * was written. The scan stops at the first block of zeros; zeros that are real data (and those at the
 * end of the run) are only fetched again, never trusted. A byte trusted wrongly (the page cache lost in
 * a power cut can leave an earlier block unwritten and a later one written) fails the file's hash,
 * which restarts the file: as with a checkpoint saved ahead of the data, never a wrong blob.
 */
export async function withBytesPastCheckpoints (partialPath: string, parts: Part[]): Promise<Part[]> {
  if (parts.every((part) => part.done === part.length)) return parts
  const file = await open(partialPath, 'r').catch(() => undefined)
  if (file === undefined) return parts
  try {
    const buffer = Buffer.allocUnsafe(BLOCK_BYTES)
    const counted: Part[] = []
    for (const part of parts) counted.push({ ...part, done: part.done + await writtenPast(file, buffer, part) })
    return counted
  } finally {
    await file.close()
  }
}

/** Bytes of the part on disk past its `done`: up to the last non-zero byte before the first block of zeros. */
async function writtenPast (file: FileHandle, buffer: Buffer, part: Part): Promise<number> {
  const from = part.start + part.done
  const end = part.start + part.length
  let written = from
  for (let position = from; position < end;) {
    const { bytesRead } = await file.read(buffer, 0, Math.min(BLOCK_BYTES, end - position), position)
    if (bytesRead === 0) break // the end of the file
    const last = lastNonZero(buffer.subarray(0, bytesRead))
    if (last < 0) break
    written = position + last + 1
    position += bytesRead
  }
  return written - from
}

function lastNonZero (block: Buffer): number {
  if (block.equals(ZEROS.subarray(0, block.length))) return -1
  for (let i = block.length - 1; i >= 0; i--) if (block[i] !== 0) return i
  return -1
}
