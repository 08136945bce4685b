import { stat, unlink } from 'node:fs/promises'
import { planParts, type Part, type PartState } from './part-state.js'

/** The file a partial is for, and how it is split into parts. */
export interface ResumedFile { partialPath: string, size: number, etag: string }
export interface PartPlan { partSize: number, maxParts?: number }

/**
 * What is trusted of the partial on disk, as the parts to fetch with what an earlier attempt, run
 * or process left already counted: the saved parts if they still describe the partial, else only
 * the part of it written front to back. A partial larger than the file is thrown away.
 */
export async function resumeParts (file: ResumedFile, state: PartState, plan: PartPlan): Promise<Part[]> {
  const { size, etag, partialPath } = file
  const saved = await state.load(etag, size)
  if (saved !== undefined) return saved
  // Without saved parts, only a plain prefix is trusted (a single-stream partial, ours or an older one).
  let prefix = (await stat(partialPath).catch(() => undefined))?.size ?? 0
  if (prefix > size) {
    await unlink(partialPath)
    prefix = 0
  }
  prefix = Math.min(prefix, await state.staleContiguousEnd() ?? prefix)
  return planParts(size, plan.partSize, plan.maxParts)
    .map((part) => ({ ...part, done: Math.max(0, Math.min(part.length, prefix - part.start)) }))
}
