import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/** The trail's format and files, shared by its writer (audit-log.ts), reader (audit-read.ts) and verifier (audit-verify.ts). */

export const AUDIT_FILE = 'audit.jsonl';
export const ROTATED = /^audit-(\d{12})\.jsonl$/;
/** The `prev` of the first event. */
export const GENESIS = '0'.repeat(64);
const HASH_SUFFIX = /,"hash":"([0-9a-f]{64})"\}$/;

/** An audit event as callers give it: `seq`, `time`, `prev` and `hash` are added. */
export type AuditEventInput = { type: string } & Record<string, unknown>;

export interface AuditEvent extends Record<string, unknown> {
  seq: number;
  time: string;
  prev: string;
  type: string;
  hash: string;
}

/**
 * Where audit events go: the relay's files (audit-log.ts), or a fleet's table in PostgreSQL
 * (fleet/fleet-audit.ts). `append` throws (files) or rejects (database) when the event cannot be
 * written; awaiting it means the event is durable.
 */
export interface AuditTrail {
  /** False while writes fail: API changes are refused until the trail can be written again. */
  readonly healthy: boolean;
  readonly prunedFiles: number;
  readonly prunedEvents: number;
  append(input: AuditEventInput): unknown;
  read(filter: { since?: number; afterSeq?: number; match?: (event: AuditEvent) => boolean; limit: number }): Promise<{ events: AuditEvent[]; more: boolean }>;
}

/** The trail line of an event: its JSON with the hash of everything before it appended as the last field. */
export function chainLine(event: Omit<AuditEvent, 'hash'>): { line: string; hash: string } {
  const body = JSON.stringify(event);
  const hash = sha256(body);
  return { line: `${body.slice(0, -1)},"hash":"${hash}"}`, hash };
}

export function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** The files of the trail in order, oldest first, the live file last. */
export function auditFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const rotated = names.filter((name) => ROTATED.test(name)).sort();
  return [...rotated, ...(names.includes(AUDIT_FILE) ? [AUDIT_FILE] : [])].map((name) => join(dir, name));
}

/** Splits a line into its hashed text and its stated hash; undefined when it is not a trail line. */
export function splitLine(line: string): { body: string; hash: string } | undefined {
  const match = HASH_SUFFIX.exec(line);
  if (!match) return undefined;
  return { body: `${line.slice(0, match.index)}}`, hash: match[1]! };
}
