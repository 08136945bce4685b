import { Agent, EnvHttpProxyAgent, type Dispatcher } from 'undici'
import { usesProxy, type ProxySettings } from './proxy-settings.js'

/**
 * The one dispatcher every outbound request goes through: the Hub's API, its CDN, the providers and
 * the callbacks. Without a proxy, a plain Agent (what undici and fetch use by default); with one, an
 * EnvHttpProxyAgent that tunnels through it (CONNECT) all but the NO_PROXY hosts. TLS to the far end
 * keeps Node's CAs, NODE_EXTRA_CA_CERTS included: no `ca` is given here. Per-request settings (the
 * engine's read timeouts, the callbacks' deadlines) are the requests' own and pass through unchanged.
 */
export function createOutboundDispatcher (settings: ProxySettings): Dispatcher {
  if (!usesProxy(settings)) return new Agent()
  // Every value given, '' for unset: left undefined, EnvHttpProxyAgent would read process.env again,
  // and the config (parsed once, shown in /api/info) is what decides.
  return new EnvHttpProxyAgent({ httpProxy: settings.httpProxy ?? '', httpsProxy: settings.httpsProxy ?? '', noProxy: settings.noProxy ?? '' })
}

/**
 * A fetch through `dispatcher`, for what takes a fetch (the providers, @huggingface/hub by way of the
 * Hub client). Node's own fetch is a different copy of undici from the npm one, but it takes an npm
 * undici dispatcher as `dispatcher` (both speak undici's Dispatcher API), on Node 20 and 24 alike.
 */
export function fetchThrough (dispatcher: Dispatcher): typeof fetch {
  // The cast: @types/node types `dispatcher` with its own copy of undici's types (undici-types).
  return async (input, init) => fetch(input, { ...init, dispatcher } as unknown as RequestInit)
}
