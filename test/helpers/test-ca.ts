import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { generate } from 'selfsigned'

export interface TestCa {
  /** The CA's certificate (PEM), written to `caFile`, as NODE_EXTRA_CA_CERTS takes it. */
  caFile: string
  /** A server certificate for 127.0.0.1 and localhost signed by that CA, with its key. */
  server: { key: string, cert: string }
}

/**
 * A private CA made for one test, as a company's would be, and a certificate it signed for a
 * loopback server. Nothing trusts it unless told to (NODE_EXTRA_CA_CERTS).
 */
export async function makeTestCa (dir: string): Promise<TestCa> {
  const options = { algorithm: 'sha256', keyType: 'ec', curve: 'P-256' } as const
  const ca = await generate([{ name: 'commonName', value: 'modeldepot test CA' }], {
    ...options,
    extensions: [{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true }]
  })
  const server = await generate([{ name: 'commonName', value: '127.0.0.1' }], {
    ...options,
    ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }, { type: 2, value: 'localhost' }] }
    ]
  })
  const caFile = join(dir, 'company-ca.pem')
  writeFileSync(caFile, ca.cert)
  return { caFile, server: { key: server.private, cert: server.cert } }
}
