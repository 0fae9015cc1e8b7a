import { createHash, type Hash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileDurable } from '../store/durable-file.js';
import { AsciicastEncoder } from './asciicast.js';

/** The files of a recording bundle (docs/recordings.md). */
export const MANIFEST_FILE = 'manifest.json';
export const CAST_FILE = 'serial.cast';
export const RAW_FILE = 'serial.raw';
export const HOLD_FILE = 'hold.json';
export const MANIFEST_FORMAT = 'lifeline-recording/1';

export interface SegmentState {
  name: string;
  bytes: number;
  sha256: string;
  /** A VNC segment's first and last moments, in seconds into the recording (the last one absent while it is written). */
  start?: number;
  end?: number;
}

export interface RecordedParticipant {
  session: string;
  role: 'controller' | 'observer';
  path: 'ssh' | 'websocket';
  endpoint: string;
  remoteAddress: string;
  joinedAt: string;
  leftAt?: string;
  leftBecause?: string;
}

export interface RecordingManifest {
  format: typeof MANIFEST_FORMAT;
  id: string;
  relayId: string;
  virtualMachine: string;
  kind: 'serial' | 'vnc';
  startedAt: string;
  endedAt?: string;
  /** False while recording, and for ever if the relay died before sealing it: the segments' hashes are then the last checkpoint's. */
  complete: boolean;
  /** Whether the controller's typing is in the recording (`recording.input: on`). */
  input: boolean;
  /** A serial recording's terminal size at the start. */
  terminal?: { width: number; height: number };
  /** A VNC recording's screen (its first size; a segment's header has the size it starts with). */
  screen?: { width: number; height: number; name: string };
  participants: RecordedParticipant[];
  /** Joins, control changes, breaks, power actions, the end: seconds into the recording, as in the cast's `m` events. */
  markers: Array<{ time: number; label: string }>;
  segments: SegmentState[];
}

/** One file of a bundle, written synchronously (so a checkpoint's hash is of bytes the file has) with a running SHA-256. */
export class Segment {
  private readonly fd: number;
  private readonly hash: Hash = createHash('sha256');
  private bytes = 0;

  constructor(
    dir: string,
    readonly name: string,
  ) {
    this.fd = openSync(join(dir, name), 'wx', 0o600);
  }

  write(data: string | Uint8Array): void {
    if (data.length === 0) return;
    const buffer = typeof data === 'string' ? Buffer.from(data) : data;
    writeSync(this.fd, buffer);
    this.hash.update(buffer);
    this.bytes += buffer.length;
  }

  state(): SegmentState {
    return { name: this.name, bytes: this.bytes, sha256: this.hash.copy().digest('hex') };
  }

  close(): void {
    closeSync(this.fd);
  }
}

/**
 * A recording being written: its folder, its segments and `manifest.json`, rewritten whole
 * (durably) at the start, on every participant change and checkpoint, and at the seal. A relay
 * killed mid-session leaves a manifest with `complete: false` and the last checkpoint's hashes,
 * and segments that are at least that long. The serial and VNC bundles say what the segments are.
 */
export abstract class RecordingBundle {
  readonly dir: string;
  protected readonly startedAt = performance.now();
  protected sealed = false;

  constructor(
    root: string,
    readonly manifest: RecordingManifest,
  ) {
    this.dir = join(root, manifest.id);
    mkdirSync(root, { recursive: true, mode: 0o700 });
    mkdirSync(this.dir, { mode: 0o700 });
  }

  /** Seconds into the recording, monotonic. */
  protected now(): number {
    return Math.round(performance.now() - this.startedAt) / 1000;
  }

  /** The segments' state now (closed ones as they ended). */
  protected abstract segmentStates(): SegmentState[];
  /** Writes what ends the segments and closes them. */
  protected abstract closeSegments(): void;

  marker(label: string): void {
    if (!this.sealed) this.manifest.markers.push({ time: this.now(), label });
  }

  /** Rewrites the manifest with the segments as they are now; returns their state (for the audit checkpoint). */
  checkpoint(): SegmentState[] {
    this.writeManifest();
    return this.manifest.segments;
  }

  protected writeManifest(): void {
    this.manifest.segments = this.segmentStates();
    writeFileDurable(join(this.dir, MANIFEST_FILE), `${JSON.stringify(this.manifest, null, 2)}\n`, 0o600);
  }

  /** Ends the recording: the last bytes, `complete: true`, the final manifest. Returns the manifest's SHA-256 (what the audit trail seals). */
  seal(): string {
    if (this.sealed) throw new Error('the recording is sealed already');
    this.closeSegments();
    this.sealed = true;
    this.manifest.complete = true;
    this.manifest.endedAt = new Date().toISOString();
    this.manifest.segments = this.segmentStates();
    const text = `${JSON.stringify(this.manifest, null, 2)}\n`;
    writeFileDurable(join(this.dir, MANIFEST_FILE), text, 0o600);
    return createHash('sha256').update(text).digest('hex');
  }
}

/** A serial recording: `serial.cast` (asciicast v2, markers included) and `serial.raw` (the exact bytes the VM sent). */
export class SerialBundle extends RecordingBundle {
  private readonly cast: Segment;
  private readonly raw: Segment;
  private readonly encoder: AsciicastEncoder;

  constructor(root: string, manifest: RecordingManifest, title: string) {
    super(root, manifest);
    const terminal = manifest.terminal ?? { width: 80, height: 24 };
    this.encoder = new AsciicastEncoder(this.startedAt);
    this.cast = new Segment(this.dir, CAST_FILE);
    this.raw = new Segment(this.dir, RAW_FILE);
    this.cast.write(AsciicastEncoder.header({ width: terminal.width, height: terminal.height, timestamp: Math.floor(Date.parse(manifest.startedAt) / 1000), title, env: { TERM: 'xterm-256color' } }));
    this.writeManifest();
  }

  output(chunk: Uint8Array): void {
    if (this.sealed) return;
    this.raw.write(chunk);
    this.cast.write(this.encoder.out(performance.now(), chunk));
  }

  input(chunk: Uint8Array): void {
    if (!this.sealed) this.cast.write(this.encoder.in(performance.now(), chunk));
  }

  resize(columns: number, rows: number): void {
    if (!this.sealed) this.cast.write(this.encoder.resize(performance.now(), columns, rows));
  }

  override marker(label: string): void {
    if (this.sealed) return;
    const line = this.encoder.marker(performance.now(), label);
    this.cast.write(line);
    this.manifest.markers.push({ time: (JSON.parse(line) as [number])[0], label });
  }

  protected segmentStates(): SegmentState[] {
    return [this.cast.state(), this.raw.state()];
  }

  protected closeSegments(): void {
    this.cast.write(this.encoder.end(performance.now()));
    this.cast.close();
    this.raw.close();
  }
}
