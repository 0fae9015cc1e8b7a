import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { connect, rootCertificates, type TLSSocket } from 'node:tls';

/*
 * How the desktop reaches a relay's API over https://: the certificate is either trusted by
 * the system (a CA-signed one, checked with its host name) or pinned by its SHA-256
 * fingerprint, as the SSH host key is. The check is made on the handshake, before a byte of the
 * request (and its bearer token) is written. No global switch is touched.
 */

/** `AB:CD:…` (64 hex digits in pairs), as `lifeline-relay info`, browsers and OpenSSL print it. */
const FINGERPRINT = /\b([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){31})\b/;

/** Finds a SHA-256 certificate fingerprint in pasted text (a bare fingerprint, `openssl x509 -fingerprint`, or `lifeline-relay info`). */
export function parseFingerprint(text: string): string | undefined {
  const compact = /\b([0-9A-Fa-f]{64})\b/.exec(text);
  const match = FINGERPRINT.exec(text);
  if (match) return match[1]!.toUpperCase();
  if (compact) return compact[1]!.toUpperCase().replace(/(..)(?!$)/g, '$1:');
  return undefined;
}

/** What the relay's certificate is, before the user decides to trust it. */
export interface CertificateInfo {
  fingerprint: string;
  /** Trusted through the system's CAs, with a matching host name: no pin needed. */
  trusted: boolean;
  /** Why it is not trusted (self-signed, unknown CA, name mismatch). */
  untrustedBecause?: string;
  subject: string;
  validTo: string;
}

export class TlsTrustError extends Error {
  constructor(
    message: string,
    readonly code: 'TlsCertificateChanged' | 'TlsUntrusted',
    readonly fingerprint: string,
  ) {
    super(message);
    this.name = 'TlsTrustError';
  }
}

/** OpenSSL's verification codes, in words. */
const UNTRUSTED_REASONS: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'it is self-signed',
  SELF_SIGNED_CERT_IN_CHAIN: 'it is signed by a CA this system does not trust',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'its issuer is not a CA this system trusts',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'its issuer is not a CA this system trusts',
  CERT_HAS_EXPIRED: 'it has expired',
  CERT_NOT_YET_VALID: 'it is not valid yet',
};

/**
 * The CAs a relay's certificate may be trusted by: Node's bundled CAs plus the system's bundle
 * (`SSL_CERT_FILE`, else Debian/RHEL/Alpine's path), read on first use. One per desktop service,
 * handed to every call (no module-level cache: a test or a changed SSL_CERT_FILE gets a new one).
 */
export class TrustStore {
  private certificates: string[] | undefined;

  get(): string[] {
    if (this.certificates) return this.certificates;
    const bundles = [process.env.SSL_CERT_FILE, '/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];
    const extra: string[] = [];
    for (const file of bundles) {
      if (!file) continue;
      try {
        extra.push(...(readFileSync(file, 'utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []));
        break;
      } catch {
        // Not here; try the next.
      }
    }
    this.certificates = [...rootCertificates, ...extra];
    return this.certificates;
  }
}

function target(url: URL): { host: string; port: number } {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return { host, port: Number(url.port || 443) };
}

/** Opens a TLS connection and describes the certificate; trusts nothing yet. */
function handshake(url: URL, trust: TrustStore, timeoutMs: number): Promise<{ socket: TLSSocket; info: CertificateInfo }> {
  const { host, port } = target(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, ...(isIP(host) === 0 && { servername: host }), ca: trust.get(), rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
    const timer = setTimeout(() => socket.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })), timeoutMs);
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const certificate = socket.getPeerX509Certificate();
      if (!certificate) {
        socket.destroy();
        return reject(new Error('the relay presented no certificate'));
      }
      // The host name check of tls.checkServerIdentity, on the X509Certificate (getPeerCertificate() after
      // getPeerX509Certificate() answers an empty object in Node 20).
      const nameMatches = isIP(host) ? certificate.checkIP(host) !== undefined : certificate.checkHost(host) !== undefined;
      const reason = socket.authorized ? undefined : String(socket.authorizationError);
      const untrustedBecause = reason === 'ERR_TLS_CERT_ALTNAME_INVALID' || (!reason && !nameMatches) ? `the certificate is not for ${host}` : reason && (UNTRUSTED_REASONS[reason] ?? reason);
      resolve({
        socket,
        info: {
          fingerprint: certificate.fingerprint256,
          trusted: untrustedBecause === undefined,
          ...(untrustedBecause && { untrustedBecause }),
          subject: certificate.subject.replace(/\n/g, ', '),
          validTo: new Date(certificate.validTo).toISOString(),
        },
      });
    });
  });
}

/** The relay's certificate, for the user to confirm. */
export async function inspectCertificate(url: string, trust: TrustStore, timeoutMs = 10_000): Promise<CertificateInfo> {
  const { socket, info } = await handshake(new URL(url), trust, timeoutMs);
  socket.destroy();
  return info;
}

/**
 * A TLS connection the request may be written to: the certificate matches `pin` when one is
 * kept, else the system trusts it. Otherwise the connection is closed unused and the error
 * names the fingerprints.
 */
export async function trustedConnection(url: URL, pin: string | undefined, trust: TrustStore, timeoutMs: number): Promise<TLSSocket> {
  const { socket, info } = await handshake(url, trust, timeoutMs);
  if (pin !== undefined) {
    if (info.fingerprint.toUpperCase() === pin.toUpperCase()) return socket;
    socket.destroy();
    throw new TlsTrustError(
      `The relay at ${url.host} presents the TLS certificate ${info.fingerprint}, not the pinned ${pin}. Lifeline refuses it: someone may be in the way. ` +
        'If the relay\'s certificate was replaced on purpose, check the new fingerprint with "lifeline-relay info" on the relay and enter it in the relay\'s settings.',
      'TlsCertificateChanged',
      info.fingerprint,
    );
  }
  if (info.trusted) return socket;
  socket.destroy();
  throw new TlsTrustError(
    `The relay at ${url.host} presents a TLS certificate this system does not trust (${info.untrustedBecause}). Its SHA-256 fingerprint is ${info.fingerprint}: ` +
      'compare it with "lifeline-relay info" on the relay, then confirm it to pin it.',
    'TlsUntrusted',
    info.fingerprint,
  );
}

export interface HttpAnswer {
  status: number;
  body: string;
  /** The body as it came (a recording's binary segment). */
  bytes: Buffer;
}

/** One request on its own connection: https through `trustedConnection`, plain http as is. */
export async function relayRequest(
  url: URL,
  options: { method: string; headers: Record<string, string>; body?: string; pin?: string; trust: TrustStore; timeoutMs: number },
): Promise<HttpAnswer> {
  const socket = url.protocol === 'https:' ? await trustedConnection(url, options.pin, options.trust, options.timeoutMs) : undefined;
  return new Promise((resolve, reject) => {
    const { host, port } = url.protocol === 'https:' ? target(url) : { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 80) };
    const request = httpRequest(
      {
        host,
        port,
        method: options.method,
        path: `${url.pathname}${url.search}`,
        headers: { host: url.host, connection: 'close', ...options.headers, ...(options.body !== undefined && { 'content-length': String(Buffer.byteLength(options.body)) }) },
        // With createConnection and no agent, Node writes the request to exactly this (verified) socket.
        ...(socket ? { createConnection: () => socket } : { agent: false }),
        timeout: options.timeoutMs,
      },
      (response: IncomingMessage) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const bytes = Buffer.concat(chunks);
          resolve({ status: response.statusCode ?? 0, body: bytes.toString('utf8'), bytes });
        });
        response.on('error', reject);
      },
    );
    request.on('timeout', () => request.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    request.on('error', reject);
    request.end(options.body);
  });
}
