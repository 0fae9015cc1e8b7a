import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { writeFileDurable } from './store/durable-file.js';
import { hashToken } from './core/token-hash.js';
import type { Logger } from './logger.js';
import type { Store } from './store/store.js';

const ADMIN = 'admin';

/** A new API token: `llt_` and 256 random bits. */
export function newApiToken(): string {
  return `llt_${randomBytes(32).toString('base64url')}`;
}

/** What lists show of a token: `llt_` and 6 characters (36 of its 256 bits); nothing of a token the relay did not make. */
export function tokenPrefix(token: string): string {
  return token.startsWith('llt_') ? token.slice(0, 10) : '';
}

/**
 * The admin token bootstrap: `LIFELINE_ADMIN_TOKEN` when set; otherwise, on first start with
 * no tokens, a new random token written to `<dataDir>/admin.token` (0600). Only hashes are stored.
 */
export async function ensureAdminToken(store: Store, dataDir: string, fromEnvironment: string | undefined, log: Logger): Promise<void> {
  if (fromEnvironment !== undefined) {
    if (!/^[A-Za-z0-9._~+/=-]{16,512}$/.test(fromEnvironment)) {
      throw new Error('LIFELINE_ADMIN_TOKEN must be 16-512 characters of letters, digits and ._~+/=-');
    }
    await store.replaceToken({ id: randomUUID(), hash: hashToken(fromEnvironment), name: ADMIN, prefix: '', scopes: ['admin'], createdAt: Date.now() });
    log.info('admin token taken from LIFELINE_ADMIN_TOKEN');
    return;
  }
  if ((await store.countTokens()) > 0) return;
  const token = newApiToken();
  const file = join(dataDir, 'admin.token');
  writeFileDurable(file, `${token}\n`, 0o600);
  await store.replaceToken({ id: randomUUID(), hash: hashToken(token), name: ADMIN, prefix: tokenPrefix(token), scopes: ['admin'], createdAt: Date.now() });
  log.info({ path: file }, 'created the admin API token');
}
