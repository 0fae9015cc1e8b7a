import { join } from 'node:path';
import type { RelayConfig } from '../config/config.js';
import { PostgresStore } from './postgres-store.js';
import { SqliteStore } from './sqlite-store.js';
import type { Store } from './store.js';

/** A gateway's shared PostgreSQL database, or the standalone relay's SQLite file in its data folder. */
export async function openStore(config: RelayConfig): Promise<Store> {
  if (config.role !== 'gateway' || !config.gateway) return new SqliteStore(join(config.dataDir, 'lifeline.db'));
  try {
    return await PostgresStore.open(config.gateway.postgresUrl);
  } catch (error) {
    throw new Error(`store.postgres.url: cannot open the fleet's database at ${redactUrl(config.gateway.postgresUrl)}: ${(error as Error).message}`, { cause: error });
  }
}

/** A database URL with its password replaced, for messages. */
function redactUrl(text: string): string {
  try {
    const url = new URL(text);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return '(an unreadable URL)';
  }
}

