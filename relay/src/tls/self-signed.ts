import { createPrivateKey, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import ipaddr from 'ipaddr.js';

/*
 * The relay's self-signed ECDSA P-256 server certificate, made with @peculiar/x509 (a maintained
 * X.509 library on WebCrypto) instead of DER written by hand. It is loaded only on the start that
 * makes the certificate (≈ 100 ms of module loading, once in a relay's life), so every other
 * start pays nothing for it.
 */

export interface SelfSignedCertificate {
  /** PEM certificate. */
  cert: string;
  /** PEM PKCS#8 private key. */
  key: string;
}

/**
 * An IP address as the library's SAN writer reads it: fully written out, since it reads the
 * dotted tail of an IPv4-mapped address (`::ffff:10.0.0.1`) as one hex group (as the relay's own
 * DER writer did). ipaddr.js writes any IPv6 form as eight groups; undefined for a DNS name.
 */
function ipForSan(entry: string): string | undefined {
  if (!ipaddr.isValid(entry)) return undefined;
  const address = ipaddr.parse(entry);
  return address.kind() === 'ipv6' ? (address as ipaddr.IPv6).toNormalizedString() : address.toString();
}

/**
 * A new ECDSA P-256 key and a self-signed server certificate for it, valid from an hour ago for
 * `validDays`, with `names` (DNS names and IP addresses) as subject alternative names.
 */
export async function createSelfSignedCertificate(commonName: string, names: readonly string[], validDays = 3650, now = new Date()): Promise<SelfSignedCertificate> {
  await import('reflect-metadata'); // @peculiar/x509's dependency injection needs the Reflect metadata API
  const x509 = await import('@peculiar/x509');
  x509.cryptoProvider.set(webcrypto as Crypto);
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const serial = randomBytes(16);
  serial[0]! &= 0x7f; // a positive serial number of 16 random bytes
  const alternativeNames = [...new Set(names)].map((entry) => {
    const ip = ipForSan(entry);
    return ip ? { type: 'ip' as const, value: ip } : { type: 'dns' as const, value: entry };
  });
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString('hex'),
    name: [{ CN: [commonName] }, { O: ['Lifeline relay'] }],
    notBefore: new Date(now.getTime() - 3600_000),
    notAfter: new Date(now.getTime() + validDays * 86_400_000),
    signingAlgorithm: algorithm,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(alternativeNames),
    ],
  });
  const cert = certificate.toString('pem').replace(/\r\n/g, '\n').trimEnd() + '\n';
  const key = createPrivateKey({ key: Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)), format: 'der', type: 'pkcs8' });
  // Sanity: Node must read it back and find it signed by its own key.
  const parsed = new X509Certificate(cert);
  if (!parsed.checkPrivateKey(key) || !parsed.verify(parsed.publicKey)) throw new Error('internal error: the self-signed certificate does not verify');
  return { cert, key: key.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

/** Checks that `keyPem` is the private key of `certPem`; throws a readable error otherwise. */
export function checkKeyPair(certPem: Buffer, keyPem: Buffer, where: string): void {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certPem);
  } catch (error) {
    throw new Error(`${where}: the certificate is not a PEM X.509 certificate (${(error as Error).message})`, { cause: error });
  }
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch (error) {
    throw new Error(`${where}: the key is not a PEM private key (${(error as Error).message})`, { cause: error });
  }
  if (!certificate.checkPrivateKey(key)) throw new Error(`${where}: the key does not belong to the certificate`);
}
