import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { VncStream } from '../sessions/console-seam.js';
import { CLIENT_HIGH_WATER, WriteWindow } from '../core/write-window.js';
import type { Logger } from '../logger.js';
import type { CloseReason, LiveSession, SessionRole } from '../sessions/live-session.js';
import { RfbObserveFilter, type DroppedMessage } from '../core/rfb-observe-filter.js';

/** What an observing VNC session reports: each message of its viewer that the relay dropped. */
export interface VncObserver {
  dropped(message: DroppedMessage): void;
}

/** The client side of a VNC session, whatever carries it (a forwarded SSH channel, a WebSocket). */
export interface VncClient {
  /**
   * Sends VNC output; `written` is called once the chunk's memory may be reused. False means the
   * client is behind: stop reading the VM until `onceDrain`.
   */
  send(chunk: Buffer, written: () => void): boolean;
  onceDrain(listener: () => void): void;
  onData(listener: (chunk: Buffer) => void): void;
  pause(): void;
  resume(): void;
  /** Called once the client has gone (closed, ended or failed). */
  onEnd(listener: () => void): void;
  /** Tells the client why, where the transport can carry a reason, and closes it. */
  close(reason: string): Promise<void>;
  /** A line for the viewer outside the RFB stream; present where the client asked for notices (the relay's noVNC page). */
  notice?(line: string): void;
}

/** Lines for a session that may arrive before it exists (a remote console's, while its screen opens): kept, then handed to `deliver`'s target. */
export function noticeQueue(): { notify: (line: string) => void; deliver: (to: (line: string) => void) => void } {
  const early: string[] = [];
  let target: ((line: string) => void) | undefined;
  return {
    notify: (line) => (target ? target(line) : early.length < 20 && early.push(line)),
    deliver: (to) => {
      target = to;
      for (const line of early.splice(0)) to(line);
    },
  };
}

/** The WebSocket subprotocol a viewer offers to get the relay's notices as text messages beside the binary RFB ones (docs/vnc.md). */
export const NOTICES_PROTOCOL = 'lifeline.notices';

/** A stream client (an SSH `direct-tcpip` channel): written through a WriteWindow; no room for a reason. */
export function streamClient(stream: Duplex, close: (reason: string) => Promise<void>, log: Logger): VncClient {
  stream.on('error', (error: Error) => log.debug({ err: error.message }, 'VNC client stream error'));
  const window = new WriteWindow(CLIENT_HIGH_WATER, (chunk, done) => stream.write(chunk, () => done()));
  return {
    send: (chunk, written) => window.write(chunk, written),
    onceDrain: (listener) => window.onceDrain(listener),
    onData: (listener) => void stream.on('data', listener),
    pause: () => void stream.pause(),
    resume: () => void stream.resume(),
    onEnd: (listener) => {
      stream.once('close', listener);
      stream.once('end', listener);
    },
    close,
  };
}

/** Closes a WebSocket with `code` and a reason (at most 123 bytes), ending it hard if the peer does not answer within 1 s. */
export function webSocketCloser(ws: WebSocket, code: number): (reason: string) => Promise<void> {
  return (reason) =>
    new Promise((resolve) => {
      if (ws.readyState === ws.CLOSED) return resolve();
      const timer = setTimeout(() => {
        ws.terminate();
        resolve();
      }, 1000);
      ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      ws.close(code, Buffer.from(reason).subarray(0, 123).toString());
    });
}

/**
 * A WebSocket client, without a stream wrapper in between: each VNC read goes out as one binary
 * message; ws's send callbacks (called once a message is handed to the kernel, or has failed)
 * drive the WriteWindow.
 */
export function webSocketClient(ws: WebSocket, close: (reason: string) => Promise<void>, log: Logger): VncClient {
  ws.on('error', (error: Error) => log.debug({ err: error.message }, 'VNC WebSocket error'));
  const window = new WriteWindow(CLIENT_HIGH_WATER, (chunk, done) => ws.send(chunk, { binary: true }, () => done()));
  return {
    send: (chunk, written) => window.write(chunk, written),
    onceDrain: (listener) => window.onceDrain(listener),
    onData: (listener) => void ws.on('message', (data: Buffer) => listener(data)),
    pause: () => ws.pause(),
    resume: () => ws.resume(),
    onEnd: (listener) => void ws.once('close', listener),
    close,
    ...(ws.protocol === NOTICES_PROTOCOL && {
      notice: (line: string) => {
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ notice: line }));
      },
    }),
  };
}

/**
 * A VNC session: the client piped both ways to a fresh connection to the VM's VNC socket.
 * Each direction pauses its reader while the other side is behind, so a client that stops
 * reading stops the relay reading QEMU, and a VM that stops reading stops the client. Screen
 * data is read into pooled buffers that go back to the pool once sent on, so a busy screen
 * makes no garbage per read.
 */
export class VncSession implements LiveSession {
  readonly kind = 'vnc' as const;
  readonly startedAt = Date.now();
  bytesIn = 0;
  bytesOut = 0;
  closeReason: CloseReason | undefined;
  private ended = false;
  private readonly log: Logger;
  /** An observer's viewer input goes through this: what would change the VM is dropped. */
  private readonly filter: RfbObserveFilter | undefined;

  constructor(
    readonly virtualMachine: string,
    readonly path: 'ssh' | 'websocket',
    readonly endpoint: string,
    readonly remoteAddress: string,
    private readonly client: VncClient,
    private readonly connection: VncStream,
    log: Logger,
    private readonly onEnd: (session: VncSession) => void,
    /** Given when the VM's screen was opened for it before it existed (a fleet's slot is taken under this id). */
    readonly id: string = randomUUID(),
    /** Given for a read-only session (a VNC token minted to observe). */
    private readonly observer?: VncObserver,
  ) {
    this.log = log.child({ session: this.id, kind: 'vnc', path });
    this.filter = observer ? new RfbObserveFilter() : undefined;
  }

  get role(): SessionRole {
    return this.observer ? 'observer' : 'controller';
  }

  /** A line for its viewer outside the screen's stream (joins, leaves, recording), where the viewer asked for them. */
  notify(line: string): void {
    if (!this.ended) this.client.notice?.(line);
  }

  start(): void {
    const { client } = this;
    const { socket: vnc, reader } = this.connection;
    vnc.setNoDelay?.(true);
    let clientBehind = false;
    reader.start(vnc, (chunk, release) => {
      if (this.ended) {
        release();
        return false;
      }
      this.bytesOut += chunk.length;
      if (client.send(chunk, release)) return true;
      if (!clientBehind) {
        clientBehind = true;
        client.onceDrain(() => {
          clientBehind = false;
          if (!this.ended) vnc.resume();
        });
      }
      return false;
    });
    let vmBehind = false;
    client.onData((data) => {
      if (this.ended) return;
      this.bytesIn += data.length;
      const chunk = this.filter ? this.filtered(data) : data;
      if (!chunk) return;
      if (vnc.write(chunk) || vmBehind) return;
      vmBehind = true;
      client.pause();
      vnc.once('drain', () => {
        vmBehind = false;
        if (!this.ended) client.resume();
      });
    });
    vnc.on('close', () => void this.close(this.connection.endReason?.() ?? { code: 'vm-disconnected', message: 'the VM\'s VNC connection ended' }));
    vnc.on('error', (error) => this.log.debug({ err: error.message }, 'VNC socket error'));
    client.onEnd(() => void this.close({ code: 'client-left', message: 'the client closed the session' }));
    this.log.info('VNC session started');
  }

  /** An observer's input without what would change the VM; undefined when nothing is left to send. */
  private filtered(data: Buffer): Buffer | undefined {
    const result = this.filter!.push(data);
    for (const message of result.dropped) this.observer!.dropped(message);
    if (result.error) {
      this.log.info({ err: result.error }, 'observer VNC input refused');
      void this.close({ code: 'unsupported-client', message: `observe mode: ${result.error}` });
      return undefined;
    }
    return result.pass.length > 0 ? result.pass : undefined;
  }

  close(reason: CloseReason): Promise<void> {
    if (this.ended) return Promise.resolve();
    this.ended = true;
    this.closeReason = reason;
    this.connection.socket.destroy();
    this.onEnd(this);
    this.log.info({ reason: reason.message, bytesIn: this.bytesIn, bytesOut: this.bytesOut }, 'VNC session ended');
    return this.client.close(reason.message);
  }
}
