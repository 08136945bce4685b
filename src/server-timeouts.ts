import type { FastifyHttpOptions } from 'fastify'
import type { Server } from 'node:http'

export interface ServerTimeouts {
  /** The whole request, headers and body, must arrive within this. */
  requestMs: number
  /** The headers must arrive within this (slowloris). */
  headersMs: number
  /** An idle keep-alive connection is closed after this. */
  keepAliveMs: number
  /** A connection with no traffic either way is closed after this; above the longest long poll (wait=60). */
  connectionMs: number
}

type TimeoutOptions = Pick<FastifyHttpOptions<Server>, 'requestTimeout' | 'keepAliveTimeout' | 'connectionTimeout' | 'http'>

/**
 * The listening server's deadlines, so a client that sends slowly, or not at all, cannot hold a
 * connection open. They only matter on a real socket, so server.ts passes them and tests that inject
 * do not need them.
 */
export function serverTimeoutOptions (timeouts: ServerTimeouts): TimeoutOptions {
  return {
    requestTimeout: timeouts.requestMs,
    keepAliveTimeout: timeouts.keepAliveMs,
    connectionTimeout: timeouts.connectionMs,
    http: {
      headersTimeout: timeouts.headersMs,
      // Node checks the header and request deadlines on this interval (30 s by default): a slow
      // client would otherwise keep its connection up to that long past them.
      connectionsCheckingInterval: Math.min(1000, timeouts.headersMs)
    }
  }
}
