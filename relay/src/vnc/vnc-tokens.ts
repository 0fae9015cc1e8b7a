import { randomBytes } from 'node:crypto';
import type { SessionGrant } from '../core/console-rules.js';
import { hashToken as hash } from '../core/token-hash.js';

/** How long a minted token may wait for its WebSocket, unless the config says otherwise. */
export const VNC_TOKEN_TTL_MS = 60_000;

interface PendingToken {
  grant: SessionGrant;
  endpoint: string;
  expiresAt: number;
}

export type TokenRedemption =
  | { ok: true; grant: SessionGrant; endpoint: string }
  | { ok: false; reason: 'unknown' | 'expired' | 'wrong-endpoint' };

/**
 * Where VNC tokens are kept: this process's memory (a standalone relay), or the fleet's database
 * (a gateway: a token minted on one gateway is redeemed on another). Answers may be promises.
 */
export interface VncTokens {
  readonly ttlMs: number;
  mint(grant: SessionGrant, endpoint: string): { token: string; expiresAt: number } | Promise<{ token: string; expiresAt: number }>;
  /** Whether `token` would be accepted on `endpoint` now, without using it up. */
  peek(token: string, endpoint: string): boolean | Promise<boolean>;
  /** Uses up `token`: whatever the outcome, it cannot be presented again. */
  redeem(token: string, endpoint: string): TokenRedemption | Promise<TokenRedemption>;
  /** Voids every outstanding token for `virtualMachine`. */
  revoke(virtualMachine: string): number | Promise<number>;
}

/** A new token's secret: 24 random bytes, URL-safe. */
export function newVncToken(): string {
  return randomBytes(24).toString('base64url');
}

/**
 * Single-use browser tokens for the WebSocket VNC path, as nova-novncproxy hands out:
 * minted for one VM and endpoint, unusable after 60 s (`vnc.tokenTtl`) or after first use. Only hashes are
 * kept, in memory: a restart voids outstanding tokens, which live a minute anyway.
 */
export class VncTokenService implements VncTokens {
  private readonly pending = new Map<string, PendingToken>();

  constructor(
    readonly ttlMs = VNC_TOKEN_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  mint(grant: SessionGrant, endpoint: string): { token: string; expiresAt: number } {
    this.sweep();
    const token = newVncToken();
    const expiresAt = this.now() + this.ttlMs;
    this.pending.set(hash(token), { grant, endpoint, expiresAt });
    return { token, expiresAt };
  }

  /** Whether `token` would be accepted on `endpoint` now, without using it up (for the page that precedes the WebSocket). */
  peek(token: string, endpoint: string): boolean {
    const entry = this.pending.get(hash(token));
    return entry !== undefined && entry.endpoint === endpoint && entry.expiresAt > this.now();
  }

  /** Uses up `token`: whatever the outcome, it cannot be presented again. */
  redeem(token: string, endpoint: string): TokenRedemption {
    const key = hash(token);
    const entry = this.pending.get(key);
    this.pending.delete(key);
    if (!entry) return { ok: false, reason: 'unknown' };
    if (entry.expiresAt <= this.now()) return { ok: false, reason: 'expired' };
    if (entry.endpoint !== endpoint) return { ok: false, reason: 'wrong-endpoint' };
    return { ok: true, grant: entry.grant, endpoint };
  }

  /** Voids every outstanding token for `virtualMachine` (its console was disabled, deleted or re-keyed). Returns how many. */
  revoke(virtualMachine: string): number {
    let revoked = 0;
    for (const [key, entry] of this.pending) {
      if (entry.grant.virtualMachine !== virtualMachine) continue;
      this.pending.delete(key);
      revoked++;
    }
    return revoked;
  }

  private sweep(): void {
    const now = this.now();
    for (const [key, entry] of this.pending) if (entry.expiresAt <= now) this.pending.delete(key);
  }

  get size(): number {
    return this.pending.size;
  }
}
