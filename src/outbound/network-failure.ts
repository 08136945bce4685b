// undici's ProxyAgent gives up with this message when the proxy answers its CONNECT with anything but 200.
const TUNNEL_REFUSED = /^Proxy response \((\d{3})\) !== 200 when HTTP Tunneling$/
// Node's codes for a certificate chain it cannot trust.
const UNTRUSTED_CERTIFICATE = new Set(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_UNTRUSTED'])

/**
 * Why an outbound request failed, in words a user can act on, for the two failures of a corporate
 * network that a bare code hides: a proxy that refuses the tunnel (a wrong password), and a TLS
 * certificate from a private CA. Undefined for any other failure. Never shows the proxy's credentials.
 */
export function describeNetworkFailure (err: unknown): string | undefined {
  let current = err as { message?: unknown, code?: unknown, cause?: unknown } | null | undefined
  for (let depth = 0; depth < 5 && current !== null && typeof current === 'object'; depth++) {
    const refused = typeof current.message === 'string' ? TUNNEL_REFUSED.exec(current.message) : null
    if (refused !== null) {
      const status = refused[1]
      const credentials = status === '407' || status === '401' ? ': check the user and password in HTTPS_PROXY / HTTP_PROXY' : ''
      return `the proxy refused the connection with ${status}${credentials}`
    }
    if (typeof current.code === 'string' && UNTRUSTED_CERTIFICATE.has(current.code)) {
      return `its TLS certificate is not trusted (${current.code}): a private CA's certificate goes in NODE_EXTRA_CA_CERTS`
    }
    current = current.cause as typeof current
  }
  return undefined
}
