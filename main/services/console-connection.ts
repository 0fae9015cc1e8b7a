import { EventEmitter } from 'node:events';
import { sendSshBreak } from '@lifeline/relay/client';
import ssh2, { type ClientChannel } from 'ssh2';
import type { ConsoleKind } from '../../preload/contract.js';
import { fingerprintOfBlob } from './ssh-keys.js';

export class HostKeyMismatchError extends Error {
  constructor(expected: string, got: string) {
    super(
      `The relay's SSH host key has changed: expected ${expected}, got ${got}. ` +
        'Someone may be intercepting the connection, or the relay was reinstalled. Lifeline refused to connect; ' +
        'if the change is expected, remove the relay and add it again to pin the new key.',
    );
    this.name = 'HostKeyMismatchError';
  }
}

export interface ConsoleConnectionOptions {
  host: string;
  port: number;
  accessId: string;
  privateKey: string;
  /** The pinned host key fingerprint (from GET /v1/relay); anything else is refused. */
  hostKeyFingerprint: string;
  kind: ConsoleKind;
  cols?: number;
  rows?: number;
}

/**
 * One SSH connection from main to the relay as the console's access id, carrying the serial
 * shell or the `vnc:5900` forward. Emits `closed` (reason) once, whoever closed it.
 */
export class ConsoleConnection extends EventEmitter {
  private readonly client = new ssh2.Client();
  private closedReason: string | undefined;
  private lastLine = '';
  channel: ClientChannel | undefined;

  private constructor(private readonly options: ConsoleConnectionOptions) {
    super();
  }

  static async open(options: ConsoleConnectionOptions): Promise<ConsoleConnection> {
    const connection = new ConsoleConnection(options);
    await connection.connect();
    return connection;
  }

  private connect(): Promise<void> {
    const { options } = this;
    let mismatch: HostKeyMismatchError | undefined;
    return new Promise((resolve, reject) => {
      this.client.once('ready', () => {
        const onChannel = (error: Error | undefined, channel: ClientChannel): void => {
          if (error) {
            this.client.end();
            return reject(new Error(options.kind === 'vnc' ? `The relay refused the VNC stream: ${error.message}` : `The relay refused the serial console: ${error.message}`));
          }
          this.channel = channel;
          if (options.kind === 'serial') {
            // Watch the output for the relay's reason line, but stay paused until the renderer's stream
            // attaches: bridgeStream resumes the flow at once (no ack needed first), so nothing is lost.
            channel.on('data', (data: Buffer) => this.noteOutput(data));
            channel.pause();
          }
          channel.on('close', () => {
            // Output nobody consumed (no renderer attached) may hold the relay's reason line.
            if (options.kind === 'serial' && channel.readableFlowing !== true) {
              for (let chunk = channel.read() as Buffer | null; chunk; chunk = channel.read() as Buffer | null) this.noteOutput(chunk);
            }
            this.finish(this.reasonFromOutput());
          });
          resolve();
        };
        if (options.kind === 'serial') {
          this.client.shell({ term: 'xterm-256color', cols: options.cols ?? 80, rows: options.rows ?? 24 }, onChannel);
        } else {
          this.client.forwardOut('127.0.0.1', 0, 'vnc', 5900, onChannel);
        }
      });
      // `on`, not `once`: ssh2 can report more than one error on a connection, and an unhandled second one would kill main.
      this.client.on('error', (error) => {
        if (mismatch) return reject(mismatch);
        if (this.channel) return this.finish(`connection error: ${error.message}`);
        const level = (error as { level?: string }).level;
        reject(new Error(level === 'client-authentication' ? 'The relay refused the console key (the console may be disabled, expired or re-keyed).' : `Cannot connect to the relay's SSH endpoint ${options.host}:${options.port}: ${error.message}`));
      });
      this.client.on('close', () => this.finish(this.reasonFromOutput() ?? 'the connection to the relay closed'));
      this.client.connect({
        host: options.host,
        port: options.port,
        username: options.accessId,
        privateKey: options.privateKey,
        readyTimeout: 15_000,
        keepaliveInterval: 15_000,
        hostVerifier: (key: Buffer) => {
          const got = fingerprintOfBlob(key);
          if (got === options.hostKeyFingerprint) return true;
          mismatch = new HostKeyMismatchError(options.hostKeyFingerprint, got);
          return false;
        },
      });
    });
  }

  /** Keeps the tail of the output to recover the relay's `[lifeline] session closed: …` line. */
  private noteOutput(data: Buffer): void {
    this.lastLine = (this.lastLine + data.toString('utf8')).slice(-400);
  }

  private reasonFromOutput(): string | undefined {
    const match = /\[lifeline\] session closed: ([^\r\n]+)/.exec(this.lastLine);
    return match?.[1];
  }

  private finish(reason: string | undefined): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason ?? 'the session ended';
    this.client.end();
    this.emit('closed', this.closedReason);
  }

  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  /** A serial break (then `key`, for SysRq): true when the relay sent it to the VM. */
  async sendBreak(key?: string): Promise<boolean> {
    const channel = this.channel;
    if (!channel || this.closed) return false;
    const sent = await sendSshBreak(this.client, channel);
    if (sent && key) {
      // The guest takes the key after the break as its SysRq command.
      await new Promise((resolve) => setTimeout(resolve, 150));
      channel.write(key);
    }
    return sent;
  }

  resize(cols: number, rows: number): void {
    this.channel?.setWindow(rows, cols, 0, 0);
  }

  close(reason = 'closed'): void {
    this.finish(reason);
  }
}
