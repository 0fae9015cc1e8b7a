import { constants, X509Certificate } from 'node:crypto';
import { chmodSync, readFileSync } from 'node:fs';
import { writeFileDurable } from '../store/durable-file.js';
import { hostname, networkInterfaces } from 'node:os';
import type { Server } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { Ipv4Cidr } from '../core/cidr.js';
import type { RelayConfig } from '../config/config.js';
import { checkKeyPair, createSelfSignedCertificate } from './self-signed.js';
import { endWithHttpResponse } from '../http/raw-response.js';

/** What the relay serves its API and WebSocket VNC port with, once `api.tls` is resolved. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  /** SHA-256 of the DER certificate, `AB:CD:…`. */
  fingerprint: string;
  /** `self-signed` (made and kept in the data folder), `configured` (api.tls.cert/key), or `fleet` (one self-signed certificate for every gateway, kept in the fleet's database). */
  origin: 'self-signed' | 'configured' | 'fleet';
  certPath: string;
  validTo: string;
  subjectAltNames: string;
}

/**
 * The relay's TLS policy for the API and the VNC port: Mozilla's "intermediate" profile without
 * its DHE suites — TLS 1.2 only with ECDHE key exchange and AEAD ciphers (no CBC, so nothing for
 * LUCKY13; no ARIA, CCM or static RSA), TLS 1.3 with Node's default suites, and no renegotiation.
 */
export const TLS_SERVER_POLICY = {
  minVersion: 'TLSv1.2',
  ciphers: [
    // TLS 1.3: Node's default suites in Node's default order, so that what TLS 1.3 clients agree is unchanged.
    'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256', 'TLS_AES_128_GCM_SHA256',
    'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384',
    'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305',
  ].join(':'),
  honorCipherOrder: true,
  secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
} as const;

/** The data-folder files of the self-signed certificate. */
export function selfSignedPaths(dataDir: string): { cert: string; key: string } {
  return { cert: join(dataDir, 'tls.crt'), key: join(dataDir, 'tls.key') };
}

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function poolIsLoopback(cidr: Ipv4Cidr): boolean {
  // Inside 127.0.0.0/8: the prefix is at least 8 and the network starts with 127.
  return cidr.prefix >= 8 && cidr.network >>> 24 === 127;
}

/** Whether `auto` means on: the API, the default endpoint or the pool for private endpoints reaches off loopback. */
export function tlsWanted(config: RelayConfig): boolean {
  if (config.api.tls.mode !== 'auto') return config.api.tls.mode === 'on';
  return !isLoopbackHost(config.api.host) || !isLoopbackHost(config.endpoints.default.ipAddress) || !config.endpoints.addressPool.every(poolIsLoopback);
}

/** The names the self-signed certificate covers: loopback, this host, the configured addresses and the machine's own. */
export function alternativeNames(config: RelayConfig): string[] {
  const names = ['localhost', '127.0.0.1', '::1', hostname()];
  for (const host of [config.api.host, config.endpoints.default.ipAddress]) {
    if (host !== '0.0.0.0' && host !== '::') names.push(host);
  }
  for (const addresses of Object.values(networkInterfaces())) {
    for (const address of addresses ?? []) if (!address.internal && !address.address.startsWith('fe80:')) names.push(address.address);
  }
  return [...new Set(names)];
}

/** What the relay shows of a certificate: its fingerprint (`AB:CD:…`, SHA-256 of the DER, as browsers, OpenSSL and `lifeline-relay info` show it), expiry and names. */
function certificateFacts(cert: Buffer): { fingerprint: string; validTo: string; subjectAltNames: string } {
  const parsed = new X509Certificate(cert);
  return { fingerprint: parsed.fingerprint256, validTo: new Date(parsed.validTo).toISOString(), subjectAltNames: parsed.subjectAltName ?? '' };
}

export function describeTls(cert: Buffer, key: Buffer, origin: TlsMaterial['origin'], certPath: string): TlsMaterial {
  return { cert, key, origin, certPath, ...certificateFacts(cert) };
}

/**
 * Loads the certificate the config names, or the self-signed one kept in the data folder,
 * making it (and its 0600 key) on first use. Undefined when TLS is off.
 */
export async function loadTlsMaterial(config: RelayConfig): Promise<TlsMaterial | undefined> {
  if (!tlsWanted(config)) return undefined;
  const { cert: certPath, key: keyPath } = config.api.tls;
  if (certPath && keyPath) {
    const cert = readFileSync(certPath);
    const key = readFileSync(keyPath);
    checkKeyPair(cert, key, 'api.tls');
    return describeTls(cert, key, 'configured', certPath);
  }
  const paths = selfSignedPaths(config.dataDir);
  try {
    const cert = readFileSync(paths.cert);
    const key = readFileSync(paths.key);
    checkKeyPair(cert, key, `${paths.cert} and ${paths.key}`);
    chmodSync(paths.key, 0o600);
    return describeTls(cert, key, 'self-signed', paths.cert);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const made = await createSelfSignedCertificate(`lifeline-relay ${hostname()}`, alternativeNames(config));
  // Key first, each on the disk whole before the next, so a crash never leaves a certificate without its key.
  writeFileDurable(paths.key, made.key, 0o600);
  writeFileDurable(paths.cert, made.cert, 0o644);
  return describeTls(Buffer.from(made.cert), Buffer.from(made.key), 'self-signed', paths.cert);
}

/** The fingerprint of a kept certificate without making one (for `lifeline-relay info`). */
export function readTlsFingerprint(certPath: string): { fingerprint: string; validTo: string; subjectAltNames: string } | undefined {
  let cert: Buffer;
  try {
    cert = readFileSync(certPath);
  } catch {
    return undefined;
  }
  return certificateFacts(cert);
}

/** The first byte of a TLS connection (a handshake record); anything else is plain text. */
const TLS_HANDSHAKE = 0x16;

/**
 * Routes each new connection by its first byte: TLS to `secure`, anything else (plain HTTP
 * sent to an HTTPS port) to `plain`, which answers it in words instead of a dropped
 * connection. The peeked bytes are put back, and TLSSocket reads them from the buffer.
 */
export function splitPlaintext(socket: Duplex & { setTimeout?: (ms: number) => void }, secure: () => void, plain: () => void, timeoutMs = 10_000): void {
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  const onClose = (): void => clearTimeout(timer);
  socket.once('close', onClose);
  socket.once('error', () => socket.destroy());
  socket.once('data', (chunk: Buffer) => {
    clearTimeout(timer);
    socket.off('close', onClose);
    socket.pause();
    socket.unshift(chunk);
    if (chunk[0] === TLS_HANDSHAKE) secure();
    else plain();
  });
}


/**
 * Puts `splitPlaintext` in front of a TLS server's own connection handling (Fastify's HTTPS
 * server), so that a plain-HTTP client is told to use https:// instead of being cut off.
 */
export function answerPlaintextOn(server: Server, body: (socket: Duplex) => { contentType: string; text: string }): void {
  const handlers = server.listeners('connection') as Array<(socket: Duplex) => void>;
  server.removeAllListeners('connection');
  server.on('connection', (socket: Duplex) => {
    splitPlaintext(
      socket,
      () => {
        for (const handler of handlers) handler.call(server, socket);
      },
      () => {
        const { contentType, text } = body(socket);
        endWithHttpResponse(socket, 400, { contentType, body: text });
      },
    );
  });
}
