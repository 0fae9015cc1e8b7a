import type { Duplex } from 'node:stream';
import { AuditLog } from '../audit/audit-log.js';
import type { RelayConfig } from '../config/config.js';
import type { Logger } from '../logger.js';
import { RecordingLibrary } from '../recordings/recording-library.js';
import { RecordingService } from '../recordings/recording-service.js';
import type { ConsoleDirectory } from '../sessions/console-seam.js';
import type { CloseReason, LiveSession } from '../sessions/live-session.js';
import type { StreamRequest } from './agent-tunnel.js';
import type { AgentMessage, RecordingsMessage, ResultMessage } from './fleet-protocol.js';

/** Where the agent's audit events go besides its own trail: a gateway tunnel, for the fleet's trail. */
export interface AuditForwarder {
  /** Sends on one connected gateway tunnel; false when none is connected now. */
  send(message: AgentMessage): boolean;
}

/** Events kept for the fleet's trail while no gateway is connected; beyond this the oldest are dropped (the agent's own trail has them all). */
const MAX_UNSENT = 10_000;

/** A stream's gateway session as the recorder sees it. */
export type StreamParticipant = LiveSession & { notify(line: string): void };

/**
 * The recordings of an agent's VMs (docs/recordings.md#in-a-fleet). The agent records, not the
 * gateways: it has the VM's serial output and screen, and gateways keep no state. Each stream a
 * gateway opens (controller or observer) is a participant; the console's `recording` setting comes
 * with the stream, the defaults from the agent's own `recording` config. Every `recording.*`
 * event goes to the agent's own audit trail (`<dataDir>/audit.jsonl`, so `lifeline-relay recordings
 * verify` works on the agent) and to the fleet's, through a gateway. Gateways list, play, hold and
 * delete the recordings through the tunnel.
 */
export class AgentRecordings {
  private readonly service: RecordingService;
  private readonly library: RecordingLibrary;
  private readonly trail: AuditLog;
  private readonly unsent: AgentMessage[] = [];
  private readonly stopSweeping: () => void;

  constructor(
    config: RelayConfig,
    agentName: string,
    directory: ConsoleDirectory,
    private readonly forward: AuditForwarder,
    private readonly log: Logger,
  ) {
    this.trail = new AuditLog(config.dataDir, config.audit);
    const audit = (type: string, details: Record<string, unknown>): void => this.audit(type, details);
    this.service = new RecordingService(config.recording, agentName, directory, audit, log, (session, reason) => void session.close(reason));
    this.library = new RecordingLibrary(config.recording, audit, log);
    this.stopSweeping = this.library.startSweeping((id) => this.service.isRunning(id));
  }

  private audit(type: string, details: Record<string, unknown>): void {
    try {
      this.trail.append({ type, ...details });
    } catch (error) {
      this.log.error({ err: (error as Error).message }, 'cannot write the agent\'s audit trail');
    }
    this.unsent.push({ type: 'audit', event: { type, ...details } });
    if (this.unsent.length > MAX_UNSENT) this.unsent.shift();
    this.flush();
  }

  /** A gateway tunnel is up: what waited for one goes to the fleet's trail now. */
  flush(): void {
    while (this.unsent.length > 0 && this.forward.send(this.unsent[0]!)) this.unsent.shift();
  }

  /** A stream was admitted: its session joins the VM's recording (one starts if the console and config say so). */
  joined(request: StreamRequest, notify: (line: string) => void, end: (reason: CloseReason) => void): StreamParticipant {
    const p = request.participant;
    const participant: StreamParticipant = {
      id: p?.session ?? request.session,
      virtualMachine: request.virtualMachine,
      kind: request.kind === 'serial' || request.kind === 'serial-observe' ? 'serial' : 'vnc',
      role: request.kind.endsWith('-observe') ? 'observer' : 'controller',
      path: p?.path ?? 'ssh',
      endpoint: p?.endpoint ?? 'default',
      remoteAddress: p?.remoteAddress ?? 'unknown',
      startedAt: Date.now(),
      bytesIn: 0,
      bytesOut: 0,
      ...(p?.terminal && { terminal: p.terminal }),
      close: async (reason) => end(reason),
      notify,
    };
    const grant = { virtualMachine: request.virtualMachine, accessId: request.grant?.accessId ?? '', keyFingerprint: request.grant?.keyFingerprint ?? '', ...(request.recording && { recording: request.recording }) };
    this.service.opened(participant, grant, participant.terminal);
    return participant;
  }

  left(participant: StreamParticipant, reason: CloseReason): void {
    this.service.closed(participant, reason);
  }

  /** A `recording` stream: one segment's bytes, then the end. */
  serveSegment(request: StreamRequest, accept: () => Duplex, reject: () => void): void {
    const data = request.recordingId && request.segment ? this.library.segment(request.recordingId, request.segment) : undefined;
    if (!data) return reject();
    const channel = accept();
    channel.on('error', (error: Error) => this.log.debug({ err: error.message }, 'recording segment stream error'));
    // The gateway ends its side once it has the bytes; then the channel closes.
    channel.on('end', () => channel.destroy());
    channel.end(data);
  }

  /** A gateway's `recordings` request, answered with a `result`. */
  answer(message: RecordingsMessage): Omit<ResultMessage, 'type' | 'id'> {
    try {
      const id = message.recording ?? '';
      switch (message.op) {
        case 'list':
          return { ok: true, value: this.library.list({ ...(message.virtualMachine && { virtualMachine: message.virtualMachine }), ...(typeof message.since === 'number' && { since: message.since }) }) };
        case 'get':
          return { ok: true, value: this.library.get(id) ?? null };
        case 'hold':
          return { ok: true, value: this.library.hold(id, message.hold === true, message.reason) ?? 'gone' };
        case 'delete':
          return { ok: true, value: this.library.delete(id, (running) => this.service.isRunning(running)) };
      }
      return { ok: false, error: { code: 'UnknownRequest', message: `unknown recordings request ${String(message.op)}` } };
    } catch (error) {
      return { ok: false, error: { code: 'RecordingsFailed', message: (error as Error).message.slice(0, 300) } };
    }
  }

  close(): void {
    this.stopSweeping();
    this.service.close();
    this.trail.close?.();
  }
}
