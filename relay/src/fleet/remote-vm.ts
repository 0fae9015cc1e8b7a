import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { VmSource } from '../config/config.js';
import { DomainError } from '../core/domain-error.js';
import type { Logger } from '../logger.js';
import { PowerActionError, type ConsoleType, type PowerAction, type PowerState, type SerialSink, type SerialStream, type StreamOwner, type VmConsole, type VncStream } from '../sessions/console-seam.js';
import type { CloseCode, CloseReason } from '../sessions/live-session.js';
import type { StreamRequest } from './agent-tunnel.js';
import type { ConsoleView, RecordingsMessage, VmDescriptor } from './fleet-protocol.js';

/** What a remote VM needs of the agent it lives on, while that agent's tunnel to this gateway is up. */
export interface AgentPeer {
  readonly name: string;
  /** Opens a stream; `ended` hears the agent's reason (a `stream-ended` message) before the channel closes, `notice` the agent's lines for its user. */
  openStream(request: StreamRequest, ended: (reason: CloseReason) => void, notice?: (line: string) => void): Promise<Duplex>;
  request(message: AgentRequest): Promise<AgentResult>;
}

/** What a gateway asks an agent on the control channel, answered by a `result`. */
export type AgentRequest = { type: 'power'; virtualMachine: string; action: PowerAction } | { type: 'break'; virtualMachine: string } | Omit<RecordingsMessage, 'id'>;
export interface AgentResult {
  ok: boolean;
  error?: { code: string; message: string };
  value?: unknown;
}

/** Takes the VM's session slot in the fleet's database: the fencing number and the console's expiration. */
export type ClaimSlot = (virtualMachine: string, kind: 'serial' | 'vnc', session: string, owner: StreamOwner) => Promise<{ fence: number; console: ConsoleView | null }>;
export type ReleaseSlot = (virtualMachine: string, kind: 'serial' | 'vnc', session: string) => void;

import { CONTROL_PLANE_UNREACHABLE as UNREACHABLE_MESSAGE } from '../ssh/ssh-console-server.js';

/** Why a stream could not be opened, as the session's close reason. */
function openFailure(error: unknown, vm: string, agent: string): CloseReason {
  if (error instanceof DomainError && error.kind === 'unavailable') return { code: 'unavailable', message: UNREACHABLE_MESSAGE };
  if (error instanceof DomainError && error.kind === 'conflict') return { code: error.code as CloseCode, message: error.message };
  return { code: 'vm-disconnected', message: `the hypervisor agent ${agent} could not open the console of ${vm} (${(error as Error).message.slice(0, 120)})` };
}

function describeOwner(session: string, owner: StreamOwner): string {
  return `session ${session.slice(0, 8)} from ${owner.remoteAddress} via ${owner.path === 'ssh' ? 'SSH' : 'the browser'}`;
}

/** A VM on a hypervisor agent, as this gateway's sessions see it. */
export class RemoteVm implements VmConsole {
  readonly serial: RemoteSerial | undefined;
  readonly keepsOneSession = true;

  constructor(
    readonly agent: string,
    public descriptor: VmDescriptor,
    /** The agent's tunnel to this gateway; undefined while it has none (the VM reads Unavailable). */
    public peer: AgentPeer | undefined,
    private readonly slots: { claim: ClaimSlot; release: ReleaseSlot },
    log: Logger,
  ) {
    this.serial = descriptor.consoleTypes.includes('serial') ? new RemoteSerial(this, slots, log) : undefined;
  }

  get name(): string {
    return this.descriptor.name;
  }
  get source(): VmSource {
    return this.descriptor.source;
  }
  get consoleTypes(): ConsoleType[] {
    return this.descriptor.consoleTypes;
  }
  get powerState(): PowerState {
    return this.peer ? this.descriptor.powerState : 'Unavailable';
  }
  get powerActions(): PowerAction[] {
    return this.peer ? this.descriptor.powerActions : [];
  }
  get serialBreak(): boolean {
    return this.descriptor.serialBreak;
  }
  get vncUnavailable(): string | undefined {
    if (!this.peer) return `${this.name} is Unavailable: its hypervisor agent ${this.agent} is not connected to this gateway; try again once it is back (GET /v1/agents)`;
    return this.descriptor.vncUnavailable;
  }

  /** A new connection to the screen: the VM's VNC session (its slot claimed first), or an observer's stream beside it (no slot: it displaces nobody). */
  async openVnc(owner?: StreamOwner): Promise<VncStream> {
    const peer = this.peer;
    if (!peer) throw new Error(this.vncUnavailable);
    const given: StreamOwner = owner ?? { grant: undefined, remoteAddress: 'unknown', path: 'ssh' };
    const observe = given.observe === true;
    // An observer's stream has an id of its own: the session's id names the slot holder's stream only.
    const session = observe ? randomUUID() : (given.session ?? randomUUID());
    let reason: CloseReason | undefined;
    let channel: Duplex;
    try {
      const { fence, console } = observe ? { fence: 0, console: null } : await this.slots.claim(this.name, 'vnc', session, given);
      channel = await peer.openStream(streamRequest(observe ? 'vnc-observe' : 'vnc', this.name, session, fence, given, console), (why) => (reason = why), given.notify);
    } catch (error) {
      if (!observe) this.slots.release(this.name, 'vnc', session);
      // The agent's own reason (displaced, revoked) when it gave one before refusing.
      throw new Error((reason ?? openFailure(error, this.name, this.agent)).message, { cause: error });
    }
    if (!observe) channel.once('close', () => this.slots.release(this.name, 'vnc', session));
    return {
      socket: channel,
      reader: {
        start: (socket, handler) =>
          void socket.on('data', (chunk: Buffer) => {
            if (!handler(chunk, () => {})) socket.pause();
          }),
      },
      endReason: () => reason,
    };
  }

  async power(action: PowerAction): Promise<void> {
    if (!this.peer) throw new PowerActionError('PowerActionFailed', `${this.name}: its hypervisor agent ${this.agent} is not connected to this gateway`);
    const result = await this.peer.request({ type: 'power', virtualMachine: this.name, action });
    if (!result.ok) throw new PowerActionError(result.error?.code === 'PowerActionNotSupported' ? 'PowerActionNotSupported' : 'PowerActionFailed', result.error?.message ?? `${this.name}: ${action} failed at agent ${this.agent}`);
  }
}

function streamRequest(kind: StreamRequest['kind'], vm: string, session: string, fence: number, owner: StreamOwner, console: ConsoleView | null): StreamRequest {
  return {
    kind,
    virtualMachine: vm,
    fence,
    session,
    ...(owner.grant && { grant: { accessId: owner.grant.accessId, keyFingerprint: owner.grant.keyFingerprint } }),
    ...(console && { expiration: console.expiration, console }),
    owner: describeOwner(owner.session ?? session, owner),
    ...(owner.replayLines !== undefined && { replayLines: owner.replayLines }),
    participant: { session: owner.session ?? session, path: owner.path, endpoint: owner.endpoint ?? 'default', remoteAddress: owner.remoteAddress, ...(owner.terminal && { terminal: owner.terminal }) },
    ...(owner.grant?.recording && { recording: owner.grant.recording }),
  };
}

/**
 * A remote VM's serial console: each attached session gets its own stream to the agent (its slot
 * claimed first), which carries the replay and the live output; input goes to the newest attachment.
 * Observers (and a recording's tap) get read-only streams of their own, beside it.
 */
export class RemoteSerial extends EventEmitter implements SerialStream {
  private current: { channel: Duplex | undefined; queued: Buffer[] } | undefined;

  constructor(
    private readonly vm: RemoteVm,
    private readonly slots: { claim: ClaimSlot; release: ReleaseSlot },
    private readonly log: Logger,
  ) {
    super();
  }

  get connected(): boolean {
    return this.vm.peer !== undefined && this.vm.descriptor.serialConnected;
  }
  get canBreak(): boolean {
    return this.vm.descriptor.serialBreak;
  }

  attach(sink: SerialSink, owner?: StreamOwner): () => void {
    return this.stream(sink, owner, false);
  }

  /** A read-only stream beside the attached one: no slot, no input; the agent serves it from its console's observe (a slow one misses output, never holding up the VM). */
  observe(sink: SerialSink, owner?: StreamOwner): () => void {
    return this.stream(sink, owner, true);
  }

  private stream(sink: SerialSink, owner: StreamOwner | undefined, observe: boolean): () => void {
    const vm = this.vm;
    const given: StreamOwner = owner ?? { grant: undefined, remoteAddress: 'unknown', path: 'ssh' };
    const session = observe ? randomUUID() : (given.session ?? randomUUID());
    const attachment: { channel: Duplex | undefined; queued: Buffer[] } = { channel: undefined, queued: [] };
    if (!observe) this.current = attachment;
    let detached = false;
    let reason: CloseReason | undefined;
    const release = (): void => {
      if (!observe) this.slots.release(vm.name, 'serial', session);
    };
    const end = (why: CloseReason): void => {
      if (detached) return;
      detached = true;
      sink.end?.(why);
    };
    const open = async (): Promise<void> => {
      const peer = vm.peer;
      if (!peer) throw new Error(`its hypervisor agent ${vm.agent} is not connected to this gateway`);
      const { fence, console } = observe ? { fence: 0, console: null } : await this.slots.claim(vm.name, 'serial', session, given);
      if (detached) return release();
      const channel = await peer.openStream(streamRequest(observe ? 'serial-observe' : 'serial', vm.name, session, fence, given, console), (why) => (reason = why), given.notify);
      if (detached) {
        channel.destroy();
        return;
      }
      attachment.channel = channel;
      for (const chunk of attachment.queued.splice(0)) channel.write(chunk);
      this.emit('drain');
      const resume = (): void => void channel.resume();
      channel.on('data', (chunk: Buffer) => {
        if (!sink.write(chunk)) {
          channel.pause();
          sink.onceDrain(resume);
        }
      });
      channel.on('drain', () => this.emit('drain'));
      channel.on('error', (error: Error) => this.log.debug({ err: error.message }, 'serial stream error'));
      channel.once('close', () => {
        sink.cancelDrain(resume);
        release();
        if (this.current === attachment) this.current = undefined;
        this.emit('drain');
        end(reason ?? { code: 'vm-disconnected', message: `the serial console of ${vm.name} ended (its hypervisor agent ${vm.agent} closed the stream)` });
      });
    };
    open().catch((error: unknown) => {
      release();
      // The agent's own reason (displaced, revoked) when it gave one before refusing.
      end(reason ?? openFailure(error, vm.name, vm.agent));
    });
    return () => {
      if (detached) return;
      detached = true;
      if (this.current === attachment) this.current = undefined;
      attachment.channel?.destroy();
    };
  }

  write(chunk: Buffer): boolean {
    const target = this.current;
    if (!target) return true;
    if (!target.channel) {
      target.queued.push(chunk);
      return target.queued.length < 64;
    }
    return target.channel.write(chunk);
  }

  sendBreak(): boolean {
    const peer = this.vm.peer;
    if (!peer || !this.canBreak) return false;
    peer.request({ type: 'break', virtualMachine: this.vm.name }).then(
      (result) => void (result.ok || this.log.info({ vm: this.vm.name }, 'the agent could not send the break (the VM is not connected)')),
      (error: Error) => this.log.warn({ vm: this.vm.name, err: error.message }, 'break not delivered to the agent'),
    );
    return true;
  }

  /** The agent forgets the kept output itself when it hears of the console change. */
  clearReplay(): void {}
}
