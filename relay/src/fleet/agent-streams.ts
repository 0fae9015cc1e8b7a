import type { Duplex } from 'node:stream';
import { revocationMessage, revocationReason, type RevocationReason } from '../core/console-rules.js';
import { RfbObserveFilter } from '../core/rfb-observe-filter.js';
import type { Logger } from '../logger.js';
import type { ConsoleDirectory, SerialSink, VmConsole } from '../sessions/console-seam.js';
import type { CloseReason } from '../sessions/live-session.js';
import type { StreamRequest } from './agent-tunnel.js';
import type { AgentRecordings, StreamParticipant } from './agent-recordings.js';
import type { AgentMessage, ConsoleView } from './fleet-protocol.js';

/** The gateway tunnel a stream came through: where its `stream-ended` goes. */
export interface StreamGateway {
  send(message: AgentMessage): void;
}

interface Served {
  request: StreamRequest;
  /** Its session as the agent's recordings see it. */
  participant?: StreamParticipant;
  /** Why the agent ended it, when it did. */
  reason?: CloseReason;
  gateway: StreamGateway;
  expiration: number | undefined;
  timer: NodeJS.Timeout | undefined;
  /** Stops the byte path and closes the channel. */
  stop(): void;
  ended: boolean;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

/** A stream's channel as a serial sink (its write window is the channel's). */
function channelSink(channel: Duplex): SerialSink {
  return { write: (chunk) => channel.write(chunk), onceDrain: (listener) => void channel.once('drain', listener), cancelDrain: (listener) => void channel.off('drain', listener) };
}

/**
 * The agent's side of every console stream the gateways open. It enforces at the console what the
 * fleet decided in its database: of the streams for one VM and kind it keeps only the one with the
 * newest fencing number (an older one is ended as displaced, a late older one refused), and it ends
 * a stream when any gateway says its console no longer admits it, or when its console expires,
 * so a gateway cut off from the database still loses its sessions in time.
 */
export class AgentStreams {
  private readonly newest = new Map<string, Served>();
  /** The newest fence each slot has seen, and who it was for. */
  private readonly highest = new Map<string, { fence: number; owner: string | undefined }>();
  private readonly served = new Set<Served>();
  /** The last Console resource each VM was told of: a new holder (re-keyed, deleted) must not see the old holder's output. */
  private readonly consoles = new Map<string, ConsoleView | null>();
  /** Where streams' sessions join and leave the VMs' recordings (set by the agent). */
  recordings: AgentRecordings | undefined;

  constructor(
    private readonly directory: ConsoleDirectory,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  private static slot(vm: string, kind: string): string {
    return `${kind}\u0000${vm}`;
  }

  /** A stream a gateway opened; `accept` gives its channel. */
  serve(request: StreamRequest, accept: () => Duplex, reject: () => void, gateway: StreamGateway): void {
    const vm = this.directory.get(request.virtualMachine);
    if (request.kind === 'recording') return this.recordings ? this.recordings.serveSegment(request, accept, reject) : reject();
    if (request.kind === 'serial-observe' || request.kind === 'vnc-observe') return this.serveObserver(vm, request, accept, reject, gateway);
    const slot = AgentStreams.slot(request.virtualMachine, request.kind);
    if (!vm || !vm.consoleTypes.includes(request.kind) || (request.kind === 'serial' && !vm.serial)) return reject();
    const newer = this.highest.get(slot);
    if (newer && newer.fence > request.fence) {
      // A newer session took the slot before this one arrived.
      gateway.send({ type: 'stream-ended', session: request.session, reason: { code: 'displaced', message: `another session was opened for ${request.virtualMachine}${newer.owner ? ` (${newer.owner})` : ''}` } });
      return reject();
    }
    // The view the slot's transaction read is at least as fresh as any this agent was told (a console imported or changed outside the API).
    const offered = request.console;
    const known = this.consoles.get(request.virtualMachine);
    if (offered && (!known || offered.updatedAt >= known.updatedAt)) this.consoles.set(request.virtualMachine, offered);
    const current = offered ?? known;
    if (this.refusedByConsole(request, current, gateway)) return reject();
    this.highest.set(slot, { fence: request.fence, owner: request.owner });
    const served: Served = { request, gateway, expiration: request.expiration, timer: undefined, stop: () => {}, ended: false };
    const previous = this.newest.get(slot);
    if (previous) this.end(previous, { code: 'displaced', message: `another session was opened for ${request.virtualMachine}${request.owner ? ` (${request.owner})` : ''}`, by: request.session });
    this.newest.set(slot, served);
    this.served.add(served);
    this.armExpiry(served);
    if (request.kind === 'serial') this.serveSerial(vm, served, accept());
    else this.serveVnc(vm, served, accept, reject);
    this.join(served);
  }

  /** The stream's session joins its VM's recording (if it is recorded); it may be closed at once (recording required and impossible). */
  private join(served: Served): void {
    if (!this.recordings || served.ended) return;
    const { request, gateway } = served;
    served.participant = this.recordings.joined(request, (line) => gateway.send({ type: 'notice', session: request.session, line }), (reason) => this.end(served, reason));
  }

  /**
   * A read-only stream beside the VM's session: outside the fencing (it displaces nobody and is
   * never displaced), but checked against the console like any stream and ended when it stops
   * admitting its grant. Serial: the console's observe (the replay, then the output; a slow observer
   * misses output); VNC: the screen with the observer's input filtered here too.
   */
  private serveObserver(vm: VmConsole | undefined, request: StreamRequest, accept: () => Duplex, reject: () => void, gateway: StreamGateway): void {
    const kind = request.kind === 'serial-observe' ? 'serial' : 'vnc';
    if (!vm || !vm.consoleTypes.includes(kind) || (kind === 'serial' && !vm.serial?.observe)) return reject();
    const current = request.console ?? this.consoles.get(request.virtualMachine);
    if (this.refusedByConsole(request, current, gateway)) return reject();
    const served: Served = { request, gateway, expiration: request.expiration ?? (current ? current.expiration : undefined), timer: undefined, stop: () => {}, ended: false };
    this.served.add(served);
    this.armExpiry(served);
    this.join(served);
    if (served.ended) return reject();
    if (kind === 'vnc') return this.serveVnc(vm, served, accept, reject, new RfbObserveFilter());
    const channel = accept();
    const { replayLines } = request;
    const detach = vm.serial!.observe!(
      channelSink(channel),
      { grant: undefined, remoteAddress: 'gateway', path: 'ssh', ...(typeof replayLines === 'number' && { replayLines }) },
    );
    // An observer's typing goes nowhere.
    channel.on('data', () => undefined);
    channel.on('error', (error: Error) => this.log.debug({ err: error.message }, 'serial observer stream error'));
    served.stop = () => {
      detach();
      channel.destroy();
    };
    channel.once('close', () => {
      detach();
      this.forget(served);
    });
  }

  private serveSerial(vm: VmConsole, served: Served, channel: Duplex): void {
    const serial = vm.serial!;
    const sink = channelSink(channel);
    const { replayLines } = served.request;
    const detach = serial.attach(sink, { grant: undefined, remoteAddress: 'gateway', path: 'ssh', ...(typeof replayLines === 'number' && { replayLines }) });
    const resume = (): void => void channel.resume();
    channel.on('data', (chunk: Buffer) => {
      if (served.ended || serial.write(chunk)) return;
      channel.pause();
      serial.once('drain', resume);
    });
    channel.on('error', (error: Error) => this.log.debug({ err: error.message }, 'serial stream error'));
    served.stop = () => {
      detach();
      serial.off('drain', resume);
      channel.destroy();
    };
    channel.once('close', () => this.forget(served));
  }

  private serveVnc(vm: VmConsole, served: Served, accept: () => Duplex, reject: () => void, filter?: RfbObserveFilter): void {
    vm.openVnc().then(
      (vnc) => {
        if (served.ended) {
          vnc.socket.destroy();
          return reject();
        }
        const channel = accept();
        const { socket } = vnc;
        socket.setNoDelay?.(true);
        vnc.reader.start(socket, (chunk, release) => {
          if (channel.write(chunk, () => release())) return true;
          channel.once('drain', () => socket.resume());
          return false;
        });
        if (filter) {
          channel.on('data', (data: Buffer) => {
            const result = filter.push(data);
            if (result.pass.length > 0) socket.write(result.pass);
            if (result.error) channel.destroy();
          });
        } else {
          channel.pipe(socket);
        }
        channel.on('error', (error: Error) => this.log.debug({ err: error.message }, 'VNC stream error'));
        socket.on('error', (error: Error) => this.log.debug({ err: error.message }, 'VNC socket error'));
        socket.once('close', () => {
          if (!served.ended) channel.end();
        });
        served.stop = () => {
          socket.destroy();
          channel.destroy();
        };
        channel.once('close', () => {
          socket.destroy();
          this.forget(served);
        });
      },
      (error: Error) => {
        this.log.warn({ vm: vm.name, err: error.message }, 'cannot open the VM\'s screen for a gateway');
        this.forget(served);
        reject();
      },
    );
  }

  private armExpiry(served: Served): void {
    clearTimeout(served.timer);
    if (served.expiration === undefined) return;
    const delay = Math.max(0, Math.min(MAX_TIMER_MS, served.expiration - this.now() + 5));
    served.timer = setTimeout(() => {
      const vm = served.request.virtualMachine;
      this.end(served, { code: 'expired', message: revocationMessage('expired', vm) });
    }, delay);
    served.timer.unref();
  }

  /** Ends a stream: the gateway hears why first, then the channel closes. */
  private end(served: Served, reason: CloseReason): void {
    if (served.ended) return;
    served.reason = reason;
    served.gateway.send({ type: 'stream-ended', session: served.request.session, reason });
    this.log.info({ vm: served.request.virtualMachine, kind: served.request.kind, session: served.request.session, reason: reason.code }, 'stream ended at the agent');
    served.stop();
    this.forget(served);
  }

  private forget(served: Served): void {
    if (served.participant) this.recordings?.left(served.participant, served.reason ?? { code: 'client-left', message: 'the session ended' });
    served.participant = undefined;
    served.ended = true;
    clearTimeout(served.timer);
    this.served.delete(served);
    const slot = AgentStreams.slot(served.request.virtualMachine, served.request.kind);
    if (this.newest.get(slot) === served) this.newest.delete(slot);
  }

  /** A gateway's word on a VM's Console resource: streams it no longer admits end; a new holder gets no old output. */
  console(virtualMachine: string, view: ConsoleView | null): void {
    const previous = this.consoles.get(virtualMachine);
    // Gateways may tell of one change in either order: an older view than the one held is stale.
    if (view && previous && view.updatedAt < previous.updatedAt) return;
    this.consoles.set(virtualMachine, view);
    if (previous && (!view || previous.accessId !== view.accessId || previous.keyFingerprint !== view.keyFingerprint)) this.directory.get(virtualMachine)?.serial?.clearReplay();
    for (const served of [...this.served]) {
      const { request } = served;
      if (request.virtualMachine !== virtualMachine || !request.grant) continue;
      const why = this.refusal(virtualMachine, request.grant, view);
      if (why) this.end(served, { code: why, message: revocationMessage(why, virtualMachine) });
      else if (view && view.expiration !== served.expiration) {
        served.expiration = view.expiration;
        this.armExpiry(served);
      }
    }
  }

  /** Tells the gateway and returns true when the console (as `current` has it) no longer admits the stream's grant. */
  private refusedByConsole(request: StreamRequest, current: ConsoleView | null | undefined, gateway: StreamGateway): boolean {
    if (!request.grant || current === undefined) return false;
    const why = this.refusal(request.virtualMachine, request.grant, current);
    if (!why) return false;
    gateway.send({ type: 'stream-ended', session: request.session, reason: { code: why, message: revocationMessage(why, request.virtualMachine) } });
    return true;
  }

  /** Why a stream with this grant may not run under `view`, or undefined (the console rules, as on a standalone relay). */
  private refusal(virtualMachine: string, grant: { accessId: string; keyFingerprint: string }, view: ConsoleView | null): RevocationReason | undefined {
    const record = view ? { ...view, virtualMachine, keyData: '', createdAt: 0, updatedAt: 0 } : undefined;
    return revocationReason({ virtualMachine, ...grant }, record, this.now());
  }

  /** The VM went away under its streams. */
  endVm(virtualMachine: string, reason: CloseReason): void {
    for (const served of [...this.served]) if (served.request.virtualMachine === virtualMachine) this.end(served, reason);
  }

  /** Every stream through one gateway tunnel (it closed): forgotten without a word (nobody is there to hear it). */
  dropGateway(gateway: StreamGateway): void {
    for (const served of [...this.served]) {
      if (served.gateway !== gateway) continue;
      served.stop();
      this.forget(served);
    }
  }

  close(reason: CloseReason): void {
    for (const served of [...this.served]) this.end(served, reason);
  }
}
