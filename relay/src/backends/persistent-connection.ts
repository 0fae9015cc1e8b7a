import type { Socket } from 'node:net';
import type { SocketAddress } from '../config/config.js';
import { backoffDelay } from '../core/backoff.js';
import { connectTo } from './connect.js';

export interface PersistentConnectionHandlers {
  /** A new connection is up; attach data handlers to it. */
  connected(socket: Socket): void;
  /** The connection went away (not called after `close()`); a retry is already scheduled. */
  disconnected(): void;
  /** The first failed attempt of a series, for one log line rather than one per retry. */
  unavailable?(error: Error): void;
}

/**
 * Keeps one connection open to a QEMU socket (chardev or QMP, which serve one client at a
 * time) and reconnects with backoff when it fails or closes, e.g. while the VM restarts.
 */
export class PersistentConnection {
  private current: Socket | undefined;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly address: SocketAddress,
    private readonly handlers: PersistentConnectionHandlers,
  ) {}

  get socket(): Socket | undefined {
    return this.current;
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
      if (this.attempt === 0) this.handlers.unavailable?.(error as Error);
      this.scheduleRetry();
      return;
    }
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.attempt = 0;
    this.current = socket;
    socket.on('error', () => undefined); // 'close' follows and drives the retry
    socket.on('close', () => {
      if (this.current !== socket) return;
      this.current = undefined;
      if (this.closed) return;
      this.scheduleRetry();
      this.handlers.disconnected();
    });
    this.handlers.connected(socket);
  }

  private scheduleRetry(): void {
    if (this.closed) return;
    this.retryTimer = setTimeout(() => void this.connect(), backoffDelay(this.attempt++));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.current?.destroy();
    this.current = undefined;
  }
}
