import type { Provider } from './provider.js'
import { describeNetworkFailure } from '../outbound/network-failure.js'

export interface CheckResult {
  name: 'token' | 'catalogue'
  ok: boolean
  status: number | null
  latency_ms: number
  message: string
  fix_steps: string[]
  /** The same check as a curl command, with the token shown as $TOKEN_ENV. */
  curl: string
}

export interface ProviderCheck {
  provider: string
  ok: boolean
  account: { name: string, role: string | null } | null
  checks: CheckResult[]
}

interface Probe { name: CheckResult['name'], path: string, needsToken: boolean }

// What each kind can be asked: who owns the token, and is the model list reachable.
const PROBES: Record<Provider['kind'], Probe[]> = {
  huggingface: [{ name: 'token', path: '/api/whoami-v2', needsToken: true }, { name: 'catalogue', path: '/api/models?limit=1', needsToken: false }],
  openrouter: [{ name: 'token', path: '/key', needsToken: true }, { name: 'catalogue', path: '/models', needsToken: false }],
  // An OpenAI-compatible server has no key endpoint, and its model list needs the key (when it has one).
  openai: [{ name: 'token', path: '/models', needsToken: true }, { name: 'catalogue', path: '/models', needsToken: true }]
}

const TOKEN_PAGES: Record<Provider['kind'], string> = {
  huggingface: 'https://huggingface.co/settings/tokens',
  openrouter: 'https://openrouter.ai/settings/keys',
  openai: 'your provider\'s API key page (https://platform.openai.com/api-keys for OpenAI)'
}

/**
 * A preflight: is the token valid, is the catalogue reachable. It asks even while the provider cools
 * down (it is what a user runs to find out why), through the limiter, but leaves the health alone:
 * a check must not lift a backoff, and a candidate token says nothing about the one in use.
 * `token` checks a candidate before it replaces the current one.
 */
export async function checkProvider (provider: Provider, token: string | undefined = provider.token, now: () => number = Date.now): Promise<ProviderCheck> {
  const checks: CheckResult[] = []
  let account: ProviderCheck['account'] = null
  for (const probe of PROBES[provider.kind]) {
    const url = `${provider.baseUrl}${probe.path}`
    const curl = `curl -s ${probe.needsToken ? `-H "Authorization: Bearer $${provider.tokenEnv === '' ? 'TOKEN' : provider.tokenEnv}" ` : ''}'${url}'`
    // A local OpenAI-compatible server often has no key: ask it without one.
    if (probe.needsToken && token === undefined && provider.kind !== 'openai') {
      checks.push({
        name: probe.name,
        ok: false,
        status: null,
        latency_ms: 0,
        message: 'No token is set',
        fix_steps: [`Set ${provider.tokenEnv || 'the token variable'} (create a token at ${TOKEN_PAGES[provider.kind]}), or PUT one to /api/providers/${provider.name}/token`],
        curl
      })
      continue
    }
    const started = now()
    try {
      const response = await provider.fetch(url, { headers: { accept: 'application/json', ...(probe.needsToken ? provider.authHeaders(token) : {}) } }, { bypassGate: true, record: false })
      const latency = now() - started
      const body = await response.json().catch(() => undefined) as Record<string, any> | undefined
      if (response.ok && probe.name === 'token' && provider.kind === 'huggingface') {
        account = { name: String(body?.name ?? 'unknown'), role: body?.auth?.accessToken?.role ?? null }
      }
      checks.push({
        name: probe.name,
        ok: response.ok,
        status: response.status,
        latency_ms: latency,
        message: response.ok ? (probe.name === 'token' ? 'The token is valid' : 'The model list is reachable') : `${provider.name} answered ${response.status}`,
        fix_steps: response.ok ? [] : fixSteps(provider, response.status, response.headers.get('retry-after'), now),
        curl
      })
    } catch (err) {
      const code = describeNetworkFailure(err) ?? (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name
      checks.push({
        name: probe.name,
        ok: false,
        status: null,
        latency_ms: now() - started,
        message: `${provider.name} could not be reached at ${provider.baseUrl} (${code})`,
        fix_steps: [`Check that ${provider.baseUrl} is the right address and reachable from this machine`, 'Then run the check again'],
        curl
      })
    }
  }
  // Without a token the Hub still serves public models: only a token that is set and fails is a failure there.
  const tokenOptional = provider.kind === 'huggingface' && token === undefined
  const ok = checks.every((check) => check.ok || (tokenOptional && check.name === 'token'))
  return { provider: provider.name, ok, account, checks }
}

function fixSteps (provider: Provider, status: number, retryAfter: string | null, now: () => number): string[] {
  const tokenName = provider.tokenEnv === '' ? 'the token' : provider.tokenEnv
  if (status === 401) {
    return [`The token is invalid or revoked: create a new one at ${TOKEN_PAGES[provider.kind]}`, `Put it in ${tokenName} and restart, or PUT it to /api/providers/${provider.name}/token`]
  }
  if (status === 403) {
    return [
      'The token lacks a permission this needs: give it read access (for a fine-grained Hugging Face token, "Read access to contents of all public gated repos")',
      'For a gated model, open its page while logged in and accept its terms'
    ]
  }
  if (status === 429) {
    const seconds = Number(retryAfter)
    const until = Number.isFinite(seconds) && retryAfter !== null ? new Date(now() + seconds * 1000).toISOString() : 'its limit resets'
    return [`${provider.name} is rate-limiting this token until ${until}`, 'Wait, lower the request rate, or use a token with a higher limit']
  }
  if (status >= 500) return [`${provider.name} has a problem of its own (${status})`, 'Retry later; check its status page']
  if (status === 404) return [`${provider.baseUrl} does not look like a ${provider.kind} API: check the base URL setting`]
  return [`Unexpected answer ${status} from ${provider.name}`]
}

/**
 * The cheap call that tells whether an idle provider is back once its cooldown ends: whoami-v2 on
 * the Hub (its key endpoint elsewhere) with the token in use, or the model list when there is no
 * token. Unlike a check it goes through the gate (it is the half-open probe of a provider that is
 * down, which the other replicas then do not take too) and its outcome counts in the health.
 */
export async function probeProvider (provider: Provider): Promise<void> {
  const [tokenProbe, catalogueProbe] = PROBES[provider.kind]
  const probe = provider.token !== undefined || provider.kind === 'openai' ? tokenProbe! : catalogueProbe!
  await provider.fetch(`${provider.baseUrl}${probe.path}`, { headers: { accept: 'application/json', ...(probe.needsToken ? provider.authHeaders() : {}) } })
}
