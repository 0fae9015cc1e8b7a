import { randomUUID } from 'node:crypto';
import type { RelayConfig } from '../config/config.js';
import type { SessionGrant } from '../core/console-rules.js';
import type { Logger } from '../logger.js';
import type { ConsoleDirectory } from '../sessions/console-seam.js';
import type { CloseReason, LiveSession } from '../sessions/live-session.js';
import { MANIFEST_FORMAT, SerialBundle, type RecordedParticipant, type RecordingBundle } from './recording-bundle.js';
import { VncBundle } from './vnc-bundle.js';
import { VncCapture } from './vnc-capture.js';

/** What the recorder hears from sessions beyond opened and closed (ConsoleSharing passes them on). */
export interface RecorderHooks {
  /** The controller's terminal size changed (an SSH window change). */
  resized(session: LiveSession, columns: number, rows: number): void;
  /** Whether `input` is wanted at all (`recording.input: on`): asked before each keystroke is passed. */
  readonly recordsInput: boolean;
  input(session: LiveSession, chunk: Buffer): void;
  /** A moment worth finding in playback: a break, a power action. */
  marker(virtualMachine: string, label: string): void;
}

interface ActiveRecording {
  bundle: RecordingBundle;
  /** The serial bundle, for output, input and resizes (absent for VNC). */
  serial?: SerialBundle;
  /** The VNC recorder's connection (absent for serial). */
  capture?: VncCapture;
  /** The sessions on the console now. */
  open: Map<string, RecordedParticipant>;
  sessions: Map<string, LiveSession>;
  detach: () => void;
  checkpoints: NodeJS.Timeout;
}

/** The terminal size a recording starts with when its first participant asked for none. */
const DEFAULT_TERMINAL = { width: 80, height: 24 };

type Kind = 'serial' | 'vnc';
const keyOf = (kind: Kind, vm: string): string => `${kind}\u0000${vm}`;

const shortName = (session: LiveSession): string => `session ${session.id.slice(0, 8)} (${session.remoteAddress} via ${session.path === 'ssh' ? 'SSH' : 'the browser'})`;

/**
 * Records sessions (docs/recordings.md): a recording covers a VM's serial console (or its screen)
 * from the first participant's arrival until the last one leaves (control changes and
 * displacements inside it are markers), when the console's `recording` is `required`, or `default`
 * with the relay's `recording.serial` (`recording.vnc`) on. The VM's serial output comes from a tap
 * on its serial stream (exact bytes, no replay, none of the relay's notices); its screen from a
 * VNC connection of the recorder's own (vnc-capture.ts). Checkpoints and the seal go to the audit trail.
 */
export class RecordingService implements RecorderHooks {
  private readonly active = new Map<string, ActiveRecording>();

  constructor(
    private readonly config: RelayConfig['recording'],
    private readonly relayId: string,
    private readonly directory: ConsoleDirectory,
    private readonly audit: (type: string, details: Record<string, unknown>) => void,
    private readonly log: Logger,
    /** Closes a session that must be recorded and cannot be. */
    private readonly refuse: (session: LiveSession, reason: CloseReason) => void,
  ) {}

  get recordsInput(): boolean {
    return this.config.input;
  }

  /** Whether recording `id` is still being written. */
  isRunning(id: string): boolean {
    return [...this.active.values()].some((active) => active.bundle.manifest.id === id);
  }

  /** Whether `vm`'s serial console is being recorded now (its participants are told). */
  recording(vm: string, kind: Kind = 'serial'): string | undefined {
    return this.active.get(keyOf(kind, vm))?.bundle.manifest.id;
  }

  opened(session: LiveSession, grant: SessionGrant | undefined, terminal?: { width: number; height: number }): void {
    const vm = session.virtualMachine;
    // A fleet gateway's VMs are recorded by their agents (docs/recordings.md#in-a-fleet).
    if (this.directory.get(vm)?.agent !== undefined) return;
    const kind: Kind = session.kind === 'vnc' ? 'vnc' : 'serial';
    let active = this.active.get(keyOf(kind, vm));
    if (!active) {
      const policy = grant?.recording ?? 'default';
      if (policy === 'off' || (policy === 'default' && !(kind === 'vnc' ? this.config.vnc : this.config.serial))) return;
      try {
        active = kind === 'vnc' ? this.startVnc(vm, policy === 'required') : this.start(vm, terminal ?? DEFAULT_TERMINAL);
      } catch (error) {
        this.log.error({ vm, err: (error as Error).message }, 'cannot start a recording');
        if (policy === 'required') this.refuse(session, { code: 'recording-unavailable', message: `the console of ${vm} must be recorded and the relay cannot record it now (${(error as Error).message.slice(0, 120)})` });
        return;
      }
    }
    const participant: RecordedParticipant = { session: session.id, role: session.role ?? 'controller', path: session.path, endpoint: session.endpoint, remoteAddress: session.remoteAddress, joinedAt: new Date().toISOString() };
    active.open.set(session.id, participant);
    active.sessions.set(session.id, session);
    active.bundle.manifest.participants.push(participant);
    active.bundle.marker(`${shortName(session)} joined as ${participant.role}`);
    active.bundle.checkpoint();
    (session as { notify?(line: string): void }).notify?.(`this session is recorded (recording ${active.bundle.manifest.id.slice(0, 8)}; docs/recordings.md)`);
  }

  private start(vm: string, terminal: { width: number; height: number }): ActiveRecording {
    const serial = this.directory.get(vm)?.serial;
    if (!serial?.tap) throw new Error('this VM\'s serial stream cannot be recorded (it has no serial port, or its backend cannot be tapped)');
    const bundle = new SerialBundle(this.config.dir, this.manifest(vm, 'serial', { input: this.config.input, terminal }), `${vm} serial console`);
    const detach = serial.tap((chunk) => bundle.output(chunk));
    return this.track(vm, 'serial', { bundle, serial: bundle, open: new Map(), sessions: new Map(), detach, checkpoints: this.checkpoints('serial', vm) });
  }

  private manifest(vm: string, kind: Kind, extra: Partial<RecordingBundle['manifest']>): RecordingBundle['manifest'] {
    return { format: MANIFEST_FORMAT, id: randomUUID(), relayId: this.relayId, virtualMachine: vm, kind, startedAt: new Date().toISOString(), complete: false, input: false, ...extra, participants: [], markers: [], segments: [] };
  }

  private checkpoints(kind: Kind, vm: string): NodeJS.Timeout {
    const timer = setInterval(() => this.checkpoint(kind, vm), this.config.checkpointIntervalMs);
    timer.unref();
    return timer;
  }

  private track(vm: string, kind: Kind, active: ActiveRecording): ActiveRecording {
    this.active.set(keyOf(kind, vm), active);
    this.audit('recording.started', { recording: active.bundle.manifest.id, virtualMachine: vm, kind });
    this.log.info({ vm, kind, recording: active.bundle.manifest.id }, 'recording started');
    return active;
  }

  /**
   * A VNC recording: the recorder opens the screen beside the session. Its sessions go on while it
   * connects; if it cannot (the VM's VNC server wants a password, say), a `required` console's
   * sessions are closed with the reason, and any other's go on unrecorded.
   */
  private startVnc(vm: string, required: boolean): ActiveRecording {
    const console = this.directory.get(vm);
    if (!console) throw new Error('the VM is gone');
    if (console.vncUnavailable) throw new Error(console.vncUnavailable);
    const bundle = new VncBundle(this.config.dir, this.manifest(vm, 'vnc', {}), this.config.vncSegmentMs / 1000);
    const capture = new VncCapture(console, bundle, this.log);
    const active = this.track(vm, 'vnc', { bundle, capture, open: new Map(), sessions: new Map(), detach: () => capture.stop(), checkpoints: this.checkpoints('vnc', vm) });
    capture.start().catch((error: Error) => {
      if (this.active.get(keyOf('vnc', vm)) !== active) return;
      this.log.error({ vm, err: error.message }, 'cannot record the VM\'s screen');
      active.bundle.marker(`the recorder cannot see the screen: ${error.message}`);
      if (!required) return;
      for (const session of active.sessions.values()) this.refuse(session, { code: 'recording-unavailable', message: `the screen of ${vm} must be recorded and the relay cannot record it now (${error.message.slice(0, 120)})` });
    });
    return active;
  }

  private checkpoint(kind: Kind, vm: string): void {
    const active = this.active.get(keyOf(kind, vm));
    if (!active) return;
    try {
      const segments = active.bundle.checkpoint();
      this.audit('recording.checkpoint', { recording: active.bundle.manifest.id, virtualMachine: vm, kind, segments });
    } catch (error) {
      this.log.error({ vm, err: (error as Error).message }, 'recording checkpoint failed');
    }
  }

  closed(session: LiveSession, reason: CloseReason): void {
    const key = keyOf(session.kind === 'vnc' ? 'vnc' : 'serial', session.virtualMachine);
    const active = this.active.get(key);
    const participant = active?.open.get(session.id);
    if (!active || !participant) return;
    active.open.delete(session.id);
    active.sessions.delete(session.id);
    participant.leftAt = new Date().toISOString();
    participant.leftBecause = reason.code;
    active.bundle.marker(`${shortName(session)} left (${reason.code})`);
    if (active.open.size === 0) this.seal(key);
    else active.bundle.checkpoint();
  }

  /** Session events the recordings mark: control changes (of either kind of console the session is on). */
  note(type: string, details: Record<string, unknown>): void {
    if (type !== 'session.control.changed') return;
    for (const kind of ['serial', 'vnc'] as const) {
      const active = this.active.get(keyOf(kind, String(details.virtualMachine)));
      const to = active?.open.get(String(details.session));
      if (!active || !to) continue;
      const from = details.from === undefined ? undefined : active.open.get(String(details.from));
      to.role = 'controller';
      if (from) from.role = 'observer';
      active.bundle.marker(`control to session ${String(details.session).slice(0, 8)} (${String(details.how)}${details.reason ? `: ${String(details.reason)}` : ''})`);
    }
  }

  resized(session: LiveSession, columns: number, rows: number): void {
    if (session.role === 'observer') return;
    this.active.get(keyOf('serial', session.virtualMachine))?.serial?.resize(columns, rows);
  }

  input(session: LiveSession, chunk: Buffer): void {
    if (this.config.input && session.role !== 'observer') this.active.get(keyOf('serial', session.virtualMachine))?.serial?.input(chunk);
  }

  /** A break or a power action: marked in the VM's serial and VNC recordings. */
  marker(virtualMachine: string, label: string): void {
    for (const kind of ['serial', 'vnc'] as const) this.active.get(keyOf(kind, virtualMachine))?.bundle.marker(label);
  }

  private seal(key: string): void {
    const active = this.active.get(key);
    if (!active) return;
    this.active.delete(key);
    clearInterval(active.checkpoints);
    active.detach();
    const { id, virtualMachine: vm, kind } = active.bundle.manifest;
    try {
      const manifestSha256 = active.bundle.seal();
      this.audit('recording.sealed', { recording: id, virtualMachine: vm, kind, manifestSha256, segments: active.bundle.manifest.segments });
      this.log.info({ vm, kind, recording: id }, 'recording sealed');
    } catch (error) {
      this.log.error({ vm, kind, err: (error as Error).message }, 'cannot seal a recording; it stays incomplete');
    }
  }

  /** Seals every running recording (the relay is stopping; its sessions were closed first). */
  close(): void {
    for (const key of [...this.active.keys()]) this.seal(key);
  }
}
