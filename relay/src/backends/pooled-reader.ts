import type { OnReadOpts } from 'node:net';
import type { Duplex } from 'node:stream';
import type { BufferPool } from '../core/buffer-pool.js';

/** Takes one read; `release` hands its buffer back once the bytes have been written on. False pauses the socket. */
export type ReadHandler = (chunk: Buffer, release: () => void) => boolean;

/**
 * Reads a socket into pooled buffers through net's `onread` option instead of a fresh buffer
 * per read. Reads that arrive before `start` (QEMU's VNC server greets at once) wait, with the
 * socket paused, and are delivered first.
 */
export class PooledReader {
  private handler: ReadHandler | undefined;
  private readonly waiting: Array<{ chunk: Buffer; release: () => void }> = [];

  constructor(private readonly pool: BufferPool) {}

  /** The `onread` option for `net.connect`. */
  readonly onread: OnReadOpts = {
    buffer: () => this.pool.take(),
    callback: (bytes: number, buffer: Uint8Array): boolean => {
      const pooled = buffer as Buffer;
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        this.pool.give(pooled);
      };
      const chunk = pooled.subarray(0, bytes);
      if (!this.handler) {
        this.waiting.push({ chunk, release });
        return false;
      }
      return this.handler(chunk, release);
    },
  };

  /** Delivers the reads that waited, then every later one; resumes the socket unless the handler said to wait. */
  start(socket: Duplex, handler: ReadHandler): void {
    this.handler = handler;
    let paused = false;
    for (const { chunk, release } of this.waiting.splice(0)) if (!handler(chunk, release)) paused = true;
    if (!paused) socket.resume();
  }
}
