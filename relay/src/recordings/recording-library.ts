import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { RelayConfig } from '../config/config.js';
import { writeFileDurable } from '../store/durable-file.js';
import type { Logger } from '../logger.js';
import { CAST_FILE, HOLD_FILE, MANIFEST_FILE, MANIFEST_FORMAT, type RecordingManifest } from './recording-bundle.js';
import { wholeRecordsEnd } from './rfb-format.js';

/** A recording's id is a UUID: nothing else names a folder of the recordings directory. */
const RECORDING_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SWEEP_INTERVAL_MS = 60 * 60 * 1000;

export interface LegalHold {
  reason: string;
  since: string;
}

export interface RecordingSummary extends RecordingManifest {
  hold?: LegalHold;
}

/** What `verify` found: `ok`, or the segment (or manifest) that does not match and how. */
export interface VerifyOutcome {
  id: string;
  ok: boolean;
  complete: boolean;
  problems: string[];
}

function sha256OfPrefix(path: string, bytes: number): { sha256: string; size: number } {
  const size = statSync(path).size;
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.alloc(1 << 20);
    for (let done = 0; done < Math.min(bytes, size); ) {
      const read = readSync(fd, buffer, 0, Math.min(buffer.length, bytes - done), done);
      if (read === 0) break;
      hash.update(buffer.subarray(0, read));
      done += read;
    }
  } finally {
    closeSync(fd);
  }
  return { sha256: hash.digest('hex'), size };
}

/**
 * The recordings kept on disk (docs/recordings.md): listed, read, verified against their
 * manifests, put on legal hold, deleted, and swept past `recording.retention` — every deletion
 * audited. A running recording's folder is listed too (`complete: false`).
 */
export class RecordingLibrary {
  constructor(
    private readonly config: RelayConfig['recording'],
    private readonly audit: (type: string, details: Record<string, unknown>) => void,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  private folder(id: string): string | undefined {
    if (!RECORDING_ID.test(id)) return undefined;
    const dir = join(this.config.dir, id);
    return existsSync(join(dir, MANIFEST_FILE)) ? dir : undefined;
  }

  /** The manifest as written, or undefined for no such recording. */
  manifestText(id: string): string | undefined {
    const dir = this.folder(id);
    return dir ? readFileSync(join(dir, MANIFEST_FILE), 'utf8') : undefined;
  }

  get(id: string): RecordingSummary | undefined {
    const text = this.manifestText(id);
    if (text === undefined) return undefined;
    const manifest = JSON.parse(text) as RecordingManifest;
    if (manifest.format !== MANIFEST_FORMAT) return undefined;
    const hold = this.holdOf(id);
    return { ...manifest, ...(hold && { hold }) };
  }

  private holdOf(id: string): LegalHold | undefined {
    const path = join(this.config.dir, id, HOLD_FILE);
    return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as LegalHold) : undefined;
  }

  /** Every recording, newest first, optionally of one VM and started since `since`. */
  list(filter: { virtualMachine?: string; since?: number } = {}): RecordingSummary[] {
    if (!existsSync(this.config.dir)) return [];
    const found: RecordingSummary[] = [];
    for (const name of readdirSync(this.config.dir)) {
      let recording: RecordingSummary | undefined;
      try {
        recording = this.get(name);
      } catch (error) {
        this.log.warn({ recording: name, err: (error as Error).message }, 'unreadable recording manifest');
      }
      if (!recording) continue;
      if (filter.virtualMachine !== undefined && recording.virtualMachine !== filter.virtualMachine) continue;
      if (filter.since !== undefined && Date.parse(recording.startedAt) < filter.since) continue;
      found.push(recording);
    }
    return found.sort((a, b) => Date.parse(b.startedAt) - Date.parse(a.startedAt));
  }

  /**
   * A segment's bytes for playback. An incomplete recording's cast ends at its last whole line, and
   * a VNC segment at its last whole record (a relay killed mid-write may have left half of one), so
   * a player can read it.
   */
  segment(id: string, name: string): Buffer | undefined {
    const dir = this.folder(id);
    const manifest = dir && this.get(id);
    if (!dir || !manifest || !manifest.segments.some((segment) => segment.name === name)) return undefined;
    const data = readFileSync(join(dir, name));
    if (manifest.complete) return data;
    if (name.endsWith('.rfb')) return data.subarray(0, wholeRecordsEnd(data));
    if (name !== CAST_FILE) return data;
    const end = data.lastIndexOf(0x0a);
    return end < 0 ? data.subarray(0, 0) : data.subarray(0, end + 1);
  }

  /** Recomputes every segment's SHA-256 against the manifest (for an incomplete one: the prefix its last checkpoint covers). */
  verify(id: string, sealedSha256?: string): VerifyOutcome {
    const text = this.manifestText(id);
    if (text === undefined) return { id, ok: false, complete: false, problems: ['no such recording (its manifest.json is missing)'] };
    const manifest = JSON.parse(text) as RecordingManifest;
    const problems: string[] = [];
    if (sealedSha256 !== undefined) {
      const actual = createHash('sha256').update(text).digest('hex');
      if (actual !== sealedSha256) problems.push(`${MANIFEST_FILE}: its SHA-256 ${actual} is not the ${sealedSha256} the audit trail sealed`);
    } else if (manifest.complete) {
      problems.push(`${MANIFEST_FILE}: no recording.sealed event for it in the audit trail`);
    }
    for (const segment of manifest.segments) {
      const path = join(this.config.dir, id, segment.name);
      if (!existsSync(path)) {
        problems.push(`${segment.name}: missing`);
        continue;
      }
      const { sha256, size } = sha256OfPrefix(path, segment.bytes);
      if (size < segment.bytes) problems.push(`${segment.name}: ${size} bytes, shorter than the ${segment.bytes} the manifest lists`);
      else if (sha256 !== segment.sha256) problems.push(`${segment.name}: SHA-256 ${sha256} does not match the manifest's ${segment.sha256}`);
      else if (manifest.complete && size !== segment.bytes) problems.push(`${segment.name}: ${size - segment.bytes} bytes after the sealed end`);
    }
    return { id, ok: problems.length === 0, complete: manifest.complete, problems };
  }

  /** Puts a recording on legal hold (never swept, never deleted) or takes it off; false for no such recording. */
  hold(id: string, hold: boolean, reason: string | undefined): LegalHold | null | undefined {
    const dir = this.folder(id);
    if (!dir) return undefined;
    if (!hold) {
      rmSync(join(dir, HOLD_FILE), { force: true });
      return null;
    }
    const value: LegalHold = { reason: reason ?? '', since: new Date(this.now()).toISOString() };
    writeFileDurable(join(dir, HOLD_FILE), `${JSON.stringify(value)}\n`, 0o600);
    return value;
  }

  /** Deletes a recording: 'held' when on legal hold, 'running' while it is recorded, 'gone' when there is none. */
  delete(id: string, running: (id: string) => boolean): 'deleted' | 'held' | 'running' | 'gone' {
    const dir = this.folder(id);
    if (!dir) return 'gone';
    if (this.holdOf(id)) return 'held';
    if (running(id)) return 'running';
    rmSync(dir, { recursive: true, force: true });
    return 'deleted';
  }

  /** Deletes the recordings that ended (or, never sealed, started) more than `recording.retention` ago, unless held; each is audited. */
  sweep(running: (id: string) => boolean = () => false): string[] {
    const deleted: string[] = [];
    const cutoff = this.now() - this.config.retentionMs;
    for (const recording of this.list()) {
      const at = Date.parse(recording.endedAt ?? recording.startedAt);
      if (at >= cutoff || recording.hold || running(recording.id)) continue;
      if (this.delete(recording.id, running) !== 'deleted') continue;
      deleted.push(recording.id);
      this.audit('recording.deleted', { recording: recording.id, virtualMachine: recording.virtualMachine, reason: 'retention', retention: `${Math.round(this.config.retentionMs / 1000)}s`, startedAt: recording.startedAt });
    }
    if (deleted.length > 0) this.log.info({ deleted: deleted.length }, 'recordings past their retention deleted');
    return deleted;
  }

  /** Sweeps now and every hour; returns the stop function. */
  startSweeping(running: (id: string) => boolean = () => false): () => void {
    const sweep = (): void => {
      try {
        this.sweep(running);
      } catch (error) {
        this.log.error({ err: (error as Error).message }, 'recording retention sweep failed');
      }
    };
    sweep();
    const timer = setInterval(sweep, Math.min(SWEEP_INTERVAL_MS, Math.max(1000, this.config.retentionMs)));
    timer.unref();
    return () => clearInterval(timer);
  }
}
