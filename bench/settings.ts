import { MiB } from './stats.js'

/** Sizes and rounds: the full run the README quotes, and a quick one CI runs so the harness never rots. */
export interface BenchSettings {
  quick: boolean
  /** Each of the two weight shards of the throughput repo. */
  shardBytes: number
  /** The smaller shards memory is compared at. */
  smallShardBytes: number
  throughputRounds: number
  /** (1b): shards, rounds, and the cap on each connection. */
  cappedShardBytes: number
  cappedRounds: number
  capBytesPerSecond: number
  memoryRounds: number
  /** Fresh servers measured idle after start-up (issue 18), each with its pieces. */
  idleRounds: number
  resumeRounds: number
  /** autocannon: seconds per run, rounds, connections. */
  loadSeconds: number
  loadRounds: number
  connections: number
  queuedJobs: number
  manyFiles: number
  /** Calls timed per latency figure. */
  latencySamples: number
}

export const FULL: BenchSettings = {
  quick: false,
  shardBytes: 1024 * MiB,
  smallShardBytes: 256 * MiB,
  throughputRounds: 5,
  cappedShardBytes: 256 * MiB,
  cappedRounds: 2,
  capBytesPerSecond: 20e6,
  memoryRounds: 3,
  idleRounds: 3,
  resumeRounds: 3,
  loadSeconds: 10,
  loadRounds: 3,
  connections: 10,
  queuedJobs: 1000,
  manyFiles: 10_000,
  latencySamples: 200
}

// Shards above the 64 MiB part size, so the quick run still takes the parallel-parts path.
export const QUICK: BenchSettings = {
  quick: true,
  shardBytes: 96 * MiB,
  smallShardBytes: 24 * MiB,
  throughputRounds: 2,
  cappedShardBytes: 24 * MiB,
  cappedRounds: 1,
  capBytesPerSecond: 20e6,
  memoryRounds: 1,
  idleRounds: 1,
  resumeRounds: 1,
  loadSeconds: 1.5,
  loadRounds: 1,
  connections: 10,
  queuedJobs: 100,
  manyFiles: 500,
  latencySamples: 30
}
