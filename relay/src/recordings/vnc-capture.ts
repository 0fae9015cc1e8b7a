import type { Logger } from '../logger.js';
import type { VmConsole, VncStream } from '../sessions/console-seam.js';
import { RfbRecorder } from './rfb-recorder.js';
import type { VncBundle } from './vnc-bundle.js';

const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 10_000;

/**
 * The recorder's own connection to a VM's screen while a VNC recording runs: opened beside the
 * sessions' connections (shared), fed into the bundle, and opened again (a new segment) if the VM's
 * VNC server drops it while the sessions go on — a viewer that asked QEMU for exclusive access,
 * say. `start` settles once the screen is known, or fails with the reason.
 */
export class VncCapture {
  private stream: VncStream | undefined;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs = RETRY_FIRST_MS;
  /** Whether the screen was known once: from then on a lost connection is opened again. */
  private started = false;

  constructor(
    private readonly vm: VmConsole,
    private readonly bundle: VncBundle,
    private readonly log: Logger,
  ) {}

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      void this.connect(resolve, reject);
    });
  }

  private async connect(ready: () => void, failed: (error: Error) => void): Promise<void> {
    let stream: VncStream;
    try {
      stream = await this.vm.openVnc();
    } catch (error) {
      failed(new Error(`cannot open the VM's screen: ${(error as Error).message}`));
      return this.retry();
    }
    if (this.stopped) {
      stream.socket.destroy();
      return;
    }
    this.stream = stream;
    let settled = false;
    const recorder = new RfbRecorder(stream.socket, {
      screen: () => {
        if (!settled) {
          settled = true;
          this.started = true;
          this.retryMs = RETRY_FIRST_MS;
          ready();
        }
      },
      message: (message, kind) => {
        this.bundle.record(message, kind, recorder);
      },
      failed: (reason) => {
        this.log.warn({ vm: this.vm.name, err: reason }, 'VNC recorder stopped');
        stream.socket.destroy();
        if (!settled) {
          settled = true;
          failed(new Error(reason));
        }
      },
    });
    stream.reader.start(stream.socket, (chunk, release) => {
      // The reader's buffers are pooled: the recorder keeps a copy.
      const copy = Buffer.from(chunk);
      release();
      recorder.push(copy);
      return true;
    });
    stream.socket.on('error', (error: Error) => this.log.debug({ vm: this.vm.name, err: error.message }, 'VNC recorder socket error'));
    stream.socket.once('close', () => {
      if (this.stream === stream) this.stream = undefined;
      if (!settled) {
        settled = true;
        return failed(new Error('the VM\'s VNC server closed the recorder\'s connection'));
      }
      if (this.stopped || !this.started) return;
      this.bundle.marker('the recorder lost the VM\'s screen; reconnecting');
      this.retry();
    });
  }

  /** Opens the screen again after a while (once it was known: a recording that never had it fails instead). */
  private retry(): void {
    if (this.stopped || !this.started || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.stopped) return;
      void this.connect(
        () => this.bundle.marker('the recorder has the VM\'s screen again'),
        (error) => this.log.warn({ vm: this.vm.name, err: error.message }, 'VNC recorder cannot reconnect'),
      );
    }, this.retryMs);
    this.retryTimer.unref();
    this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.stream?.socket.destroy();
    this.stream = undefined;
  }
}
