import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AUDIT_FILE, auditFiles, GENESIS, sha256, splitLine, type AuditEvent } from './audit-format.js';
import type { PrunedRange } from './audit-log.js';

/*
 * `lifeline-relay audit verify`: checks the trail's chain, that a head which starts past seq 1
 * is accounted for by an audit.pruned event, and that the trail still reaches the head the
 * relay's store recorded. Kept apart from the writer (audit-log.ts): it reads files only.
 */

export type VerifyResult =
  | { ok: true; files: number; events: number; firstSeq?: number; lastSeq?: number; head: string; anchored: boolean; pruned?: PrunedRange }
  | { ok: false; file: string; line: number; problem: string; events: number };

/** The head the relay recorded in its store after its last append: what the trail must still reach. */
export interface RecordedHead {
  seq: number;
  hash: string;
}

/** The store's meta key for the head: `<seq> <hash>`. */
export const AUDIT_HEAD_META = 'auditHead';

export function parseAuditHead(value: string | undefined): RecordedHead | undefined {
  const match = /^(\d+) ([0-9a-f]{64})$/.exec(value ?? '');
  return match ? { seq: Number(match[1]), hash: match[2]! } : undefined;
}

function withCommas(n: number): string {
  return n.toLocaleString('en-US');
}

/**
 * Checks the whole chain: every line's own hash, its `prev` against the line before, and its
 * `seq`. The oldest kept file may start past seq 1 only where an `audit.pruned` event records
 * the removed range ending right before it, with the hash it ended at (`anchored: false`);
 * otherwise the head was cut. With `recorded` (the head the relay's store knows), a trail that
 * ends before it, or differs at it, was cut at the tail or replaced; an empty or missing trail
 * after events existed fails too. An `audit.gap` event (the relay found such a cut at start)
 * fails it as well: what it lost is not coming back.
 */
export function verifyAuditTrail(dir: string, recorded?: RecordedHead): VerifyResult {
  const files = auditFiles(dir);
  const segments = files.map((file) => {
    const lines = readFileSync(file, 'utf8').split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    return { file, lines };
  });
  return verifyChain(segments, files.at(-1) ?? join(dir, AUDIT_FILE), recorded);
}

/**
 * The same checks on any sequence of trail lines: the files of a relay's trail, or the rows of a
 * fleet's trail in PostgreSQL (one segment). `tail` names where a missing end would be.
 */
export function verifyChain(segments: Array<{ file: string; lines: string[] }>, tail: string, recorded?: RecordedHead): VerifyResult {
  let previous: { seq: number; hash: string } | undefined;
  let first: { seq: number; prev: string; file: string } | undefined;
  let events = 0;
  const pruned: PrunedRange[] = [];
  let gap: { file: string; line: number; event: AuditEvent } | undefined;
  let hashAtRecorded: string | undefined;
  for (const { file, lines } of segments) {
    for (const [index, line] of lines.entries()) {
      const at = { file, line: index + 1, events };
      const parts = splitLine(line);
      if (!parts) return { ok: false, ...at, problem: 'not a trail line (its "hash" field is missing or not last)' };
      let event: AuditEvent;
      try {
        event = JSON.parse(line) as AuditEvent;
      } catch {
        return { ok: false, ...at, problem: 'not valid JSON' };
      }
      if (sha256(parts.body) !== parts.hash) return { ok: false, ...at, problem: 'its hash does not match its content: the line was changed' };
      if (previous === undefined) {
        first = { seq: event.seq, prev: event.prev, file };
        if (event.seq === 1 && event.prev !== GENESIS) return { ok: false, ...at, problem: 'the first event does not start the chain' };
      } else {
        if (event.prev !== previous.hash) return { ok: false, ...at, problem: `its "prev" does not match the hash of event ${previous.seq}: a line before it was changed, removed or inserted` };
        if (event.seq !== previous.seq + 1) return { ok: false, ...at, problem: `its seq is ${event.seq} after ${previous.seq}: events ${withCommas(previous.seq + 1)}–${withCommas(event.seq - 1)} are missing or out of order` };
      }
      if (event.type === 'audit.pruned') pruned.push(event as unknown as PrunedRange);
      if (event.type === 'audit.gap') gap ??= { file, line: index + 1, event };
      if (recorded && event.seq === recorded.seq) hashAtRecorded = parts.hash;
      previous = { seq: event.seq, hash: parts.hash };
      events++;
    }
  }
  const anchor = first && first.seq > 1 ? pruned.find((range) => range.toSeq === first!.seq - 1 && range.toHash === first!.prev) : undefined;
  if (first && first.seq > 1 && !anchor) {
    return {
      ok: false,
      file: first.file,
      line: 1,
      events,
      problem: `events 1–${withCommas(first.seq - 1)} are missing at the head: the oldest kept event is ${withCommas(first.seq)} and no audit.pruned event accounts for the events before it (lines cut from the start, or files removed by hand)`,
    };
  }
  if (gap) {
    const { expectedSeq, foundSeq } = gap.event as unknown as { expectedSeq: number; foundSeq: number };
    const what = foundSeq < expectedSeq ? `events ${withCommas(foundSeq + 1)}–${withCommas(expectedSeq)} missing` : `event ${withCommas(expectedSeq)} not the one it had written`;
    return { ok: false, file: gap.file, line: gap.line, events, problem: `when the relay started, it found ${what} (audit.gap event ${gap.event.seq}): the trail was cut or replaced while it was stopped` };
  }
  if (recorded && recorded.seq > 0) {
    const where = { file: tail, line: 0, events };
    if (!previous) return { ok: false, ...where, problem: `the trail is empty or missing, but the relay's store recorded ${withCommas(recorded.seq)} events (the last with hash ${recorded.hash})` };
    if (previous.seq < recorded.seq) {
      return { ok: false, ...where, problem: `events ${withCommas(previous.seq + 1)}–${withCommas(recorded.seq)} are missing at the end: the trail stops at ${withCommas(previous.seq)}, but the relay's store recorded ${withCommas(recorded.seq)} as written` };
    }
    if (hashAtRecorded !== undefined && hashAtRecorded !== recorded.hash) {
      return { ok: false, ...where, problem: `event ${withCommas(recorded.seq)} is not the one the relay's store recorded (hash ${recorded.hash}): the trail was rewritten from there on` };
    }
  }
  return { ok: true, files: segments.length, events, firstSeq: first?.seq, lastSeq: previous?.seq, head: previous?.hash ?? GENESIS, anchored: !anchor, ...(anchor && { pruned: anchor }) };
}
