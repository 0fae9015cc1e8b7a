import { randomBytes } from 'node:crypto';
import type postgres from 'postgres';
import { revocationMessage, revocationReason, type SessionGrant } from '../core/console-rules.js';
import { DomainError } from '../core/domain-error.js';
import { hashToken } from '../core/token-hash.js';
import { toConsole, unavailableOnFailure } from '../store/postgres-rows.js';
import { consoleView, type ConsoleView, type VmDescriptor } from './fleet-protocol.js';

/** A gateway whose heartbeat is older than this is gone: its session slots and tunnels are cleared. */
export const GATEWAY_STALE_MS = 10_000;
/** The database's clock in epoch ms: one clock for every gateway's heartbeat. */
const NOW_MS = 'floor(extract(epoch from clock_timestamp()) * 1000)::bigint';

export interface AgentRecord {
  name: string;
  keyFingerprint: string;
  version: string;
  virtualMachines: VmDescriptor[];
  /** VM names it announced that another agent holds. */
  conflicts: Array<{ name: string; heldBy: string }>;
  joinedAt: number;
  lastSeenAt: number | undefined;
  /** Gateways holding a tunnel from it now (their advertised agent address, else their id). */
  gateways: string[];
}

export interface SlotOwner {
  session: string;
  gateway: string;
  grant: SessionGrant | undefined;
  remoteAddress: string;
  path: string;
  endpoint: string;
}

/** A session another gateway holds, as the fleet's session list shows it. */
export interface SlotRecord {
  session: string;
  virtualMachine: string;
  kind: 'serial' | 'vnc';
  path: 'ssh' | 'websocket';
  endpoint: string;
  remoteAddress: string;
  startedAt: number;
  bytesIn: number;
  bytesOut: number;
  gateway: string;
}

/**
 * The fleet's tables (agents, join tokens, gateways, VM names, session slots) on the gateways'
 * shared database. Every method is one statement or one transaction; "cannot reach the database"
 * is StoreUnavailable.
 */
export class FleetStore {
  constructor(private readonly sql: postgres.Sql) {}

  private run<T>(query: () => Promise<T>): Promise<T> {
    return unavailableOnFailure(query);
  }

  /** 'allowed' for the agent's registered key; 'join' for a name not registered (or deleted); 'refused' for another key. */
  authorizeAgent(name: string, keyFingerprint: string): Promise<'allowed' | 'join' | 'refused'> {
    return this.run(async () => {
      const [row] = await this.sql`SELECT key_fingerprint, deleted_at FROM agents WHERE name = ${name}`;
      if (!row || row.deleted_at !== null) return 'join';
      return row.key_fingerprint === keyFingerprint ? 'allowed' : 'refused';
    });
  }

  /** A single-use join token for `agent`; the token itself is returned once and only its hash kept. */
  createJoinToken(agent: string, expiresAt: number, now = Date.now()): Promise<string> {
    const token = `llj_${randomBytes(24).toString('base64url')}`;
    return this.run(async () => {
      await this.sql`INSERT INTO agent_join_tokens (hash, agent, created_at, expires_at) VALUES (${hashToken(token)}, ${agent}, ${now}, ${expiresAt})`;
      return token;
    });
  }

  /** Redeems a join token: in one transaction the token is used up and the agent (re)registered with this key. */
  redeemJoinToken(agent: string, keyFingerprint: string, token: string, now = Date.now()): Promise<boolean> {
    return this.run(() =>
      this.sql.begin(async (tx) => {
        const [used] = await tx`
          UPDATE agent_join_tokens SET used_at = ${now}
          WHERE hash = ${hashToken(token)} AND agent = ${agent} AND used_at IS NULL AND expires_at > ${now} RETURNING hash`;
        if (!used) return false;
        const [existing] = await tx`SELECT key_fingerprint, deleted_at FROM agents WHERE name = ${agent} FOR UPDATE`;
        if (existing && existing.deleted_at === null && existing.key_fingerprint !== keyFingerprint) return false;
        await tx`
          INSERT INTO agents (name, key_fingerprint, joined_at) VALUES (${agent}, ${keyFingerprint}, ${now})
          ON CONFLICT (name) DO UPDATE SET key_fingerprint = excluded.key_fingerprint, joined_at = excluded.joined_at,
            deleted_at = NULL, virtual_machines = '[]', conflicts = '[]'`;
        return true;
      }),
    );
  }

  /**
   * An agent's tunnel to `gateway` is up, or it reported its VMs: recorded, and each VM name it
   * announces is claimed for it. Returns the names another agent already holds.
   */
  agentSeen(agent: string, gateway: string, version: string, virtualMachines: VmDescriptor[]): Promise<Array<{ name: string; heldBy: string }>> {
    return this.run(() =>
      this.sql.begin(async (tx) => {
        const names = virtualMachines.map((vm) => vm.name);
        if (names.length > 0) {
          await tx`INSERT INTO vm_owners (virtual_machine, agent) SELECT unnest(${names}::text[]), ${agent} ON CONFLICT DO NOTHING`;
        }
        const taken = names.length === 0 ? [] : await tx`SELECT virtual_machine, agent FROM vm_owners WHERE virtual_machine = ANY(${names}::text[]) AND agent <> ${agent}`;
        const conflicts = taken.map((row) => ({ name: row.virtual_machine as string, heldBy: row.agent as string }));
        const held = virtualMachines.filter((vm) => !conflicts.some((conflict) => conflict.name === vm.name));
        // Names it no longer announces are free again for another agent.
        await tx`DELETE FROM vm_owners WHERE agent = ${agent} AND NOT (virtual_machine = ANY(${names}::text[]))`;
        await tx`UPDATE agents SET version = ${version}, virtual_machines = ${tx.json(held as unknown as postgres.JSONValue)},
          conflicts = ${tx.json(conflicts)}, last_seen_at = ${tx.unsafe(NOW_MS)} WHERE name = ${agent}`;
        await tx`INSERT INTO agent_tunnels (agent, gateway, connected_at) VALUES (${agent}, ${gateway}, ${tx.unsafe(NOW_MS)})
          ON CONFLICT (agent, gateway) DO NOTHING`;
        return conflicts;
      }),
    );
  }

  /** An agent's tunnel to `gateway` closed. */
  agentLeft(agent: string, gateway: string): Promise<void> {
    return this.run(async () => {
      await this.sql`DELETE FROM agent_tunnels WHERE agent = ${agent} AND gateway = ${gateway}`;
      await this.sql`UPDATE agents SET last_seen_at = ${this.sql.unsafe(NOW_MS)} WHERE name = ${agent}`;
    });
  }

  listAgents(): Promise<AgentRecord[]> {
    return this.run(async () => {
      const rows = await this.sql`
        SELECT a.*, coalesce(array_agg(coalesce(g.advertise, t.gateway) ORDER BY t.gateway) FILTER (WHERE t.gateway IS NOT NULL), '{}') AS tunnels
        FROM agents a LEFT JOIN agent_tunnels t ON t.agent = a.name LEFT JOIN gateways g ON g.id = t.gateway
        WHERE a.deleted_at IS NULL GROUP BY a.name ORDER BY a.name`;
      return rows.map((row) => ({
        name: row.name as string,
        keyFingerprint: row.key_fingerprint as string,
        version: row.version as string,
        virtualMachines: row.virtual_machines as VmDescriptor[],
        conflicts: row.conflicts as AgentRecord['conflicts'],
        joinedAt: Number(row.joined_at),
        lastSeenAt: row.last_seen_at === null ? undefined : Number(row.last_seen_at),
        gateways: row.tunnels as string[],
      }));
    });
  }

  /** Deletes an agent: its VM names are free, its key is refused until it joins again with a new token. */
  deleteAgent(name: string, now = Date.now()): Promise<boolean> {
    return this.run(() =>
      this.sql.begin(async (tx) => {
        const [row] = await tx`UPDATE agents SET deleted_at = ${now} WHERE name = ${name} AND deleted_at IS NULL RETURNING name`;
        if (!row) return false;
        await tx`DELETE FROM vm_owners WHERE agent = ${name}`;
        await tx`DELETE FROM agent_tunnels WHERE agent = ${name}`;
        await tx`DELETE FROM agent_join_tokens WHERE agent = ${name} AND used_at IS NULL`;
        return true;
      }),
    );
  }

  /**
   * This gateway is alive; gateways silent past GATEWAY_STALE_MS are removed with their slots and
   * tunnels. Returns the advertised agent addresses of the gateways alive.
   */
  heartbeat(gateway: string, advertise: string | undefined, startedAt: number): Promise<string[]> {
    return this.run(() =>
      this.sql.begin(async (tx) => {
        await tx`INSERT INTO gateways (id, advertise, started_at, heartbeat_at) VALUES (${gateway}, ${advertise ?? null}, ${startedAt}, ${tx.unsafe(NOW_MS)})
          ON CONFLICT (id) DO UPDATE SET advertise = excluded.advertise, heartbeat_at = excluded.heartbeat_at`;
        const stale = await tx`DELETE FROM gateways WHERE heartbeat_at < ${tx.unsafe(NOW_MS)} - ${GATEWAY_STALE_MS} RETURNING id`;
        const ids = stale.map((row) => row.id as string);
        if (ids.length > 0) {
          await tx`DELETE FROM session_slots WHERE gateway = ANY(${ids}::text[])`;
          await tx`DELETE FROM agent_tunnels WHERE gateway = ANY(${ids}::text[])`;
        }
        const alive = await tx`SELECT advertise FROM gateways WHERE advertise IS NOT NULL ORDER BY id`;
        return alive.map((row) => row.advertise as string);
      }),
    );
  }

  /** A gateway shutting down cleanly: its row, slots and tunnels go at once. */
  gatewayStopped(gateway: string): Promise<void> {
    return this.run(async () => {
      await this.sql`DELETE FROM session_slots WHERE gateway = ${gateway}`;
      await this.sql`DELETE FROM agent_tunnels WHERE gateway = ${gateway}`;
      await this.sql`DELETE FROM gateways WHERE id = ${gateway}`;
    });
  }

  /**
   * Takes the VM's session slot of this kind for a new session, in one transaction that re-checks
   * the console under its row lock: the fence returned is greater than every one before it, so the
   * agent can keep only the newest. Refused (a DomainError whose code is the revocation reason) when the console no longer admits the grant.
   */
  claimSlot(virtualMachine: string, kind: 'serial' | 'vnc', owner: SlotOwner, now = Date.now()): Promise<{ fence: number; console: ConsoleView | null }> {
    return this.run(() =>
      this.sql.begin(async (tx) => {
        const [row] = await tx`SELECT * FROM consoles WHERE virtual_machine = ${virtualMachine} FOR UPDATE`;
        if (owner.grant) {
          const why = revocationReason(owner.grant, row && toConsole(row), now);
          if (why) throw new DomainError('conflict', why, revocationMessage(why, virtualMachine));
        }
        const [slot] = await tx`
          INSERT INTO session_slots (virtual_machine, kind, session, gateway, fence, remote_address, path, endpoint, started_at)
          VALUES (${virtualMachine}, ${kind}, ${owner.session}, ${owner.gateway}, nextval('session_fence'), ${owner.remoteAddress}, ${owner.path}, ${owner.endpoint}, ${now})
          ON CONFLICT (virtual_machine, kind) DO UPDATE SET session = excluded.session, gateway = excluded.gateway, fence = excluded.fence,
            remote_address = excluded.remote_address, path = excluded.path, endpoint = excluded.endpoint, started_at = excluded.started_at,
            bytes_in = 0, bytes_out = 0
          RETURNING fence`;
        return { fence: Number(slot!.fence), console: consoleView(row && toConsole(row)) };
      }),
    );
  }

  /** The session left its slot (a displaced session's release is a no-op: the slot names another). */
  releaseSlot(virtualMachine: string, kind: 'serial' | 'vnc', session: string): Promise<void> {
    return this.run(async () => {
      await this.sql`DELETE FROM session_slots WHERE virtual_machine = ${virtualMachine} AND kind = ${kind} AND session = ${session}`;
    });
  }

  /** The byte counts of this gateway's sessions, for the other gateways' session lists (written every reconcile). */
  reportSlots(gateway: string, sessions: Array<{ id: string; bytesIn: number; bytesOut: number }>): Promise<void> {
    if (sessions.length === 0) return Promise.resolve();
    return this.run(async () => {
      await this.sql`
        UPDATE session_slots s SET bytes_in = r.bytes_in, bytes_out = r.bytes_out
        FROM (SELECT unnest(${sessions.map((s) => s.id)}::text[]) AS session, unnest(${sessions.map((s) => s.bytesIn)}::bigint[]) AS bytes_in,
                     unnest(${sessions.map((s) => s.bytesOut)}::bigint[]) AS bytes_out) r
        WHERE s.session = r.session AND s.gateway = ${gateway}`;
    });
  }

  /** Sessions held by gateways other than `gateway` (byte counts as their holder last wrote them). */
  otherSlots(gateway: string): Promise<SlotRecord[]> {
    return this.run(async () => {
      const rows = await this.sql`
        SELECT s.*, coalesce(g.advertise, s.gateway) AS holder FROM session_slots s JOIN gateways g ON g.id = s.gateway
        WHERE s.gateway <> ${gateway} ORDER BY s.started_at`;
      return rows.map((row) => ({
        session: row.session as string,
        virtualMachine: row.virtual_machine as string,
        kind: row.kind as SlotRecord['kind'],
        path: row.path as SlotRecord['path'],
        endpoint: row.endpoint as string,
        remoteAddress: row.remote_address as string,
        startedAt: Number(row.started_at),
        bytesIn: Number(row.bytes_in),
        bytesOut: Number(row.bytes_out),
        gateway: row.holder as string,
      }));
    });
  }
}
