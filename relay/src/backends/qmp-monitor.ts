import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { SocketAddress } from '../config/config.js';
import { backoffDelay } from '../core/backoff.js';
import type { Logger } from '../logger.js';
import { connectTo } from './connect.js';

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

/**
 * Keeps a QMP connection open to follow a VM's run state (QMP, like the serial chardev,
 * serves one client at a time). Emits `state` with the new power state.
 */
export class QmpMonitor extends EventEmitter {
  private socket: Socket | undefined;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  state: PowerState = 'Unavailable';

  constructor(
    private readonly address: SocketAddress,
    private readonly log: Logger,
  ) {
    super();
  }

  start(): void {
    void this.connect();
  }

  private setState(state: PowerState): void {
    if (state === this.state) return;
    this.state = state;
    this.emit('state', state);
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    let socket: Socket;
    try {
      socket = await connectTo(this.address);
    } catch {
      this.scheduleRetry();
      return;
    }
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.attempt = 0;
    this.socket = socket;
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
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.setState('Unavailable');
      this.scheduleRetry();
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
    } else if (message.id === 'status' && typeof (message.return as { status?: unknown })?.status === 'string') {
      this.setState(powerStateFromQmp((message.return as { status: string }).status));
    } else if (typeof message.event === 'string') {
      if (['STOP', 'RESUME', 'SHUTDOWN', 'RESET', 'SUSPEND', 'WAKEUP', 'POWERDOWN'].includes(message.event)) {
        this.send({ execute: 'query-status', id: 'status' });
      }
    }
  }

  private send(command: Record<string, unknown>): void {
    this.socket?.write(`${JSON.stringify(command)}\n`);
  }

  private scheduleRetry(): void {
    if (this.closed) return;
    if (this.attempt === 0) this.log.debug('QMP unavailable; retrying');
    this.retryTimer = setTimeout(() => void this.connect(), backoffDelay(this.attempt++));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.socket?.destroy();
    this.socket = undefined;
  }
}
