import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { SerialProtocol, SocketAddress } from '../config/config.js';
import { ByteRing } from '../core/ring-buffer.js';
import { lastLines, withoutTerminalQueries } from '../core/terminal-queries.js';
import { escapeIac, TELNET_BREAK, TelnetDecoder } from '../core/telnet.js';
import type { Logger } from '../logger.js';
import { PersistentConnection } from './persistent-connection.js';
import type { SerialSink, SerialStream, StreamOwner } from '../sessions/console-seam.js';

/**
 * How long a serial break waits after the last input written to the VM. QEMU's UART model
 * marks a break on whatever byte is still unread in the guest's receive FIFO, so a break
 * right behind a keystroke (OpenSSH sends `Enter ~B` as data then a break request, microseconds
 * apart) makes the guest drop that keystroke as the break character and then read the break's
 * NUL as an ordinary byte: the SysRq key that follows is just typed. Measured with the lab VM
 * under full CPU load: Enter and IAC BREAK in back-to-back writes, 14 of 15 breaks lost; 20 ms
 * apart, 15 of 15 arrived. A person never types Enter and ~B within 100 ms.
 */
export const BREAK_SETTLE_MS = 100;

/** Input held while a break waits, before the session is asked to stop reading its client. */
const HELD_INPUT_HIGH_WATER = 64 * 1024;

const BREAK = Symbol('break');

export type { SerialSink } from '../sessions/console-seam.js';

/**
 * The relay's one connection to a VM's serial chardev. QEMU serves one client at a time
 * and drops output while nobody is connected, so the relay stays connected for the VM's
 * life, keeps recent output in a ring, and hands the live stream to the current session.
 * Reconnects by itself when the VM restarts or the socket appears later.
 *
 * Emits `drain` when the VM side accepts input again.
 */
export class SerialAttachment extends EventEmitter implements SerialStream {
  private readonly connection: PersistentConnection;
  private sink: SerialSink | undefined;
  private readonly ring: ByteRing;
  private sinkBlocked: (() => void) | undefined;
  /** Read-only sinks (observers): each gets the output while it keeps up, and misses it while it does not. */
  private readonly observers = new Set<ObserverSink>();
  /** Recordings: every chunk from the VM, as it came. */
  private readonly taps = new Set<(chunk: Buffer) => void>();
  /** Input and breaks waiting behind a break, in the order they arrived. */
  private held: Array<Buffer | typeof BREAK> = [];
  private heldBytes = 0;
  private heldTimer: NodeJS.Timeout | undefined;
  private heldForDrain = false;
  private lastInputAt = -Infinity;

  constructor(
    readonly virtualMachine: string,
    address: SocketAddress,
    replayBytes: number,
    private readonly log: Logger,
    readonly protocol: SerialProtocol = 'raw',
  ) {
    super();
    this.ring = new ByteRing(replayBytes);
    this.connection = new PersistentConnection(address, {
      connected: (socket) => this.onConnected(socket),
      disconnected: () => this.onDisconnected(),
      unavailable: (error) => this.log.warn({ err: error.message }, 'serial console unavailable; retrying'),
    });
  }

  private get socket(): Socket | undefined {
    return this.connection.socket;
  }

  get connected(): boolean {
    return this.socket !== undefined;
  }

  start(): void {
    this.connection.start();
  }

  private onConnected(socket: Socket): void {
    socket.setNoDelay(true);
    this.log.info({ protocol: this.protocol }, 'serial console attached');
    // Telnet mode: one decoder per connection (a command may be split across reads).
    const decoder = this.protocol === 'telnet' ? new TelnetDecoder('qemu') : undefined;
    socket.on('data', (chunk: Buffer) => {
      const data = decoder ? decoder.decode(chunk) : chunk;
      if (data.length > 0) this.onOutput(data, socket);
    });
    socket.on('drain', () => this.emit('drain'));
  }

  private onDisconnected(): void {
    this.dropHeld();
    this.releaseBlock();
    // Input waiting for the old socket to drain would wait forever: it may flow again (and is dropped until the VM is back).
    this.emit('drain');
    this.log.warn('serial console detached; waiting for the VM');
    this.notify('[lifeline] serial console disconnected; waiting for the VM to come back');
  }

  private onOutput(chunk: Buffer, socket: Socket): void {
    this.ring.push(chunk);
    for (const tap of this.taps) tap(chunk);
    for (const observer of this.observers) observer.write(chunk);
    const sink = this.sink;
    if (!sink || sink.write(chunk)) return;
    // The client is not keeping up: stop reading the VM until it drains, so the relay holds at most one window.
    socket.pause();
    const resume = (): void => {
      if (this.sinkBlocked === resume) this.sinkBlocked = undefined;
      socket.resume();
    };
    this.sinkBlocked = resume;
    sink.onceDrain(resume);
  }

  private releaseBlock(): void {
    const resume = this.sinkBlocked;
    if (!resume) return;
    this.sink?.cancelDrain(resume);
    resume();
  }

  private notify(line: string): void {
    const text = Buffer.from(`\r\n${line}\r\n`);
    this.sink?.write(text);
    for (const observer of this.observers) observer.write(text);
  }

  tap(listener: (chunk: Buffer) => void): () => void {
    this.taps.add(listener);
    return () => void this.taps.delete(listener);
  }

  observe(sink: SerialSink, owner?: StreamOwner): () => void {
    const observer = new ObserverSink(sink);
    const replay = lastLines(withoutTerminalQueries(this.ring.snapshot()), owner?.replayLines);
    if (replay.length > 0) observer.write(replay);
    if (!this.socket) observer.write(Buffer.from('\r\n[lifeline] the serial console is not available yet; waiting for the VM\r\n'));
    this.observers.add(observer);
    return () => {
      this.observers.delete(observer);
      observer.stop();
    };
  }

  /** Makes `sink` the receiver of live output after replaying the kept output; returns a detach function. */
  attach(sink: SerialSink, owner?: StreamOwner): () => void {
    this.releaseBlock();
    // Input and breaks held for the previous session are its own: they never reach the VM after it is gone.
    this.dropHeld();
    this.sink = sink;
    // Old queries (ESC[6n after a prompt…) are not replayed: the new client's terminal would answer them into the VM.
    const replay = lastLines(withoutTerminalQueries(this.ring.snapshot()), owner?.replayLines);
    if (replay.length > 0) sink.write(replay);
    if (!this.socket) this.notify('[lifeline] the serial console is not available yet; waiting for the VM');
    return () => {
      if (this.sink !== sink) return;
      this.dropHeld();
      this.releaseBlock();
      this.sink = undefined;
    };
  }

  /** Forgets the kept output (the console was deleted or re-keyed: it belongs to someone else now). */
  clearReplay(): void {
    this.ring.clear();
  }

  /** Sends input to the VM. False means wait for `drain`; input while the VM is away is dropped. */
  write(chunk: Buffer): boolean {
    if (!this.socket) return true;
    if (this.held.length > 0) {
      // Behind a waiting break: kept in order, sent right after it.
      this.held.push(chunk);
      this.heldBytes += chunk.length;
      return this.heldBytes < HELD_INPUT_HIGH_WATER;
    }
    return this.writeInput(this.socket, chunk);
  }

  private writeInput(socket: Socket, chunk: Buffer): boolean {
    this.lastInputAt = performance.now();
    return socket.write(this.protocol === 'telnet' ? escapeIac(chunk) : chunk);
  }

  /** Whether a serial break can be sent: a telnet-mode chardev that is connected. */
  get canBreak(): boolean {
    return this.protocol === 'telnet';
  }

  /**
   * Sends a serial break (telnet IAC BREAK); false where the backend has none or the VM is away.
   * The break goes out once the input before it has left the relay and `BREAK_SETTLE_MS` have
   * passed since the last of it; input that arrives meanwhile follows the break, in order.
   */
  sendBreak(): boolean {
    if (!this.socket || this.protocol !== 'telnet') return false;
    this.held.push(BREAK);
    this.pumpHeld();
    return true;
  }

  private pumpHeld(): void {
    if (this.heldForDrain) return;
    clearTimeout(this.heldTimer);
    this.heldTimer = undefined;
    const socket = this.socket;
    if (!socket) return this.dropHeld();
    let blocked = false;
    while (this.held.length > 0) {
      const next = this.held[0]!;
      if (next !== BREAK) {
        this.held.shift();
        this.heldBytes -= next.length;
        if (!this.writeInput(socket, next)) blocked = true;
        continue;
      }
      if (socket.writableLength > 0) {
        this.heldForDrain = true;
        socket.once('drain', () => {
          this.heldForDrain = false;
          this.pumpHeld();
        });
        return;
      }
      const wait = this.lastInputAt + BREAK_SETTLE_MS - performance.now();
      if (wait > 0) {
        this.heldTimer = setTimeout(() => this.pumpHeld(), Math.ceil(wait));
        return;
      }
      this.held.shift();
      socket.write(TELNET_BREAK);
      this.log.info('serial break sent');
    }
    // The session may have stopped reading its client while input was held.
    if (!blocked) this.emit('drain');
  }

  /** Input and breaks held for a VM that went away are dropped, like any input while it is away. */
  private dropHeld(): void {
    clearTimeout(this.heldTimer);
    this.heldTimer = undefined;
    this.heldForDrain = false;
    this.held = [];
    this.heldBytes = 0;
  }

  close(): void {
    this.dropHeld();
    this.releaseBlock();
    this.sink = undefined;
    this.observers.clear();
    this.taps.clear();
    this.connection.close();
  }
}

/**
 * An observer's sink: output goes on while the sink takes it; once it says it is behind, output is
 * skipped (counted) until it drains, then the observer hears how much it missed. The VM is never
 * held up by someone watching.
 */
class ObserverSink {
  private behind = false;
  private skipped = 0;
  private stopped = false;
  private readonly drained = (): void => {
    this.behind = false;
    if (this.stopped || this.skipped === 0) return;
    const skipped = this.skipped;
    this.skipped = 0;
    this.write(Buffer.from(`\r\n[lifeline] ${skipped} bytes of output skipped: this connection was not keeping up\r\n`));
  };

  constructor(private readonly sink: SerialSink) {}

  write(chunk: Buffer): void {
    if (this.stopped) return;
    if (this.behind) {
      this.skipped += chunk.length;
      return;
    }
    if (!this.sink.write(chunk)) {
      this.behind = true;
      this.sink.onceDrain(this.drained);
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.behind) this.sink.cancelDrain(this.drained);
  }
}
