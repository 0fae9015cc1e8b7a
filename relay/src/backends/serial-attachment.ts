import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { SocketAddress } from '../config/config.js';
import { backoffDelay } from '../core/backoff.js';
import { ByteRing } from '../core/ring-buffer.js';
import type { Logger } from '../logger.js';
import { connectTo } from './connect.js';

/** Where serial output goes: an SSH channel, or anything else with stream write semantics. */
export interface SerialSink {
  write(chunk: Buffer): boolean;
  once(event: 'drain', listener: () => void): unknown;
  removeListener(event: 'drain', listener: () => void): unknown;
}

/**
 * The relay's one connection to a VM's serial chardev. QEMU serves one client at a time
 * and drops output while nobody is connected, so the relay stays connected for the VM's
 * life, keeps recent output in a ring, and hands the live stream to the current session.
 * Reconnects by itself when the VM restarts or the socket appears later.
 *
 * Events: `state` (connected: boolean), `drain` (the VM side accepts input again).
 */
export class SerialAttachment extends EventEmitter {
  private socket: Socket | undefined;
  private sink: SerialSink | undefined;
  private readonly ring: ByteRing;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private sinkBlocked: (() => void) | undefined;

  constructor(
    readonly virtualMachine: string,
    private readonly address: SocketAddress,
    replayBytes: number,
    private readonly log: Logger,
  ) {
    super();
    this.ring = new ByteRing(replayBytes);
  }

  get connected(): boolean {
    return this.socket !== undefined;
  }

  start(): void {
    void this.connect();
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    let socket: Socket;
    try {
      socket = await connectTo(this.address);
    } catch (error) {
      if (this.attempt === 0) this.log.warn({ err: (error as Error).message }, 'serial console unavailable; retrying');
      this.scheduleRetry();
      return;
    }
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.attempt = 0;
    this.socket = socket;
    socket.setNoDelay(true);
    this.log.info('serial console attached');
    socket.on('data', (chunk: Buffer) => this.onOutput(chunk));
    socket.on('drain', () => this.emit('drain'));
    socket.on('error', (error) => this.log.debug({ err: error.message }, 'serial socket error'));
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.releaseBlock();
      this.emit('state', false);
      if (!this.closed) {
        this.log.warn('serial console detached; waiting for the VM');
        this.notify('[lifeline] serial console disconnected; waiting for the VM to come back');
        this.scheduleRetry();
      }
    });
    this.emit('state', true);
  }

  private scheduleRetry(): void {
    if (this.closed) return;
    const delay = backoffDelay(this.attempt++);
    this.retryTimer = setTimeout(() => void this.connect(), delay);
  }

  private onOutput(chunk: Buffer): void {
    this.ring.push(chunk);
    const sink = this.sink;
    if (!sink || sink.write(chunk)) return;
    // The client is not keeping up: stop reading the VM until it drains, so the relay holds at most one window.
    const socket = this.socket!;
    socket.pause();
    const resume = (): void => {
      if (this.sinkBlocked === resume) this.sinkBlocked = undefined;
      socket.resume();
    };
    this.sinkBlocked = resume;
    sink.once('drain', resume);
  }

  private releaseBlock(): void {
    const resume = this.sinkBlocked;
    if (!resume) return;
    this.sink?.removeListener('drain', resume);
    resume();
  }

  private notify(line: string): void {
    this.sink?.write(Buffer.from(`\r\n${line}\r\n`));
  }

  /** Makes `sink` the receiver of live output after replaying the kept output; returns a detach function. */
  attach(sink: SerialSink): () => void {
    this.releaseBlock();
    this.sink = sink;
    const replay = this.ring.snapshot();
    if (replay.length > 0) sink.write(replay);
    if (!this.socket) this.notify('[lifeline] the serial console is not available yet; waiting for the VM');
    return () => {
      if (this.sink !== sink) return;
      this.releaseBlock();
      this.sink = undefined;
    };
  }

  /** Sends input to the VM. False means wait for `drain`; input while the VM is away is dropped. */
  write(chunk: Buffer): boolean {
    return this.socket ? this.socket.write(chunk) : true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.releaseBlock();
    this.sink = undefined;
    this.socket?.destroy();
    this.socket = undefined;
  }
}
