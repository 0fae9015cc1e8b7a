/**
 * Backpressure for a writer that reports completion per chunk (a stream's write callback,
 * ws's send callback): counts the bytes handed over and not yet written, says "stop" past
 * `highWater`, and calls the waiting listener once the count is back to half of it.
 *
 * Stopping well before a transport's own buffer is full (ssh2 channels buffer 2 MiB) keeps
 * the data a slow client has not taken small, and short-lived enough for the young-generation
 * collector.
 */
/**
 * Bytes the relay holds for a client that is behind (serial or VNC, any transport) before it
 * stops reading the VM. ssh2 would buffer 2 MiB per channel; a quarter of that keeps a flood's
 * buffers young and a slow reader's cost small, and is still several round trips of data.
 */
export const CLIENT_HIGH_WATER = 512 * 1024;

export class WriteWindow {
  private queued = 0;
  private waiting: (() => void) | undefined;

  constructor(
    readonly highWater: number,
    /** Hands `chunk` to the transport; must call `done` once it is written (or has failed). */
    private readonly send: (chunk: Buffer, done: () => void) => void,
  ) {}

  /** Writes `chunk`; `written` runs once its memory may be reused. False means: wait for `onceDrain`. */
  write(chunk: Buffer, written?: () => void): boolean {
    const length = chunk.length;
    this.queued += length;
    this.send(chunk, () => {
      this.queued -= length;
      written?.();
      if (this.waiting && this.queued <= this.highWater / 2) {
        const listener = this.waiting;
        this.waiting = undefined;
        listener();
      }
    });
    return this.queued < this.highWater;
  }

  /** Calls `listener` once the queue has drained to half the high-water mark (at once if it already has). */
  onceDrain(listener: () => void): void {
    if (this.queued <= this.highWater / 2) return void queueMicrotask(listener);
    this.waiting = listener;
  }

  /** Forgets a listener given to `onceDrain` that is no longer wanted. */
  cancelDrain(listener: () => void): void {
    if (this.waiting === listener) this.waiting = undefined;
  }

  /** Bytes handed over and not yet written. */
  get pending(): number {
    return this.queued;
  }
}
