import { randomUUID } from 'node:crypto';
import type { ServerChannel } from 'ssh2';
import type { SessionGrant } from '../core/console-rules.js';
import type { SerialSink, SerialStream } from '../sessions/console-seam.js';
import { CLIENT_HIGH_WATER, WriteWindow } from '../core/write-window.js';
import type { Logger } from '../logger.js';
import { CLOSE_EXIT_STATUS, type CloseReason, type LiveSession } from '../sessions/live-session.js';

/** How long a closing session waits for its reason line to flush to a client that is not reading. */
const CLOSE_GRACE_MS = 300;

/** A serial console session: one SSH shell channel bridged to the VM's serial attachment. */
export class SerialSession implements LiveSession {
  readonly id = randomUUID();
  readonly kind = 'serial' as const;
  readonly path = 'ssh' as const;
  readonly startedAt = Date.now();
  bytesIn = 0;
  bytesOut = 0;
  closeReason: CloseReason | undefined;
  private detach: (() => void) | undefined;
  private stopWaiting: (() => void) | undefined;
  private ended = false;
  private readonly log: Logger;

  constructor(
    readonly virtualMachine: string,
    readonly endpoint: string,
    readonly remoteAddress: string,
    private readonly channel: ServerChannel,
    private readonly attachment: SerialStream,
    log: Logger,
    private readonly onEnd: (session: SerialSession) => void,
  ) {
    this.log = log.child({ session: this.id, kind: 'serial' });
  }

  /** Starts the byte path; call after the session registry has made this the VM's session. */
  start(grant?: SessionGrant, replayLines?: number): void {
    const channel = this.channel;
    const window = new WriteWindow(CLIENT_HIGH_WATER, (chunk, done) => channel.write(chunk, () => done()));
    const counted: SerialSink = {
      write: (chunk) => {
        this.bytesOut += chunk.length;
        return window.write(chunk);
      },
      onceDrain: (listener) => window.onceDrain(listener),
      cancelDrain: (listener) => window.cancelDrain(listener),
      end: (reason) => void this.close(reason),
    };
    this.detach = this.attachment.attach(counted, { grant, remoteAddress: this.remoteAddress, path: 'ssh', session: this.id, endpoint: this.endpoint, ...(replayLines !== undefined && { replayLines }) });
    channel.on('data', (chunk: Buffer) => {
      // A closed session's keystrokes never reach the VM, even while its channel is still closing.
      if (this.ended) return;
      this.bytesIn += chunk.length;
      if (!this.attachment.write(chunk)) {
        // The VM is not taking input as fast as it arrives: stop reading the client (the SSH window then fills).
        // The attachment also signals `drain` when the VM's socket drops, so input never waits for a socket that is gone.
        channel.pause();
        const resume = (): void => void channel.resume();
        this.attachment.once('drain', resume);
        this.stopWaiting = () => this.attachment.off('drain', resume);
      }
    });
    channel.on('error', (error: Error) => this.log.debug({ err: error.message }, 'channel error'));
    channel.on('close', () => this.finish());
    this.log.info('serial session started');
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.detach?.();
    this.stopWaiting?.();
    this.onEnd(this);
    this.log.info({ bytesIn: this.bytesIn, bytesOut: this.bytesOut }, 'serial session ended');
  }

  /**
   * A serial break (SSH `break`, OpenSSH ~B): sent where the backend has one. Where it has not,
   * the client is told in its terminal (OpenSSH asks for no reply) and the session goes on.
   */
  sendBreak(): boolean {
    if (this.ended) return false;
    if (this.attachment.sendBreak()) return true;
    const why = this.attachment.canBreak ? 'the VM is not connected' : 'this VM\'s serial port has no break (it needs a telnet-mode chardev; see docs/relay.md)';
    this.channel.write(`\r\n[lifeline] break not sent: ${why}\r\n`);
    this.log.info('serial break refused');
    return false;
  }

  /** Writes the reason line, then closes the channel once it is flushed (or after a short grace when the client is not reading). */
  close(reason: CloseReason): Promise<void> {
    if (this.ended) return Promise.resolve();
    this.closeReason = reason;
    this.detach?.();
    this.detach = undefined;
    const channel = this.channel;
    this.finish();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        try {
          channel.close();
        } catch {
          // Already gone with its connection.
        }
        resolve();
      };
      const timer = setTimeout(done, CLOSE_GRACE_MS);
      try {
        // The status goes first (a request is not held behind the window as data is); OpenSSH keeps it and exits with it at close.
        if (reason.code !== 'client-left') channel.exit(CLOSE_EXIT_STATUS[reason.code]);
        // end() queues behind data still being written, so the reason is the last thing the client sees.
        channel.end(`\r\n[lifeline] session closed: ${reason.message}\r\n`, done);
      } catch {
        done();
      }
    });
  }
}
