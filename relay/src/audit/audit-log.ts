import { syncFolder } from '../store/durable-file.js';
import { closeSync, constants, fstatSync, fsyncSync, ftruncateSync, openSync, readFileSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { AUDIT_FILE, auditFiles, chainLine, GENESIS, splitLine, type AuditEvent, type AuditEventInput, type AuditTrail } from './audit-format.js';
import { readAuditEvents, type AuditReadFilter } from './audit-read.js';

export type { AuditEvent, AuditEventInput, AuditTrail } from './audit-format.js';

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

/** Append, create if missing, never through a symlink planted under the trail's name. */
const OPEN_TRAIL = constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | (constants.O_NOFOLLOW ?? 0);

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

export class AuditLog implements AuditTrail {
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
    const chained = chainLine(event);
    const { hash } = chained;
    const line = `${chained.line}\n`;
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

  /** Events in order, filtered, read as streams (audit-read.ts). */
  read(filter: AuditReadFilter): Promise<{ events: AuditEvent[]; more: boolean }> {
    return readAuditEvents(this.dir, filter);
  }

  close(): void {
    try {
      closeSync(this.fd);
    } catch {
      // Already closed.
    }
  }
}
