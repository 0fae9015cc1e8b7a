import type { Socket } from 'node:net';
import type { SocketAddress } from '../config/config.js';
import type { Logger } from '../logger.js';
import { PersistentConnection } from './persistent-connection.js';

export type PowerState = 'Running' | 'Paused' | 'Stopped' | 'Unavailable';

/** Maps QEMU's `query-status` run states onto the API's power states. */
export function powerStateFromQmp(status: string): PowerState {
  switch (status) {
    case 'running':
    case 'debug':
    case 'finish-migrate':
    case 'inmigrate':
    case 'postmigrate':
    case 'prelaunch':
    case 'restore-vm':
    case 'save-vm':
      return 'Running';
    case 'paused':
    case 'suspended':
    case 'watchdog':
    case 'io-error':
      return 'Paused';
    default:
      return 'Stopped';
  }
}

const CONNECTION_CLOSED = 'the VM\'s QMP connection closed';

/**
 * Keeps a QMP connection open to follow a VM's run state (QMP, like the serial chardev,
 * serves one client at a time).
 */
export class QmpMonitor {
  private readonly connection: PersistentConnection;
  state: PowerState = 'Unavailable';
  /** Commands sent with `execute`, by id, until QEMU answers (or the connection drops). */
  private readonly pending = new Map<string, { resolve: (value: unknown) => void; reject: (error: Error) => void; timer: NodeJS.Timeout; endsQemu: boolean }>();
  private nextId = 1;
  private ready = false;

  constructor(address: SocketAddress, log: Logger) {
    this.connection = new PersistentConnection(address, {
      connected: (socket) => this.onConnected(socket),
      disconnected: () => {
        this.state = 'Unavailable';
        this.ready = false;
        this.failPending(CONNECTION_CLOSED);
      },
      unavailable: () => log.debug('QMP unavailable; retrying'),
    });
  }

  start(): void {
    this.connection.start();
  }

  private onConnected(socket: Socket): void {
    let pending = '';
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      pending += text;
      if (pending.length > 1 << 20) pending = ''; // a QMP peer flooding garbage must not grow memory
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline).trim();
        pending = pending.slice(newline + 1);
        if (line) this.onMessage(line);
      }
    });
  }

  private onMessage(line: string): void {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    if ('QMP' in message) {
      this.send({ execute: 'qmp_capabilities' });
      this.send({ execute: 'query-status', id: 'status' });
      this.ready = true;
    } else if (typeof message.id === 'string' && this.pending.has(message.id)) {
      const call = this.pending.get(message.id)!;
      this.pending.delete(message.id);
      clearTimeout(call.timer);
      const error = message.error as { desc?: string } | undefined;
      if (error) call.reject(new Error(error.desc ?? 'QEMU refused the command'));
      else call.resolve(message.return);
    } else if (message.id === 'status' && typeof (message.return as { status?: unknown })?.status === 'string') {
      this.state = powerStateFromQmp((message.return as { status: string }).status);
    } else if (typeof message.event === 'string') {
      if (['STOP', 'RESUME', 'SHUTDOWN', 'RESET', 'SUSPEND', 'WAKEUP', 'POWERDOWN'].includes(message.event)) {
        this.send({ execute: 'query-status', id: 'status' });
      }
    }
  }

  /**
   * Runs a QMP command; rejects when QMP is not connected, QEMU refuses it, or no answer comes in `timeoutMs`.
   * `endsQemu` (`quit`): QEMU may exit before its answer is flushed, so the connection closing is the answer.
   */
  execute(command: string, args?: Record<string, unknown>, timeoutMs = 5000, endsQemu = false): Promise<unknown> {
    if (!this.connection.socket || !this.ready) return Promise.reject(new Error('the VM\'s QMP socket is not connected'));
    const id = `call-${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`QEMU did not answer ${command} within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer, endsQemu });
      this.send({ execute: command, ...(args && { arguments: args }), id });
    });
  }

  private failPending(reason: string): void {
    for (const call of this.pending.values()) {
      clearTimeout(call.timer);
      if (call.endsQemu && reason === CONNECTION_CLOSED) call.resolve(undefined);
      else call.reject(new Error(reason));
    }
    this.pending.clear();
  }

  private send(command: Record<string, unknown>): void {
    this.connection.socket?.write(`${JSON.stringify(command)}\n`);
  }

  close(): void {
    this.failPending('the relay is shutting down');
    this.connection.close();
  }
}
