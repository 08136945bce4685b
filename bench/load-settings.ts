import { MiB } from './stats.js'

/** The load benchmark (`npm run bench:load`): many clients polling progress while downloads run. */
export interface LoadSettings {
  quick: boolean
  /** Polling clients, each with its own keep-alive connection. */
  clients: number
  /** Polling before the measured run starts, not counted in the windows (JIT, connections, first serializers). */
  warmUpSeconds: number
  /** The measured run. */
  seconds: number
  /** The first and the last this-many seconds are compared for memory growth. */
  windowSeconds: number
  /** Downloads running at once (and MAX_CONCURRENT_DOWNLOADS). */
  downloads: number
  /** Each of the two weight shards of a model: below the 16 MiB part size, so each is one capped stream. */
  shardBytes: number
  /** The fake Hub's cap on each shard's connection, so the downloads outlast the load. */
  capBytesPerSecond: number
}

// Shard ÷ cap is how long a download takes at best; it must exceed warm-up + run with a margin, so
// the downloads are still running at the last poll and end soon after (a slower machine only
// stretches them). Full: 15 MiB at 0.2 MB/s ≈ 79 s for 5 + 60 s. Quick: 15 MiB at 0.75 MB/s ≈ 21 s for 2 + 15 s.
export const FULL_LOAD: LoadSettings = {
  quick: false,
  clients: 200,
  warmUpSeconds: 5,
  seconds: 60,
  windowSeconds: 10,
  downloads: 4,
  shardBytes: 15 * MiB,
  capBytesPerSecond: 0.2e6
}

export const QUICK_LOAD: LoadSettings = {
  quick: true,
  clients: 200,
  warmUpSeconds: 2,
  seconds: 15,
  windowSeconds: 5,
  downloads: 4,
  shardBytes: 15 * MiB,
  capBytesPerSecond: 0.75e6
}
