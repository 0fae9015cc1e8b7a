import { randomUUID } from 'node:crypto';
import type { RelayConfig } from '../config/config.js';
import type { SessionGrant } from '../core/console-rules.js';
import type { Logger } from '../logger.js';
import type { ConsoleDirectory } from '../sessions/console-seam.js';
import type { CloseReason, LiveSession } from '../sessions/live-session.js';
import { MANIFEST_FORMAT, RecordingBundle, type RecordedParticipant } from './recording-bundle.js';

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
  /** The sessions on the console now. */
  open: Map<string, RecordedParticipant>;
  detach: () => void;
  checkpoints: NodeJS.Timeout;
}

/** The terminal size a recording starts with when its first participant asked for none. */
const DEFAULT_TERMINAL = { width: 80, height: 24 };

const shortName = (session: LiveSession): string => `session ${session.id.slice(0, 8)} (${session.remoteAddress} via ${session.path === 'ssh' ? 'SSH' : 'the browser'})`;

/**
 * Records serial sessions (docs/recordings.md): a recording covers a VM's serial console from the
 * first participant's arrival until the last one leaves (control changes and displacements inside
 * it are markers), when the console's `recording` is `required`, or `default` with the relay's
 * `recording.serial` on. The VM's output comes from a tap on its serial stream (exact bytes, no
 * replay, none of the relay's notices). Checkpoints and the seal go to the audit trail.
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
  recording(vm: string): string | undefined {
    return this.active.get(vm)?.bundle.manifest.id;
  }

  opened(session: LiveSession, grant: SessionGrant | undefined, terminal?: { width: number; height: number }): void {
    if (session.kind !== 'serial') return;
    const vm = session.virtualMachine;
    let active = this.active.get(vm);
    if (!active) {
      const policy = grant?.recording ?? 'default';
      if (policy === 'off' || (policy === 'default' && !this.config.serial)) return;
      try {
        active = this.start(vm, terminal ?? DEFAULT_TERMINAL);
      } catch (error) {
        this.log.error({ vm, err: (error as Error).message }, 'cannot start a recording');
        if (policy === 'required') this.refuse(session, { code: 'recording-unavailable', message: `the console of ${vm} must be recorded and the relay cannot record it now (${(error as Error).message.slice(0, 120)})` });
        return;
      }
    }
    const participant: RecordedParticipant = { session: session.id, role: session.role ?? 'controller', path: session.path, endpoint: session.endpoint, remoteAddress: session.remoteAddress, joinedAt: new Date().toISOString() };
    active.open.set(session.id, participant);
    active.bundle.manifest.participants.push(participant);
    active.bundle.marker(`${shortName(session)} joined as ${participant.role}`);
    active.bundle.checkpoint();
    (session as { notify?(line: string): void }).notify?.(`this session is recorded (recording ${active.bundle.manifest.id.slice(0, 8)}; docs/recordings.md)`);
  }

  private start(vm: string, terminal: { width: number; height: number }): ActiveRecording {
    const serial = this.directory.get(vm)?.serial;
    if (!serial?.tap) throw new Error('this VM\'s serial stream cannot be recorded here (a fleet gateway records nothing yet)');
    const bundle = new RecordingBundle(
      this.config.dir,
      { format: MANIFEST_FORMAT, id: randomUUID(), relayId: this.relayId, virtualMachine: vm, kind: 'serial', startedAt: new Date().toISOString(), complete: false, input: this.config.input, terminal, participants: [], markers: [], segments: [] },
      `${vm} serial console`,
    );
    const detach = serial.tap((chunk) => bundle.output(chunk));
    const checkpoints = setInterval(() => this.checkpoint(vm), this.config.checkpointIntervalMs);
    checkpoints.unref();
    const active: ActiveRecording = { bundle, open: new Map(), detach, checkpoints };
    this.active.set(vm, active);
    this.audit('recording.started', { recording: bundle.manifest.id, virtualMachine: vm, kind: 'serial' });
    this.log.info({ vm, recording: bundle.manifest.id }, 'recording started');
    return active;
  }

  private checkpoint(vm: string): void {
    const active = this.active.get(vm);
    if (!active) return;
    try {
      const segments = active.bundle.checkpoint();
      this.audit('recording.checkpoint', { recording: active.bundle.manifest.id, virtualMachine: vm, segments });
    } catch (error) {
      this.log.error({ vm, err: (error as Error).message }, 'recording checkpoint failed');
    }
  }

  closed(session: LiveSession, reason: CloseReason): void {
    const active = this.active.get(session.virtualMachine);
    const participant = active?.open.get(session.id);
    if (!active || !participant) return;
    active.open.delete(session.id);
    participant.leftAt = new Date().toISOString();
    participant.leftBecause = reason.code;
    active.bundle.marker(`${shortName(session)} left (${reason.code})`);
    if (active.open.size === 0) this.seal(session.virtualMachine);
    else active.bundle.checkpoint();
  }

  /** Session events the recording marks: control changes. */
  note(type: string, details: Record<string, unknown>): void {
    if (type !== 'session.control.changed') return;
    const active = this.active.get(String(details.virtualMachine));
    if (!active) return;
    const to = active.open.get(String(details.session));
    const from = details.from === undefined ? undefined : active.open.get(String(details.from));
    if (to) to.role = 'controller';
    if (from) from.role = 'observer';
    active.bundle.marker(`control to session ${String(details.session).slice(0, 8)} (${String(details.how)}${details.reason ? `: ${String(details.reason)}` : ''})`);
  }

  resized(session: LiveSession, columns: number, rows: number): void {
    if (session.role === 'observer') return;
    this.active.get(session.virtualMachine)?.bundle.resize(columns, rows);
  }

  input(session: LiveSession, chunk: Buffer): void {
    if (this.config.input && session.role !== 'observer') this.active.get(session.virtualMachine)?.bundle.input(chunk);
  }

  marker(virtualMachine: string, label: string): void {
    this.active.get(virtualMachine)?.bundle.marker(label);
  }

  private seal(vm: string): void {
    const active = this.active.get(vm);
    if (!active) return;
    this.active.delete(vm);
    clearInterval(active.checkpoints);
    active.detach();
    try {
      const manifestSha256 = active.bundle.seal();
      const { id, segments } = active.bundle.manifest;
      this.audit('recording.sealed', { recording: id, virtualMachine: vm, kind: 'serial', manifestSha256, segments });
      this.log.info({ vm, recording: id }, 'recording sealed');
    } catch (error) {
      this.log.error({ vm, err: (error as Error).message }, 'cannot seal a recording; it stays incomplete');
    }
  }

  /** Seals every running recording (the relay is stopping; its sessions were closed first). */
  close(): void {
    for (const vm of [...this.active.keys()]) this.seal(vm);
  }
}
