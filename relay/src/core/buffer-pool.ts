/**
 * Fixed-size buffers for socket reads (net's `onread`), given back once what was read into
 * them has been written on. A busy stream then allocates nothing per read: no garbage for
 * the collector, no heap growing and shrinking under a flood.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];

  constructor(
    readonly size: number,
    /** How many idle buffers to keep; more are left to the collector. */
    readonly maxFree: number,
  ) {}

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  /** Hands a buffer back. Only for a buffer nothing refers to any more: it will be read into again. */
  give(buffer: Buffer): void {
    if (buffer.length === this.size && this.free.length < this.maxFree && !this.free.includes(buffer)) this.free.push(buffer);
  }

  get idle(): number {
    return this.free.length;
  }
}
