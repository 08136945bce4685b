// Summaries of repeated measurements: every figure is shown as min / median / max over its rounds.

export interface Spread { min: number, median: number, max: number }

export function spread (values: readonly number[]): Spread {
  if (values.length === 0) throw new Error('no values to summarize')
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  const median = sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
  return { min: sorted[0]!, median, max: sorted.at(-1)! }
}

/** The p-th percentile (0-100) by nearest rank. */
export function percentile (values: readonly number[], p: number): number {
  if (values.length === 0) throw new Error('no values')
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

/** Rounds alternate the order of the contenders (A B C, then C B A), so drift hits each alike. */
export function roundOrder<T> (contenders: readonly T[], round: number): T[] {
  return round % 2 === 0 ? [...contenders] : [...contenders].reverse()
}

export const MB = 1e6
export const MiB = 1024 * 1024
