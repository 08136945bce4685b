import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'

const MiB = 1024 * 1024

/** Bytes per second a count grew by over `ms` (a job's `bytes_transferred`, say). */
export async function rateOver (count: () => Promise<number>, ms: number): Promise<number> {
  const before = await count()
  const started = performance.now()
  await sleep(ms)
  const after = await count()
  return (after - before) / ((performance.now() - started) / 1000)
}

/**
 * A capped transfer runs at its cap, ±`tolerance`, measured over `ms`; above it fails at once.
 * A window may fall short when the whole machine was busy (the cap's bucket holds a tenth of a second,
 * so time the process was held up longer is not made up later, as a cap should): then one window more
 * is measured, and the transfer has to reach the cap in that one.
 */
export async function assertRateNear (t: Test, count: () => Promise<number>, ms: number, cap: number, what: string, tolerance = 0.1): Promise<void> {
  for (let window = 1; ; window++) {
    const ratio = await rateOver(count, ms) / cap
    const said = `${what}: ${(ratio * cap / MiB).toFixed(2)} MiB/s against a cap of ${(cap / MiB).toFixed(2)} MiB/s (${ratio.toFixed(3)}×${window > 1 ? `, window ${window}` : ''})`
    if (ratio >= 1 - tolerance || window === 2) {
      t.ok(Math.abs(ratio - 1) <= tolerance, said)
      return
    }
    t.comment(`${said}: short, measured again`)
  }
}
