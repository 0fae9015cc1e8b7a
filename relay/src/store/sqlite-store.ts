import Database from 'better-sqlite3';
import type { ConsoleRecord } from '../core/console-rules.js';
import { sharingColumn, type ConsoleSharingColumn, type EndpointRecord, type Store, type TokenRecord } from './store.js';

/** Schema versions in order; each runs once, in a transaction, and bumps `user_version`. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE consoles (
     virtual_machine TEXT PRIMARY KEY,
     access_id TEXT NOT NULL UNIQUE,
     enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
     key_data TEXT NOT NULL,
     key_fingerprint TEXT NOT NULL,
     expiration INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL);
   CREATE TABLE endpoints (
     name TEXT PRIMARY KEY,
     ip_address TEXT NOT NULL UNIQUE,
     allowed_source_prefixes TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL);
   CREATE TABLE tokens (hash TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL);`,
  // Scoped API tokens: tokens from before were admin tokens, and stay so.
  `ALTER TABLE tokens ADD COLUMN id TEXT;
   UPDATE tokens SET id = lower(hex(randomblob(16)));
   CREATE UNIQUE INDEX tokens_id ON tokens (id);
   ALTER TABLE tokens ADD COLUMN prefix TEXT NOT NULL DEFAULT '';
   ALTER TABLE tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT '["admin"]';
   ALTER TABLE tokens ADD COLUMN virtual_machines TEXT;
   ALTER TABLE tokens ADD COLUMN expires_at INTEGER;
   ALTER TABLE tokens ADD COLUMN last_used_at INTEGER;`,
  // Sharing and recording settings of a console (allowObservers, maxObservers, recording), as JSON; NULL: the defaults.
  `ALTER TABLE consoles ADD COLUMN sharing TEXT;`,
];

interface TokenRow {
  id: string;
  hash: string;
  name: string;
  prefix: string;
  scopes: string;
  virtual_machines: string | null;
  created_at: number;
  expires_at: number | null;
  last_used_at: number | null;
}

function toToken(row: TokenRow): TokenRecord {
  return {
    id: row.id,
    hash: row.hash,
    name: row.name,
    prefix: row.prefix,
    scopes: JSON.parse(row.scopes) as string[],
    ...(row.virtual_machines !== null && { virtualMachines: JSON.parse(row.virtual_machines) as string[] }),
    createdAt: row.created_at,
    ...(row.expires_at !== null && { expiresAt: row.expires_at }),
    ...(row.last_used_at !== null && { lastUsedAt: row.last_used_at }),
  };
}

function tokenParams(record: TokenRecord): Record<string, unknown> {
  return {
    id: record.id,
    hash: record.hash,
    name: record.name,
    prefix: record.prefix,
    scopes: JSON.stringify(record.scopes),
    virtualMachines: record.virtualMachines ? JSON.stringify(record.virtualMachines) : null,
    createdAt: record.createdAt,
    expiresAt: record.expiresAt ?? null,
  };
}

const INSERT_TOKEN = `INSERT INTO tokens (id, hash, name, prefix, scopes, virtual_machines, created_at, expires_at)
  VALUES (@id, @hash, @name, @prefix, @scopes, @virtualMachines, @createdAt, @expiresAt)`;

interface ConsoleRow {
  virtual_machine: string;
  access_id: string;
  enabled: number;
  key_data: string;
  key_fingerprint: string;
  expiration: number;
  created_at: number;
  updated_at: number;
  sharing: string | null;
}

interface EndpointRow {
  name: string;
  ip_address: string;
  allowed_source_prefixes: string;
  created_at: number;
  updated_at: number;
}

function toConsole(row: ConsoleRow): ConsoleRecord {
  return {
    virtualMachine: row.virtual_machine,
    accessId: row.access_id,
    enabled: row.enabled === 1,
    keyData: row.key_data,
    keyFingerprint: row.key_fingerprint,
    expiration: row.expiration,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    ...(JSON.parse(row.sharing ?? 'null') as ConsoleSharingColumn | null),
  };
}

function sharingJson(record: ConsoleRecord): string | null {
  const sharing = sharingColumn(record);
  return sharing === null ? null : JSON.stringify(sharing);
}

function toEndpoint(row: EndpointRow): EndpointRecord {
  return {
    name: row.name,
    ipAddress: row.ip_address,
    allowedSourcePrefixes: JSON.parse(row.allowed_source_prefixes) as string[],
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** The embedded default store: one SQLite file in WAL mode. */
export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private closed = false;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    // FULL: each commit is on the disk before the API answers, as the audit trail is. (NORMAL lost
    // answered writes when the disk failed under the relay: test/integration/store-faults.test.ts.)
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
  }

  /** The schema version this file is at, after migrating. */
  get schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  private migrate(): void {
    const current = this.schemaVersion;
    if (current > MIGRATIONS.length) {
      throw new Error(`the store was written by a newer relay (schema ${current}; this relay knows up to ${MIGRATIONS.length})`);
    }
    for (let version = current; version < MIGRATIONS.length; version++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[version]!);
        this.db.pragma(`user_version = ${version + 1}`);
      })();
    }
  }

  async getMeta(key: string): Promise<string | undefined> {
    const row = this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    return row?.value;
  }

  async initMeta(key: string, value: string): Promise<string> {
    return this.db.transaction(() => {
      this.db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run(key, value);
      return (this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string }).value;
    })();
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  /** One meta value of the store at `path`, opened read-only (beside a running relay); undefined when there is no store. */
  static readMeta(path: string, key: string): string | undefined {
    let db: Database.Database;
    try {
      db = new Database(path, { readonly: true, fileMustExist: true });
    } catch {
      return undefined;
    }
    try {
      return (db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
    } catch {
      return undefined; // not a store of ours, or one without its meta table yet
    } finally {
      db.close();
    }
  }

  async listConsoles(): Promise<ConsoleRecord[]> {
    return (this.db.prepare('SELECT * FROM consoles ORDER BY virtual_machine').all() as ConsoleRow[]).map(toConsole);
  }

  async getConsole(virtualMachine: string): Promise<ConsoleRecord | undefined> {
    const row = this.db.prepare('SELECT * FROM consoles WHERE virtual_machine = ?').get(virtualMachine) as ConsoleRow | undefined;
    return row && toConsole(row);
  }

  async getConsoleByAccessId(accessId: string): Promise<ConsoleRecord | undefined> {
    const row = this.db.prepare('SELECT * FROM consoles WHERE access_id = ?').get(accessId) as ConsoleRow | undefined;
    return row && toConsole(row);
  }

  async putConsole(record: ConsoleRecord): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO consoles (virtual_machine, access_id, enabled, key_data, key_fingerprint, expiration, created_at, updated_at, sharing)
         VALUES (@virtualMachine, @accessId, @enabled, @keyData, @keyFingerprint, @expiration, @createdAt, @updatedAt, @sharing)
         ON CONFLICT (virtual_machine) DO UPDATE SET access_id = excluded.access_id, enabled = excluded.enabled,
           key_data = excluded.key_data, key_fingerprint = excluded.key_fingerprint, expiration = excluded.expiration,
           created_at = excluded.created_at, updated_at = excluded.updated_at, sharing = excluded.sharing`,
      )
      .run({ ...record, enabled: record.enabled ? 1 : 0, sharing: sharingJson(record) });
  }

  async deleteConsole(virtualMachine: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM consoles WHERE virtual_machine = ?').run(virtualMachine).changes > 0;
  }

  async listEndpoints(): Promise<EndpointRecord[]> {
    return (this.db.prepare('SELECT * FROM endpoints ORDER BY name').all() as EndpointRow[]).map(toEndpoint);
  }

  async getEndpoint(name: string): Promise<EndpointRecord | undefined> {
    const row = this.db.prepare('SELECT * FROM endpoints WHERE name = ?').get(name) as EndpointRow | undefined;
    return row && toEndpoint(row);
  }

  async putEndpoint(record: EndpointRecord): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO endpoints (name, ip_address, allowed_source_prefixes, created_at, updated_at)
         VALUES (@name, @ipAddress, @prefixes, @createdAt, @updatedAt)
         ON CONFLICT (name) DO UPDATE SET ip_address = excluded.ip_address,
           allowed_source_prefixes = excluded.allowed_source_prefixes, updated_at = excluded.updated_at`,
      )
      .run({ ...record, prefixes: JSON.stringify(record.allowedSourcePrefixes) });
  }

  async deleteEndpoint(name: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM endpoints WHERE name = ?').run(name).changes > 0;
  }

  async findToken(hash: string): Promise<TokenRecord | undefined> {
    const row = this.db.prepare('SELECT * FROM tokens WHERE hash = ?').get(hash) as TokenRow | undefined;
    return row && toToken(row);
  }

  async createToken(record: TokenRecord): Promise<boolean> {
    return this.db.transaction(() => {
      if (this.db.prepare('SELECT 1 FROM tokens WHERE name = ?').get(record.name)) return false;
      this.db.prepare(INSERT_TOKEN).run(tokenParams(record));
      return true;
    })();
  }

  async listTokens(): Promise<TokenRecord[]> {
    return (this.db.prepare('SELECT * FROM tokens ORDER BY created_at, name').all() as TokenRow[]).map(toToken);
  }

  async deleteToken(id: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM tokens WHERE id = ?').run(id).changes > 0;
  }

  async touchToken(id: string, at: number): Promise<void> {
    this.db.prepare('UPDATE tokens SET last_used_at = ? WHERE id = ?').run(at, id);
  }

  async countTokens(): Promise<number> {
    return (this.db.prepare('SELECT count(*) AS n FROM tokens').get() as { n: number }).n;
  }

  async replaceToken(record: TokenRecord): Promise<void> {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM tokens WHERE name = ? OR hash = ?').run(record.name, record.hash);
      this.db.prepare(INSERT_TOKEN).run(tokenParams(record));
    })();
  }

  async ping(): Promise<boolean> {
    if (this.closed) return false;
    return (this.db.prepare('SELECT 1 AS ok').get() as { ok: number }).ok === 1;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    this.db.close();
  }
}
