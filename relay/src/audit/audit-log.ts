import { createHash } from 'node:crypto';
import { syncFolder } from '../store/durable-file.js';
import { closeSync, constants, createReadStream, fstatSync, fsyncSync, ftruncateSync, openSync, readdirSync, readFileSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';

/*
 * The audit trail: `<dataDir>/audit.jsonl`, one JSON object a line, each chained to the one
 * before by SHA-256 so that an edited, inserted or removed line shows. A line is
 *
 *   {"seq":N,"time":"…","prev":"<hash of line N-1>", …event…,"hash":"<hex>"}
 *
 * where `hash` = SHA-256 of the line's text up to `,"hash"` followed by `}` (the event as it
 * was written, `prev` included). Appends are synchronous and fsync'd, so an API answer is
 * sent only after its event is on disk. Past `maxFileBytes` the file is renamed
 * `audit-<last seq>.jsonl` and a new one starts; the chain runs on across files.
 *
 * A rotated file is never removed silently: beyond `keepFiles`, or once its last event is older
 * than `maxAgeMs`, an `audit.pruned` event naming its range and the hash it ended at is written
 * first, so `verify` can tell a pruned head from a cut one.
 */

export const AUDIT_FILE = 'audit.jsonl';
/** Append, create if missing, never through a symlink planted under the trail's name. */
const OPEN_TRAIL = constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | (constants.O_NOFOLLOW ?? 0);
const ROTATED = /^audit-(\d{12})\.jsonl$/;
const GENESIS = '0'.repeat(64);
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

function sha256(text: string): string {
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
function splitLine(line: string): { body: string; hash: string } | undefined {
  const match = HASH_SUFFIX.exec(line);
  if (!match) return undefined;
  return { body: `${line.slice(0, match.index)}}`, hash: match[1]! };
}

/** The last complete line of a file, reading only its tail. */
function lastLine(path: string): string | undefined {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    let chunk = 64 * 1024;
    for (;;) {
      const start = Math.max(0, size - chunk);
      const buffer = Buffer.alloc(size - start);
      readSync(fd, buffer, 0, buffer.length, start);
      const text = buffer.toString('utf8').replace(/\n$/, '');
      const cut = text.lastIndexOf('\n');
      if (cut >= 0 || start === 0) return text.slice(cut + 1) || undefined;
      chunk *= 4;
    }
  } finally {
    closeSync(fd);
  }
}

/** The first line of a file, reading only its head. */
function firstLine(path: string): string | undefined {
  const fd = openSync(path, 'r');
  try {
    let chunk = 16 * 1024;
    for (;;) {
      const buffer = Buffer.alloc(chunk);
      const read = readSync(fd, buffer, 0, chunk, 0);
      const text = buffer.subarray(0, read).toString('utf8');
      const cut = text.indexOf('\n');
      if (cut >= 0) return text.slice(0, cut) || undefined;
      if (read < chunk) return text || undefined;
      chunk *= 4;
    }
  } finally {
    closeSync(fd);
  }
}

function seqOf(line: string | undefined): number | undefined {
  const seq = Number((/^\{"seq":(\d+),/.exec(line ?? '') ?? [])[1]);
  return Number.isSafeInteger(seq) ? seq : undefined;
}

/** What an `audit.pruned` event records of a removed file. */
export interface PrunedRange {
  file: string;
  fromSeq: number;
  toSeq: number;
  /** The hash of event `toSeq`: the next kept event's `prev`. */
  toHash: string;
  firstTime?: string;
  lastTime?: string;
  reason: 'keepFiles' | 'maxAge';
}

export interface AuditLogOptions {
  maxFileBytes: number;
  /** Rotated files kept; older ones are pruned (with an `audit.pruned` event). */
  keepFiles: number;
  /** Rotated files whose last event is older than this are pruned too; undefined: by count only. */
  maxAgeMs?: number;
  now?: () => number;
  /** Called after each event is durable (the relay records the head in its store, so a missing tail shows). */
  onAppend?: (seq: number, hash: string) => void;
  /** Called after a rotated file was pruned (its `audit.pruned` event is written; the file is gone). */
  onPrune?: (range: PrunedRange) => void;
}

export class AuditLog {
  private fd: number;
  private size: number;
  private seq = 0;
  private head = GENESIS;
  /** False once a write failed: API changes are refused until the trail can be written again. */
  healthy = true;
  /** Bytes of a torn last line found (and cut) at open, after a crash mid-write. */
  readonly recoveredBytes: number = 0;
  /** Files and events pruned since open (metrics). */
  prunedFiles = 0;
  prunedEvents = 0;
  private pruning = false;

  constructor(
    private readonly dir: string,
    private readonly options: AuditLogOptions,
  ) {
    const live = join(dir, AUDIT_FILE);
    this.fd = openSync(live, OPEN_TRAIL, 0o600);
    this.size = fstatSync(this.fd).size;
    if (this.size === 0) syncFolder(dir); // a new trail file's name is on the disk too
    // A crash can leave a line without its newline: it was never answered, and it cannot be chained.
    if (this.size > 0) {
      const whole = readFileSync(live);
      if (whole[whole.length - 1] !== 0x0a) {
        const keep = whole.lastIndexOf(0x0a) + 1;
        ftruncateSync(this.fd, keep);
        fsyncSync(this.fd);
        this.recoveredBytes = this.size - keep;
        this.size = keep;
      }
    }
    for (const file of auditFiles(dir).reverse()) {
      const line = lastLine(file);
      if (!line) continue;
      const parts = splitLine(line);
      const seq = seqOf(line);
      if (!parts || seq === undefined) throw new Error(`the audit trail ${file} does not end with a trail line; check it with "lifeline-relay audit verify"`);
      this.seq = seq;
      this.head = parts.hash;
      break;
    }
  }

  get lastSeq(): number {
    return this.seq;
  }

  /** Appends one event and makes it durable before returning. Throws when the disk refuses. */
  append(input: AuditEventInput): AuditEvent {
    const seq = this.seq + 1;
    const event = { seq, time: new Date((this.options.now ?? Date.now)()).toISOString(), prev: this.head, ...input };
    const body = JSON.stringify(event);
    const hash = sha256(body);
    const line = `${body.slice(0, -1)},"hash":"${hash}"}\n`;
    try {
      const bytes = Buffer.from(line, 'utf8');
      let written = 0;
      while (written < bytes.length) written += writeSync(this.fd, bytes, written);
      fsyncSync(this.fd);
      this.healthy = true;
    } catch (error) {
      this.healthy = false;
      // Leave no torn line behind for the next append to chain onto.
      try {
        ftruncateSync(this.fd, this.size);
      } catch {
        // The next open cuts it.
      }
      throw error;
    }
    this.seq = seq;
    this.head = hash;
    this.size += Buffer.byteLength(line);
    this.options.onAppend?.(seq, hash);
    if (this.size >= this.options.maxFileBytes) this.rotate();
    return { ...event, hash } as AuditEvent;
  }

  get headHash(): string {
    return this.head;
  }

  private rotate(): void {
    closeSync(this.fd);
    renameSync(join(this.dir, AUDIT_FILE), join(this.dir, `audit-${String(this.seq).padStart(12, '0')}.jsonl`));
    this.fd = openSync(join(this.dir, AUDIT_FILE), OPEN_TRAIL, 0o600);
    // The rename and the new file are on the disk before the next event is answered.
    syncFolder(this.dir);
    this.size = 0;
    this.prune();
  }

  /**
   * Removes the rotated files beyond `keepFiles` and those older than `maxAgeMs`, oldest first,
   * each after an `audit.pruned` event that records its range. Runs after every rotation; the
   * relay also calls it from time to time so that a quiet trail is pruned by age too.
   */
  prune(): void {
    if (this.pruning) return;
    this.pruning = true;
    try {
      const rotated = auditFiles(this.dir).filter((file) => !file.endsWith(AUDIT_FILE));
      const now = (this.options.now ?? Date.now)();
      for (const [index, file] of rotated.entries()) {
        const tooMany = rotated.length - index > this.options.keepFiles;
        const last = lastLine(file);
        const lastTime = last ? (JSON.parse(last) as { time?: string }).time : undefined;
        const tooOld = this.options.maxAgeMs !== undefined && lastTime !== undefined && now - Date.parse(lastTime) > this.options.maxAgeMs;
        if (!tooMany && !tooOld) break; // files are in age order: the rest are newer
        const first = firstLine(file);
        const range: PrunedRange = {
          file: basename(file),
          fromSeq: seqOf(first) ?? 0,
          toSeq: seqOf(last) ?? 0,
          toHash: (last && splitLine(last)?.hash) ?? GENESIS,
          ...(first && { firstTime: (JSON.parse(first) as { time?: string }).time }),
          ...(lastTime && { lastTime }),
          reason: tooMany ? 'keepFiles' : 'maxAge',
        };
        // On record before it is gone: a crash between the two leaves the file and its event, never a silent gap.
        this.append({ type: 'audit.pruned', ...range });
        unlinkSync(file);
        this.prunedFiles++;
        this.prunedEvents += range.toSeq - range.fromSeq + 1;
        this.options.onPrune?.(range);
      }
    } finally {
      this.pruning = false;
    }
  }

  /**
   * Events in order, filtered. Reads the files as streams (the trail is not kept in memory, and a
   * large trail never holds up the event loop that carries the consoles); with `afterSeq`, rotated
   * files that end before it (their name is their last seq) are not opened at all.
   */
  async read(filter: { since?: number; afterSeq?: number; match?: (event: AuditEvent) => boolean; limit: number }): Promise<{ events: AuditEvent[]; more: boolean }> {
    const events: AuditEvent[] = [];
    for (const file of auditFiles(this.dir)) {
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

  close(): void {
    try {
      closeSync(this.fd);
    } catch {
      // Already closed.
    }
  }
}

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
  let previous: { seq: number; hash: string } | undefined;
  let first: { seq: number; prev: string; file: string } | undefined;
  let events = 0;
  const pruned: PrunedRange[] = [];
  let gap: { file: string; line: number; event: AuditEvent } | undefined;
  let hashAtRecorded: string | undefined;
  for (const file of files) {
    const lines = readFileSync(file, 'utf8').split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
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
    const where = { file: files.at(-1) ?? join(dir, AUDIT_FILE), line: 0, events };
    if (!previous) return { ok: false, ...where, problem: `the trail is empty or missing, but the relay's store recorded ${withCommas(recorded.seq)} events (the last with hash ${recorded.hash})` };
    if (previous.seq < recorded.seq) {
      return { ok: false, ...where, problem: `events ${withCommas(previous.seq + 1)}–${withCommas(recorded.seq)} are missing at the end: the trail stops at ${withCommas(previous.seq)}, but the relay's store recorded ${withCommas(recorded.seq)} as written` };
    }
    if (hashAtRecorded !== undefined && hashAtRecorded !== recorded.hash) {
      return { ok: false, ...where, problem: `event ${withCommas(recorded.seq)} is not the one the relay's store recorded (hash ${recorded.hash}): the trail was rewritten from there on` };
    }
  }
  return { ok: true, files: files.length, events, firstSeq: first?.seq, lastSeq: previous?.seq, head: previous?.hash ?? GENESIS, anchored: !anchor, ...(anchor && { pruned: anchor }) };
}
