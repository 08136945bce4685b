import t from 'tap'
import { loadConfig } from '../../../src/config.js'
import { describeNetworkFailure } from '../../../src/outbound/network-failure.js'
import { maskedProxyUrl, proxySecrets, readProxySettings } from '../../../src/outbound/proxy-settings.js'

const base = { API_KEY: 'test-key-alpha-0123456789', HOME: '/tmp/modeldepot-proxy-settings' }

t.test('the lower-case forms win; HTTPS_PROXY, HTTP_PROXY and NO_PROXY each on their own', async (t) => {
  t.same(readProxySettings({}), { httpProxy: undefined, httpsProxy: undefined, noProxy: undefined })
  t.same(readProxySettings({ HTTPS_PROXY: 'http://upper:3128', https_proxy: 'http://lower:3128', HTTP_PROXY: 'http://plain:8080', NO_PROXY: 'a', no_proxy: 'b' }),
    { httpProxy: 'http://plain:8080', httpsProxy: 'http://lower:3128', noProxy: 'b' })
  // An empty lower-case value counts as unset (as every empty setting does), so the upper-case one is used.
  t.match(loadConfig({ ...base, https_proxy: ' ', HTTPS_PROXY: 'http://proxy.corp:3128' }).proxy, { httpsProxy: 'http://proxy.corp:3128' })
})

t.test('the proxy credentials are secrets the logs hide, and are masked where shown', async (t) => {
  const config = loadConfig({ ...base, HTTPS_PROXY: 'http://alice-proxy:p%40ss-w0rd@proxy.corp:3128' })
  for (const secret of ['alice-proxy', 'p%40ss-w0rd', 'p@ss-w0rd', Buffer.from('alice-proxy:p@ss-w0rd').toString('base64')]) {
    t.ok(config.secrets.includes(secret), `${secret} is hidden from the logs`)
  }
  t.equal(maskedProxyUrl('http://alice-proxy:p%40ss-w0rd@proxy.corp:3128'), 'http://****:****@proxy.corp:3128')
  t.equal(maskedProxyUrl('http://proxy.corp:3128/'), 'http://proxy.corp:3128')
  t.same(proxySecrets({ httpProxy: 'http://proxy.corp:3128', httpsProxy: undefined, noProxy: undefined }), [], 'no credentials, no secrets')
})

t.test('a proxy that is not an http(s) URL is refused at start-up, without repeating the value', async (t) => {
  for (const value of ['proxy.corp:3128', 'socks5://bob:hunter2-pw@proxy.corp:1080', 'http://']) {
    t.throws(() => loadConfig({ ...base, HTTP_PROXY: value }), { name: 'ConfigError', message: /^HTTP_PROXY is invalid: expected the proxy's http\(s\) URL/ })
    try { loadConfig({ ...base, http_proxy: value }) } catch (err) { t.notOk((err as Error).message.includes('hunter2-pw')) }
  }
})

t.test('a refused tunnel and an untrusted certificate are told in words a user can act on', async (t) => {
  // As undici and fetch throw them: the cause (or its cause) carries it.
  const refused = new TypeError('fetch failed', { cause: Object.assign(new Error('Proxy response (407) !== 200 when HTTP Tunneling'), { code: 'UND_ERR_ABORTED' }) })
  t.equal(describeNetworkFailure(refused), 'the proxy refused the connection with 407: check the user and password in HTTPS_PROXY / HTTP_PROXY')
  t.equal(describeNetworkFailure(new Error('Proxy response (403) !== 200 when HTTP Tunneling')), 'the proxy refused the connection with 403')
  const untrusted = new TypeError('fetch failed', { cause: Object.assign(new Error('self-signed certificate in certificate chain'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' }) })
  t.match(describeNetworkFailure(untrusted), /not trusted \(SELF_SIGNED_CERT_IN_CHAIN\): .*NODE_EXTRA_CA_CERTS/)
  t.equal(describeNetworkFailure(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })), undefined, 'any other failure keeps its code')
})
