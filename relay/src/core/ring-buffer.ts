/**
 * Keeps the most recent `capacity` bytes of a stream as the chunks that arrived,
 * so appending costs no per-byte work and a snapshot is one concat.
 */
export class ByteRing {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(readonly capacity: number) {}

  push(chunk: Buffer): void {
    if (this.capacity <= 0 || chunk.length === 0) return;
    if (chunk.length >= this.capacity) {
      this.chunks = [Buffer.from(chunk.subarray(chunk.length - this.capacity))];
      this.size = this.capacity;
      return;
    }
    // Copy: the socket may reuse or the caller may keep the buffer.
    this.chunks.push(Buffer.from(chunk));
    this.size += chunk.length;
    while (this.size > this.capacity) {
      const head = this.chunks[0]!;
      const excess = this.size - this.capacity;
      if (head.length <= excess) {
        this.chunks.shift();
        this.size -= head.length;
      } else {
        this.chunks[0] = head.subarray(excess);
        this.size -= excess;
      }
    }
    // Many tiny chunks (keystroke echoes) would make shift() costly: coalesce them now and then.
    if (this.chunks.length > 512) this.chunks = [this.snapshot()];
  }

  snapshot(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }

  get length(): number {
    return this.size;
  }
}
