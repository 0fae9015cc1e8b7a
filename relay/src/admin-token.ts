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

/** Anything shorter is guessable offline from its hash or online at the rate limit; 32 characters of base64 carry 192 bits. */
export const MIN_ADMIN_TOKEN_LENGTH = 32;
/** Words that mark a value copied from an example instead of generated. */
const PLACEHOLDER = /replace|change.?me|placeholder|example|secret-here|your.?token|x{8}/i;

/** Why `token` cannot be the admin token, or undefined when it can. */
export function adminTokenProblem(token: string): string | undefined {
  if (token.length < MIN_ADMIN_TOKEN_LENGTH) return `is ${token.length} characters long; it needs at least ${MIN_ADMIN_TOKEN_LENGTH}`;
  if (token.length > 512) return 'is longer than 512 characters';
  if (!/^[A-Za-z0-9._~+/=-]+$/.test(token)) return 'may hold only letters, digits and ._~+/=-';
  if (PLACEHOLDER.test(token)) return 'is a placeholder from an example, not a generated token';
  if (new Set(token).size < 8) return 'repeats too few characters to be random';
  return undefined;
}

/**
 * The admin token bootstrap: `LIFELINE_ADMIN_TOKEN` when set; otherwise, on first start with
 * no tokens, a new random token written to `<dataDir>/admin.token` (0600). Only hashes are stored.
 */
export async function ensureAdminToken(store: Store, dataDir: string, fromEnvironment: string | undefined, log: Logger): Promise<void> {
  if (fromEnvironment !== undefined) {
    const problem = adminTokenProblem(fromEnvironment);
    if (problem) throw new Error(`LIFELINE_ADMIN_TOKEN ${problem}; generate one with: openssl rand -base64 32`);
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
