/**
 * Keeps the most recent `capacity` bytes of a stream in one fixed buffer. Appending is a copy
 * into place (no allocation per chunk, so a console flood makes no garbage here); the buffer is
 * allocated on the first byte, so a VM that never prints costs nothing. A snapshot is one copy.
 */
export class ByteRing {
  private buffer: Buffer | undefined;
  /** Where the next byte goes. */
  private head = 0;
  private size = 0;

  constructor(readonly capacity: number) {}

  push(chunk: Buffer): void {
    if (this.capacity <= 0 || chunk.length === 0) return;
    const buffer = (this.buffer ??= Buffer.allocUnsafe(this.capacity));
    if (chunk.length >= this.capacity) {
      chunk.copy(buffer, 0, chunk.length - this.capacity);
      this.head = 0;
      this.size = this.capacity;
      return;
    }
    const first = Math.min(chunk.length, this.capacity - this.head);
    chunk.copy(buffer, this.head, 0, first);
    if (first < chunk.length) chunk.copy(buffer, 0, first);
    this.head = (this.head + chunk.length) % this.capacity;
    this.size = Math.min(this.capacity, this.size + chunk.length);
  }

  /** Forgets everything kept; the buffer itself is kept for reuse. */
  clear(): void {
    this.head = 0;
    this.size = 0;
  }

  snapshot(): Buffer {
    const buffer = this.buffer;
    if (!buffer || this.size === 0) return Buffer.alloc(0);
    const start = (this.head - this.size + this.capacity) % this.capacity;
    if (start + this.size <= this.capacity) return Buffer.from(buffer.subarray(start, start + this.size));
    return Buffer.concat([buffer.subarray(start), buffer.subarray(0, this.head)], this.size);
  }

  get length(): number {
    return this.size;
  }
}
