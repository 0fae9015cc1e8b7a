import type { Duplex } from 'node:stream';

export interface ServerInit {
  width: number;
  height: number;
  name: string;
}

/** Reads exactly `n` bytes from a stream (in paused mode). */
function readBytes(stream: Duplex, n: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`timed out reading ${n} RFB bytes`)), timeoutMs);
    const finish = (error?: Error, data?: Buffer): void => {
      clearTimeout(timer);
      stream.removeListener('readable', onReadable);
      stream.removeListener('close', onClose);
      if (error) reject(error);
      else resolve(data!);
    };
    const onReadable = (): void => {
      const data = stream.read(n) as Buffer | null;
      if (data) finish(undefined, data);
    };
    const onClose = (): void => finish(new Error('the stream closed during the RFB handshake'));
    stream.on('readable', onReadable);
    stream.once('close', onClose);
    onReadable();
  });
}

/**
 * A minimal RFB 3.8 client handshake (security type None, as QEMU offers without a
 * password): enough to prove a stream is the VM's VNC server and to read its desktop name.
 */
export async function rfbHandshake(stream: Duplex, timeoutMs = 10_000): Promise<ServerInit> {
  const version = (await readBytes(stream, 12, timeoutMs)).toString('latin1');
  if (!/^RFB 003\.00\d\n$/.test(version)) throw new Error(`not an RFB server: ${JSON.stringify(version)}`);
  stream.write('RFB 003.008\n');
  const count = (await readBytes(stream, 1, timeoutMs))[0]!;
  if (count === 0) throw new Error('the server refused the connection');
  const types = await readBytes(stream, count, timeoutMs);
  if (!types.includes(1)) throw new Error(`no "None" security type offered: ${[...types].join(',')}`);
  stream.write(Buffer.from([1]));
  const result = (await readBytes(stream, 4, timeoutMs)).readUInt32BE(0);
  if (result !== 0) throw new Error(`security handshake failed: ${result}`);
  stream.write(Buffer.from([1])); // ClientInit: shared
  const init = await readBytes(stream, 24, timeoutMs);
  const nameLength = init.readUInt32BE(20);
  const name = (await readBytes(stream, nameLength, timeoutMs)).toString('utf8');
  return { width: init.readUInt16BE(0), height: init.readUInt16BE(2), name };
}

/** FramebufferUpdateRequest for the whole screen; `incremental: false` makes the server send it all again. */
export function updateRequest(init: ServerInit, incremental: boolean): Buffer {
  const message = Buffer.alloc(10);
  message[0] = 3;
  message[1] = incremental ? 1 : 0;
  message.writeUInt16BE(init.width, 6);
  message.writeUInt16BE(init.height, 8);
  return message;
}

/** SetEncodings with raw only, so updates are as large as they can be. */
export function rawEncodingOnly(): Buffer {
  return Buffer.from([2, 0, 0, 1, 0, 0, 0, 0]);
}
