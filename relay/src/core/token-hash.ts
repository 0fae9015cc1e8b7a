import { createHash } from 'node:crypto';

/** How the relay keeps bearer and VNC tokens: SHA-256, hex. The token itself is never stored. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}
