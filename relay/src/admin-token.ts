import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hashToken } from './core/token-hash.js';
import type { Logger } from './logger.js';
import type { Store } from './store/store.js';

const ADMIN = 'admin';

/**
 * The admin token bootstrap: `LIFELINE_ADMIN_TOKEN` when set; otherwise, on first start with
 * no tokens, a new random token written to `<dataDir>/admin.token` (0600). Only hashes are stored.
 */
export async function ensureAdminToken(store: Store, dataDir: string, fromEnvironment: string | undefined, log: Logger): Promise<void> {
  if (fromEnvironment !== undefined) {
    if (!/^[A-Za-z0-9._~+/=-]{16,512}$/.test(fromEnvironment)) {
      throw new Error('LIFELINE_ADMIN_TOKEN must be 16-512 characters of letters, digits and ._~+/=-');
    }
    await store.replaceToken({ hash: hashToken(fromEnvironment), name: ADMIN, createdAt: Date.now() });
    log.info('admin token taken from LIFELINE_ADMIN_TOKEN');
    return;
  }
  if ((await store.countTokens()) > 0) return;
  const token = `llt_${randomBytes(32).toString('base64url')}`;
  const file = join(dataDir, 'admin.token');
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  await store.replaceToken({ hash: hashToken(token), name: ADMIN, createdAt: Date.now() });
  log.info({ path: file }, 'created the admin API token');
}
