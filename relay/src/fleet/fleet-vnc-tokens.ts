import type postgres from 'postgres';
import type { SessionGrant } from '../core/console-rules.js';
import { hashToken } from '../core/token-hash.js';
import { unavailableOnFailure } from '../store/postgres-rows.js';
import { newVncToken, type TokenRedemption, type VncTokens } from '../vnc/vnc-tokens.js';

/**
 * VNC tokens of a fleet, in its database (hashes only, as nova's console proxies keep them): minted
 * through one gateway, redeemed on any, and used up by one atomic DELETE … RETURNING, so two
 * gateways can never both accept it.
 */
export class FleetVncTokens implements VncTokens {
  private minted = 0;

  constructor(
    private readonly sql: postgres.Sql,
    readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  private run<T>(query: () => Promise<T>): Promise<T> {
    return unavailableOnFailure(query);
  }

  mint(grant: SessionGrant, endpoint: string): Promise<{ token: string; expiresAt: number }> {
    const token = newVncToken();
    const expiresAt = this.now() + this.ttlMs;
    return this.run(async () => {
      // Expired tokens are swept now and then by whichever gateway mints.
      if (++this.minted % 100 === 1) await this.sql`DELETE FROM vnc_tokens WHERE expires_at <= ${this.now()}`;
      await this.sql`INSERT INTO vnc_tokens (hash, virtual_machine, endpoint, grant_data, expires_at)
        VALUES (${hashToken(token)}, ${grant.virtualMachine}, ${endpoint}, ${this.sql.json(grant as unknown as postgres.JSONValue)}, ${expiresAt})`;
      return { token, expiresAt };
    });
  }

  peek(token: string, endpoint: string): Promise<boolean> {
    return this.run(async () => {
      const [row] = await this.sql`SELECT 1 FROM vnc_tokens WHERE hash = ${hashToken(token)} AND endpoint = ${endpoint} AND expires_at > ${this.now()}`;
      return row !== undefined;
    });
  }

  redeem(token: string, endpoint: string): Promise<TokenRedemption> {
    return this.run(async () => {
      const [row] = await this.sql`DELETE FROM vnc_tokens WHERE hash = ${hashToken(token)} RETURNING endpoint, grant_data, expires_at`;
      if (!row) return { ok: false, reason: 'unknown' };
      if (Number(row.expires_at) <= this.now()) return { ok: false, reason: 'expired' };
      if (row.endpoint !== endpoint) return { ok: false, reason: 'wrong-endpoint' };
      return { ok: true, grant: row.grant_data as SessionGrant, endpoint };
    });
  }

  revoke(virtualMachine: string): Promise<number> {
    return this.run(async () => (await this.sql`DELETE FROM vnc_tokens WHERE virtual_machine = ${virtualMachine}`).count);
  }
}
