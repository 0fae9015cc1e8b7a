import { createHash } from 'node:crypto';

/** An SSH key's fingerprint as `ssh-keygen -lf` prints it: `SHA256:<base64 without padding>` of its wire blob. */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}
