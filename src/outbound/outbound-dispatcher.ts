import { createRequire } from 'node:module'
import type { Dispatcher } from 'undici'
import { usesProxy, type ProxySettings } from './proxy-settings.js'

type Undici = typeof import('undici')
/** undici's `request`, as the download engine and the callbacks send theirs. */
export type SendRequest = Undici['request']

const require = createRequire(import.meta.url)
let undici: Undici | undefined

/**
 * The npm undici, loaded by the first outbound request rather than at start: it is 110 modules and
 * 1.1 MB of source, held as long as the process runs, and a server that has sent nothing does not
 * need it (issue 18's idle RSS). Synchronous, as a dispatcher's `dispatch` is (undici is CommonJS).
 */
export function undiciLibrary (): Undici {
  undici ??= require('undici') as Undici
  return undici
}

/** A request straight out, through undici's global dispatcher (what a caller without the app's gets). */
export const sendDirect: SendRequest = (async (url: Parameters<SendRequest>[0], options?: Parameters<SendRequest>[1]) =>
  undiciLibrary().request(url, options)) as SendRequest

/**
 * The one way out every outbound request takes: the Hub's API, its CDN, the providers and the
 * callbacks. Without a proxy, a plain Agent (what undici and fetch use by default); with one, an
 * EnvHttpProxyAgent that tunnels through it (CONNECT) all but the NO_PROXY hosts. TLS to the far end
 * keeps Node's CAs, NODE_EXTRA_CA_CERTS included: no `ca` is given here. Per-request settings (the
 * engine's read timeouts, the callbacks' deadlines) are the requests' own and pass through unchanged.
 * The dispatcher is made by the first request (see undiciLibrary).
 */
export class Outbound {
  readonly #settings: ProxySettings
  #dispatcher: Dispatcher | undefined

  constructor (settings: ProxySettings) {
    this.#settings = settings
  }

  get dispatcher (): Dispatcher {
    this.#dispatcher ??= createOutboundDispatcher(this.#settings)
    return this.#dispatcher
  }

  /** undici's `request` through this way out. */
  readonly request: SendRequest = (async (url: Parameters<SendRequest>[0], options?: Parameters<SendRequest>[1]) =>
    undiciLibrary().request(url, { ...options, dispatcher: this.dispatcher })) as SendRequest

  /**
   * A fetch through it, for what takes a fetch (the providers, @huggingface/hub by way of the Hub
   * client). Node's own fetch is a different copy of undici from the npm one, but it takes an npm
   * undici dispatcher as `dispatcher` (both speak undici's Dispatcher API), on Node 20 and 24 alike.
   */
  readonly fetch: typeof fetch = async (input, init) =>
    // The cast: @types/node types `dispatcher` with its own copy of undici's types (undici-types).
    fetch(input, { ...init, dispatcher: this.dispatcher } as unknown as RequestInit)

  /** Closes its connections, if a request ever opened any. */
  async close (): Promise<void> {
    await this.#dispatcher?.close()
  }
}

function createOutboundDispatcher (settings: ProxySettings): Dispatcher {
  const { Agent, EnvHttpProxyAgent } = undiciLibrary()
  if (!usesProxy(settings)) return new Agent()
  // Every value given, '' for unset: left undefined, EnvHttpProxyAgent would read process.env again,
  // and the config (parsed once, shown in /api/info) is what decides.
  return new EnvHttpProxyAgent({ httpProxy: settings.httpProxy ?? '', httpsProxy: settings.httpsProxy ?? '', noProxy: settings.noProxy ?? '' })
}
