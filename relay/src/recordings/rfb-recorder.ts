import type { Duplex } from 'node:stream';
import { pixelFormatBytes } from './rfb-format.js';
import type { MessageKind } from './vnc-bundle.js';

/** RFC 6143 encodings the recorder asks for: Raw, CopyRect and the DesktopSize pseudo-encoding. */
const RAW = 0;
const COPY_RECT = 1;
const DESKTOP_SIZE = -223;
const BYTES_PER_PIXEL = 4;
/** A screen larger than this (in pixels) is refused rather than recorded (16384 × 16384 would be 1 GiB of framebuffer). */
const MAX_PIXELS = 8192 * 8192;

/** Bytes as they arrive, taken in whole pieces. */
class ByteQueue {
  private chunks: Buffer[] = [];
  length = 0;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** The first `n` bytes, or undefined while fewer have arrived. */
  take(n: number): Buffer | undefined {
    if (this.length < n) return undefined;
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const whole = Buffer.concat(this.chunks, this.length);
      out = whole.subarray(0, n);
      this.chunks = whole.length > n ? [whole.subarray(n)] : [];
    }
    this.length -= n;
    return out;
  }

  peek(n: number): Buffer | undefined {
    if (this.length < n) return undefined;
    if (this.chunks[0]!.length >= n) return this.chunks[0]!.subarray(0, n);
    const whole = Buffer.concat(this.chunks, this.length);
    this.chunks = [whole];
    return whole.subarray(0, n);
  }
}

export interface RecorderEvents {
  /** The screen is known (after ServerInit) — and again after a DesktopSize change. */
  screen(width: number, height: number, name: string): void;
  /** One whole server message (as the VM sent it, in the recorder's pixel format), and how it stands (vnc-bundle.ts). */
  message(message: Buffer, kind: MessageKind): void;
  /** The handshake failed or the VM sent something the recorder cannot follow. */
  failed(reason: string): void;
}

type Step = (queue: ByteQueue) => boolean;

/**
 * A VNC client of its own that the relay runs beside a recorded console's sessions: it asks the
 * VM's VNC server (shared, never exclusive) for the pixel format and encodings a player can replay
 * (docs/recordings.md#vnc-segments), keeps the screen as a framebuffer so every segment can start
 * with a full frame, and hands on each server message whole. It never sends input.
 */
export class RfbRecorder {
  width = 0;
  height = 0;
  name = '';
  /** The screen now, 4 bytes per pixel in the recorder's pixel format. */
  framebuffer = Buffer.alloc(0);
  private readonly queue = new ByteQueue();
  private step: Step = (queue) => this.version(queue);
  private failedAlready = false;
  /** Bytes of the message being read, kept until it is whole. */
  private parts: Buffer[] = [];
  private rectsLeft = 0;
  /** Set until the answer to a non-incremental update request (the whole screen, RFC 6143 §7.5.3) has come: at the start and after a size change. */
  private awaitingFull = true;
  private seenFull = false;
  /** The update being read changed the screen's size: the next one is asked for whole. */
  private resized = false;

  constructor(
    private readonly socket: Duplex,
    private readonly events: RecorderEvents,
  ) {}

  /** A read from the VM's VNC server; the recorder keeps it (pass a buffer it may own). */
  push(chunk: Buffer): void {
    if (this.failedAlready) return;
    this.queue.push(chunk);
    try {
      while (!this.failedAlready && this.step(this.queue));
    } catch (error) {
      this.fail((error as Error).message);
    }
  }

  private fail(reason: string): void {
    if (this.failedAlready) return;
    this.failedAlready = true;
    this.events.failed(reason);
  }

  private version(queue: ByteQueue): boolean {
    const greeting = queue.take(12);
    if (!greeting) return false;
    if (!/^RFB \d{3}\.\d{3}\n$/.test(greeting.toString('latin1'))) throw new Error('the VM\'s VNC server did not greet as RFB');
    this.socket.write('RFB 003.008\n');
    this.step = (q) => this.securityTypes(q);
    return true;
  }

  private securityTypes(queue: ByteQueue): boolean {
    const count = queue.peek(1)?.[0];
    if (count === undefined) return false;
    if (count === 0) {
      const head = queue.peek(5);
      const reason = head && queue.take(5 + head.readUInt32BE(1));
      if (!reason) return false;
      throw new Error(`the VM's VNC server refused the recorder: ${reason.subarray(5).toString('utf8')}`);
    }
    const types = queue.take(1 + count);
    if (!types) return false;
    if (!types.subarray(1).includes(1)) throw new Error('the VM\'s VNC server asks for authentication, and the recorder has no password (security types: ' + [...types.subarray(1)].join(', ') + ')');
    this.socket.write(Buffer.from([1]));
    this.step = (q) => this.securityResult(q);
    return true;
  }

  private securityResult(queue: ByteQueue): boolean {
    const result = queue.take(4);
    if (!result) return false;
    if (result.readUInt32BE(0) !== 0) throw new Error('the VM\'s VNC server refused the recorder\'s connection');
    this.socket.write(Buffer.from([1])); // ClientInit: shared, so nobody else is disconnected
    this.step = (q) => this.serverInit(q);
    return true;
  }

  private serverInit(queue: ByteQueue): boolean {
    const head = queue.peek(24);
    if (!head) return false;
    const init = queue.take(24 + head.readUInt32BE(20));
    if (!init) return false;
    this.resize(init.readUInt16BE(0), init.readUInt16BE(2));
    this.name = init.subarray(24).toString('utf8');
    const setPixelFormat = Buffer.concat([Buffer.from([0, 0, 0, 0]), pixelFormatBytes()]);
    const encodings = [RAW, COPY_RECT, DESKTOP_SIZE];
    const setEncodings = Buffer.alloc(4 + 4 * encodings.length);
    setEncodings.writeUInt8(2, 0);
    setEncodings.writeUInt16BE(encodings.length, 2);
    encodings.forEach((encoding, i) => setEncodings.writeInt32BE(encoding, 4 + 4 * i));
    this.socket.write(Buffer.concat([setPixelFormat, setEncodings, this.updateRequest(false)]));
    this.events.screen(this.width, this.height, this.name);
    this.step = (q) => this.messageType(q);
    return true;
  }

  private updateRequest(incremental: boolean): Buffer {
    const request = Buffer.alloc(10);
    request.writeUInt8(3, 0);
    request.writeUInt8(incremental ? 1 : 0, 1);
    request.writeUInt16BE(this.width, 6);
    request.writeUInt16BE(this.height, 8);
    return request;
  }

  private resize(width: number, height: number): void {
    if (width * height > MAX_PIXELS) throw new Error(`the VM's screen is ${width}×${height}, larger than the recorder takes`);
    this.width = width;
    this.height = height;
    this.framebuffer = Buffer.alloc(width * height * BYTES_PER_PIXEL);
  }

  /** Keeps a piece of the message being read (the queue's buffers are the recorder's own copies of the reads). */
  private keep(bytes: Buffer): void {
    this.parts.push(bytes);
  }

  private messageType(queue: ByteQueue): boolean {
    const type = queue.peek(1)?.[0];
    if (type === undefined) return false;
    if (type === 0) {
      const head = queue.take(4);
      if (!head) return false;
      this.keep(head);
      this.rectsLeft = head.readUInt16BE(2);
      this.step = (q) => this.rectangle(q);
      return true;
    }
    if (type === 2) {
      this.keep(queue.take(1)!);
      this.finish();
      return true;
    }
    if (type === 1) {
      const head = queue.peek(6);
      const message = head && queue.take(6 + 6 * head.readUInt16BE(4));
      return Boolean(message); // colour maps do not apply to the true-colour format asked for
    }
    if (type === 3) {
      const head = queue.peek(8);
      const message = head && queue.take(8 + head.readUInt32BE(4));
      return Boolean(message); // the VM's clipboard is not recorded (docs/recordings.md#privacy)
    }
    throw new Error(`the VM's VNC server sent message type ${type}, which the recorder did not ask for`);
  }

  private rectangle(queue: ByteQueue): boolean {
    if (this.rectsLeft === 0) {
      this.finish();
      return true;
    }
    const head = queue.peek(12);
    if (!head) return false;
    const x = head.readUInt16BE(0);
    const y = head.readUInt16BE(2);
    const w = head.readUInt16BE(4);
    const h = head.readUInt16BE(6);
    const encoding = head.readInt32BE(8);
    if (encoding === DESKTOP_SIZE) {
      this.keep(queue.take(12)!);
      this.resize(w, h);
      this.awaitingFull = true;
      this.resized = true;
      this.events.screen(w, h, this.name);
    } else if (encoding === RAW) {
      const rect = queue.take(12 + w * h * BYTES_PER_PIXEL);
      if (!rect) return false;
      if (x + w > this.width || y + h > this.height) throw new Error(`a rectangle at ${x},${y} of ${w}×${h} is outside the ${this.width}×${this.height} screen`);
      this.keep(rect);
      const rowBytes = w * BYTES_PER_PIXEL;
      for (let row = 0; row < h; row++) rect.copy(this.framebuffer, ((y + row) * this.width + x) * BYTES_PER_PIXEL, 12 + row * rowBytes, 12 + (row + 1) * rowBytes);
    } else if (encoding === COPY_RECT) {
      const rect = queue.take(16);
      if (!rect) return false;
      this.keep(rect);
      this.copyRect(rect.readUInt16BE(12), rect.readUInt16BE(14), x, y, w, h);
    } else {
      throw new Error(`the VM's VNC server sent encoding ${encoding}, which the recorder did not ask for`);
    }
    this.rectsLeft--;
    return true;
  }

  private copyRect(sx: number, sy: number, x: number, y: number, w: number, h: number): void {
    const rowBytes = w * BYTES_PER_PIXEL;
    const source = Buffer.allocUnsafe(rowBytes * h);
    for (let row = 0; row < h; row++) this.framebuffer.copy(source, row * rowBytes, ((sy + row) * this.width + sx) * BYTES_PER_PIXEL, ((sy + row) * this.width + sx) * BYTES_PER_PIXEL + rowBytes);
    for (let row = 0; row < h; row++) source.copy(this.framebuffer, ((y + row) * this.width + x) * BYTES_PER_PIXEL, row * rowBytes, (row + 1) * rowBytes);
  }

  private finish(): void {
    const message = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
    this.parts = [];
    const wasUpdate = message[0] === 0;
    this.step = (q) => this.messageType(q);
    let kind: MessageKind = this.seenFull ? 'update' : 'before';
    if (wasUpdate && this.awaitingFull && !this.resized) {
      // This update answered the non-incremental request: the framebuffer is the whole screen now.
      this.awaitingFull = false;
      this.seenFull = true;
      kind = 'full';
    }
    this.events.message(message, kind);
    if (wasUpdate) this.socket.write(this.updateRequest(!this.awaitingFull));
    this.resized = false;
  }

  /** The screen as one FramebufferUpdate with a single Raw rectangle: how every segment begins. */
  keyframe(): Buffer {
    const head = Buffer.alloc(16);
    head.writeUInt8(0, 0);
    head.writeUInt16BE(1, 2);
    head.writeUInt16BE(this.width, 8);
    head.writeUInt16BE(this.height, 10);
    head.writeInt32BE(RAW, 12);
    return Buffer.concat([head, this.framebuffer]);
  }
}
