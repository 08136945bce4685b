import { randomBytes } from 'node:crypto'
import type { FakeHub } from './fake-hub.js'

// The model the n8n workflows in examples/n8n download and delete, as the fake Hub serves it, so the
// examples run unchanged: a few small files of each kind their allow_patterns take, and one they leave.
export const EXAMPLES_MODEL = 'Qwen/Qwen2.5-0.5B-Instruct'
const COMMIT = '7ae557604adf67be50417f59c2c2f167def9a775'

export function addExamplesModel (hub: FakeHub): void {
  hub.addRepo({
    id: EXAMPLES_MODEL,
    pipelineTag: 'text-generation',
    revisions: {
      main: {
        commit: COMMIT,
        files: [
          { path: 'config.json', content: '{"model_type":"qwen2","hidden_size":896}' },
          { path: 'generation_config.json', content: '{"do_sample":true}' },
          { path: 'tokenizer.json', content: JSON.stringify({ vocab: Array.from({ length: 100 }, (_, i) => `tok${i}`) }) },
          { path: 'merges.txt', content: 'a b\nc d\n' },
          { path: 'model.safetensors', content: randomBytes(256 * 1024), lfs: true },
          { path: 'README.md', content: '# not taken by the examples\' allow_patterns\n' }
        ]
      }
    }
  })
}
