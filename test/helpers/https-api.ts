import { createHash, X509Certificate } from 'node:crypto';
import { request } from 'node:https';

/** One API call over https, trusting only `ca` (the relay's own certificate): what `curl --cacert` does. */
export function httpsApi(apiUrl: string, token: string, ca: string | Buffer) {
  return (method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        `${apiUrl}${path}`,
        { method, ca, headers: { authorization: `Bearer ${token}`, ...(payload !== undefined && { 'content-type': 'application/json' }) } },
        (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
}

/** Chromium's `--ignore-certificate-errors-spki-list` value for a certificate: base64 SHA-256 of its public key. */
export function spkiHash(certPem: string | Buffer): string {
  const der = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('base64');
}
