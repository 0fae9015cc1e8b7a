import { createReadStream, openSync } from 'node:fs';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import { auditFiles, ROTATED, type AuditEvent } from './audit-format.js';

export interface AuditReadFilter {
  since?: number;
  afterSeq?: number;
  match?: (event: AuditEvent) => boolean;
  limit: number;
}

/**
 * The trail's events in order, filtered: the reader apart from the writer (audit-log.ts). Reads
 * the files as streams (the trail is not kept in memory, and a large trail never holds up the
 * event loop that carries the consoles); with `afterSeq`, rotated files that end before it (their
 * name is their last seq) are not opened at all.
 */
export async function readAuditEvents(dir: string, filter: AuditReadFilter): Promise<{ events: AuditEvent[]; more: boolean }> {
  const events: AuditEvent[] = [];
  for (const file of auditFiles(dir)) {
    const last = Number((ROTATED.exec(basename(file)) ?? [])[1]);
    if (filter.afterSeq !== undefined && Number.isSafeInteger(last) && last <= filter.afterSeq) continue;
    let fd: number;
    try {
      fd = openSync(file, 'r'); // once open, a file pruned meanwhile is still read whole
    } catch {
      continue; // pruned before it was opened
    }
    const lines = createInterface({ input: createReadStream('', { fd, encoding: 'utf8' }), crlfDelay: Infinity });
    try {
      for await (const line of lines) {
        if (!line) continue;
        let event: AuditEvent;
        try {
          event = JSON.parse(line) as AuditEvent;
        } catch {
          continue; // `audit verify` reports it; readers get what is readable
        }
        if (filter.afterSeq !== undefined && event.seq <= filter.afterSeq) continue;
        if (filter.since !== undefined && Date.parse(event.time) < filter.since) continue;
        if (filter.match && !filter.match(event)) continue;
        if (events.length === filter.limit) return { events, more: true };
        events.push(event);
      }
    } finally {
      lines.close();
    }
  }
  return { events, more: false };
}
