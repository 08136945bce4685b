import type { Test } from 'tap'
import { FakeHub } from '../fakes/fake-hub.js'
import { FakeProvider } from '../fakes/fake-providers.js'
import { buildTestApp, type TestApp } from './app.js'

export const TOKENS = {
  hf: 'hf_provider_test_token_1234',
  openrouter: 'sk-or-v1-router-token-5678',
  openai: 'sk-openai-test-token-9012'
}

export interface ProvidersAndApp extends TestApp {
  hub: FakeHub
  openrouter: FakeProvider
  openai: FakeProvider
  clock: { now: number }
}

/** Fake Hub, OpenRouter and OpenAI-compatible upstreams, and the app pointed at them as a user would; time is the test's. */
export async function providersAndApp (t: Test, env: Record<string, string> = {}): Promise<ProvidersAndApp> {
  const hub = await FakeHub.start({ tokens: { [TOKENS.hf]: { name: 'ada', role: 'read' } } })
  hub.addRepo({ id: 'org/tiny', pipelineTag: 'text-generation', revisions: { main: { commit: '1'.repeat(40), files: [{ path: 'config.json', content: '{}' }] } } })
  hub.addRepo({ id: 'org/vision', pipelineTag: 'image-classification', revisions: { main: { commit: '2'.repeat(40), files: [{ path: 'config.json', content: '{}' }] } } })
  const openrouter = await FakeProvider.start({
    kind: 'openrouter',
    tokens: [TOKENS.openrouter],
    models: [{ id: 'meta-llama/llama-3.1-8b-instruct' }, { id: 'mistralai/mistral-7b-instruct' }, { id: 'openai/gpt-4o-mini' }]
  })
  const openai = await FakeProvider.start({ kind: 'openai', tokens: [TOKENS.openai], models: [{ id: 'qwen2.5-7b-instruct' }, { id: 'llama-3.1-8b' }] })
  t.teardown(async () => { await Promise.all([hub.close(), openrouter.close(), openai.close()]) })
  const clock = { now: Date.parse('2026-11-22T12:00:00Z') }
  const built = await buildTestApp(t, {
    HF_ENDPOINT: hub.url,
    HF_TOKEN: TOKENS.hf,
    OPENROUTER_BASE_URL: openrouter.url,
    OPENROUTER_API_KEY: TOKENS.openrouter,
    OPENAI_BASE_URL: openai.url,
    OPENAI_API_KEY: TOKENS.openai,
    RATE_LIMIT_PER_MINUTE: '10000',
    ...env
  }, { now: () => clock.now })
  return { ...built, hub, openrouter, openai, clock }
}
