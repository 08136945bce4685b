import t from 'tap'
import { buildTestApp, KEY, OTHER_KEY } from '../helpers/app.js'

// Exactly one form opens /api: `Authorization: Bearer <key>`, with a key from API_KEY, whole and
// nothing else. Everything near it is a 401 of the common shape, and the 401 says nothing about why
// beyond "missing" or "invalid" (no hint that a key was nearly right).

const oneCharOff = (key: string, at: number): string => `${key.slice(0, at)}${key[at] === 'x' ? 'y' : 'x'}${key.slice(at + 1)}`

const MALFORMED: Record<string, string> = {
  'scheme alone': 'Bearer',
  'scheme and a space': 'Bearer ',
  'Basic with a made-up value': 'Basic x',
  'Basic with the key': `Basic ${KEY}`,
  'Basic with the key in base64': `Basic ${Buffer.from(`user:${KEY}`).toString('base64')}`,
  'lowercase scheme': `bearer ${KEY}`,
  'uppercase scheme': `BEARER ${KEY}`,
  'two spaces before the key': `Bearer  ${KEY}`,
  'a tab before the key': `Bearer\t${KEY}`,
  'no space': `Bearer${KEY}`,
  'the key alone': KEY,
  'the key twice': `Bearer ${KEY} ${KEY}`,
  'two keys, comma-separated as in API_KEY': `Bearer ${KEY},${OTHER_KEY}`,
  'a token68 padding after the key': `Bearer ${KEY}=`,
  'quoted key': `Bearer "${KEY}"`,
  'another scheme first': `Digest ${KEY}`
}

const ALMOST: Record<string, string> = {
  'first character off': oneCharOff(KEY, 0),
  'middle character off': oneCharOff(KEY, Math.floor(KEY.length / 2)),
  'last character off': oneCharOff(KEY, KEY.length - 1),
  'prefix (one short)': KEY.slice(0, -1),
  'prefix (half)': KEY.slice(0, KEY.length / 2),
  'suffix (one short at the front)': KEY.slice(1),
  'one character longer': `${KEY}x`,
  'the key with another appended': `${KEY}${OTHER_KEY}`,
  'upper case': KEY.toUpperCase(),
  'a lookalike unicode character': KEY.replace('a', 'а')
}

const unauthorized = { statusCode: 401, error: 'Unauthorized', code: 'MD_UNAUTHORIZED', message: 'Missing or invalid API key', hint: String }

t.test('no Authorization header is a 401 of the common shape', async (t) => {
  const { app } = await buildTestApp(t)
  const res = await app.inject({ url: '/api/info' })
  t.equal(res.statusCode, 401)
  t.match(res.headers['content-type'], /^application\/json/)
  t.same(Object.keys(res.json()).sort(), ['code', 'error', 'hint', 'message', 'statusCode'])
  t.match(res.json(), unauthorized)
  t.equal(res.headers['www-authenticate'], 'Bearer realm="modeldepot"')
})

for (const [group, headers] of [['malformed', MALFORMED], ['almost right', ALMOST]] as const) {
  t.test(`${group} Authorization headers are a 401 of the common shape`, async (t) => {
    const { app } = await buildTestApp(t)
    for (const [name, authorization] of Object.entries(headers)) {
      const res = await app.inject({ url: '/api/info', headers: { authorization } })
      t.equal(res.statusCode, 401, name)
      t.match(res.json(), unauthorized, `${name}: the common shape`)
      t.match(res.headers['www-authenticate'], /^Bearer realm="modeldepot"/, `${name}: the challenge names the scheme`)
    }
    // The same refusal for every route that needs a key, the 404 of an unknown one included.
    for (const url of ['/api/models', '/api/providers', '/api/downloads/x', '/api/nothing-here', '/metrics']) {
      const res = await app.inject({ url, headers: { authorization: Object.values(headers)[0] ?? '' } })
      t.equal(res.statusCode, 401, url)
    }
  })
}

t.test('the exact form with either key gets in', async (t) => {
  const { app } = await buildTestApp(t)
  for (const key of [KEY, OTHER_KEY]) {
    t.equal((await app.inject({ url: '/api/info', headers: { authorization: `Bearer ${key}` } })).statusCode, 200)
  }
})

t.test('a 401 looks the same whether the key was nearly right or nothing like it', async (t) => {
  const { app } = await buildTestApp(t)
  const body = async (authorization: string): Promise<string> => (await app.inject({ url: '/api/info', headers: { authorization } })).body
  const far = await body('Bearer nothing-like-it')
  for (const [name, key] of Object.entries(ALMOST)) t.equal(await body(`Bearer ${key}`), far, name)
})
