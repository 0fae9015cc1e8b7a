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

/**
 * Keeps a QMP connection open to follow a VM's run state (QMP, like the serial chardev,
 * serves one client at a time).
 */
export class QmpMonitor {
  private readonly connection: PersistentConnection;
  state: PowerState = 'Unavailable';

  constructor(address: SocketAddress, log: Logger) {
    this.connection = new PersistentConnection(address, {
      connected: (socket) => this.onConnected(socket),
      disconnected: () => (this.state = 'Unavailable'),
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
    } else if (message.id === 'status' && typeof (message.return as { status?: unknown })?.status === 'string') {
      this.state = powerStateFromQmp((message.return as { status: string }).status);
    } else if (typeof message.event === 'string') {
      if (['STOP', 'RESUME', 'SHUTDOWN', 'RESET', 'SUSPEND', 'WAKEUP', 'POWERDOWN'].includes(message.event)) {
        this.send({ execute: 'query-status', id: 'status' });
      }
    }
  }

  private send(command: Record<string, unknown>): void {
    this.connection.socket?.write(`${JSON.stringify(command)}\n`);
  }

  close(): void {
    this.connection.close();
  }
}
