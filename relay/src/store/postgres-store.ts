import postgres from 'postgres';
import type { ConsoleRecord } from '../core/console-rules.js';
import { PG_MIGRATIONS, toConsole, toEndpoint, toToken, unavailableOnFailure } from './postgres-rows.js';
import { sharingColumn, type EndpointRecord, type Store, type TokenRecord } from './store.js';

/*
 * The fleet's store: PostgreSQL through postgres.js (maintained, no native parts, pipelining,
 * LISTEN/NOTIFY with automatic re-listen on reconnect — the gateway's wake-up channel needs that).
 * The same records as the SQLite store, so a standalone relay's data moves over unchanged
 * (`lifeline-relay store import`). Times are epoch milliseconds in bigint columns.
 */

/** Any 64-bit key that is Lifeline's; taken for the length of a migration. */
const MIGRATION_LOCK = 0x4c6966656c696e65n; // "Lifeline"

export interface PostgresStoreOptions {
  /** Connections in the pool (default 10). */
  max?: number;
  /** Seconds to wait for a connection before a query fails (default 5). */
  connectTimeoutSeconds?: number;
}

/** The store of a fleet gateway: shared by every gateway on the same database. */
export class PostgresStore implements Store {
  readonly sql: postgres.Sql;
  private closed = false;

  private constructor(sql: postgres.Sql) {
    this.sql = sql;
  }

  /** Connects, migrates (once, whichever gateway comes first) and returns the store. */
  static async open(url: string, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const sql = postgres(url, {
      max: options.max ?? 10,
      connect_timeout: options.connectTimeoutSeconds ?? 5,
      idle_timeout: 60,
      onnotice: () => {},
      connection: { application_name: 'lifeline-gateway' },
    });
    const store = new PostgresStore(sql);
    try {
      await store.migrate();
    } catch (error) {
      await sql.end({ timeout: 1 });
      throw error;
    }
    return store;
  }

  private async migrate(): Promise<void> {
    await this.sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK.toString()}::bigint)`;
      await tx`CREATE TABLE IF NOT EXISTS lifeline_schema (version integer NOT NULL)`;
      const [row] = await tx`SELECT version FROM lifeline_schema`;
      const current = row ? Number(row.version) : 0;
      if (current > PG_MIGRATIONS.length) {
        throw new Error(`the database was written by a newer relay (schema ${current}; this relay knows up to ${PG_MIGRATIONS.length})`);
      }
      for (let version = current; version < PG_MIGRATIONS.length; version++) await tx.unsafe(PG_MIGRATIONS[version]!);
      if (!row) await tx`INSERT INTO lifeline_schema (version) VALUES (${PG_MIGRATIONS.length})`;
      else await tx`UPDATE lifeline_schema SET version = ${PG_MIGRATIONS.length}`;
    });
  }

  /** The schema version the database is at. */
  async schemaVersion(): Promise<number> {
    const [row] = await this.sql`SELECT version FROM lifeline_schema`;
    return Number(row?.version ?? 0);
  }

  private run<T>(query: () => Promise<T>): Promise<T> {
    return unavailableOnFailure(query);
  }

  getMeta(key: string): Promise<string | undefined> {
    return this.run(async () => (await this.sql`SELECT value FROM meta WHERE key = ${key}`)[0]?.value as string | undefined);
  }

  initMeta(key: string, value: string): Promise<string> {
    return this.run(async () => {
      await this.sql`INSERT INTO meta (key, value) VALUES (${key}, ${value}) ON CONFLICT (key) DO NOTHING`;
      return (await this.sql`SELECT value FROM meta WHERE key = ${key}`)[0]!.value as string;
    });
  }

  setMeta(key: string, value: string): Promise<void> {
    return this.run(async () => {
      await this.sql`INSERT INTO meta (key, value) VALUES (${key}, ${value}) ON CONFLICT (key) DO UPDATE SET value = excluded.value`;
    });
  }

  listConsoles(): Promise<ConsoleRecord[]> {
    return this.run(async () => (await this.sql`SELECT * FROM consoles ORDER BY virtual_machine`).map(toConsole));
  }

  /** The first row of `query` as a record, or undefined when there is none. */
  private one<T>(query: postgres.PendingQuery<postgres.Row[]>, toRecord: (row: postgres.Row) => T): Promise<T | undefined> {
    return this.run(async () => {
      const [row] = await query;
      return row && toRecord(row);
    });
  }

  getConsole(virtualMachine: string): Promise<ConsoleRecord | undefined> {
    return this.one(this.sql`SELECT * FROM consoles WHERE virtual_machine = ${virtualMachine}`, toConsole);
  }

  getConsoleByAccessId(accessId: string): Promise<ConsoleRecord | undefined> {
    return this.one(this.sql`SELECT * FROM consoles WHERE access_id = ${accessId}`, toConsole);
  }

  putConsole(record: ConsoleRecord): Promise<void> {
    const sharing = sharingColumn(record);
    return this.run(async () => {
      await this.sql`
        INSERT INTO consoles (virtual_machine, access_id, enabled, key_data, key_fingerprint, expiration, created_at, updated_at, sharing)
        VALUES (${record.virtualMachine}, ${record.accessId}, ${record.enabled}, ${record.keyData}, ${record.keyFingerprint},
                ${record.expiration}, ${record.createdAt}, ${record.updatedAt}, ${sharing === null ? null : this.sql.json(sharing)})
        ON CONFLICT (virtual_machine) DO UPDATE SET access_id = excluded.access_id, enabled = excluded.enabled,
          key_data = excluded.key_data, key_fingerprint = excluded.key_fingerprint, expiration = excluded.expiration,
          created_at = excluded.created_at, updated_at = excluded.updated_at, sharing = excluded.sharing`;
    });
  }

  deleteConsole(virtualMachine: string): Promise<boolean> {
    return this.run(async () => (await this.sql`DELETE FROM consoles WHERE virtual_machine = ${virtualMachine}`).count > 0);
  }

  listEndpoints(): Promise<EndpointRecord[]> {
    return this.run(async () => (await this.sql`SELECT * FROM endpoints ORDER BY name`).map(toEndpoint));
  }

  getEndpoint(name: string): Promise<EndpointRecord | undefined> {
    return this.one(this.sql`SELECT * FROM endpoints WHERE name = ${name}`, toEndpoint);
  }

  putEndpoint(record: EndpointRecord): Promise<void> {
    return this.run(async () => {
      await this.sql`
        INSERT INTO endpoints (name, ip_address, allowed_source_prefixes, created_at, updated_at)
        VALUES (${record.name}, ${record.ipAddress}, ${this.sql.json(record.allowedSourcePrefixes)}, ${record.createdAt}, ${record.updatedAt})
        ON CONFLICT (name) DO UPDATE SET ip_address = excluded.ip_address,
          allowed_source_prefixes = excluded.allowed_source_prefixes, updated_at = excluded.updated_at`;
    });
  }

  deleteEndpoint(name: string): Promise<boolean> {
    return this.run(async () => (await this.sql`DELETE FROM endpoints WHERE name = ${name}`).count > 0);
  }

  findToken(hash: string): Promise<TokenRecord | undefined> {
    return this.one(this.sql`SELECT * FROM tokens WHERE hash = ${hash}`, toToken);
  }

  countTokens(): Promise<number> {
    return this.run(async () => Number((await this.sql`SELECT count(*) AS n FROM tokens`)[0]!.n));
  }

  private insertToken(sql: postgres.Sql | postgres.TransactionSql, record: TokenRecord, onConflict: 'nothing' | 'fail'): postgres.PendingQuery<postgres.Row[]> {
    const values = sql`(${record.id}, ${record.hash}, ${record.name}, ${record.prefix}, ${this.sql.json(record.scopes)},
      ${record.virtualMachines ? this.sql.json(record.virtualMachines) : null}, ${record.createdAt}, ${record.expiresAt ?? null})`;
    const insert = sql`INSERT INTO tokens (id, hash, name, prefix, scopes, virtual_machines, created_at, expires_at) VALUES ${values}`;
    return onConflict === 'nothing' ? sql`${insert} ON CONFLICT (name) DO NOTHING` : insert;
  }

  replaceToken(record: TokenRecord): Promise<void> {
    return this.run(async () => {
      await this.sql.begin(async (tx) => {
        await tx`DELETE FROM tokens WHERE name = ${record.name} OR hash = ${record.hash}`;
        await this.insertToken(tx, record, 'fail');
      });
    });
  }

  createToken(record: TokenRecord): Promise<boolean> {
    return this.run(async () => (await this.insertToken(this.sql, record, 'nothing')).count > 0);
  }

  listTokens(): Promise<TokenRecord[]> {
    return this.run(async () => (await this.sql`SELECT * FROM tokens ORDER BY created_at, name`).map(toToken));
  }

  deleteToken(id: string): Promise<boolean> {
    return this.run(async () => (await this.sql`DELETE FROM tokens WHERE id = ${id}`).count > 0);
  }

  touchToken(id: string, at: number): Promise<void> {
    return this.run(async () => {
      await this.sql`UPDATE tokens SET last_used_at = ${at} WHERE id = ${id}`;
    });
  }

  async ping(): Promise<boolean> {
    if (this.closed) return false;
    // Bounded: a health probe must answer even while the database does not.
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), 2000)));
    const probe = this.sql`SELECT 1 AS ok`.then(([row]) => row?.ok === 1, () => false);
    try {
      return await Promise.race([probe, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.sql.end({ timeout: 5 });
  }
}
