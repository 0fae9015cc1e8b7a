import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../logger.js';
import type { LiveSession } from '../sessions/live-session.js';

/**
 * A VNC session: the client's stream (a forwarded SSH channel or a WebSocket) piped both
 * ways to a fresh connection to the VM's VNC socket. `pipe` pauses the faster side when the
 * slower one's buffer is full, so a client that stops reading stops the relay reading QEMU.
 */
export class VncSession implements LiveSession {
  readonly id = randomUUID();
  readonly kind = 'vnc' as const;
  readonly startedAt = Date.now();
  bytesIn = 0;
  bytesOut = 0;
  private ended = false;
  private readonly log: Logger;

  constructor(
    readonly virtualMachine: string,
    readonly path: 'ssh' | 'websocket',
    readonly endpoint: string,
    readonly remoteAddress: string,
    private readonly client: Duplex,
    private readonly vnc: Socket,
    /** Tells the client why and closes it (a WebSocket close reason; an SSH channel can only close). */
    private readonly closeClient: (reason: string) => Promise<void>,
    log: Logger,
    private readonly onEnd: (session: VncSession) => void,
  ) {
    this.log = log.child({ session: this.id, kind: 'vnc', path });
  }

  start(): void {
    const { client, vnc } = this;
    vnc.setNoDelay(true);
    vnc.on('data', (chunk: Buffer) => (this.bytesOut += chunk.length));
    client.on('data', (chunk: Buffer) => (this.bytesIn += chunk.length));
    vnc.pipe(client);
    client.pipe(vnc);
    const end = (): void => void this.close('the VNC connection ended');
    vnc.on('close', end);
    vnc.on('error', (error) => this.log.debug({ err: error.message }, 'VNC socket error'));
    client.on('close', end);
    client.on('end', end);
    client.on('error', (error: Error) => this.log.debug({ err: error.message }, 'VNC client stream error'));
    this.log.info('VNC session started');
  }

  close(reason: string): Promise<void> {
    if (this.ended) return Promise.resolve();
    this.ended = true;
    this.vnc.unpipe(this.client);
    this.client.unpipe(this.vnc);
    this.vnc.destroy();
    this.onEnd(this);
    this.log.info({ reason, bytesIn: this.bytesIn, bytesOut: this.bytesOut }, 'VNC session ended');
    return this.closeClient(reason);
  }
}
