import type postgres from 'postgres';
import { chainLine, GENESIS, type AuditEvent, type AuditEventInput, type AuditTrail } from '../audit/audit-format.js';
import type { Logger } from '../logger.js';

/** Any 64-bit key that is Lifeline's audit chain: held by the one gateway appending at a time. */
const CHAIN_LOCK = 0x4c4c417564697421n; // "LLAudit!"
/** How long an awaited append may wait for the database before it is reported failed (the event stays queued and is written once it can be). */
const APPEND_DEADLINE_MS = 5000;
const RETRY_MS = 1000;
/** Events kept while the database cannot be reached; beyond this the oldest are dropped (logged). */
const MAX_QUEUED = 100_000;

interface Queued {
  event: Omit<AuditEvent, 'seq' | 'prev' | 'hash'>;
  waiters: Array<{ resolve(): void; reject(error: Error): void }>;
}

/**
 * The fleet's one audit trail, in PostgreSQL: every gateway appends to the same hash chain, in
 * batches, each in one transaction under an advisory lock that reads the head and chains onto it,
 * so N writers keep one chain. Each row keeps the exact line the file trail would have, so
 * `audit verify` and the export read it the same way. Appends are queued: a session event is
 * written as soon as the database takes it; an API change awaits its event (or is answered 503).
 */
export class FleetAuditTrail implements AuditTrail {
  healthy = true;
  readonly prunedFiles = 0;
  readonly prunedEvents = 0;
  private queue: Queued[] = [];
  private flushing: Promise<void> | undefined;
  private retry: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly sql: postgres.Sql,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Resolves once the event is in the database; rejects after a few seconds without it (it stays queued). */
  append(input: AuditEventInput): Promise<void> {
    const queued: Queued = { event: { time: new Date(this.now()).toISOString(), ...input }, waiters: [] };
    this.queue.push(queued);
    if (this.queue.length > MAX_QUEUED) {
      const dropped = this.queue.splice(0, this.queue.length - MAX_QUEUED);
      this.log.error({ dropped: dropped.length }, 'the fleet database has been unreachable too long: the oldest queued audit events were dropped');
      for (const entry of dropped) for (const waiter of entry.waiters) waiter.reject(new Error('audit event dropped'));
    }
    const written = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the fleet database did not take the audit event in time (it stays queued)')), APPEND_DEADLINE_MS);
      timer.unref();
      queued.waiters.push({
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
    });
    // An event nobody awaits (a session's) must not become an unhandled rejection.
    written.catch(() => {});
    this.schedule();
    return written;
  }

  private schedule(): void {
    if (this.flushing || this.retry) return;
    this.flushing = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.flush());
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.slice(0, 500);
      try {
        await this.sql.begin(async (tx) => {
          await tx`SELECT pg_advisory_xact_lock(${CHAIN_LOCK.toString()}::bigint)`;
          const [head] = await tx`SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1`;
          let seq = head ? Number(head.seq) : 0;
          let prev = head ? (head.hash as string) : GENESIS;
          const rows = batch.map(({ event }) => {
            seq++;
            const { line, hash } = chainLine({ seq, time: event.time, prev, ...event } as Omit<AuditEvent, 'hash'>);
            prev = hash;
            return { seq, hash, line, type: event.type as string, time_ms: Date.parse(event.time as string) };
          });
          await tx`INSERT INTO audit_events ${tx(rows, 'seq', 'hash', 'line', 'type', 'time_ms')}`;
        });
      } catch (error) {
        if (this.healthy) this.log.error({ err: (error as Error).message, queued: this.queue.length }, 'cannot write the fleet audit trail: events are queued until the database takes them');
        this.healthy = false;
        this.flushing = undefined;
        if (!this.closed) {
          this.retry = setTimeout(() => {
            this.retry = undefined;
            this.schedule();
          }, RETRY_MS);
          this.retry.unref();
        }
        return;
      }
      if (!this.healthy) this.log.info('the fleet audit trail is written again');
      this.healthy = true;
      this.queue.splice(0, batch.length);
      for (const entry of batch) for (const waiter of entry.waiters) waiter.resolve();
    }
    this.flushing = undefined;
  }

  async read(filter: { since?: number; afterSeq?: number; match?: (event: AuditEvent) => boolean; limit: number }): Promise<{ events: AuditEvent[]; more: boolean }> {
    const events: AuditEvent[] = [];
    let after = filter.afterSeq ?? 0;
    // Pages of rows, filtered here (the match is the API's own predicate), until the limit is met.
    for (;;) {
      const rows = await this.sql`SELECT seq, line FROM audit_events WHERE seq > ${after} ${filter.since !== undefined ? this.sql`AND time_ms >= ${filter.since}` : this.sql``} ORDER BY seq LIMIT 1000`;
      for (const row of rows) {
        const event = JSON.parse(row.line as string) as AuditEvent;
        if (filter.match && !filter.match(event)) continue;
        if (events.length === filter.limit) return { events, more: true };
        events.push(event);
      }
      if (rows.length < 1000) return { events, more: false };
      after = Number(rows.at(-1)!.seq);
    }
  }

  /** Writes what is queued (for up to `graceMs`), then stops. */
  async close(graceMs = 3000): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    this.retry = undefined;
    if (this.queue.length > 0 && !this.flushing) this.flushing = this.flush();
    await Promise.race([this.flushing, new Promise((resolve) => setTimeout(resolve, graceMs).unref())]);
    if (this.queue.length > 0) this.log.error({ lost: this.queue.length }, 'audit events not written to the fleet database before shutdown');
  }
}
