import type { ConsoleRecord } from '../core/console-rules.js';

/** A console's sharing and recording settings as the stores keep them (one JSON column; NULL when all are defaults). */
export type ConsoleSharingColumn = Pick<ConsoleRecord, 'allowObservers' | 'maxObservers' | 'recording'>;

/** What the `sharing` column holds, or null when the console has only defaults. */
export function sharingColumn(record: ConsoleRecord): ConsoleSharingColumn | null {
  const column: ConsoleSharingColumn = {
    ...(record.allowObservers !== undefined && { allowObservers: record.allowObservers }),
    ...(record.maxObservers !== undefined && { maxObservers: record.maxObservers }),
    ...(record.recording !== undefined && { recording: record.recording }),
  };
  return Object.keys(column).length > 0 ? column : null;
}

export interface EndpointRecord {
  name: string;
  ipAddress: string;
  allowedSourcePrefixes: string[];
  createdAt: number;
  updatedAt: number;
}

export interface TokenRecord {
  /** Opaque id (`DELETE /v1/tokens/{id}`). */
  id: string;
  /** SHA-256 of the bearer token, hex. The token itself is never stored. */
  hash: string;
  name: string;
  /** The token's first characters (`llt_AbC123`), to recognise it by; empty for tokens not made by the relay. */
  prefix: string;
  scopes: string[];
  /** VM name globs; undefined: every VM. */
  virtualMachines?: string[];
  createdAt: number;
  expiresAt?: number;
  lastUsedAt?: number;
}

/**
 * Persistence for the relay. Every method is one transaction. Async so that a networked
 * implementation (PostgreSQL, for several relay instances) can satisfy the same interface.
 */
export interface Store {
  getMeta(key: string): Promise<string | undefined>;
  /** Sets `key` only if it has no value yet; returns the value that holds afterwards. */
  initMeta(key: string, value: string): Promise<string>;
  /** Sets `key` to `value`, whatever it held. */
  setMeta(key: string, value: string): Promise<void>;

  listConsoles(): Promise<ConsoleRecord[]>;
  getConsole(virtualMachine: string): Promise<ConsoleRecord | undefined>;
  getConsoleByAccessId(accessId: string): Promise<ConsoleRecord | undefined>;
  putConsole(record: ConsoleRecord): Promise<void>;
  deleteConsole(virtualMachine: string): Promise<boolean>;

  listEndpoints(): Promise<EndpointRecord[]>;
  getEndpoint(name: string): Promise<EndpointRecord | undefined>;
  putEndpoint(record: EndpointRecord): Promise<void>;
  deleteEndpoint(name: string): Promise<boolean>;

  findToken(hash: string): Promise<TokenRecord | undefined>;
  countTokens(): Promise<number>;
  /** Replaces the token called `record.name`, if any, with this one. */
  replaceToken(record: TokenRecord): Promise<void>;
  /** Adds a token; false (and nothing written) when its name is taken. */
  createToken(record: TokenRecord): Promise<boolean>;
  listTokens(): Promise<TokenRecord[]>;
  deleteToken(id: string): Promise<boolean>;
  /** Notes a use of the token (kept coarse: callers throttle). */
  touchToken(id: string, at: number): Promise<void>;

  /** Cheap liveness probe for /healthz. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
