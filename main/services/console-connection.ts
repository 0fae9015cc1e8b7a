import { EventEmitter } from 'node:events';
import { sendSshBreak } from '@lifeline/relay/client';
import ssh2, { type ClientChannel } from 'ssh2';
import type { ConsoleKind } from '../../preload/contract.js';
import { LineSplitter } from './sharing-notices.js';
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
  /** Watch read-only (the relay's `observe` command, or the `vnc-observe:5900` forward). */
  observe?: boolean;
}

/**
 * One SSH connection from main to the relay as the console's access id, carrying the serial
 * shell or the `vnc:5900` forward (or, to watch, `observe` and `vnc-observe:5900`). Emits `closed`
 * (reason) once, whoever closed it, and `notice` (line) for each `[lifeline] …` line the relay
 * sends on the channel's stderr (docs/sharing.md).
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
          const lines = new LineSplitter();
          channel.stderr?.on('data', (data: Buffer) => {
            for (const line of lines.push(data.toString('utf8'))) if (line.startsWith('[lifeline] ')) this.notice(line);
          });
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
        const pty = { term: 'xterm-256color', cols: options.cols ?? 80, rows: options.rows ?? 24 };
        if (options.kind === 'serial' && options.observe) this.client.exec('observe', { pty }, onChannel);
        else if (options.kind === 'serial') this.client.shell(pty, onChannel);
        else this.client.forwardOut('127.0.0.1', 0, options.observe ? 'vnc-observe' : 'vnc', 5900, onChannel);
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

  /** Notices that came before anyone listened (the relay speaks as the session starts). */
  private readonly earlyNotices: string[] = [];

  private notice(line: string): void {
    if (this.listenerCount('notice') === 0) {
      if (this.earlyNotices.length < 50) this.earlyNotices.push(line);
    } else {
      this.emit('notice', line);
    }
  }

  /** Listens to the relay's notices, the ones that came before first. */
  onNotice(listener: (line: string) => void): void {
    this.on('notice', listener);
    for (const line of this.earlyNotices.splice(0)) listener(line);
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

  /** `control <verb>` on a second channel: the relay escape for this connection's serial session; resolves with the relay's answer. */
  control(verb: string): Promise<string> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new Error('The console is closed.'));
      this.client.exec(`control ${verb}`, (error, channel) => {
        if (error) return reject(new Error(`The relay refused the request: ${error.message}`));
        let answer = '';
        channel.on('data', (data: Buffer) => (answer += data.toString('utf8')));
        channel.stderr.on('data', (data: Buffer) => (answer += data.toString('utf8')));
        channel.on('close', () => resolve(answer.replace(/\[lifeline\] /g, '').trim()));
      });
    });
  }

  resize(cols: number, rows: number): void {
    this.channel?.setWindow(rows, cols, 0, 0);
  }

  close(reason = 'closed'): void {
    this.finish(reason);
  }
}
