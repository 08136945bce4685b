import fc from 'fast-check'

// The values a hostile or careless client sends where the API expects a model id, a revision, a
// pattern, a job id or a provider name: path tricks, encodings, control characters, unicode, sizes
// at and past every limit, and JSON of every other type.

/** Stands for "the job id the server handed out last", resolved when the request is sent. */
export const LAST_JOB_ID = '<last job id>'

const traversal = [
  '..', '../..', '../../..', '../canary', '../../canary/secret.txt', '..\\..\\canary', 'org/..', 'org/../..', '../models--org--tiny',
  // eslint-disable-next-line no-template-curly-in-string -- a literal ${VAR}, as a client would send it, not a template
  'org/tiny/../../../canary', '/etc/passwd', '/', '//', '.', './', '~', '~/.ssh/id_rsa', '$HOME', '${HF_HOME}/token', 'C:\\Windows\\win.ini',
  '\\\\server\\share', 'file:///etc/passwd', 'http://127.0.0.1:1/x', 'models--org--tiny', 'hub', '.locks', '.modeldepot', '.modeldepot/state.json'
]
const encodings = ['%2e%2e', '%2e%2e%2f%2e%2e', '..%2f..%2fcanary', '%2E%2E/%2E%2E', '%252e%252e', 'org%2Ftiny', '%00', '%', '%zz', '%C0%AE%C0%AE', '..%c0%af']
const control = ['a\u0000b', '\u0000', 'org/tiny\u0000.json', 'line\nbreak', 'tab\there', '\r\n\r\nX-Injected: 1', '\u001b[31mred', '\u007f', ' ', '   ', '']
const unicode = ['модель/тест', '模型/名称', '😀/😀', 'org\u202e/evil', 'e\u0301', 'ﬀ/ﬁ', '\uFEFForg/tiny', '\uD800', 'Ａ/Ｂ', 'İ/ı']
const lookalikes = [
  'org/tiny', 'org/vision', 'org/absent', 'tiny', 'Org/Tiny', 'org/tiny.git', 'org--tiny', 'org/-tiny', 'org/tiny-', '-/-', '_/_', 'a/b/c',
  'main', 'v2', 'refs/pr/1', 'refs/heads/main', '1'.repeat(40), '1'.repeat(39), 'g'.repeat(40), 'HEAD', '@', '@{-1}', 'main.lock', 'a..b', 'main/',
  '*', '**', '*.json', '*.safetensors,*.json', 'original/', '[', '[!]]', '[z-a]', '?', ',,,', '*'.repeat(300),
  'huggingface', 'openrouter', 'openai', 'HuggingFace', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf',
  '00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff', LAST_JOB_ID,
  'true', 'false', 'null', 'undefined', 'NaN', '-1', '0', '61', '1e1', '0x10', '9'.repeat(400)
]

/** Ids at and just past each length limit (part 96, whole id 96, revision 255, pattern 256, provider field 200). */
const atLimits = fc.constantFrom(95, 96, 97, 200, 201, 255, 256, 257, 4096, 4097)
  .chain((length) => fc.constantFrom('a'.repeat(length), `org/${'a'.repeat(length)}`, `${'a'.repeat(length)}/x`, 'é'.repeat(length)))

/** A string that is odd where a name or id is expected. */
export const oddString: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...traversal, ...encodings, ...control, ...unicode, ...lookalikes) },
  { weight: 2, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...traversal, ...lookalikes, ...encodings), fc.constantFrom('/', '\\', '', '..', '%2f')).map(([a, b]) => `${a}${b}${a}`) },
  { weight: 1, arbitrary: atLimits },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 100_000 }).map((length) => 'x'.repeat(length)) }
)

/** Nesting as a value; far deeper nesting goes as raw text (see rawBody), which nothing here has to stringify. */
const deeplyNested = fc.constantFrom(100, 500).map((depth) => JSON.parse(`${'['.repeat(depth)}"x"${']'.repeat(depth)}`) as unknown)

/** Any JSON value, biased towards odd strings, with numbers, booleans, null, arrays and objects where a string is expected. */
export const oddJson: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { weight: 6, arbitrary: oddString },
    { weight: 1, arbitrary: fc.integer() },
    { weight: 1, arbitrary: fc.constantFrom(0, -0, -1, 1.5, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, 60, 61) },
    { weight: 1, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
    { weight: 1, arbitrary: fc.boolean() },
    { weight: 1, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: fc.array(tie('value'), { maxLength: 4 }) },
    { weight: 1, arbitrary: fc.dictionary(oddString, tie('value'), { maxKeys: 3 }) },
    { weight: 1, arbitrary: fc.array(fc.constantFrom('*.json', '*', 'a'), { minLength: 101, maxLength: 120 }) },
    { weight: 1, arbitrary: deeplyNested }
  )
})).value

/** A body as raw text: malformed JSON, prototype poisoning, and bodies over the size limit. */
export const rawBody: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('', '{', '{"model_id":', 'null', '[]', '"org/tiny"', '{"model_id":"org/tiny",}', 'nan', '\u0000', '{}{}',
    '{"__proto__":{"model_id":"org/tiny","force":true}}', '{"constructor":{"prototype":{"polluted":true}}}',
    '{"model_id":"org/tiny","model_id":"../x"}', `{"a":${'['.repeat(20_000)}${']'.repeat(20_000)}}`),
  fc.integer({ min: 1024 * 1024 - 64, max: 1024 * 1024 + 4096 }).map((size) => `{"model_id":"${'a'.repeat(size)}"}`)
)

/** A Content-Type a client might send with a body; undefined sends none. */
export const contentType = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom<string | undefined>('application/json') },
  {
    weight: 1,
    arbitrary: fc.constantFrom<string | undefined>('application/json; charset=utf-8', 'APPLICATION/JSON', 'application/json; charset=utf-16', 'text/plain',
      'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/octet-stream', 'application/jsonx', undefined)
  }
)

/** Header-safe text (what a client can put on the wire). */
export const headerText = fc.oneof(
  fc.constantFrom('', ' ', '..', '../../x', 'a'.repeat(300), '%00', '\t'),
  fc.string({ unit: 'binary-ascii', maxLength: 60 }).map((value) => value.replace(/[^\x20-\x7e\t]/g, ''))
)

// Values that work against the sandbox (the fake Hub has org/tiny and org/vision at main; the
// providers are huggingface, openrouter and openai), so a request gets past every parameter but its
// odd one: downloads start and finish, models are deleted, tokens are rotated. Near misses (an absent
// model, a revision the Hub lacks, "true" as a string) are in the odd pool above.
const plausible = new Map<string, unknown[]>(Object.entries({
  model_id: ['org/tiny', 'org/vision'],
  revision: ['main'],
  allow_patterns: ['*.json', ['*.json', 'config.json'], 'config.json,*.md'],
  ignore_patterns: ['*.safetensors', ['*.bin'], ''],
  job_id: [LAST_JOB_ID],
  name: ['huggingface', 'openrouter', 'openai'],
  token: ['sk-fuzzed-token'],
  reason: ['too expensive'],
  wait: [0, 1],
  auto: [false, true],
  force: [true, false],
  purge: [true, false],
  set_default: [false],
  callback_url: ['http://127.0.0.1:9/webhook-waiting/1'],
  validate: [false],
  refresh: [true, false],
  include_blocked: [true, false],
  // No cap, or one far above what the sandbox moves: a cap a client could mean, which slows nothing here.
  max_bytes_per_s: [0, null, 1024 * 1024 * 1024],
  dry_run: [true],
  detached: [true, false],
  repair: [false, true]
}))

/** How odd a parameter's value is: always (`odd`), never if the name is known (`tame`), or mostly not (`mixed`). */
export type Oddness = 'odd' | 'tame' | 'mixed'

function pick<T> (known: T[] | undefined, odd: fc.Arbitrary<T>, oddness: Oddness): fc.Arbitrary<T> {
  if (known === undefined || known.length === 0 || oddness === 'odd') return odd
  return oddness === 'tame' ? fc.constantFrom(...known) : fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...known) }, { weight: 1, arbitrary: odd })
}

/** A value for a parameter the API reads from a JSON body. */
export const valueFor = (name: string, oddness: Oddness): fc.Arbitrary<unknown> => pick(plausible.get(name), oddJson, oddness)

/** The same for the URL, where every value is text. */
export const textFor = (name: string, oddness: Oddness): fc.Arbitrary<string> =>
  pick(plausible.get(name)?.filter((value) => typeof value !== 'object').map(String), oddString, oddness)
