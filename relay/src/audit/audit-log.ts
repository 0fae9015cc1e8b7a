import { createHash } from 'node:crypto';
import { syncFolder } from '../store/durable-file.js';
import { closeSync, constants, existsSync, fstatSync, fsyncSync, ftruncateSync, openSync, readdirSync, readFileSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

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

export interface AuditLogOptions {
  maxFileBytes: number;
  keepFiles: number;
  now?: () => number;
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
      const seq = Number((/^\{"seq":(\d+),/.exec(line) ?? [])[1]);
      if (!parts || !Number.isSafeInteger(seq)) throw new Error(`the audit trail ${file} does not end with a trail line; check it with "lifeline-relay audit verify"`);
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
    if (this.size >= this.options.maxFileBytes) this.rotate();
    return { ...event, hash } as AuditEvent;
  }

  private rotate(): void {
    closeSync(this.fd);
    renameSync(join(this.dir, AUDIT_FILE), join(this.dir, `audit-${String(this.seq).padStart(12, '0')}.jsonl`));
    this.fd = openSync(join(this.dir, AUDIT_FILE), OPEN_TRAIL, 0o600);
    // The rename and the new file are on the disk before the next event is answered.
    syncFolder(this.dir);
    this.size = 0;
    const rotated = auditFiles(this.dir).filter((file) => !file.endsWith(AUDIT_FILE));
    for (const old of rotated.slice(0, Math.max(0, rotated.length - this.options.keepFiles))) unlinkSync(old);
  }

  /** Events in order, filtered; reads the files (the trail is not kept in memory). */
  read(filter: { since?: number; afterSeq?: number; match?: (event: AuditEvent) => boolean; limit: number }): { events: AuditEvent[]; more: boolean } {
    const events: AuditEvent[] = [];
    for (const file of auditFiles(this.dir)) {
      if (!existsSync(file)) continue; // rotated away while reading
      for (const line of readFileSync(file, 'utf8').split('\n')) {
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
  | { ok: true; files: number; events: number; firstSeq?: number; lastSeq?: number; head: string; anchored: boolean }
  | { ok: false; file: string; line: number; problem: string; events: number };

/**
 * Checks the whole chain: every line's own hash, its `prev` against the line before, and its
 * `seq`. The oldest kept file may start past seq 1 (older files rotated away): its first
 * `prev` is then taken as the anchor (`anchored: false` says so).
 */
export function verifyAuditTrail(dir: string): VerifyResult {
  const files = auditFiles(dir);
  let previous: { seq: number; hash: string } | undefined;
  let anchored = true;
  let events = 0;
  let firstSeq: number | undefined;
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
        firstSeq = event.seq;
        if (event.seq !== 1 || event.prev !== GENESIS) {
          if (event.seq === 1) return { ok: false, ...at, problem: 'the first event does not start the chain' };
          anchored = false;
        }
      } else {
        if (event.prev !== previous.hash) return { ok: false, ...at, problem: `its "prev" does not match the hash of event ${previous.seq}: a line before it was changed, removed or inserted` };
        if (event.seq !== previous.seq + 1) return { ok: false, ...at, problem: `its seq is ${event.seq} after ${previous.seq}: events are missing or out of order` };
      }
      previous = { seq: event.seq, hash: parts.hash };
      events++;
    }
  }
  return { ok: true, files: files.length, events, firstSeq, lastSeq: previous?.seq, head: previous?.hash ?? GENESIS, anchored };
}
