import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { FLOOD_TRIGGER, SINK_DONE, SINK_TRIGGER } from './fake-console.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const CHUNK = 64 * 1024;

/** A masked client frame (RFC 6455 §5.2) carrying `payload`, binary, final. */
export function clientFrame(payload: Buffer): Buffer {
  const length = payload.length;
  const extended = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const frame = Buffer.allocUnsafe(2 + extended + 4 + length);
  frame[0] = 0x82;
  frame[1] = 0x80 | (extended === 0 ? length : extended === 2 ? 126 : 127);
  if (extended === 2) frame.writeUInt16BE(length, 2);
  if (extended === 8) frame.writeBigUInt64BE(BigInt(length), 2);
  const mask = randomBytes(4);
  mask.copy(frame, 2 + extended);
  const start = 2 + extended + 4;
  for (let i = 0; i < length; i++) frame[start + i] = payload[i]! ^ mask[i & 3]!;
  return frame;
}

/**
 * Reads server frames (unmasked, RFC 6455) from socket chunks without copying payloads:
 * calls `onPayload` with each payload slice as it arrives. Only what a proxy sends here is
 * handled (binary/text/continuation data, ping, close); a close ends the parse.
 */
export class FrameReader {
  private header = Buffer.alloc(14);
  private headerHave = 0;
  private payloadLeft = 0;
  private opcode = 0;

  constructor(private readonly onPayload: (slice: Buffer, opcode: number) => void) {}

  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.payloadLeft > 0) {
        const take = Math.min(this.payloadLeft, chunk.length - offset);
        this.onPayload(chunk.subarray(offset, offset + take), this.opcode);
        this.payloadLeft -= take;
        offset += take;
        continue;
      }
      this.header[this.headerHave++] = chunk[offset++]!;
      if (this.headerHave < 2) continue;
      const short = this.header[1]! & 0x7f;
      const need = 2 + (short === 126 ? 2 : short === 127 ? 8 : 0);
      if (this.headerHave < need) continue;
      this.opcode = this.header[0]! & 0x0f;
      this.payloadLeft = short === 126 ? this.header.readUInt16BE(2) : short === 127 ? Number(this.header.readBigUInt64BE(2)) : short;
      this.headerHave = 0;
      if (this.payloadLeft === 0) this.onPayload(Buffer.alloc(0), this.opcode);
    }
  }
}

/**
 * The cheapest WebSocket client we can write, so that a benchmark measures the proxy and not
 * the client: a hand-made upgrade, payload bytes counted in place, and client frames masked once
 * up front and then written again and again. It speaks to the fake console's echo, flood
 * (Ctrl-A) and sink (Ctrl-B) modes.
 */
export class RawWebSocketClient {
  private reader: FrameReader | undefined;
  private listener: ((slice: Buffer) => void) | undefined;
  /** Fails the operation in progress when the connection goes away. */
  private failure: ((error: Error) => void) | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on('close', () => this.failure?.(new Error('the WebSocket connection closed')));
    socket.on('error', () => undefined);
  }

  static open(url: string, protocol = 'binary'): Promise<RawWebSocketClient> {
    const target = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = connect({ host: target.hostname, port: Number(target.port) });
      socket.setNoDelay(true);
      const key = randomBytes(16).toString('base64');
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.write(
          `GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ${protocol}\r\n\r\n`,
        );
      });
      let head = Buffer.alloc(0);
      const onHead = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.removeListener('data', onHead);
        const text = head.subarray(0, end).toString();
        const accept = createHash('sha1').update(key + GUID).digest('base64');
        if (!/^HTTP\/1\.1 101/.test(text) || !text.includes(accept)) {
          socket.destroy();
          return reject(new Error(`WebSocket upgrade refused: ${text.split('\r\n')[0]}`));
        }
        const client = new RawWebSocketClient(socket);
        client.reader = new FrameReader((slice, opcode) => {
          if (opcode <= 2) client.listener?.(slice);
        });
        socket.on('data', (data: Buffer) => client.reader!.push(data));
        const rest = head.subarray(end + 4);
        if (rest.length > 0) client.reader.push(rest);
        resolve(client);
      };
      socket.on('data', onHead);
    });
  }

  /** Seconds to receive `bytes` of payload after asking the console to flood. */
  flood(bytes: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.failure = reject;
      let received = 0;
      const started = process.hrtime.bigint();
      this.listener = (slice) => {
        received += slice.length;
        if (received >= bytes) {
          this.listener = undefined;
          resolve(Number(process.hrtime.bigint() - started) / 1e9);
        }
      };
      this.socket.write(clientFrame(Buffer.from([FLOOD_TRIGGER])));
    });
  }

  /** Seconds to send `bytes` of payload to the console's sink until it confirms them all. */
  sink(bytes: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.failure = reject;
      const frame = clientFrame(Buffer.alloc(CHUNK, 0x63));
      const started = process.hrtime.bigint();
      this.listener = (slice) => {
        if (!slice.includes(SINK_DONE)) return;
        this.listener = undefined;
        resolve(Number(process.hrtime.bigint() - started) / 1e9);
      };
      this.socket.write(clientFrame(Buffer.from([SINK_TRIGGER])));
      let left = Math.ceil(bytes / CHUNK);
      const last = bytes - (left - 1) * CHUNK;
      const pump = (): void => {
        while (left > 0) {
          left -= 1;
          const piece = left === 0 && last !== CHUNK ? clientFrame(Buffer.alloc(last, 0x63)) : frame;
          if (!this.socket.write(piece)) return void this.socket.once('drain', pump);
        }
      };
      pump();
    });
  }

  /** Round-trip times (ms) of `count` sequential 1-byte echoes. */
  async roundTrips(count: number): Promise<number[]> {
    const frame = clientFrame(Buffer.from('z'));
    const times: number[] = [];
    for (let i = 0; i < count; i++) {
      const started = process.hrtime.bigint();
      await new Promise<void>((resolve, reject) => {
        this.failure = reject;
        this.listener = () => resolve();
        this.socket.write(frame);
      });
      times.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
    this.listener = undefined;
    return times;
  }

  close(): void {
    this.socket.destroy();
  }
}
