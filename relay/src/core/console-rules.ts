/**
 * The Console resource's rules, as the Azure Operator Nexus VM Console defines them:
 * an enabled flag, one SSH public key, an expiration, and an access id that is the SSH user name.
 * Pure: callers pass the clock in.
 */
export interface ConsoleRecord {
  virtualMachine: string;
  enabled: boolean;
  /** Canonical `type base64` form plus the user's comment, as submitted. */
  keyData: string;
  keyFingerprint: string;
  /** Epoch milliseconds. */
  expiration: number;
  accessId: string;
  createdAt: number;
  updatedAt: number;
  /** Whether key holders may join read-only (`ssh … observe`, VNC tokens with mode observe); absent: false, the owner consents. */
  allowObservers?: boolean;
  /** Observers at once on one console kind; absent: DEFAULT_MAX_OBSERVERS. */
  maxObservers?: number;
  /** `required`: sessions are recorded whatever the relay's default; `off`: never; absent or `default`: as the relay's `recording` config says. */
  recording?: ConsoleRecording;
}

export type ConsoleRecording = 'required' | 'off' | 'default';
export const DEFAULT_MAX_OBSERVERS = 4;
export const MAX_OBSERVERS_LIMIT = 64;

/** The console's sharing settings with their defaults filled in. */
export function sharingOf(record: ConsoleRecord): { allowObservers: boolean; maxObservers: number; recording: ConsoleRecording } {
  return { allowObservers: record.allowObservers ?? false, maxObservers: record.maxObservers ?? DEFAULT_MAX_OBSERVERS, recording: record.recording ?? 'default' };
}

export type DetailedStatus = 'Ready' | 'Disabled' | 'Expired';

export function detailedStatus(record: ConsoleRecord, now: number): DetailedStatus {
  if (!record.enabled) return 'Disabled';
  if (record.expiration <= now) return 'Expired';
  return 'Ready';
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-](\d{2}):(\d{2}))$/;

/** Parses an RFC 3339 timestamp that carries a zone (`Z` or `±hh:mm`); undefined otherwise. */
export function parseRfc3339(text: string): number | undefined {
  const match = RFC3339.exec(text);
  if (!match) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 60) return undefined;
  if (match[9] !== undefined && (Number(match[9]) > 23 || Number(match[10]) > 59)) return undefined;
  const value = Date.parse(text.toUpperCase());
  return Number.isFinite(value) ? value : undefined;
}

export type ExpirationResult = { ok: true; value: number } | { ok: false; message: string };

export interface TtlPolicy {
  defaultTtlMs: number;
  maxTtlMs: number;
}

/** Resolves a requested expiration: omitted means now + default TTL; it must be in the future and within the max TTL. */
export function resolveExpiration(requested: string | undefined, now: number, policy: TtlPolicy): ExpirationResult {
  if (requested === undefined) return { ok: true, value: now + policy.defaultTtlMs };
  const value = parseRfc3339(requested);
  if (value === undefined) {
    return { ok: false, message: `expiration "${requested.slice(0, 64)}" is not an RFC 3339 timestamp with a time zone, e.g. 2026-11-23T21:00:00Z` };
  }
  if (value <= now) return { ok: false, message: 'expiration must be in the future' };
  if (value - now > policy.maxTtlMs) {
    return { ok: false, message: `expiration is beyond the maximum lifetime; it must be at most ${new Date(now + policy.maxTtlMs).toISOString()}` };
  }
  return { ok: true, value };
}

/** What a live session was admitted with; checked again whenever the console changes. */
export interface SessionGrant {
  virtualMachine: string;
  accessId: string;
  keyFingerprint: string;
  /** A WebSocket VNC session's: the API token that minted its VNC token (the audit trail's actor). */
  mintedBy?: { tokenId: string; tokenName: string };
  /** A VNC token minted to observe: its session watches read-only and displaces nobody. */
  mode?: 'observe';
  /** The console's recording setting when the session was admitted. */
  recording?: ConsoleRecording;
}

export type RevocationReason = 'deleted' | 'disabled' | 'expired' | 'rekeyed';

/** Why a session admitted under `grant` may no longer run, or undefined while it still may. */
export function revocationReason(grant: SessionGrant, current: ConsoleRecord | undefined, now: number): RevocationReason | undefined {
  if (!current || current.accessId !== grant.accessId) return 'deleted';
  if (!current.enabled) return 'disabled';
  if (current.keyFingerprint !== grant.keyFingerprint) return 'rekeyed';
  if (current.expiration <= now) return 'expired';
  return undefined;
}

/** Whether a client authenticating as `accessId` with a key of `keyFingerprint` may open a console. */
export function mayAuthenticate(record: ConsoleRecord | undefined, keyFingerprint: string, now: number): boolean {
  return record !== undefined && detailedStatus(record, now) === 'Ready' && record.keyFingerprint === keyFingerprint;
}

export function revocationMessage(reason: RevocationReason, vm: string): string {
  switch (reason) {
    case 'deleted':
      return `the console for ${vm} was deleted`;
    case 'disabled':
      return `the console for ${vm} was disabled`;
    case 'expired':
      return `the console for ${vm} expired`;
    case 'rekeyed':
      return `the console key for ${vm} was changed`;
  }
}
