import { AuditLog } from './audit/audit-log.js';
import type { AuditTrail } from './audit/audit-format.js';
import { AUDIT_HEAD_META, parseAuditHead } from './audit/audit-verify.js';
import type { RelayConfig } from './config/config.js';
import { FleetAuditTrail } from './fleet/fleet-audit.js';
import type { Logger } from './logger.js';
import { PostgresStore } from './store/postgres-store.js';
import type { Store } from './store/store.js';

/**
 * The relay's audit trail: hash-chained files in the data folder (a standalone relay), or the
 * fleet's one chain in PostgreSQL (a gateway). `close` writes what is pending and stops.
 */
export async function openAuditTrail(config: RelayConfig, store: Store, log: Logger): Promise<{ audit: AuditTrail; close(): Promise<void> }> {
  if (config.role === 'gateway' && store instanceof PostgresStore) {
    const trail = new FleetAuditTrail(store.sql, log.child({ component: 'audit' }));
    return { audit: trail, close: () => trail.close() };
  }
  const stops: Array<() => void> = [];
  // The store keeps the trail's head after every append, so a trail cut at its tail, emptied or deleted shows.
  const recordedHead = parseAuditHead(await store.getMeta(AUDIT_HEAD_META));
  const audit = new AuditLog(config.dataDir, {
    ...config.audit,
    onAppend: (seq, hash) => void store.setMeta(AUDIT_HEAD_META, `${seq} ${hash}`).catch((error: Error) => log.error({ err: error.message }, 'cannot record the audit head in the store')),
    onPrune: (range) => log.warn({ ...range }, 'pruned an audit trail file (an audit.pruned event records its range)'),
  });
  if (recordedHead && (audit.lastSeq < recordedHead.seq || (audit.lastSeq === recordedHead.seq && audit.headHash !== recordedHead.hash))) {
    log.error({ expectedSeq: recordedHead.seq, foundSeq: audit.lastSeq }, 'the audit trail does not reach the head the store recorded: it was cut or replaced while the relay was stopped; an audit.gap event records it');
    audit.append({ type: 'audit.gap', expectedSeq: recordedHead.seq, expectedHash: recordedHead.hash, foundSeq: audit.lastSeq, foundHash: audit.headHash });
  }
  if (config.audit.maxAgeMs !== undefined) {
    const pruner = setInterval(() => {
      try {
        audit.prune();
      } catch (error) {
        log.error({ err: (error as Error).message }, 'cannot prune the audit trail');
      }
    }, 3_600_000).unref();
    stops.push(() => clearInterval(pruner));
  }
  if (audit.recoveredBytes > 0) {
    log.warn({ bytes: audit.recoveredBytes }, 'the audit trail ended in a torn line (a crash while writing it, before any answer); the line was cut');
    audit.append({ type: 'audit.recovered', droppedBytes: audit.recoveredBytes });
  }
  return {
    audit,
    close: async () => {
      for (const stop of stops) stop();
      audit.close();
    },
  };
}
