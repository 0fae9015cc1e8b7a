import { randomUUID } from 'node:crypto';
import type { ServerChannel } from 'ssh2';
import type { SessionGrant } from '../core/console-rules.js';
import type { SerialSink, SerialStream, StreamOwner } from '../sessions/console-seam.js';
import type { ConsoleSharing, SharedSession } from '../sessions/console-sharing.js';
import { EscapeParser } from '../core/relay-escapes.js';
import { CLIENT_HIGH_WATER, WriteWindow } from '../core/write-window.js';
import type { Logger } from '../logger.js';
import { CLOSE_EXIT_STATUS, type CloseReason, type SessionRole } from '../sessions/live-session.js';

/** How long a closing session waits for its reason line to flush to a client that is not reading. */
const CLOSE_GRACE_MS = 300;
/** An observer who types is reminded that it is not sent at most this often. */
const TYPING_REMINDER_MS = 10_000;

/** How a serial session shares its console: its first role, and where participants are kept. */
export interface SerialSharing {
  role: SessionRole;
  sharing: ConsoleSharing;
}

/**
 * A serial console session: one SSH shell channel bridged to the VM's serial attachment. As the
 * controller its input reaches the VM; as an observer (`ssh … observe`, or a controller that handed
 * over) it gets the output only, and its typing goes nowhere but to the relay's escapes.
 */
export class SerialSession implements SharedSession {
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
  role: SessionRole;
  /** The client's terminal size (its pty request), for a recording's header. */
  terminal: { width: number; height: number } | undefined;
  private readonly escapes: EscapeParser | undefined;
  private sink: SerialSink | undefined;
  private owner: StreamOwner | undefined;
  private remindedAt = -Infinity;

  constructor(
    readonly virtualMachine: string,
    readonly endpoint: string,
    readonly remoteAddress: string,
    private readonly channel: ServerChannel,
    private readonly attachment: SerialStream,
    log: Logger,
    private readonly onEnd: (session: SerialSession) => void,
    private readonly shared?: SerialSharing,
  ) {
    this.log = log.child({ session: this.id, kind: 'serial' });
    this.role = shared?.role ?? 'controller';
    this.escapes = shared ? new EscapeParser() : undefined;
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
    this.sink = counted;
    this.owner = {
      grant,
      remoteAddress: this.remoteAddress,
      path: 'ssh',
      session: this.id,
      endpoint: this.endpoint,
      ...(replayLines !== undefined && { replayLines }),
      ...(this.terminal && { terminal: this.terminal }),
      notify: (line) => this.notify(line),
    };
    this.detach = this.connect(this.owner);
    channel.on('data', (data: Buffer) => {
      // A closed session's keystrokes never reach the VM, even while its channel is still closing.
      if (this.ended) return;
      this.bytesIn += data.length;
      let chunk = data;
      if (this.escapes && this.shared) {
        const { input, commands } = this.escapes.feed(data, this.role === 'observer' || this.shared.sharing.isShared(this.virtualMachine));
        for (const command of commands) this.shared.sharing.command(this, command);
        chunk = input;
      }
      if (this.role !== 'controller') return this.remindObserver(chunk);
      const recorder = this.shared?.sharing.recorder;
      if (recorder?.recordsInput && chunk.length > 0) recorder.input(this, chunk);
      if (chunk.length > 0 && !this.attachment.write(chunk)) {
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

  /** The byte path for the current role: attached (input and output) or observing (output only). */
  private connect(owner: StreamOwner): () => void {
    const sink = this.sink!;
    if (this.role === 'observer') return this.attachment.observe!(sink, owner);
    return this.attachment.attach(sink, owner);
  }

  private remindObserver(typed: Buffer): void {
    if (typed.length === 0 || performance.now() - this.remindedAt < TYPING_REMINDER_MS) return;
    this.remindedAt = performance.now();
    this.notify('you are observing: your typing is not sent to the VM (Enter ~~r asks for control)');
  }

  /** A line for this session's user on the channel's stderr, outside the guest's output. */
  notify(line: string): void {
    if (this.ended) return;
    try {
      this.channel.stderr.write(`\r\n[lifeline] ${line}\r\n`);
    } catch {
      // Gone with its connection.
    }
  }

  /** Switches between controlling and observing without a replay (the session has seen the output already). */
  setRole(role: SessionRole): void {
    if (role === this.role || this.ended || !this.owner) return;
    this.detach?.();
    this.stopWaiting?.();
    this.stopWaiting = undefined;
    this.channel.resume();
    this.role = role;
    this.detach = this.connect({ ...this.owner, replayLines: 0 });
    this.log.info({ role }, 'serial session role changed');
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
    if (this.role !== 'controller') {
      this.notify('break not sent: you are observing');
      return false;
    }
    if (this.attachment.sendBreak()) {
      this.shared?.sharing.recorder?.marker(this.virtualMachine, `break from ${this.id.slice(0, 8)}`);
      return true;
    }
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
