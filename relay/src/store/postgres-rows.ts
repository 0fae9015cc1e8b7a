import { DomainError } from '../core/domain-error.js';
import type { ConsoleRecord } from '../core/console-rules.js';
import type { ConsoleSharingColumn, EndpointRecord, TokenRecord } from './store.js';

/* The PostgreSQL store's schema, and its rows as the store's records. */

/** Schema versions in order; each runs once, in one transaction, under an advisory lock (gateways may start together). */
export const PG_MIGRATIONS: readonly string[] = [
  `CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
   CREATE TABLE consoles (
     virtual_machine text PRIMARY KEY,
     access_id text NOT NULL UNIQUE,
     enabled boolean NOT NULL,
     key_data text NOT NULL,
     key_fingerprint text NOT NULL,
     expiration bigint NOT NULL,
     created_at bigint NOT NULL,
     updated_at bigint NOT NULL);
   CREATE TABLE endpoints (
     name text PRIMARY KEY,
     ip_address text NOT NULL UNIQUE,
     allowed_source_prefixes jsonb NOT NULL,
     created_at bigint NOT NULL,
     updated_at bigint NOT NULL);
   CREATE TABLE tokens (
     id text PRIMARY KEY,
     hash text NOT NULL UNIQUE,
     name text NOT NULL UNIQUE,
     prefix text NOT NULL DEFAULT '',
     scopes jsonb NOT NULL,
     virtual_machines jsonb,
     created_at bigint NOT NULL,
     expires_at bigint,
     last_used_at bigint);`,
  // The fleet: agents and how they join, the gateways alive, which agent holds which VM name, and
  // the one session slot per VM and kind (its fence only grows, from one sequence).
  `CREATE TABLE agents (
     name text PRIMARY KEY,
     key_fingerprint text NOT NULL,
     version text NOT NULL DEFAULT '',
     virtual_machines jsonb NOT NULL DEFAULT '[]',
     conflicts jsonb NOT NULL DEFAULT '[]',
     joined_at bigint NOT NULL,
     last_seen_at bigint,
     deleted_at bigint);
   CREATE TABLE agent_join_tokens (
     hash text PRIMARY KEY,
     agent text NOT NULL,
     created_at bigint NOT NULL,
     expires_at bigint NOT NULL,
     used_at bigint);
   CREATE TABLE gateways (
     id text PRIMARY KEY,
     advertise text,
     started_at bigint NOT NULL,
     heartbeat_at bigint NOT NULL);
   CREATE TABLE agent_tunnels (
     agent text NOT NULL,
     gateway text NOT NULL,
     connected_at bigint NOT NULL,
     PRIMARY KEY (agent, gateway));
   CREATE TABLE vm_owners (
     virtual_machine text PRIMARY KEY,
     agent text NOT NULL);
   CREATE SEQUENCE session_fence;
   CREATE TABLE session_slots (
     virtual_machine text NOT NULL,
     kind text NOT NULL,
     session text NOT NULL,
     gateway text NOT NULL,
     fence bigint NOT NULL,
     remote_address text NOT NULL,
     path text NOT NULL,
     endpoint text NOT NULL DEFAULT '',
     started_at bigint NOT NULL,
     bytes_in bigint NOT NULL DEFAULT 0,
     bytes_out bigint NOT NULL DEFAULT 0,
     PRIMARY KEY (virtual_machine, kind));
   CREATE TABLE vnc_tokens (
     hash text PRIMARY KEY,
     virtual_machine text NOT NULL,
     endpoint text NOT NULL,
     grant_data jsonb NOT NULL,
     expires_at bigint NOT NULL);
   CREATE INDEX vnc_tokens_vm ON vnc_tokens (virtual_machine);
   CREATE TABLE audit_events (
     seq bigint PRIMARY KEY,
     hash text NOT NULL,
     line text NOT NULL,
     type text NOT NULL,
     time_ms bigint NOT NULL);`,
  // Sharing and recording settings of a console (allowObservers, maxObservers, recording); NULL: the defaults.
  `ALTER TABLE consoles ADD COLUMN sharing jsonb;`,
];

export type Row = Record<string, unknown>;

const num = (value: unknown): number => Number(value);
const optionalNum = (value: unknown): number | undefined => (value === null || value === undefined ? undefined : Number(value));

export function toConsole(row: Row): ConsoleRecord {
  return {
    virtualMachine: row.virtual_machine as string,
    accessId: row.access_id as string,
    enabled: row.enabled as boolean,
    keyData: row.key_data as string,
    keyFingerprint: row.key_fingerprint as string,
    expiration: num(row.expiration),
    createdAt: num(row.created_at),
    updatedAt: num(row.updated_at),
    ...(row.sharing !== null && row.sharing !== undefined && (row.sharing as ConsoleSharingColumn)),
  };
}

export function toEndpoint(row: Row): EndpointRecord {
  return {
    name: row.name as string,
    ipAddress: row.ip_address as string,
    allowedSourcePrefixes: row.allowed_source_prefixes as string[],
    createdAt: num(row.created_at),
    updatedAt: num(row.updated_at),
  };
}

export function toToken(row: Row): TokenRecord {
  const expiresAt = optionalNum(row.expires_at);
  const lastUsedAt = optionalNum(row.last_used_at);
  return {
    id: row.id as string,
    hash: row.hash as string,
    name: row.name as string,
    prefix: row.prefix as string,
    scopes: row.scopes as string[],
    ...(row.virtual_machines !== null && { virtualMachines: row.virtual_machines as string[] }),
    createdAt: num(row.created_at),
    ...(expiresAt !== undefined && { expiresAt }),
    ...(lastUsedAt !== undefined && { lastUsedAt }),
  };
}

/** The SQLSTATE classes that mean "the database is not reachable or not accepting work now", not "your request is wrong". */
function isUnavailable(error: unknown): boolean {
  const { code } = error as { code?: unknown };
  if (typeof code !== 'string') return false;
  return /^(08|57P|53)/.test(code) || ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'CONNECT_TIMEOUT'].includes(code);
}

/** A database that cannot be reached becomes the API's 503 `StoreUnavailable`; anything else passes unchanged. */
/** Runs `query`, turning "cannot reach the database" into StoreUnavailable (every PostgreSQL-backed class runs its queries through this). */
export async function unavailableOnFailure<T>(query: () => Promise<T>): Promise<T> {
  try {
    return await query();
  } catch (error) {
    throw unavailableError(error);
  }
}

export function unavailableError(error: unknown): unknown {
  if (!isUnavailable(error)) return error;
  const detail = (error as Error).message;
  return new DomainError('unavailable', 'StoreUnavailable', `the fleet's database cannot be reached (${detail}); nothing was changed; try again shortly`);
}

